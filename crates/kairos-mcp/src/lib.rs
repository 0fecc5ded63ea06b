//! Kairos's Model Context Protocol server, for AI agents: the tools `find_slots`,
//! `create_booking`, `reschedule_booking`, `cancel_booking`, `list_bookings` and
//! `create_proposal`, whose inputs and outputs mirror the REST API.
//!
//! The tools never touch the store: every call is a REST request through an [`Api`], so the
//! rules, auth, idempotency and errors are the API's own. Two transports serve them:
//! [`serve_stdio`] (`kairos mcp`, calling the server over HTTP with [`HttpApi`]) and
//! [`streamable_http`] (mounted by kairos-api at `POST /v1/mcp`, calling its own router in
//! process). This crate does not depend on kairos-api; kairos-api depends on it.
#![forbid(unsafe_code)]

pub mod api;
pub mod inputs;
pub mod tools;

use std::sync::Arc;

use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

pub use api::{Api, ApiRequest, ApiResponse, ConfigError, DEFAULT_URL, HttpApi, Unreachable};
pub use tools::KairosMcp;

/// The streamable HTTP service, as mounted at `/v1/mcp`.
pub type HttpService = StreamableHttpService<KairosMcp, NeverSessionManager>;

/// Serves the tools on stdin/stdout until the client closes them. Nothing else may write to
/// stdout: it carries the protocol (logs go to stderr).
pub async fn serve_stdio(api: Arc<dyn Api>) -> Result<(), std::io::Error> {
    let running = KairosMcp::new(api).serve(rmcp::transport::stdio()).await.map_err(std::io::Error::other)?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}

/// Who may address the HTTP service: `Host` values (`host` or `host:port`) and browser
/// `Origin`s (`scheme://host[:port|:*]`). Requests with another `Host` or `Origin` get a 403
/// (a DNS-rebinding guard); requests without `Origin` (non-browser clients) pass.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub hosts: Vec<String>,
    pub origins: Vec<String>,
}

/// The tools over streamable HTTP, stateless: every POST carries one JSON-RPC message and gets
/// its answer as JSON (no sessions, so any node of a cluster can answer; GET and DELETE are 405).
pub fn streamable_http(api: Arc<dyn Api>, access: Access, max_body_bytes: usize) -> HttpService {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_sse_retry(None)
        .with_allowed_hosts(access.hosts)
        .with_allowed_origins(access.origins)
        .enforce_origin_validation()
        .with_max_request_body_bytes(max_body_bytes);
    StreamableHttpService::new(
        move || Ok(KairosMcp::new(api.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}
