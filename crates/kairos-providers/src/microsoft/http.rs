//! Sending a Graph request and reading its answer into the trait's error categories:
//! 401 → `Unauthorized`, 429/503 → `RateLimited` (with `Retry-After`), 404 → `NotFound`,
//! 412 → `Conflict`; anything else non-2xx is `Http` with Graph's `code: message`.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use super::wire::ErrorBody;
use crate::{Credentials, ProviderError, ProviderResult};

/// A failed Graph call, before it becomes a [`ProviderError`] (sync looks at the code).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// Whether a delta token was refused: Graph answers `410 Gone`, or a 4xx with
    /// `syncStateNotFound` / `resyncRequired` (learn.microsoft.com/graph/delta-query-overview).
    pub fn cursor_expired(&self) -> bool {
        let code = self.code.to_ascii_lowercase();
        self.status == 410
            || ((400..500).contains(&self.status)
                && matches!(code.as_str(), "syncstatenotfound" | "resyncrequired" | "syncstateinvalid"))
    }

    pub fn into_error(self) -> ProviderError {
        match self.status {
            401 => ProviderError::Unauthorized(format!("{}: {}", self.code, self.message)),
            429 | 503 => ProviderError::RateLimited { retry_after: self.retry_after },
            404 => ProviderError::NotFound(format!("{}: {}", self.code, self.message)),
            412 => ProviderError::Conflict,
            status => ProviderError::Http { status, message: format!("{}: {}", self.code, self.message) },
        }
    }
}

/// Adds the bearer token; Graph takes no other credentials.
pub(crate) fn authorise(request: RequestBuilder, auth: &Credentials) -> ProviderResult<RequestBuilder> {
    match auth {
        Credentials::Bearer(token) => Ok(request.bearer_auth(token)),
        Credentials::Basic { .. } => {
            Err(ProviderError::Unauthorized("Microsoft Graph needs an OAuth access token".to_string()))
        }
    }
}

fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Sends a request; `Ok` with the response when it succeeded, the [`Failure`] otherwise.
pub(crate) async fn send(request: RequestBuilder) -> ProviderResult<Result<Response, Failure>> {
    let response = request.send().await.map_err(|e| ProviderError::Transport(e.without_url().to_string()))?;
    if response.status().is_success() {
        return Ok(Ok(response));
    }
    let status = response.status();
    let retry_after = retry_after(&response);
    let body = response.bytes().await.unwrap_or_default();
    let error = serde_json::from_slice::<ErrorBody>(&body).ok().and_then(|b| b.error).unwrap_or_default();
    let reason = status.canonical_reason().unwrap_or("error");
    tracing::debug!(status = status.as_u16(), code = ?error.code, "Microsoft Graph refused a request");
    Ok(Err(Failure {
        status: status.as_u16(),
        code: error.code.unwrap_or_else(|| reason.to_string()),
        message: error.message.unwrap_or_else(|| reason.to_string()),
        retry_after,
    }))
}

/// Reads a JSON body.
pub(crate) async fn json<T: DeserializeOwned>(response: Response) -> ProviderResult<T> {
    let bytes = response.bytes().await.map_err(|e| ProviderError::Transport(e.without_url().to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| ProviderError::Protocol(format!("Graph sent unreadable JSON: {e}")))
}

/// Sends and reads JSON, mapping failures to [`ProviderError`].
pub(crate) async fn call<T: DeserializeOwned>(request: RequestBuilder) -> ProviderResult<T> {
    match send(request).await? {
        Ok(response) => json(response).await,
        Err(failure) => Err(failure.into_error()),
    }
}

/// Sends a request whose answer has no body worth reading (DELETE); 404 is `Ok(false)`.
pub(crate) async fn call_empty(request: RequestBuilder) -> ProviderResult<bool> {
    match send(request).await? {
        Ok(_) => Ok(true),
        Err(f) if f.status == StatusCode::NOT_FOUND.as_u16() => Ok(false),
        Err(f) => Err(f.into_error()),
    }
}
