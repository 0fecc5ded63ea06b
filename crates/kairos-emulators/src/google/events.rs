//! `calendarList.list` and the single-event methods: `events.get`, `insert`, `patch`,
//! `update` and `delete`, with client-chosen ids, `If-Match` and instance ids of series.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::GoogleEmulator;
use super::api_error::ApiError;
use super::push;
use super::recurrence;
use super::resource::{self, merge_patch};
use super::state::opaque;

/// `GET /calendar/v3/users/me/calendarList` (pages of `maxResults`, default 100, max 250).
pub(crate) async fn calendar_list(
    State(emu): State<GoogleEmulator>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let page_size = match get("maxResults").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if n >= 1 => n.min(250),
        Some(_) => return Err(ApiError::invalid_parameter("maxResults", "Invalid value for: maxResults")),
    };
    let offset = match get("pageToken") {
        None => 0,
        Some(t) => URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("calendarList:").and_then(|n| n.parse::<usize>().ok()))
            .ok_or_else(|| ApiError::invalid_parameter("pageToken", "Invalid page token value."))?,
    };
    emu.with_state(|s| {
        let items: Vec<Value> = s
            .calendars
            .iter()
            .skip(offset)
            .take(page_size)
            .enumerate()
            .map(|(i, c)| {
                let mut entry = json!({
                    "kind": "calendar#calendarListEntry",
                    "etag": format!("\"{}\"", 1_700_000_000_000_000u64 + (offset + i) as u64),
                    "id": c.id,
                    "summary": c.summary,
                    "timeZone": c.time_zone,
                    "colorId": "14",
                    "backgroundColor": "#9fe1e7",
                    "foregroundColor": "#000000",
                    "selected": true,
                    "accessRole": "owner",
                    "defaultReminders": [{"method": "popup", "minutes": 10}],
                    "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
                });
                if let (true, Some(map)) = (c.primary, entry.as_object_mut()) {
                    map.insert("primary".into(), json!(true));
                    map.insert("notificationSettings".into(), json!({"notifications": []}));
                }
                entry
            })
            .collect();
        let mut list =
            json!({"kind": "calendar#calendarList", "etag": format!("\"p3{}\"", s.clock_us), "items": items});
        if let Some(map) = list.as_object_mut() {
            if offset + page_size < s.calendars.len() {
                let token = URL_SAFE_NO_PAD.encode(format!("calendarList:{}", offset + page_size));
                map.insert("nextPageToken".into(), json!(token));
            } else {
                map.insert("nextSyncToken".into(), json!(opaque("CKi", 30) + "="));
            }
        }
        Ok(Json(list))
    })
}

/// Checks `If-Match` against the current etag (`*` matches anything).
fn check_if_match(headers: &HeaderMap, current: &Value) -> Result<(), ApiError> {
    let Some(wanted) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else { return Ok(()) };
    let etag = current.get("etag").and_then(Value::as_str).unwrap_or_default();
    if wanted.trim() == "*" || wanted.split(',').any(|w| w.trim() == etag) {
        Ok(())
    } else {
        Err(ApiError::precondition_failed())
    }
}

/// The checks Google makes of an event body on insert and update.
fn validate(body: &Map<String, Value>) -> Result<(), ApiError> {
    let start = body.get("start").ok_or_else(|| ApiError::required("Missing start time."))?;
    let end = body.get("end").ok_or_else(|| ApiError::required("Missing end time."))?;
    let recurring = body.get("recurrence").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    if recurring && start.get("date").is_none() && start.get("timeZone").and_then(Value::as_str).is_none() {
        return Err(ApiError::required("Missing time zone definition for start time."));
    }
    for (name, t) in [("start", start), ("end", end)] {
        if let Some(zone) = t.get("timeZone").and_then(Value::as_str)
            && jiff::tz::TimeZone::get(zone).is_err()
        {
            return Err(ApiError::invalid(format!("Invalid time zone definition for {name} time.")));
        }
    }
    let zone = jiff::tz::TimeZone::UTC;
    match (recurrence::read_time(start, &zone), recurrence::read_time(end, &zone)) {
        (Some(s), Some(e)) if recurrence::instant(e, &zone) < recurrence::instant(s, &zone) => {
            Err(ApiError::time_range_empty("end"))
        }
        (Some(_), Some(_)) => Ok(()),
        _ => Err(ApiError::bad_request("Bad Request")),
    }
}

