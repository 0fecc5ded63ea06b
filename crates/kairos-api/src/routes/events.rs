//! `GET /v1/events`: a user's calendar events in one shape for every provider, recurring
//! series expanded into the instances in the window.

use axum::Json;
use axum::extract::State;
use jiff::{SignedDuration, Timestamp};
use kairos_core::Interval;
use kairos_core::calendar::busy::holds_time;
use kairos_core::calendar::event::EventStatus;
use kairos_core::calendar::{BusyRules, Calendar, EventTime, Instance, InstanceTime};
use kairos_store::CalendarRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, Auth};
use crate::routes::calendars::user_named;
use crate::wire::{self, Pagination};

/// The widest window one request may ask for.
pub const MAX_WINDOW_DAYS: i64 = 62;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// A user id or email.
    pub user: String,
    /// RFC 3339; events overlapping [start, end) are returned.
    pub start: String,
    /// At most 62 days after `start`.
    pub end: String,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttendeeView {
    pub email: String,
    /// `accepted`, `declined`, `tentative` or `needs_action`.
    pub response_status: String,
}

/// An event instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    /// Stable: the calendar, the event's UID and, for an instance of a series, its start.
    pub id: String,
    pub calendar_id: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// RFC 3339 UTC, or `YYYY-MM-DD` for all-day events.
    pub start_time: String,
    /// RFC 3339 UTC, or `YYYY-MM-DD` (exclusive) for all-day events.
    pub end_time: String,
    /// The event's own IANA zone, or the user's for floating and all-day events.
    pub timezone: String,
    pub all_day: bool,
    /// `confirmed`, `tentative` or `cancelled`.
    pub status: String,
    /// Whether it holds the user's time (opaque, not cancelled, not declined by them).
    pub busy: bool,
    pub attendees: Vec<AttendeeView>,
    pub meeting_link: Option<String>,
    pub is_recurring: bool,
    pub recurring_event_id: Option<String>,
    /// Provider details: the iCalendar UID, SEQUENCE and LOCATION.
    #[schema(value_type = Object)]
    pub remote_data: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct EventList {
    pub result: Vec<EventView>,
    pub next_cursor: Option<String>,
}

/// RFC 3339 UTC (a floating time read in the user's zone), or the date of an all-day event.
fn time_text(t: &InstanceTime, zone: &jiff::tz::TimeZone) -> String {
    match t {
        InstanceTime::Date(d) => d.to_string(),
        other => other.instant(zone).to_string(),
    }
}

/// A URL of a known meeting service in the event's location or description.
fn meeting_link(texts: &[Option<&String>]) -> Option<String> {
    const HOSTS: [&str; 4] = ["meet.google.com", "zoom.us", "teams.microsoft.com", "whereby.com"];
    texts.iter().flatten().flat_map(|t| t.split_whitespace()).find_map(|word| {
        let word = word.trim_matches(|c: char| matches!(c, '<' | '>' | '(' | ')' | '"' | ',' | ';'));
        (word.starts_with("https://") && HOSTS.iter().any(|h| word.contains(h))).then(|| word.to_string())
    })
}

