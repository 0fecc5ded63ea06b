//! Graph's and the identity platform's error bodies, as documented:
//! - Graph (learn.microsoft.com/graph/errors): `{"error":{"code","message","innerError":{"date",
//!   "request-id","client-request-id"}}}`; 429 adds `innerError.code/status/message` and
//!   `Retry-After` (learn.microsoft.com/graph/throttling).
//! - Identity platform token endpoint (…/v2-oauth2-auth-code-flow, "Error response"):
//!   `{error, error_description: "AADSTSnnnn: …\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …",
//!   error_codes, timestamp, trace_id, correlation_id}`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value, json};

/// A random GUID-shaped string (request ids, trace ids, subscription ids).
pub(crate) fn guid() -> String {
    let n: u128 = rand::random();
    let h = format!("{n:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// One Graph error, ready to become a response.
#[derive(Debug, Clone)]
pub(crate) struct GraphError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
    /// The `client-request-id` the client sent, echoed as Graph does.
    pub client_request_id: Option<String>,
    /// Extra headers (`Location` on a 410 sync reset, `WWW-Authenticate` on a 401).
    pub headers: Vec<(header::HeaderName, String)>,
}

impl GraphError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None, client_request_id: None, headers: Vec::new() }
    }

    pub fn with_request(mut self, headers: &HeaderMap) -> Self {
        self.client_request_id = headers.get("client-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        self
    }

    pub fn unauthenticated(message: &str) -> Self {
        let mut e = Self::new(401, "InvalidAuthenticationToken", message);
        e.headers.push((
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", \
             client_id=\"00000003-0000-0000-c000-000000000000\""
                .to_string(),
        ));
        e
    }

    pub fn item_not_found() -> Self {
        Self::new(404, "ErrorItemNotFound", "The specified object was not found in the store.")
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// A stale `If-Match`: Exchange's change-key conflict.
    pub fn change_key_conflict() -> Self {
        Self::new(
            412,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed in the request does \
             not match the current change key for the item.",
        )
    }

    /// An expired or unknown delta/skip token: `410 Gone`, with a `Location` header holding the
    /// request that starts over (learn.microsoft.com/graph/delta-query-overview, "Synchronization
    /// reset" and "Token duration").
    pub fn sync_state_not_found(restart_url: String) -> Self {
        let mut e = Self::new(
            410,
            "syncStateNotFound",
            "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
        );
        e.headers.push((header::LOCATION, restart_url));
        e
    }

    pub fn throttled(status: u16, retry_after: Option<u64>) -> Self {
        let mut e = if status == 429 {
            Self::new(429, "TooManyRequests", "Please retry again later.")
        } else if status == 503 {
            Self::new(503, "serviceNotAvailable", "The service is temporarily unavailable. Please retry later.")
        } else {
            Self::new(status, "generalException", "An unspecified error has occurred.")
        };
        e.retry_after = retry_after;
        e
    }

    fn body(&self) -> Value {
        let now = Timestamp::now();
        let mut inner = json!({
            "date": now.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
            "request-id": guid(),
            "client-request-id": self.client_request_id.clone().unwrap_or_else(guid),
        });
        if self.status == 429 {
            inner["code"] = json!("429");
            inner["status"] = json!("429");
            inner["message"] = json!("Please retry after");
        }
        json!({"error": {"code": self.code, "message": self.message, "innerError": inner}})
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name.clone(), v);
            }
        }
        response
    }
}

/// An identity-platform token endpoint error.
#[derive(Debug, Clone)]
pub(crate) struct AadError {
    pub status: u16,
    pub error: &'static str,
    pub aadsts: u32,
    pub message: String,
}

impl AadError {
    pub fn new(status: u16, error: &'static str, aadsts: u32, message: impl Into<String>) -> Self {
        Self { status, error, aadsts, message: message.into() }
    }

    pub fn invalid_grant(aadsts: u32, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_grant", aadsts, message)
    }

    pub fn invalid_request(aadsts: u32, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", aadsts, message)
    }
}

impl IntoResponse for AadError {
    fn into_response(self) -> Response {
        let trace = guid();
        let correlation = guid();
        let timestamp = Timestamp::now().strftime("%Y-%m-%d %H:%M:%SZ").to_string();
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}",
                self.aadsts, self.message
            ),
            "error_codes": [self.aadsts],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.aadsts),
        });
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, axum::Json(body)).into_response()
    }
}
