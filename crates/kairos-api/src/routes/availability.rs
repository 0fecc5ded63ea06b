//! `/v1/availability`: open slots for a business and/or participants, and merged free/busy.

use axum::Json;
use axum::extract::State;
use jiff::{SignedDuration, Timestamp};
use kairos_core::availability::Mode;
use kairos_core::describe::Renderer;
use kairos_core::plan::Ask;
use kairos_core::{Interval, Participant, Zone, interval};
use kairos_store::{UserRef, Who};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody, booking_error};
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::wire::{self, Time};

/// The widest window one request may ask about.
pub const MAX_WINDOW_DAYS: i64 = 62;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SlotsQuery {
    /// The business whose hosts, hours and rules apply.
    business_id: Option<String>,
    /// Comma-separated user ids or `user:email` references; each must be free too.
    participants: Option<String>,
    /// `collective` (default: everyone free) or `any` (at least one free; slots list who).
    mode: Option<String>,
    /// Start of the window (RFC 3339); now when absent.
    from: Option<String>,
    /// End of the window; 7 days after `from` when absent; at most 62 days after it.
    to: Option<String>,
    /// Slot length in minutes (1–1440), 30 when absent.
    duration_minutes: Option<u32>,
    /// Alias of `duration_minutes`.
    duration: Option<u32>,
    /// IANA zone for the returned times and descriptions; UTC when absent.
    timezone: Option<String>,
    /// At most this many slots (1–5000).
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotOut {
    /// RFC 3339 in the display zone's offset at that instant.
    #[schema(example = "2026-05-01T09:00:00-04:00")]
    pub start: String,
    #[schema(example = "2026-05-01T09:30:00-04:00")]
    pub end: String,
    #[schema(example = "Friday, May 1 at 9:00 AM EDT")]
    pub description: String,
    /// In `any` mode: the people free for this slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<Participant>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotsResponse {
    pub slots: Vec<SlotOut>,
    #[schema(example = "America/New_York")]
    pub timezone: String,
}

#[utoipa::path(get, path = "/v1/availability/slots", tag = super::AVAILABILITY, params(SlotsQuery),
    responses((status = 200, body = SlotsResponse), (status = 404, body = ErrorBody, description = "Unknown business or participant"), (status = 422, body = ErrorBody)))]
pub async fn slots(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiQuery(q): ApiQuery<SlotsQuery>,
) -> Result<Json<SlotsResponse>, ApiError> {
    let now = state.clock.now();
    let window = window(q.from.as_deref(), q.to.as_deref(), now, ("from", "to"))?;
    let (duration, duration_name) = match (q.duration_minutes, q.duration) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::invalid(
                "duration",
                "Give `duration_minutes` or `duration`, not two different values.",
            ));
        }
        (Some(a), _) => (a, "duration_minutes"),
        (None, Some(b)) => (b, "duration"),
        (None, None) => (30, "duration_minutes"),
    };
    if !(1..=1440).contains(&duration) {
        return Err(ApiError::invalid(duration_name, format!("`{duration_name}` must be between 1 and 1440 minutes.")));
    }
    let mode = match q.mode.as_deref() {
        None | Some("collective") => Mode::Collective,
        Some("any") => Mode::Any,
        Some(other) => {
            return Err(ApiError::invalid("mode", format!("`mode` must be `collective` or `any`, not `{other}`.")));
        }
    };
    let zone = display_zone(q.timezone.as_deref())?;
    let limit = match q.limit {
        None => None,
        Some(n @ 1..=5000) => Some(n as usize),
        Some(_) => return Err(ApiError::invalid("limit", "`limit` must be between 1 and 5000.")),
    };
    let who = Who {
        business_id: q.business_id.filter(|b| !b.is_empty()),
        participants: participants(q.participants.as_deref())?,
        ..Who::default()
    };
    if who.business_id.is_none() && who.participants.is_empty() {
        return Err(ApiError::missing(
            "business_id",
            "Say whose time to search: give `business_id`, `participants`, or both.",
        ));
    }
    let party = state
        .store
        .load_party(&t, &who, window, now)
        .await
        .map_err(|e| booking_error(e, ("business_id", "participants")))?;
    let ask = Ask { window, duration: SignedDuration::from_mins(i64::from(duration)), now, mode, limit };
    let mut render = Renderer::new(&zone);
    let slots = party
        .slots(ask)
        .into_iter()
        .map(|slot| SlotOut {
            start: render.rfc3339(slot.interval.start()),
            end: render.rfc3339(slot.interval.end()),
            description: render.describe(slot.interval.start()),
            participants: (mode == Mode::Any).then(|| {
                slot.free_members
                    .iter()
                    .filter_map(|&i| party.members.get(i))
                    .map(|u| Participant { id: u.id.clone(), email: u.email.clone(), name: u.name.clone() })
                    .collect()
            }),
        })
        .collect();
    Ok(Json(SlotsResponse { slots, timezone: zone.name().to_string() }))
}