fn view(calendar: &CalendarRecord, i: &Instance<'_>, rules: &BusyRules<'_>, user: &kairos_core::User) -> EventView {
    let calendar_id = calendar.id.as_str();
    let zone = user.schedule.timezone.tz();
    let user_zone = user.schedule.timezone.name();
    let e = i.event;
    let is_recurring = i.recurrence_id.is_some();
    let id = match &i.recurrence_id {
        Some(rid) => format!("{calendar_id}:{}:{}", e.uid, time_text(rid, zone)),
        None => format!("{calendar_id}:{}", e.uid),
    };
    let timezone = match &e.start {
        EventTime::Zoned(z, _) => z.time_zone().iana_name().unwrap_or("UTC").to_string(),
        _ => user_zone.to_string(),
    };
    let all_day = matches!(i.start, InstanceTime::Date(_));
    EventView {
        id,
        calendar_id: calendar_id.to_string(),
        title: e.summary.clone(),
        description: e.description.clone(),
        start_time: time_text(&i.start, zone),
        end_time: time_text(&i.end, zone),
        timezone,
        all_day,
        status: match e.status {
            EventStatus::Confirmed => "confirmed",
            EventStatus::Tentative => "tentative",
            EventStatus::Cancelled => "cancelled",
        }
        .into(),
        // A deselected calendar holds no time.
        busy: calendar.selected && holds_time(i, rules),
        attendees: e
            .attendees
            .iter()
            .map(|a| AttendeeView {
                email: a.email.clone(),
                response_status: match a.partstat.as_str() {
                    "ACCEPTED" => "accepted",
                    "DECLINED" => "declined",
                    "TENTATIVE" => "tentative",
                    _ => "needs_action",
                }
                .into(),
            })
            .collect(),
        meeting_link: meeting_link(&[e.location.as_ref(), e.description.as_ref()]),
        is_recurring,
        recurring_event_id: is_recurring.then(|| format!("{calendar_id}:{}", e.uid)),
        remote_data: serde_json::json!({"uid": e.uid, "sequence": e.sequence, "location": e.location}),
    }
}

fn encode_cursor(at_ms: i64, id: &str) -> String {
    hex::encode(format!("{at_ms}|{id}"))
}

fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    let text = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
    let (at, id) = text.split_once('|')?;
    Some((at.parse().ok()?, id.to_string()))
}

#[utoipa::path(get, path = "/v1/events", tag = super::CALENDARS, params(EventsQuery),
    responses((status = 200, body = EventList), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<EventList>, ApiError> {
    let page = Pagination { limit: q.limit, cursor: q.cursor.clone() }.page()?;
    let time = |param: &str, text: &str| wire::parse_time(text).map_err(|e| ApiError::invalid(param, e));
    let (start, end): (Timestamp, Timestamp) = (time("start", &q.start)?, time("end", &q.end)?);
    let window = Interval::new(start, end).map_err(|_| ApiError::invalid("end", "`end` must be after `start`."))?;
    if window.duration() > SignedDuration::from_hours(24 * MAX_WINDOW_DAYS) {
        return Err(ApiError::invalid(
            "end",
            format!("The window is at most {MAX_WINDOW_DAYS} days; ask for several windows to cover more."),
        ));
    }
    let user = user_named(&state, &t, "user", &q.user).await?;
    let zone = user.schedule.timezone.tz().clone();
    let rules = BusyRules { email: Some(&user.email), tentative_is_busy: state.sync.feeds.config().tentative_is_busy };
    let mut events = Vec::new();
    for (calendar, source) in state.store.calendar_sources(&t, &user.id).await? {
        let Ok(parsed) = Calendar::parse(&source) else { continue };
        for instance in parsed.instances(window, &zone) {
            events.push((instance.start.instant(&zone).as_millisecond(), view(&calendar, &instance, &rules, &user)));
        }
    }
    events.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
    events.dedup_by(|a, b| a.1.id == b.1.id && a.0 == b.0);
    // The cursor is the sort key of the last item returned, so a page resumes after it even
    // when that item has gone since (a sync between pages).
    let after = match &page.cursor {
        Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
            ApiError::invalid("cursor", "`cursor` is not one this API gave; pass `next_cursor` from the previous page.")
        })?),
        None => None,
    };
    let rest: Vec<(i64, EventView)> =
        events.into_iter().filter(|(at, e)| after.as_ref().is_none_or(|(a, id)| (*at, &e.id) > (*a, id))).collect();
    let next_cursor =
        (rest.len() > page.limit).then(|| encode_cursor(rest[page.limit - 1].0, &rest[page.limit - 1].1.id));
    let rest: Vec<EventView> = rest.into_iter().map(|(_, e)| e).collect();
    Ok(Json(EventList { result: rest.into_iter().take(page.limit).collect(), next_cursor }))
}
