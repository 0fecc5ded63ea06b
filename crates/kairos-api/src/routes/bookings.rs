//! `/v1/bookings`: booking in either request shape, reading, rescheduling and cancelling.
//! The store re-checks every rule inside the write transaction; this layer only validates the
//! request and names the field at fault.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::SignedDuration;
use kairos_core::availability::Mode;
use kairos_core::{Booking, BookingStatus, Interval, Zone};
use kairos_store::party::PAYMENTS_NOT_CONFIGURED;
use kairos_store::{BookingError, BookingFilter, NewBooking, StoreError, Who};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody, booking_error, on_booking};
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::wire::{self, Pagination, Time};

const MAX_LENGTH: SignedDuration = kairos_core::booking::MAX_LENGTH;

/// Cancellation reasons Kairos records itself (payments); callers may not use them.
const RESERVED_REASONS: [&str; 5] =
    ["payment_not_completed", "payment_too_late", "checkout_expired", "checkout_failed", "payment_failed"];

/// Either `{business_id, customer_email, customer_name, start_time, end_time, notes?,
/// metadata?}` or `{participants, start, end, title, description?}`; the two may be combined.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBooking {
    pub business_id: Option<String>,
    #[schema(example = "jane@example.com")]
    pub customer_email: Option<String>,
    #[schema(example = "Jane Doe")]
    pub customer_name: Option<String>,
    /// The customer's IANA time zone: their confirmation emails show times in it (without
    /// it, in the business's zone).
    #[schema(example = "Europe/Paris")]
    pub customer_timezone: Option<String>,
    #[schema(value_type = Option<String>, example = "2026-05-01T13:00:00Z")]
    pub start_time: Option<Time>,
    #[schema(value_type = Option<String>, example = "2026-05-01T13:30:00Z")]
    pub end_time: Option<Time>,
    /// `start_time` under the participants shape's name.
    #[schema(value_type = Option<String>)]
    pub start: Option<Time>,
    /// `end_time` under the participants shape's name.
    #[schema(value_type = Option<String>)]
    pub end: Option<Time>,
    pub notes: Option<String>,
    /// Up to 50 keys (≤ 40 characters) with string values (≤ 500 characters).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// `user:alice@example.com` or user ids; everyone named must be free.
    pub participants: Option<Vec<String>>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// With a business: `collective` (default) books every host; `any` books the first free one.
    pub mode: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleBooking {
    #[schema(value_type = Option<String>)]
    pub start_time: Option<Time>,
    #[schema(value_type = Option<String>)]
    pub end_time: Option<Time>,
    /// Alias of `start_time`.
    #[schema(value_type = Option<String>)]
    pub start: Option<Time>,
    /// Alias of `end_time`.
    #[schema(value_type = Option<String>)]
    pub end: Option<Time>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBooking {
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BookingsQuery {
    business_id: Option<String>,
    /// `confirmed`, `pending_payment` or `cancelled`.
    status: Option<String>,
    /// Bookings that end after this time.
    from: Option<String>,
    /// Bookings that start before this time.
    to: Option<String>,
    customer_email: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// A page of bookings, newest first.
#[derive(Serialize, ToSchema)]
pub struct BookingList {
    pub data: Vec<Booking>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(post, path = "/v1/bookings", tag = super::BOOKINGS, request_body = CreateBooking,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 hours")),
    responses((status = 201, body = Booking), (status = 404, body = ErrorBody, description = "Unknown business or participant"),
        (status = 409, body = ErrorBody, description = "slot_unavailable"), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiJson(body): ApiJson<CreateBooking>,
) -> Result<(StatusCode, Json<Booking>), ApiError> {
    let now = state.clock.now();
    let (start, end) = (
        either(body.start_time, "start_time", body.start, "start")?,
        either(body.end_time, "end_time", body.end, "end")?,
    );
    let interval = interval(start, end, now)?;
    let participants = body
        .participants
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, p)| wire::user_ref(&format!("participants[{i}]"), p))
        .collect::<Result<Vec<_>, _>>()?;
    if participants.len() > 50 {
        return Err(ApiError::invalid("participants", "A booking can have at most 50 participants."));
    }
    let business_id = body.business_id.filter(|b| !b.is_empty());
    if business_id.is_none() && participants.is_empty() {
        return Err(ApiError::missing(
            "business_id",
            "Say who is booked: give `business_id` (with the customer's details) or `participants`.",
        ));
    }
    let customer_email = body.customer_email.map(|e| wire::email("customer_email", &e)).transpose()?;
    let customer_name = wire::text("customer_name", body.customer_name, 200)?;
    let customer_timezone = body
        .customer_timezone
        .map(|name| {
            Zone::parse(&name).map(|zone| zone.name().to_string()).map_err(|_| {
                ApiError::invalid(
                    "customer_timezone",
                    format!("`customer_timezone` must be an IANA time zone name such as `Europe/Paris`; `{name}` is not one."),
                )
            })
        })
        .transpose()?;
    if business_id.is_some() && participants.is_empty() {
        if customer_email.is_none() {
            return Err(ApiError::missing("customer_email", "`customer_email` is required when booking a business."));
        }
        if customer_name.is_none() {
            return Err(ApiError::missing("customer_name", "`customer_name` is required when booking a business."));
        }
    }
    let mode = match body.mode.as_deref() {
        None | Some("collective") => Mode::Collective,
        Some("any") => Mode::Any,
        Some(other) => {
            return Err(ApiError::invalid("mode", format!("`mode` must be `collective` or `any`, not `{other}`.")));
        }
    };
    let new = NewBooking {
        who: Who { business_id, participants, ..Who::default() },
        mode,
        interval,
        customer_name,
        customer_email,
        customer_timezone,
        title: wire::text("title", body.title, 200)?,
        notes: wire::text("notes", body.notes, 5000)?,
        description: wire::text("description", body.description, 5000)?,
        metadata: metadata(body.metadata.unwrap_or_default())?,
        payment_holds: state.payments.is_some(),
    };
    let booking = state.store.create_booking(&t, &new, now).await.map_err(|e| match e {
        // The store refuses before writing; the fix is the server's configuration.
        BookingError::Store(StoreError::Refused { code: PAYMENTS_NOT_CONFIGURED, .. }) => ApiError::conflict(
            PAYMENTS_NOT_CONFIGURED,
            "This business has a price, but this server has no Stripe key to take payment \
             (KAIROS_STRIPE_SECRET_KEY); configure Stripe, or remove the business's price.",
        )
        .with_param("business_id"),
        other => booking_error(other, ("business_id", "participants")),
    })?;
    metrics::counter!("kairos_bookings_created_total").increment(1);
    let booking = match (&state.payments, booking.status) {
        (Some(payments), BookingStatus::PendingPayment) => {
            let business = match &booking.business_id {
                Some(id) => state.store.business(&t, id).await?,
                None => None,
            };
            super::payments::open_checkout(&state, payments, &t, booking, business.as_ref().map(|b| b.name.as_str()))
                .await?
        }
        _ => booking,
    };
    Ok((StatusCode::CREATED, Json(booking)))
}

/// A booking with the state of its events on the participants' own calendars.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingDetail {
    #[serde(flatten)]
    pub booking: Booking,
    /// One per participant with a connected, writable calendar (Google, Microsoft, CalDAV).
    pub calendar_events: Vec<CalendarEventState>,
    /// One per recipient (the customer, then each participant): where their email stands.
    pub emails: Vec<EmailState>,
}

/// Where a booking's email to one recipient stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailState {
    pub recipient: String,
    /// `confirmation`, `updated` (rescheduled) or `cancelled`: what the newest email says.
    pub kind: String,
    /// `pending` (being sent or waiting to retry), `sent`, `skipped` (nothing to send, or no
    /// SMTP server configured; `last_error` says which) or `failed` (refused, or retries
    /// exhausted).
    pub status: String,
    /// The invitation's `SEQUENCE`: 0 for the first, one more for each change.
    pub sequence: i64,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub sent_at: Option<jiff::Timestamp>,
    pub next_attempt_at: Option<jiff::Timestamp>,
    pub updated_at: jiff::Timestamp,
}

impl From<kairos_store::BookingEmail> for EmailState {
    fn from(e: kairos_store::BookingEmail) -> Self {
        let pending = e.status == "pending";
        Self {
            recipient: e.recipient,
            kind: e.kind.as_str().into(),
            status: e.status,
            sequence: e.version,
            attempts: e.attempts,
            last_error: e.last_error,
            sent_at: e.sent_at,
            next_attempt_at: pending.then_some(e.next_attempt_at),
            updated_at: e.updated_at,
        }
    }
}

/// Where write-back of a booking to one participant's calendar stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarEventState {
    pub user_id: String,
    pub calendar_id: String,
    /// The provider's id of the event, once written.
    pub event_id: Option<String>,
    /// `pending` (being written or waiting to retry), `synced`, or `failed` (retries
    /// exhausted).
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<jiff::Timestamp>,
    pub updated_at: jiff::Timestamp,
}

