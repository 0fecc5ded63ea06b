//! Google's JSON error bodies, exactly as the Calendar API sends them
//! (developers.google.com/workspace/calendar/api/guides/errors):
//! `{"error":{"errors":[{"domain","reason","message",…}],"code","message"}}`, plus `status`
//! on the 401 that the API front end writes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One API error, ready to become a response (boxed: it travels in many `Result`s).
#[derive(Debug, Clone)]
pub(crate) struct ApiError(Box<Detail>);

#[derive(Debug, Clone)]
pub(crate) struct Detail {
    pub status: u16,
    pub domain: &'static str,
    pub reason: &'static str,
    pub message: String,
    /// `(locationType, location)` when the error names a parameter or header.
    pub location: Option<(&'static str, &'static str)>,
    /// The canonical status string Google adds on some errors (`UNAUTHENTICATED`).
    pub grpc_status: Option<&'static str>,
    pub retry_after: Option<u64>,
    /// The message of the outer object when it differs from the inner one (401).
    pub outer_message: Option<&'static str>,
}

impl ApiError {
    fn new(status: u16, domain: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(Detail {
            status,
            domain,
            reason,
            message: message.into(),
            location: None,
            grpc_status: None,
            retry_after: None,
            outer_message: None,
        }))
    }

    fn at(mut self, location_type: &'static str, location: &'static str) -> Self {
        self.0.location = Some((location_type, location));
        self
    }

    pub fn unauthenticated() -> Self {
        let mut e = Self::new(401, "global", "authError", "Invalid Credentials").at("header", "Authorization");
        e.0.grpc_status = Some("UNAUTHENTICATED");
        e.0.outer_message = Some(
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other \
             valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        );
        e
    }

    pub fn not_found() -> Self {
        Self::new(404, "global", "notFound", "Not Found")
    }

    pub fn channel_not_found(id: &str) -> Self {
        Self::new(404, "global", "notFound", format!("Channel '{id}' not found for project '1048576'"))
    }

    pub fn deleted() -> Self {
        Self::new(410, "global", "deleted", "Resource has been deleted")
    }

    pub fn duplicate() -> Self {
        Self::new(409, "global", "duplicate", "The requested identifier already exists.")
    }

    pub fn precondition_failed() -> Self {
        Self::new(412, "global", "conditionNotMet", "Precondition Failed").at("header", "If-Match")
    }

    pub fn full_sync_required() -> Self {
        Self::new(410, "calendar", "fullSyncRequired", "Sync token is no longer valid, a full sync is required.")
            .at("parameter", "syncToken")
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "global", "invalid", message)
    }

    pub fn invalid_parameter(location: &'static str, message: impl Into<String>) -> Self {
        Self::invalid(message).at("parameter", location)
    }

    pub fn required(message: impl Into<String>) -> Self {
        Self::new(400, "global", "required", message)
    }

    pub fn time_range_empty(location: &'static str) -> Self {
        Self::new(400, "calendar", "timeRangeEmpty", "The specified time range is empty.").at("parameter", location)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "global", "badRequest", message)
    }

    /// The failures `fail_next` injects, with the bodies the errors guide shows.
    pub fn injected(status: u16, retry_after: Option<u64>) -> Self {
        let mut e = match status {
            429 => Self::new(429, "usageLimits", "rateLimitExceeded", "Rate Limit Exceeded"),
            403 => Self::new(403, "usageLimits", "userRateLimitExceeded", "User Rate Limit Exceeded"),
            500 => Self::new(500, "global", "backendError", "Backend Error"),
            503 => Self::new(503, "global", "backendError", "Backend Error"),
            401 => Self::unauthenticated(),
            404 => Self::not_found(),
            410 => Self::full_sync_required(),
            other => Self::new(other, "global", "backendError", "Backend Error"),
        };
        e.0.retry_after = retry_after;
        e
    }

    pub fn body(&self) -> Value {
        let d = &self.0;
        let mut inner = json!({"domain": d.domain, "reason": d.reason, "message": d.message});
        if let (Some((kind, location)), Some(map)) = (d.location, inner.as_object_mut()) {
            map.insert("locationType".into(), json!(kind));
            map.insert("location".into(), json!(location));
        }
        let mut outer = json!({
            "errors": [inner],
            "code": d.status,
            "message": d.outer_message.map(str::to_string).unwrap_or_else(|| d.message.clone()),
        });
        if let (Some(status), Some(map)) = (d.grpc_status, outer.as_object_mut()) {
            map.insert("status".into(), json!(status));
        }
        json!({ "error": outer })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.0.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.0.status == 401 {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_401_body_matches_googles() {
        let body = ApiError::unauthenticated().body();
        assert_eq!(body["error"]["code"], 401);
        assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
        assert_eq!(body["error"]["errors"][0]["reason"], "authError");
        assert_eq!(body["error"]["errors"][0]["location"], "Authorization");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("Request had invalid authentication"));
    }

    #[test]
    fn the_410_body_names_the_sync_token() {
        let body = ApiError::full_sync_required().body();
        assert_eq!(body["error"]["errors"][0]["reason"], "fullSyncRequired");
        assert_eq!(body["error"]["errors"][0]["locationType"], "parameter");
        assert_eq!(body["error"]["message"], "Sync token is no longer valid, a full sync is required.");
    }
}
