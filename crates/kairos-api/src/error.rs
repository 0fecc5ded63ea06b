//! The one error type of the HTTP edge and its JSON shape:
//! `{"error": {"type", "code", "message", "param"}}`. Every failure a client can see goes
//! through here; 5xx bodies never carry internals (those are logged with the request id).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kairos_store::{BookingError, PartyError, Refusal, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// An error as the API returns it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub retry_after: Option<u64>,
}

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `invalid_request_error`, `authentication_error`, `idempotency_error`, `rate_limit_error` or `api_error`.
    #[serde(rename = "type")]
    #[schema(example = "invalid_request_error")]
    pub kind: String,
    #[schema(example = "parameter_invalid")]
    pub code: String,
    #[schema(example = "end_time must be after start_time")]
    pub message: String,
    /// The request field at fault, when there is one.
    #[schema(example = "end_time")]
    pub param: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, code, message: message.into(), param: None, retry_after: None }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// 400: the request could not be read at all.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", "malformed_request", message)
    }

    /// 422: a field is well-formed but not acceptable.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_error", "parameter_invalid", message)
            .with_param(param)
    }

    /// 422: a required field is absent.
    pub fn missing(param: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_error", "parameter_missing", message)
            .with_param(param)
    }

    /// 404 for an object that does not exist for this caller.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            format!("No {what} with id `{id}` exists."),
        )
    }

    /// 404 for a reference inside a request (a business id, a participant) that does not exist.
    pub fn missing_reference(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", "resource_missing", message).with_param(param)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication_error", "unauthorized", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "invalid_request_error", code, message)
    }

    /// A provider we depend on (Stripe) refused or could not be reached: 502.
    pub fn bad_gateway(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "api_error", code, message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("The request body is larger than {limit} bytes; send less data."),
        )
    }

    pub fn idempotency(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::new(status, "idempotency_error", code, message).with_param("Idempotency-Key")
    }

    /// 500 with a generic message; `detail` goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "internal_error",
            "Something went wrong on our side. Try again; if it keeps happening, report the request id.",
        )
    }

    /// This error as a store edit's refusal, so it can cross the store and come back as itself.
    pub fn into_edit_refusal(self) -> StoreError {
        StoreError::Invalid {
            param: self.param.unwrap_or_default(),
            message: self.message,
            missing: self.code == "parameter_missing",
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                kind: self.kind.to_string(),
                code: self.code.to_string(),
                message: self.message.clone(),
                param: self.param.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "resource_missing",
                "The object does not exist.",
            ),
            StoreError::Conflict(field) => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_request_error",
                "already_exists",
                format!("Another object already uses this {field}; choose a different one."),
            )
            .with_param(field),
            StoreError::Invalid { param, message, missing: false } => ApiError::invalid(param, message),
            StoreError::Invalid { param, message, missing: true } => ApiError::missing(&param, message),
            StoreError::Refused { code, message } => ApiError::conflict(code, message),
            StoreError::Backend(detail) => ApiError::internal(detail),
        }
    }
}

/// Maps a store error about the object a request's path names: a missing object is a 404
/// naming it (`what` with `id`), anything else maps as usual.
pub fn on_object<'a>(what: &'a str, id: &'a str) -> impl FnOnce(StoreError) -> ApiError + 'a {
    move |e| match e {
        StoreError::NotFound => ApiError::not_found(what, id),
        other => other.into(),
    }
}

/// Maps a refused or failed write to the booking a request's path names.
pub fn on_booking(id: &str) -> impl FnOnce(BookingError) -> ApiError + '_ {
    move |e| match e {
        BookingError::Store(e) => on_object("booking", id)(e),
        other => booking_error(other, ("business_id", "participants")),
    }
}

/// Maps a refused or failed booking write. `params` names the request's fields for the
/// business and the participants list, which differ between endpoints.
pub fn booking_error(e: BookingError, params: (&str, &str)) -> ApiError {
    match e {
        BookingError::Unavailable(refusal) => slot_unavailable(&refusal),
        BookingError::Party(PartyError::UnknownBusiness) => ApiError::missing_reference(
            params.0,
            "No business with that id exists; check the id or create the business first.",
        ),
        BookingError::Party(PartyError::UnknownParticipant(i)) => ApiError::missing_reference(
            format!("{}[{i}]", params.1),
            "No user matches this participant; create the user with POST /v1/users or fix the id or email.",
        ),
        BookingError::Party(PartyError::Nobody) => {
            ApiError::missing(params.0, format!("Name whose time to use: give `{}` or `{}`.", params.0, params.1))
        }
        BookingError::Cancelled => ApiError::conflict(
            "booking_cancelled",
            "The booking is cancelled and cannot be changed; make a new booking.",
        ),
        BookingError::Store(e) => e.into(),
    }
}

fn slot_unavailable(refusal: &Refusal) -> ApiError {
    use kairos_core::Unavailable::*;
    let who = |fallback: &str| refusal.who.clone().unwrap_or_else(|| fallback.to_string());
    let message = match &refusal.reason {
        InPast => return ApiError::invalid("start_time", "start_time is in the past; choose a time in the future."),
        TooSoon { minimum_notice } => format!(
            "That time starts within the minimum notice of {} minutes; choose a later time.",
            minimum_notice.as_secs() / 60
        ),
        OutsideWorkingHours { member } => format!(
            "That time is outside {} working hours; choose a slot from GET /v1/availability/slots.",
            if member.is_some() { format!("{}'s", who("a participant")) } else { "the business's".to_string() }
        ),
        Busy { member } => format!(
            "{} already booked or busy at that time; choose another slot from GET /v1/availability/slots.",
            if member.is_some() { format!("{} is", who("a participant")) } else { "The business is".to_string() }
        ),
        DailyLimitReached { max } => {
            format!("The business already has its maximum of {max} bookings that day; choose another day.")
        }
        NobodyToBook => "Nobody's time was named to book.".to_string(),
    };
    metrics::counter!("kairos_booking_conflicts_total").increment(1);
    ApiError::conflict("slot_unavailable", message)
}
