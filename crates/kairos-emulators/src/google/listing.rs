//! `events.list`: full listings with Google's filters (`timeMin` bounds an event's end,
//! `timeMax` its start, both exclusive; `updatedMin`; `showDeleted`; `singleEvents`;
//! `orderBy`), incremental listings from a `syncToken`, and paging (`nextPageToken` on every
//! page but the last, `nextSyncToken` on the last only).

use std::collections::HashSet;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::GoogleEmulator;
use super::api_error::ApiError;
use super::recurrence;
use super::resource::{self, rfc3339_millis};
use super::state::{CalendarState, PageCursor, State as Memory, StoredEvent, SyncPoint, opaque};

/// Instances one series yields for `singleEvents=true`.
const MAX_INSTANCES_PER_SERIES: usize = 2500;

/// Parameters that cannot go with a `syncToken` (events.list reference).
const NOT_WITH_SYNC_TOKEN: [&str; 8] = [
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
];

struct Query {
    params: Vec<(String, String)>,
}

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &'static str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ApiError::invalid_parameter(key, format!("Invalid boolean value: '{other}'."))),
        }
    }

    fn time(&self, key: &'static str) -> Result<Option<Timestamp>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse::<Timestamp>()
                    .map_err(|_| ApiError::invalid_parameter(key, format!("Invalid value for: {key}")))
            })
            .transpose()
    }
}

/// What a full listing asks for.
struct Filter {
    show_deleted: bool,
    single_events: bool,
    time_min: Option<Timestamp>,
    time_max: Option<Timestamp>,
    updated_min: Option<Timestamp>,
}

impl Filter {
    fn overlaps(&self, start: Timestamp, end: Timestamp) -> bool {
        self.time_min.is_none_or(|min| end > min) && self.time_max.is_none_or(|max| start < max)
    }

    fn windowed(&self) -> bool {
        self.time_min.is_some() || self.time_max.is_some()
    }

    /// How far a series is expanded to tell whether it touches the window: to its end, or
    /// far enough past its start to meet any rule's next instance.
    fn overlap_horizon(&self) -> Timestamp {
        let two_years = SignedDuration::from_hours(2 * 366 * 24);
        self.time_max
            .unwrap_or_else(|| self.time_min.and_then(|min| min.checked_add(two_years).ok()).unwrap_or(Timestamp::MAX))
    }
}

/// `GET /calendar/v3/calendars/{calendarId}/events`.
pub(crate) async fn list(
    State(emu): State<GoogleEmulator>,
    Path(calendar): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query { params: url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect() };
    let page_size = match q.get("maxResults") {
        None => 250,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 => usize::try_from(n.min(2500)).unwrap_or(2500),
            _ => {
                return Err(ApiError::invalid_parameter(
                    "maxResults",
                    format!("Invalid value '{v}'. Values must be within the range: [1, 2500]"),
                ));
            }
        },
    };
    let filter = Filter {
        show_deleted: q.flag("showDeleted")?,
        single_events: q.flag("singleEvents")?,
        time_min: q.time("timeMin")?,
        time_max: q.time("timeMax")?,
        updated_min: q.time("updatedMin")?,
    };
    if let (Some(min), Some(max)) = (filter.time_min, filter.time_max)
        && max <= min
    {
        return Err(ApiError::time_range_empty("timeMax"));
    }
    let order_by = q.get("orderBy");
    match order_by {
        None | Some("updated") => {}
        Some("startTime") if filter.single_events => {}
        Some("startTime") => {
            return Err(ApiError::bad_request("The requested ordering is not available for the particular query."));
        }
        Some(other) => return Err(ApiError::invalid_parameter("orderBy", format!("Invalid value for: {other}"))),
    }
    emu.with_state(|s| {
        let cal_index = s.calendar_index(&calendar).ok_or_else(ApiError::not_found)?;
        let cal_id = s.calendars[cal_index].id.clone();
        if let Some(token) = q.get("pageToken") {
            let cursor = s
                .pages
                .remove(token)
                .filter(|c| c.calendar == cal_id)
                .ok_or_else(|| ApiError::invalid_parameter("pageToken", "Invalid page token value."))?;
            return Ok(Json(serve_page(s, cal_index, cursor)));
        }
        let items = if let Some(token) = q.get("syncToken") {
            if let Some(bad) = NOT_WITH_SYNC_TOKEN.iter().find(|p| q.get(p).is_some()) {
                return Err(ApiError::invalid_parameter(
                    "syncToken",
                    format!("The parameter {bad} cannot be used together with syncToken."),
                ));
            }
            let point =
                s.sync_tokens.get(token).filter(|p| p.calendar == cal_id).ok_or_else(ApiError::full_sync_required)?;
            changed_since(&s.calendars[cal_index], point.seq, filter.show_deleted)
        } else {
            let mut items = full_listing(&s.calendars[cal_index], &filter);
            match order_by {
                Some("startTime") => {
                    let zone = s.calendars[cal_index].zone();
                    items.sort_by_key(|v| recurrence::span(v, &zone).map(|(start, _)| start));
                }
                Some("updated") => items.sort_by(|a, b| a["updated"].as_str().cmp(&b["updated"].as_str())),
                _ => {}
            }
            items
        };
        let next_sync_token = order_by.is_none().then(|| {
            let token = opaque("CPj", 40) + "=";
            s.sync_tokens.insert(token.clone(), SyncPoint { calendar: cal_id.clone(), seq: s.seq });
            token
        });
        let cursor = PageCursor { calendar: cal_id, items: items.into(), page_size, next_sync_token };
        Ok(Json(serve_page(s, cal_index, cursor)))
    })
}