fn participants(list: Option<&str>) -> Result<Vec<UserRef>, ApiError> {
    let items: Vec<&str> = list.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if items.len() > 50 {
        return Err(ApiError::invalid("participants", "At most 50 participants can be searched at once."));
    }
    items.iter().enumerate().map(|(i, p)| wire::user_ref(&format!("participants[{i}]"), p)).collect()
}

fn display_zone(name: Option<&str>) -> Result<Zone, ApiError> {
    match name {
        None | Some("") => Ok(Zone::utc()),
        Some(name) => Zone::parse(name).map_err(|e| ApiError::invalid("timezone", e.to_string())),
    }
}

/// A window from optional bounds: `from` defaults to now, `to` to seven days later; it must be
/// non-empty and at most [`MAX_WINDOW_DAYS`] long.
fn window(from: Option<&str>, to: Option<&str>, now: Timestamp, params: (&str, &str)) -> Result<Interval, ApiError> {
    let parse = |param: &str, text: Option<&str>| {
        text.map(|t| wire::parse_time(t).map_err(|e| ApiError::invalid(param, e))).transpose()
    };
    let start = parse(params.0, from)?.unwrap_or(now);
    let end = parse(params.1, to)?.unwrap_or(start + SignedDuration::from_hours(7 * 24));
    bounded(start, end, params)
}

fn bounded(start: Timestamp, end: Timestamp, params: (&str, &str)) -> Result<Interval, ApiError> {
    let window = Interval::new(start, end)
        .map_err(|_| ApiError::invalid(params.1, format!("`{}` must be after `{}`.", params.1, params.0)))?;
    if window.duration() > SignedDuration::from_hours(MAX_WINDOW_DAYS * 24) {
        return Err(ApiError::invalid(
            params.1,
            format!(
                "The window is longer than {MAX_WINDOW_DAYS} days; ask for at most {MAX_WINDOW_DAYS} days at a time."
            ),
        ));
    }
    Ok(window)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreeBusyRequest {
    #[schema(value_type = String, example = "2026-05-01T00:00:00Z")]
    pub time_min: Time,
    #[schema(value_type = String, example = "2026-05-08T00:00:00Z")]
    pub time_max: Time,
    pub attendees: Vec<Attendee>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attendee {
    #[schema(example = "alice@example.com")]
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FreeBusyResponse {
    pub result: Vec<AttendeeBusy>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttendeeBusy {
    pub email: String,
    /// Merged busy intervals inside the window, in UTC.
    pub busy: Vec<BusyOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BusyOut {
    #[schema(value_type = String)]
    pub start: Timestamp,
    #[schema(value_type = String)]
    pub end: Timestamp,
}

#[utoipa::path(post, path = "/v1/availability", tag = super::AVAILABILITY, request_body = FreeBusyRequest,
    responses((status = 200, body = FreeBusyResponse), (status = 404, body = ErrorBody, description = "Unknown attendee"), (status = 422, body = ErrorBody)))]
pub async fn free_busy(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiJson(body): ApiJson<FreeBusyRequest>,
) -> Result<Json<FreeBusyResponse>, ApiError> {
    let window = bounded(body.time_min.0, body.time_max.0, ("time_min", "time_max"))?;
    if body.attendees.is_empty() || body.attendees.len() > 50 {
        return Err(ApiError::invalid("attendees", "Give between 1 and 50 attendees, each as {\"email\": \"…\"}."));
    }
    let emails = body
        .attendees
        .iter()
        .enumerate()
        .map(|(i, a)| wire::email(&format!("attendees[{i}].email"), &a.email))
        .collect::<Result<Vec<_>, _>>()?;
    let who = Who { participants: emails.iter().cloned().map(UserRef::Email).collect(), ..Who::default() };
    let party = state
        .store
        .load_party(&t, &who, window, state.clock.now())
        .await
        .map_err(|e| booking_error(e, ("attendees", "attendees")))?;
    let result = emails
        .into_iter()
        .map(|email| {
            let busy =
                party.members.iter().position(|m| m.email == email).map(|i| party.busy[i].clone()).unwrap_or_default();
            let busy = interval::merge(busy.to_vec())
                .into_iter()
                .filter_map(|b| b.intersection(&window))
                .map(|b| BusyOut { start: b.start(), end: b.end() })
                .collect();
            AttendeeBusy { email, busy }
        })
        .collect();
    Ok(Json(FreeBusyResponse { result }))
}