impl From<kairos_store::CalendarWrite> for CalendarEventState {
    fn from(w: kairos_store::CalendarWrite) -> Self {
        let pending = w.status == "pending";
        Self {
            user_id: w.user_id,
            calendar_id: w.calendar_id,
            event_id: w.remote_id,
            status: if w.status == "done" { "synced".into() } else { w.status },
            attempts: w.attempts,
            last_error: w.last_error,
            next_attempt_at: pending.then_some(w.next_attempt_at),
            updated_at: w.updated_at,
        }
    }
}

#[utoipa::path(get, path = "/v1/bookings/{id}", tag = super::BOOKINGS, params(("id" = String, Path)),
    responses((status = 200, body = BookingDetail), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Json<BookingDetail>, ApiError> {
    let booking = state.store.booking(&t, &id).await?.ok_or_else(|| ApiError::not_found("booking", &id))?;
    let calendar_events = state.store.calendar_writes(&t, &id).await?.into_iter().map(Into::into).collect();
    let emails = state.store.booking_emails(&t, &id).await?.into_iter().map(Into::into).collect();
    Ok(Json(BookingDetail { booking, calendar_events, emails }))
}

#[utoipa::path(get, path = "/v1/bookings", tag = super::BOOKINGS, params(BookingsQuery), responses((status = 200, body = BookingList), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiQuery(q): ApiQuery<BookingsQuery>,
) -> Result<Json<kairos_store::Page<Booking>>, ApiError> {
    let page = Pagination { limit: q.limit, cursor: q.cursor }.page()?;
    let time = |param: &str, text: Option<String>| {
        text.map(|t| wire::parse_time(&t).map_err(|e| ApiError::invalid(param, e))).transpose()
    };
    let status = q
        .status
        .map(|s| {
            BookingStatus::parse(&s)
                .ok_or_else(|| ApiError::invalid("status", "`status` must be confirmed, pending_payment or cancelled."))
        })
        .transpose()?;
    let filter = BookingFilter {
        business_id: q.business_id,
        status,
        from: time("from", q.from)?,
        to: time("to", q.to)?,
        customer_email: q.customer_email.map(|e| wire::email("customer_email", &e)).transpose()?,
    };
    Ok(Json(state.store.bookings(&t, &filter, &page).await?))
}