/// Everything changed after `seq`, deletions included (as stubs unless `showDeleted`).
fn changed_since(cal: &CalendarState, seq: u64, show_deleted: bool) -> Vec<Value> {
    cal.ordered().into_iter().filter(|e| e.seq > seq).map(|e| render(e, show_deleted)).collect()
}

fn render(e: &StoredEvent, show_deleted: bool) -> Value {
    if e.cancelled() && !show_deleted { resource::cancelled_stub(&e.resource) } else { e.resource.clone() }
}

/// The span used to place an event in a window: its own times, or for a cancelled instance
/// stub the time it had in the series.
fn placement(e: &StoredEvent, cal: &CalendarState) -> Option<(Timestamp, Timestamp)> {
    let zone = cal.zone();
    recurrence::span(&e.resource, &zone).or_else(|| {
        let original = e.resource.get("originalStartTime").and_then(|o| recurrence::read_time(o, &zone))?;
        let at = recurrence::instant(original, &zone);
        Some((at, at))
    })
}

fn full_listing(cal: &CalendarState, f: &Filter) -> Vec<Value> {
    let zone = cal.zone();
    let mut out = Vec::new();
    let mut placed_exceptions: HashSet<String> = HashSet::new();
    for e in cal.ordered() {
        if f.updated_min
            .is_some_and(|min| e.resource["updated"].as_str().and_then(|u| u.parse::<Timestamp>().ok()) < Some(min))
        {
            continue;
        }
        let is_exception = e.recurring_event_id().is_some();
        if e.cancelled() {
            // Deleted events appear with showDeleted or updatedMin; cancelled instances of a
            // series also when neither showDeleted nor singleEvents is set.
            let shown = f.show_deleted || f.updated_min.is_some() || (is_exception && !f.single_events);
            if !shown || (f.single_events && e.is_master()) {
                continue;
            }
        }
        if e.is_master() && !e.cancelled() {
            if !f.single_events {
                let touches = !f.windowed()
                    || recurrence::expand(&e.resource, &zone, f.overlap_horizon(), usize::MAX)
                        .iter()
                        .any(|o| f.overlaps(o.start, o.end));
                if touches {
                    out.push(e.resource.clone());
                }
                continue;
            }
            let stop = f.time_max.unwrap_or(Timestamp::MAX);
            let occurrences = recurrence::expand(&e.resource, &zone, stop, MAX_INSTANCES_PER_SERIES);
            let series_zone = series_zone(&e.resource, &zone);
            let master_id = e.resource["id"].as_str().unwrap_or_default();
            for o in occurrences {
                match cal.exception(master_id, o.original) {
                    Some(x) => {
                        placed_exceptions.insert(x.resource["id"].as_str().unwrap_or_default().to_string());
                        if (!x.cancelled() || f.show_deleted)
                            && placement(x, cal).is_some_and(|(s, e)| f.overlaps(s, e))
                        {
                            out.push(render(x, f.show_deleted));
                        }
                    }
                    None if f.overlaps(o.start, o.end) => {
                        out.push(resource::instance_of(&e.resource, o.original, o.start, o.end, &series_zone));
                    }
                    None => {}
                }
            }
            continue;
        }
        if is_exception && f.single_events && placed_exceptions.contains(e.resource["id"].as_str().unwrap_or_default())
        {
            continue;
        }
        if placement(e, cal).is_none_or(|(s, end)| f.overlaps(s, end)) {
            out.push(render(e, f.show_deleted));
        }
    }
    if f.single_events {
        // Exceptions placed through their series were pushed there; drop later duplicates.
        let mut seen = HashSet::new();
        out.retain(|v| seen.insert(v["id"].as_str().unwrap_or_default().to_string()));
    }
    out
}

fn series_zone(master: &Value, calendar_zone: &jiff::tz::TimeZone) -> jiff::tz::TimeZone {
    master
        .pointer("/start/timeZone")
        .and_then(Value::as_str)
        .and_then(|z| jiff::tz::TimeZone::get(z).ok())
        .unwrap_or_else(|| calendar_zone.clone())
}

/// One page of a listing; the rest waits under a new page token.
fn serve_page(s: &mut Memory, cal_index: usize, mut cursor: PageCursor) -> Value {
    let take = cursor.page_size.min(cursor.items.len());
    let items: Vec<Value> = cursor.items.drain(..take).collect();
    let cal = &s.calendars[cal_index];
    let mut page = json!({
        "kind": "calendar#events",
        "etag": format!("\"p3{}\"", s.clock_us),
        "summary": cal.summary,
        "description": "",
        "updated": rfc3339_millis(Timestamp::from_microsecond(s.clock_us).unwrap_or_else(|_| Timestamp::now())),
        "timeZone": cal.time_zone,
        "accessRole": "owner",
        "defaultReminders": [{"method": "popup", "minutes": 10}],
        "items": items,
    });
    let Some(map) = page.as_object_mut() else { return page };
    if cursor.items.is_empty() {
        if let Some(token) = cursor.next_sync_token.take() {
            map.insert("nextSyncToken".into(), json!(token));
        }
    } else {
        let token = opaque("", 48);
        map.insert("nextPageToken".into(), json!(token));
        s.pages.insert(token, cursor);
    }
    page
}
