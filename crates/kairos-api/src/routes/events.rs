//! `/v1/events`: a user's calendar events in one shape for every provider, recurring series
//! expanded into the instances in the window; and creating, changing and deleting events on
//! the provider (`kairos_jobs::remote_events`).

use axum::Json;
use axum::extract::State;
use jiff::{SignedDuration, Timestamp};
use kairos_core::Interval;
use kairos_core::calendar::busy::holds_time;
use kairos_core::calendar::event::EventStatus;
use kairos_core::calendar::{BusyRules, Calendar, EventTime, Instance, InstanceTime, instances_of};
use kairos_store::CalendarRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use kairos_jobs::remote_events::{EventWriteError, draft_of_event, read_item};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Auth};
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
        // Provider calendars are read item by item (through the sync's cache); feeds whole.
        if calendar.remote_id.is_some() {
            let read = state.sync.providers.read_calendar(&t, &calendar).await?;
            for instance in instances_of(read.events(), window, &zone) {
                events
                    .push((instance.start.instant(&zone).as_millisecond(), view(&calendar, &instance, &rules, &user)));
            }
            continue;
        }
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

/// An attendee: an email, or an email with a name.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AttendeeInput {
    Email(String),
    Named { email: String, name: Option<String> },
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEvent {
    /// A user id or email.
    pub user: String,
    /// One of the user's writable calendars; default: their primary one.
    pub calendar_id: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub start_time: String,
    pub end_time: String,
    #[serde(default)]
    pub attendees: Vec<AttendeeInput>,
    /// Asking for a video link is not supported by this server yet (422 when true).
    #[serde(default)]
    pub generate_meeting_link: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEvent {
    pub title: Option<String>,
    pub description: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    /// Replaces the attendees.
    pub attendees: Option<Vec<AttendeeInput>>,
}

fn attendees_of(input: Vec<AttendeeInput>) -> Result<Vec<kairos_providers::DraftAttendee>, ApiError> {
    input
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let (email, name) = match a {
                AttendeeInput::Email(email) => (email, None),
                AttendeeInput::Named { email, name } => (email, name),
            };
            Ok(kairos_providers::DraftAttendee { email: wire::email(&format!("attendees[{i}]"), &email)?, name })
        })
        .collect()
}

fn event_write_error(e: EventWriteError) -> ApiError {
    use kairos_providers::ProviderError as P;
    let mut out = match e {
        EventWriteError::NotFound { param, message } => return ApiError::missing_reference(param, message),
        EventWriteError::ReadOnly(message) => return ApiError::invalid("calendar_id", message),
        EventWriteError::Store(e) => return e.into(),
        EventWriteError::NeedsReauth(why) => ApiError::conflict(
            "connection_needs_reauth",
            format!("The provider refused the connection's grant ({why}); have the user connect the account again."),
        ),
        EventWriteError::Provider(P::Conflict) => {
            ApiError::conflict("event_changed", "The event changed on the provider meanwhile; read it again and retry.")
        }
        EventWriteError::Provider(P::NotFound(_)) => {
            ApiError::missing_reference("id", "The provider no longer has this event.")
        }
        EventWriteError::Provider(P::RateLimited { retry_after }) => {
            let mut e = ApiError::conflict("provider_rate_limited", "The provider is rate limiting; retry later.");
            e.status = axum::http::StatusCode::TOO_MANY_REQUESTS;
            e.kind = "rate_limit_error";
            e.retry_after = Some(retry_after.map_or(60, |d| d.as_secs().max(1)));
            e
        }
        EventWriteError::Provider(other) => {
            // The detail (URLs, provider messages) is logged, not returned.
            tracing::warn!(error = %other, "an event write to the provider failed");
            let mut e = ApiError::conflict(
                "provider_error",
                "The calendar provider could not complete the request; try again later.",
            );
            e.status = axum::http::StatusCode::BAD_GATEWAY;
            e.kind = "api_error";
            e
        }
    };
    out.param = None;
    out
}

/// The unified view of an event the provider just returned.
fn written_view(
    calendar: &CalendarRecord,
    event: kairos_core::calendar::Event,
    state: &AppState,
    user: &kairos_core::User,
    start: Timestamp,
) -> Result<EventView, ApiError> {
    let zone = user.schedule.timezone.tz().clone();
    let rules = BusyRules { email: Some(&user.email), tentative_is_busy: state.sync.feeds.config().tentative_is_busy };
    let one = Calendar { events: vec![event], ..Calendar::default() };
    let end = start.checked_add(SignedDuration::from_secs(1)).map_err(ApiError::internal)?;
    let window = Interval::new(start, end).map_err(ApiError::internal)?;
    let instance = one.instances(window, &zone).into_iter().next().ok_or_else(|| ApiError::internal("no instance"))?;
    Ok(view(calendar, &instance, &rules, user))
}

