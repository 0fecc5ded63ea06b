//! `Idempotency-Key` on every POST: the first request with a key does the work and its
//! response is kept for 24 hours; a repeat with the same body gets the same status and body
//! back (with `Idempotent-Replayed: true`) without the work being done again; a repeat with a
//! different body is a 422. Concurrent repeats wait for the first to finish.
//!
//! Only outcomes of executing the request are kept (2xx and 409 conflicts); validation
//! failures and server errors release the key so that a corrected retry can use it. A
//! response that carries credentials (a new proposal's response links) is marked
//! [`SealReplay`] by its handler and kept sealed with the keyring, never in the clear.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kairos_store::{IdempotencyClaim, StoredResponse, Tenant};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::BODY_LIMIT;

const HEADER: &str = "idempotency-key";
/// What a sealed stored body starts with (a plain one is JSON, so never does).
const SEALED: &str = "sealed:";
/// The keyring purpose of sealed replay bodies.
const PURPOSE: &str = "idempotency_keys.body";

/// A response extension: this response holds secrets, so its replay copy is sealed.
#[derive(Debug, Clone, Copy)]
pub struct SealReplay;

/// The row a sealed body belongs to: it opens for this tenant and key only.
fn sealed_row(t: &Tenant, key: &str) -> String {
    format!("{}:{}:{key}", t.account_id, t.mode.as_str())
}
/// How long a repeat waits for the first request with its key to finish.
const WAIT: Duration = Duration::from_secs(10);

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Result<Response, ApiError> {
    if req.method() != Method::POST {
        return Ok(next.run(req).await);
    }
    let Some(key) = req.headers().get(HEADER) else {
        return Ok(next.run(req).await);
    };
    let key = key
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::invalid(
                "Idempotency-Key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters, e.g. a UUID.",
            )
        })?
        .to_string();
    let tenant =
        req.extensions().get::<Tenant>().cloned().ok_or_else(|| ApiError::unauthorized("Send your API key."))?;
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| ApiError::too_large(BODY_LIMIT))?;
    let fingerprint = hex::encode(
        Sha256::new()
            .chain_update(parts.method.as_str())
            .chain_update([0])
            .chain_update(parts.uri.path())
            .chain_update([0])
            .chain_update(parts.uri.query().unwrap_or_default())
            .chain_update([0])
            .chain_update(&bytes)
            .finalize(),
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    let token = loop {
        match state.store.claim_idempotency_key(&tenant, &key, &fingerprint, state.clock.now()).await? {
            IdempotencyClaim::Claimed(token) => break token,
            IdempotencyClaim::Completed(stored) => return replay(&state, &tenant, &key, stored),
            IdempotencyClaim::Mismatch => {
                return Err(ApiError::idempotency(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "This Idempotency-Key was already used with a different request; use a new key for a new request.",
                ));
            }
            IdempotencyClaim::InProgress if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            IdempotencyClaim::InProgress => {
                return Err(ApiError::idempotency(
                    StatusCode::CONFLICT,
                    "idempotency_key_in_use",
                    "A request with this Idempotency-Key is still being processed; retry in a moment.",
                ));
            }
        }
    };
    // From the claim on, the request runs to completion and its outcome is recorded even if
    // the client hangs up (which drops this future): otherwise the work could be done while
    // the key stayed claimed, and a retry after the lease would do it again.
    let request = Request::from_parts(parts, Body::from(bytes));
    let finished = tokio::spawn(async move {
        let response = next.run(request).await;
        let status = response.status();
        let keep = status.is_success() || status == StatusCode::CONFLICT;
        if !keep {
            state.store.release_idempotency_key(&tenant, &key, &token).await?;
            return Ok(response);
        }
        let sealed = response.extensions().get::<SealReplay>().is_some();
        let (mut parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(ApiError::internal)?;
        let text = if sealed {
            let keyring = &state.sync.providers.providers().keyring;
            format!("{SEALED}{}", keyring.seal(PURPOSE, &sealed_row(&tenant, &key), &bytes))
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let stored = StoredResponse { status: status.as_u16(), body: text };
        if !state.store.complete_idempotency_key(&tenant, &key, &token, &stored).await? {
            tracing::warn!(key = %key, "an idempotency claim was taken over before its request finished");
        }
        parts.headers.insert("idempotent-replayed", HeaderValue::from_static("false"));
        Ok(Response::from_parts(parts, Body::from(bytes)))
    });
    finished.await.map_err(ApiError::internal)?
}

fn replay(state: &AppState, t: &Tenant, key: &str, stored: StoredResponse) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let body = match stored.body.strip_prefix(SEALED) {
        Some(sealed) => {
            let keyring = &state.sync.providers.providers().keyring;
            let bytes = keyring.open(PURPOSE, &sealed_row(t, key), sealed).map_err(ApiError::internal)?;
            String::from_utf8_lossy(&bytes).into_owned()
        }
        None => stored.body,
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}
