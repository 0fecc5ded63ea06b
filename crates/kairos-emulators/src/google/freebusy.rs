//! `POST /calendar/v3/freeBusy`: busy periods of opaque, confirmed or tentative events
//! (series expanded, exceptions applied, events the calendar's owner declined left out),
//! clipped to the window and merged.

use std::collections::HashSet;

use axum::Json;
use axum::extract::State;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value, json};

use super::GoogleEmulator;
use super::api_error::ApiError;
use super::recurrence;
use super::resource::rfc3339_millis;
use super::state::{CalendarState, StoredEvent};

/// Whether an event makes its calendar busy.
fn blocks(e: &StoredEvent, owner: &str) -> bool {
    let transparent = e.resource.get("transparency").and_then(Value::as_str) == Some("transparent");
    let declined = e.resource.get("attendees").and_then(Value::as_array).is_some_and(|attendees| {
        attendees.iter().any(|a| {
            let me = a.get("self").and_then(Value::as_bool) == Some(true)
                || a.get("email").and_then(Value::as_str).is_some_and(|m| m.eq_ignore_ascii_case(owner));
            me && a.get("responseStatus").and_then(Value::as_str) == Some("declined")
        })
    });
    !e.cancelled() && !transparent && !declined
}

/// The calendar's busy periods in `[min, max)`, sorted and merged.
pub(crate) fn busy(cal: &CalendarState, owner: &str, min: Timestamp, max: Timestamp) -> Vec<(Timestamp, Timestamp)> {
    let zone = cal.zone();
    // Instances replaced by an exception (moved, changed or cancelled).
    let replaced: HashSet<(String, Timestamp)> = cal
        .events
        .values()
        .filter_map(|e| {
            let master = e.recurring_event_id()?;
            let original = e.resource.get("originalStartTime").and_then(|o| recurrence::read_time(o, &zone))?;
            Some((master.to_string(), recurrence::instant(original, &zone)))
        })
        .collect();
    let mut spans = Vec::new();
    for e in cal.events.values().filter(|e| blocks(e, owner)) {
        if e.is_master() {
            let id = e.resource.get("id").and_then(Value::as_str).unwrap_or_default();
            for o in recurrence::expand(&e.resource, &zone, max, usize::MAX) {
                if !replaced.contains(&(id.to_string(), recurrence::instant(o.original, &zone))) {
                    spans.push((o.start, o.end));
                }
            }
        } else if let Some(span) = recurrence::span(&e.resource, &zone) {
            spans.push(span);
        }
    }
    let mut clipped: Vec<(Timestamp, Timestamp)> =
        spans.into_iter().map(|(s, e)| (s.max(min), e.min(max))).filter(|(s, e)| s < e).collect();
    clipped.sort();
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
    for (s, e) in clipped {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

fn format(t: Timestamp, zone: Option<&TimeZone>) -> String {
    match zone {
        Some(z) => t.to_zoned(z.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        None => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

/// `POST /calendar/v3/freeBusy`.
pub(crate) async fn query(State(emu): State<GoogleEmulator>, Json(body): Json<Value>) -> Result<Json<Value>, ApiError> {
    let time = |key: &'static str| -> Result<Timestamp, ApiError> {
        let text = body
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::required(format!("Missing {key} parameter.")))?;
        text.parse().map_err(|_| ApiError::invalid_parameter(key, format!("Invalid value for: {key}")))
    };
    let (min, max) = (time("timeMin")?, time("timeMax")?);
    if max <= min {
        return Err(ApiError::time_range_empty("timeMax"));
    }
    let zone = match body.get("timeZone").and_then(Value::as_str) {
        None | Some("UTC") => None,
        Some(name) => Some(TimeZone::get(name).map_err(|_| ApiError::invalid("Invalid time zone."))?),
    };
    let ids: Vec<String> = body
        .get("items")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|i| i.get("id").and_then(Value::as_str).map(str::to_string)).collect())
        .unwrap_or_default();
    let calendars = emu.with_state(|s| {
        let mut out = Map::new();
        for id in ids {
            let entry = match s.calendar(&id) {
                Ok(cal) => {
                    let periods: Vec<Value> = busy(cal, &s.account, min, max)
                        .into_iter()
                        .map(|(a, b)| json!({"start": format(a, zone.as_ref()), "end": format(b, zone.as_ref())}))
                        .collect();
                    json!({"busy": periods})
                }
                Err(_) => json!({"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}),
            };
            out.insert(id, entry);
        }
        out
    });
    Ok(Json(json!({
        "kind": "calendar#freeBusy",
        "timeMin": rfc3339_millis(min),
        "timeMax": rfc3339_millis(max),
        "calendars": calendars,
    })))
}