#[utoipa::path(post, path = "/v1/events", tag = super::CALENDARS, request_body = CreateEvent,
    responses((status = 201, body = EventView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiJson(body): ApiJson<CreateEvent>,
) -> Result<(axum::http::StatusCode, Json<EventView>), ApiError> {
    let time = |param: &str, text: &str| wire::parse_time(text).map_err(|e| ApiError::invalid(param, e));
    let (start, end) = (time("start_time", &body.start_time)?, time("end_time", &body.end_time)?);
    if end <= start {
        return Err(ApiError::invalid("end_time", "`end_time` must be after `start_time`."));
    }
    let title = wire::text("title", Some(body.title), 1024)?.filter(|t| !t.trim().is_empty());
    let title = title.ok_or_else(|| ApiError::invalid("title", "Give the event a title."))?;
    let description = wire::text("description", body.description, 8192)?;
    if body.generate_meeting_link {
        return Err(ApiError::invalid(
            "generate_meeting_link",
            "This server cannot create meeting links yet; put a link in `description` instead.",
        ));
    }
    let attendees = attendees_of(body.attendees)?;
    let user = user_named(&state, &t, "user", &body.user).await?;
    let sync = &state.sync.providers;
    let target = sync.event_target(&t, &user.id, body.calendar_id.as_deref()).await.map_err(event_write_error)?;
    let draft = kairos_providers::EventDraft {
        uid: format!("{}@kairos", kairos_store::ids::new_id("kevt")),
        title,
        description,
        start,
        end,
        timezone: user.schedule.timezone.name().to_string(),
        attendees,
    };
    let item = sync
        .write_event(&t, &target, |adapter, credentials, calendar| {
            let draft = draft.clone();
            async move { adapter.create_event(&credentials, &calendar, &draft).await }
        })
        .await
        .map_err(event_write_error)?;
    state.sync.nudge.notify_one();
    let event = read_item(&item).ok_or_else(|| ApiError::internal("the provider's event could not be read"))?;
    Ok((axum::http::StatusCode::CREATED, Json(written_view(&target.calendar, event, &state, &user, start)?)))
}

/// The calendar and UID an event id names (`{calendar_id}:{uid}`).
async fn locate(
    state: &AppState,
    t: &kairos_store::Tenant,
    id: &str,
) -> Result<(kairos_core::User, kairos_jobs::remote_events::Target, kairos_jobs::remote_events::Found), ApiError> {
    let unknown = || ApiError::not_found("event", id);
    let (calendar_id, uid) = id.split_once(':').ok_or_else(unknown)?;
    let calendar =
        state.store.calendars(t, None).await?.into_iter().find(|c| c.id == calendar_id).ok_or_else(unknown)?;
    let user = state.store.user(t, &calendar.user_id).await?.ok_or_else(unknown)?;
    let sync = &state.sync.providers;
    let target = sync.event_target(t, &user.id, Some(calendar_id)).await.map_err(event_write_error)?;
    match sync.find_event(t, &target, uid).await {
        Ok(found) => Ok((user, target, found)),
        // `{calendar}:{uid}:{start}` names one instance of a series.
        Err(_) if uid.contains(':') => Err(ApiError::invalid(
            "id",
            "This is one instance of a recurring series; single instances cannot be changed through Kairos yet.",
        )),
        Err(_) => Err(unknown()),
    }
}

#[utoipa::path(patch, path = "/v1/events/{id}", tag = super::CALENDARS, params(("id" = String, Path)),
    request_body = UpdateEvent,
    responses((status = 200, body = EventView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(t): Auth,
    axum::extract::Path(id): axum::extract::Path<String>,
    ApiJson(body): ApiJson<UpdateEvent>,
) -> Result<Json<EventView>, ApiError> {
    let time = |param: &str, text: Option<&String>| {
        text.map(|t| wire::parse_time(t).map_err(|e| ApiError::invalid(param, e))).transpose()
    };
    let (start, end) = (time("start_time", body.start_time.as_ref())?, time("end_time", body.end_time.as_ref())?);
    let attendees = body.attendees.map(attendees_of).transpose()?;
    let (user, target, found) = locate(&state, &t, &id).await?;
    if found.event.rrule.is_some() || !found.event.rdates.is_empty() {
        return Err(ApiError::invalid(
            "id",
            "This event is a recurring series; change series in the calendar app (Kairos changes single events).",
        ));
    }
    let zone = user.schedule.timezone.tz().clone();
    let mut draft = draft_of_event(&found.event, user.schedule.timezone.name(), &zone)
        .ok_or_else(|| ApiError::invalid("id", "All-day events cannot be changed through Kairos yet."))?;
    if let Some(title) = wire::text("title", body.title, 1024)? {
        draft.title = title;
    }
    if let Some(description) = wire::text("description", body.description, 8192)? {
        draft.description = Some(description);
    }
    draft.start = start.unwrap_or(draft.start);
    draft.end = end.unwrap_or(draft.end);
    if draft.end <= draft.start {
        return Err(ApiError::invalid("end_time", "`end_time` must be after `start_time`."));
    }
    if let Some(attendees) = attendees {
        draft.attendees = attendees;
    }
    let (remote_id, etag) = (found.item.remote_id.clone(), found.item.etag.clone());
    let item = state
        .sync
        .providers
        .write_event(&t, &target, |adapter, credentials, calendar| {
            let (draft, remote_id, etag) = (draft.clone(), remote_id.clone(), etag.clone());
            async move { adapter.update_event(&credentials, &calendar, &remote_id, etag.as_deref(), &draft).await }
        })
        .await
        .map_err(event_write_error)?;
    state.sync.nudge.notify_one();
    let event = read_item(&item).ok_or_else(|| ApiError::internal("the provider's event could not be read"))?;
    Ok(Json(written_view(&target.calendar, event, &state, &user, draft.start)?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedEvent {
    pub id: String,
    pub deleted: bool,
}

#[utoipa::path(delete, path = "/v1/events/{id}", tag = super::CALENDARS, params(("id" = String, Path)),
    responses((status = 200, body = DeletedEvent), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(t): Auth,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<DeletedEvent>, ApiError> {
    let (_, target, found) = locate(&state, &t, &id).await?;
    let remote_id = found.item.remote_id.clone();
    state
        .sync
        .providers
        .write_event(&t, &target, |adapter, credentials, calendar| {
            let remote_id = remote_id.clone();
            async move { adapter.delete_event(&credentials, &calendar, &remote_id, None).await }
        })
        .await
        .map_err(event_write_error)?;
    state.sync.nudge.notify_one();
    Ok(Json(DeletedEvent { id, deleted: true }))
}
