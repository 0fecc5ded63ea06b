//! API key authentication: `Authorization: Bearer sk_test_…`. The key is hashed and looked up;
//! the resulting tenant scopes every query the request makes.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use kairos_store::keys;

use crate::AppState;
use crate::error::ApiError;

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let header = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let key = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "No API key. Send `Authorization: Bearer sk_test_…`; create a key with `kairos keys create --account NAME`.",
            )
        })?;
    let invalid = || {
        ApiError::unauthorized(
            "The API key is not valid: check it for typos, or create a new one with `kairos keys create`.",
        )
    };
    if keys::mode_of(key).is_none() || key.len() > 200 {
        return Err(invalid());
    }
    let tenant = state.store.tenant_for_key(&keys::hash(key)).await?.ok_or_else(invalid)?;
    req.extensions_mut().insert(tenant);
    Ok(next.run(req).await)
}
