//! The REST API as the tools see it: one call in, a status and a JSON body out. Two
//! implementations exist: [`HttpApi`] (over the network, for `kairos mcp` on stdio) and the
//! server's own router called in process (kairos-api's `routes/mcp.rs`), so a tool call
//! always takes the same path as any other API request: auth, idempotency, validation, metrics.

use std::time::Duration;

use async_trait::async_trait;
use http::Method;
use serde_json::Value;

/// Where `kairos mcp` finds the server when `KAIROS_URL` is not set.
pub const DEFAULT_URL: &str = "http://127.0.0.1:3001";

/// One REST request a tool makes.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// Path and query, e.g. `/v1/bookings?status=confirmed`; values already percent-encoded.
    pub path_and_query: String,
    /// A JSON body (sent as `application/json`), or none.
    pub body: Option<Value>,
    /// Sent as `Idempotency-Key` when present.
    pub idempotency_key: Option<String>,
}

/// What the API answered: any status (errors included) and its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    /// The parsed body; `Null` when empty, a string when the body was not JSON.
    pub body: Value,
}

impl ApiResponse {
    /// Parses a response body: JSON when it is JSON, else its text (cut to 1,000 characters),
    /// else `Null` when empty.
    pub fn from_bytes(status: u16, bytes: &[u8]) -> Self {
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).chars().take(1000).collect()))
        };
        Self { status, body }
    }
}

/// The API could not be asked at all (no connection, a timeout): no status to report.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

/// The REST API, as the tools call it.
#[async_trait]
pub trait Api: Send + Sync + 'static {
    /// Sends `request`. `caller` is the HTTP request that carried the MCP message, when the
    /// MCP server is reached over HTTP (its `Authorization` header is the caller's key); `None`
    /// on stdio.
    async fn call(
        &self,
        request: ApiRequest,
        caller: Option<&http::request::Parts>,
    ) -> Result<ApiResponse, Unreachable>;
}

/// Why [`HttpApi`] cannot be configured.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "KAIROS_API_KEY is not set: give the MCP server an API key (create one with `kairos keys create --account NAME`)"
    )]
    MissingKey,
    #[error("KAIROS_API_KEY is not a usable key (expected `sk_test_…` or `sk_live_…`)")]
    BadKey,
    #[error("KAIROS_URL must be an http(s) URL such as {DEFAULT_URL}, not `{0}`")]
    BadUrl(String),
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// The API over HTTP: `KAIROS_URL` with `Authorization: Bearer KAIROS_API_KEY`.
#[derive(Clone)]
pub struct HttpApi {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl std::fmt::Debug for HttpApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpApi").field("base", &self.base).field("key", &"…").finish()
    }
}

impl HttpApi {
    /// An API at `base_url` (e.g. `http://127.0.0.1:3001`) called with `api_key`.
    pub fn new(base_url: &str, api_key: &str) -> Result<Self, ConfigError> {
        let key = api_key.trim();
        if key.is_empty() {
            return Err(ConfigError::MissingKey);
        }
        if !(key.starts_with("sk_test_") || key.starts_with("sk_live_")) || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::BadKey);
        }
        let base = base_url.trim().trim_end_matches('/');
        let parsed: http::Uri = base.parse().map_err(|_| ConfigError::BadUrl(base_url.to_string()))?;
        if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
            return Err(ConfigError::BadUrl(base_url.to_string()));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("kairos-mcp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(Self { client, base: base.to_string(), key: key.to_string() })
    }

    /// From `KAIROS_URL` (default [`DEFAULT_URL`]) and `KAIROS_API_KEY` (required).
    pub fn from_env() -> Result<Self, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let key = var("KAIROS_API_KEY").ok_or(ConfigError::MissingKey)?;
        Self::new(&var("KAIROS_URL").unwrap_or_else(|| DEFAULT_URL.to_string()), &key)
    }

    /// The base URL calls go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }
}

#[async_trait]
impl Api for HttpApi {
    async fn call(
        &self,
        request: ApiRequest,
        _caller: Option<&http::request::Parts>,
    ) -> Result<ApiResponse, Unreachable> {
        let url = format!("{}{}", self.base, request.path_and_query);
        let mut builder = self.client.request(request.method, &url).bearer_auth(&self.key);
        if let Some(key) = request.idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        if let Some(body) = request.body {
            builder = builder.json(&body);
        }
        let unreachable =
            |e: reqwest::Error| Unreachable(format!("could not reach the Kairos API at {}: {e}", self.base));
        let response = builder.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(unreachable)?;
        Ok(ApiResponse::from_bytes(status, &bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_malformed_key_is_refused_up_front() {
        assert!(matches!(HttpApi::new(DEFAULT_URL, "  "), Err(ConfigError::MissingKey)));
        assert!(matches!(HttpApi::new(DEFAULT_URL, "secret"), Err(ConfigError::BadKey)));
        assert!(matches!(HttpApi::new(DEFAULT_URL, "sk_test_a b"), Err(ConfigError::BadKey)));
        assert!(matches!(HttpApi::new("ftp://example.com", "sk_test_abc"), Err(ConfigError::BadUrl(_))));
        assert!(matches!(HttpApi::new("not a url", "sk_test_abc"), Err(ConfigError::BadUrl(_))));
        let api = HttpApi::new("http://127.0.0.1:3001/", "sk_test_abc").unwrap();
        assert_eq!(api.base_url(), "http://127.0.0.1:3001");
        assert!(!format!("{api:?}").contains("sk_test_abc"), "Debug hides the key");
    }

    #[test]
    fn bodies_are_json_when_they_can_be() {
        assert_eq!(ApiResponse::from_bytes(200, br#"{"a":1}"#).body, serde_json::json!({"a": 1}));
        assert_eq!(ApiResponse::from_bytes(204, b"").body, Value::Null);
        assert_eq!(ApiResponse::from_bytes(502, b"Bad Gateway").body, Value::String("Bad Gateway".into()));
    }
}