#[utoipa::path(post, path = "/v1/bookings/{id}/reschedule", tag = super::BOOKINGS, params(("id" = String, Path)), request_body = RescheduleBooking,
    responses((status = 200, body = Booking), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reschedule(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RescheduleBooking>,
) -> Result<Json<Booking>, ApiError> {
    let now = state.clock.now();
    let (start, end) = (
        either(body.start_time, "start_time", body.start, "start")?,
        either(body.end_time, "end_time", body.end, "end")?,
    );
    let to = interval(start, end, now)?;
    state.store.reschedule_booking(&t, &id, to, now).await.map(Json).map_err(on_booking(&id))
}

#[utoipa::path(post, path = "/v1/bookings/{id}/cancel", tag = super::BOOKINGS, params(("id" = String, Path)), request_body = CancelBooking,
    responses((status = 200, body = Booking), (status = 404, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CancelBooking>,
) -> Result<Json<Booking>, ApiError> {
    let reason = wire::text("reason", body.reason, 1000)?;
    if let Some(r) = &reason
        && RESERVED_REASONS.contains(&r.as_str())
    {
        // These mark cancellations Kairos made itself; `payment_not_completed` in particular
        // lets a late payment revive its booking.
        return Err(ApiError::invalid(
            "reason",
            format!("`{r}` is reserved for cancellations Kairos makes; word it differently."),
        ));
    }
    state.store.cancel_booking(&t, &id, reason.as_deref(), state.clock.now()).await.map(Json).map_err(on_booking(&id))
}

/// One of a field and its alias, with the name the caller used.
fn either(
    a: Option<Time>,
    a_name: &'static str,
    b: Option<Time>,
    b_name: &'static str,
) -> Result<Option<(Time, &'static str)>, ApiError> {
    match (a, b) {
        (Some(_), Some(_)) => {
            Err(ApiError::invalid(a_name, format!("`{a_name}` is given twice (also as `{b_name}`); give it once.")))
        }
        (Some(t), None) => Ok(Some((t, a_name))),
        (None, Some(t)) => Ok(Some((t, b_name))),
        (None, None) => Ok(None),
    }
}

/// A future interval of at most 24 hours; errors name the fields as the caller sent them.
fn interval(
    start: Option<(Time, &str)>,
    end: Option<(Time, &str)>,
    now: jiff::Timestamp,
) -> Result<Interval, ApiError> {
    let (start, start_name) = start.ok_or_else(|| {
        ApiError::missing("start_time", "`start_time` is required (RFC 3339, e.g. 2026-05-01T13:00:00Z).")
    })?;
    let (end, end_name) = end.ok_or_else(|| {
        ApiError::missing("end_time", "`end_time` is required (RFC 3339, e.g. 2026-05-01T13:30:00Z).")
    })?;
    let interval = Interval::new(start.0, end.0)
        .map_err(|_| ApiError::invalid(end_name, format!("`{end_name}` must be after `{start_name}`.")))?;
    if interval.duration() > MAX_LENGTH {
        return Err(ApiError::invalid(
            end_name,
            format!("A booking can last at most 24 hours; move `{end_name}` earlier."),
        ));
    }
    if interval.start() < now {
        return Err(ApiError::invalid(
            start_name,
            format!("`{start_name}` is in the past; choose a time in the future."),
        ));
    }
    Ok(interval)
}

fn metadata(map: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    if map.len() > 50 {
        return Err(ApiError::invalid("metadata", "`metadata` can have at most 50 keys."));
    }
    for (key, value) in &map {
        if key.is_empty() || key.chars().count() > 40 {
            return Err(ApiError::invalid(format!("metadata.{key}"), "Metadata keys must be 1 to 40 characters."));
        }
        match value {
            Value::String(s) if s.chars().count() <= 500 => {}
            _ => {
                return Err(ApiError::invalid(
                    format!("metadata.{key}"),
                    "Metadata values must be strings of at most 500 characters.",
                ));
            }
        }
    }
    Ok(map)
}
