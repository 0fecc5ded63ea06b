//! `POST /v1/mcp`: the Model Context Protocol over streamable HTTP (kairos-mcp's tools), for
//! agents that speak MCP rather than REST. It runs stateless with JSON answers (no sessions:
//! any node can answer any request; GET and DELETE are 405).
//!
//! Each tool call is an ordinary API request sent to this server's own router in process,
//! carrying the caller's `Authorization` (and request id): the same auth, tenant, idempotency,
//! validation, errors and metrics as over the network, and no second way to reach the store.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use kairos_mcp::{Access, Api, ApiRequest, ApiResponse, Unreachable};
use tower::ServiceExt;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::BODY_LIMIT;

/// The largest API answer a tool relays (a long slot list is about 1 MB).
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;

/// The MCP endpoint: rmcp's streamable HTTP service over the in-process API.
pub struct Mcp {
    service: kairos_mcp::HttpService,
}

impl Mcp {
    /// Tools that call `app` (this server's router, without MCP of its own); accepting requests
    /// addressed to `public_url`'s host or to loopback.
    pub fn new(app: Router, public_url: &url::Url) -> Self {
        let api: Arc<dyn Api> = Arc::new(InProcess { app });
        Self { service: kairos_mcp::streamable_http(api, access(public_url), BODY_LIMIT) }
    }
}

/// Hosts and browser origins allowed to reach the endpoint (a DNS-rebinding guard; requests
/// without `Origin`, as non-browser clients send, pass).
fn access(public_url: &url::Url) -> Access {
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".to_string(), "[::1]".to_string()];
    let mut origins =
        vec!["http://localhost:*".to_string(), "http://127.0.0.1:*".to_string(), "http://[::1]:*".to_string()];
    if let Some(host) = public_url.host_str() {
        hosts.push(host.to_string());
        if let Some(port) = public_url.port_or_known_default() {
            origins.push(format!("{}://{host}:{port}", public_url.scheme()));
        }
    }
    Access { hosts, origins }
}

/// The API as this process's own router.
struct InProcess {
    app: Router,
}

#[async_trait]
impl Api for InProcess {
    async fn call(
        &self,
        request: ApiRequest,
        caller: Option<&axum::http::request::Parts>,
    ) -> Result<ApiResponse, Unreachable> {
        let mut builder = Request::builder().method(request.method).uri(&request.path_and_query);
        if let Some(caller) = caller {
            for name in [AUTHORIZATION.as_str(), "x-request-id"] {
                if let Some(value) = caller.headers.get(name) {
                    builder = builder.header(name, value);
                }
            }
        }
        if let Some(key) = &request.idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        let body = match &request.body {
            Some(json) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        // The path only: a query may carry an email address.
        let path = request.path_and_query.split('?').next().unwrap_or_default().to_string();
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, path = %path, "an MCP tool's API call failed: {what}");
            Unreachable(format!("The Kairos API could not answer ({what}); try again."))
        };
        let http_request = builder.body(body).map_err(|e| fail("bad request", &e))?;
        let response = match self.app.clone().oneshot(http_request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), ANSWER_LIMIT)
            .await
            .map_err(|e| fail("answer too large or unreadable", &e))?;
        Ok(ApiResponse::from_bytes(status, &bytes))
    }
}

/// The Model Context Protocol for AI agents
///
/// Streamable HTTP, stateless, with JSON answers: the body is one JSON-RPC message; send
/// `Accept: application/json, text/event-stream`. Tools: `find_slots`, `create_booking`,
/// `reschedule_booking`, `cancel_booking`, `list_bookings`, `create_proposal`, each one REST
/// call made with your key (their errors are tool results with `isError: true`).
#[utoipa::path(post, path = "/v1/mcp", tag = super::AGENTS, operation_id = "mcp",
    request_body(content = Object, content_type = "application/json", description = "A JSON-RPC 2.0 message (MCP)"),
    responses((status = 200, content_type = "application/json", body = Object, description = "The JSON-RPC answer"),
        (status = 202, description = "A notification, accepted"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Host or Origin not allowed (DNS-rebinding guard)"),
        (status = 406, description = "Accept lacks application/json or text/event-stream")))]
pub async fn post(State(state): State<AppState>, request: Request) -> Response {
    match &state.mcp {
        Some(mcp) => mcp.service.handle(request).await.into_response(),
        None => ApiError::not_found("route", "/v1/mcp").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_host_and_loopback_may_address_the_endpoint() {
        let access = access(&url::Url::parse("https://kairos.example.com").unwrap());
        assert!(access.hosts.contains(&"kairos.example.com".to_string()));
        assert!(access.hosts.contains(&"127.0.0.1".to_string()));
        assert!(access.origins.contains(&"https://kairos.example.com:443".to_string()));
    }
}