fn object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request("Bad Request")),
    }
}

/// `GET …/events/{eventId}` (cancelled events too, as Google's get always returns them).
pub(crate) async fn get(
    State(emu): State<GoogleEmulator>,
    Path((calendar, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    emu.with_state(|s| {
        let cal = s.calendar_index(&calendar).ok_or_else(ApiError::not_found)?;
        s.resolve_event(cal, &id).map(Json).ok_or_else(ApiError::not_found)
    })
}

/// `POST …/events`.
pub(crate) async fn insert(
    State(emu): State<GoogleEmulator>,
    Path(calendar): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let mut body = object(body)?;
    validate(&body)?;
    let id = match body.get("id").and_then(Value::as_str) {
        Some(id) if resource::valid_client_id(id) => id.to_string(),
        Some(_) => return Err(ApiError::invalid("Invalid resource id value.")),
        None => resource::new_event_id(),
    };
    body.insert("id".into(), json!(id));
    emu.with_state(|s| {
        let cal = s.calendar_index(&calendar).ok_or_else(ApiError::not_found)?;
        if s.calendars[cal].events.contains_key(&id) {
            return Err(ApiError::duplicate());
        }
        let written = s.write_event(cal, &id, body);
        push::notify(s, &s.calendars[cal].id);
        Ok(Json(written))
    })
}

/// `PUT …/events/{eventId}` (full replacement) and `PATCH` (merge).
async fn write(
    emu: GoogleEmulator,
    calendar: String,
    id: String,
    headers: HeaderMap,
    body: Value,
    replace: bool,
) -> Result<Json<Value>, ApiError> {
    let patch = object(body)?;
    emu.with_state(|s| {
        let cal = s.calendar_index(&calendar).ok_or_else(ApiError::not_found)?;
        let current = s.resolve_event(cal, &id).ok_or_else(ApiError::not_found)?;
        check_if_match(&headers, &current)?;
        let mut body = object(current.clone())?;
        if replace {
            body = patch;
            // What a PUT cannot change.
            for key in ["recurringEventId", "originalStartTime", "iCalUID", "created", "creator", "organizer"] {
                if let Some(v) = current.get(key) {
                    body.entry(key).or_insert_with(|| v.clone());
                }
            }
        } else {
            merge_patch(&mut body, patch);
        }
        body.insert("id".into(), json!(id));
        validate(&body)?;
        let written = s.write_event(cal, &id, body);
        push::notify(s, &s.calendars[cal].id);
        Ok(Json(written))
    })
}

pub(crate) async fn update(
    State(emu): State<GoogleEmulator>,
    Path((calendar, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    write(emu, calendar, id, headers, body, true).await
}

pub(crate) async fn patch(
    State(emu): State<GoogleEmulator>,
    Path((calendar, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    write(emu, calendar, id, headers, body, false).await
}

/// `DELETE …/events/{eventId}` → 204; 410 when already deleted.
pub(crate) async fn delete(
    State(emu): State<GoogleEmulator>,
    Path((calendar, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    emu.with_state(|s| {
        let cal = s.calendar_index(&calendar).ok_or_else(ApiError::not_found)?;
        let current = s.resolve_event(cal, &id).ok_or_else(ApiError::not_found)?;
        if current.get("status").and_then(Value::as_str) == Some("cancelled") {
            return Err(ApiError::deleted());
        }
        check_if_match(&headers, &current)?;
        if !s.calendars[cal].events.contains_key(&id) {
            // An unmodified instance of a series: deleting it stores a cancelled exception.
            let mut body = object(current)?;
            body.insert("status".into(), json!("cancelled"));
            s.write_event(cal, &id, body);
        } else {
            s.cancel_event(cal, &id);
        }
        push::notify(s, &s.calendars[cal].id);
        Ok(StatusCode::NO_CONTENT)
    })
}
