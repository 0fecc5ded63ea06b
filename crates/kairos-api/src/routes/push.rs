//! Push notification endpoints the providers call (no API key: each notification is checked
//! against its channel's token). They only make the connection due; the background sync
//! reads what changed.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;

const MAX_VALIDATION_TOKEN: usize = 4096;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// Google watch channel notifications: always 200 (Google retries anything else), unknown
/// channels and wrong tokens logged and ignored.
#[utoipa::path(post, path = "/v1/providers/google/notifications", tag = super::CALENDARS, security(()),
    responses((status = 200, description = "Always")))]
pub async fn google(State(state): State<AppState>, headers: HeaderMap) -> StatusCode {
    let channel = header(&headers, "x-goog-channel-id");
    let token = header(&headers, "x-goog-channel-token");
    let resource_state = header(&headers, "x-goog-resource-state");
    if !kairos_jobs::push::google_state_changes(resource_state) {
        return StatusCode::OK;
    }
    match state.sync.providers.notified(channel, token).await {
        Ok(Some(_)) => state.sync.nudge.notify_one(),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "recording a Google notification failed"),
    }
    StatusCode::OK
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Validation {
    /// Sent by Graph when a subscription is created: echoed back as text/plain.
    #[serde(rename = "validationToken")]
    pub validation_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Notifications {
    #[serde(default)]
    value: Vec<Notification>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    subscription_id: String,
    #[serde(default)]
    client_state: Option<String>,
    /// `reauthorizationRequired`, `subscriptionRemoved` or `missed` for lifecycle
    /// notifications.
    #[serde(default)]
    lifecycle_event: Option<String>,
}

/// Graph change and lifecycle notifications, and the subscription validation handshake.
#[utoipa::path(post, path = "/v1/providers/microsoft/notifications", tag = super::CALENDARS, security(()),
    params(Validation),
    responses((status = 200, description = "The validation token, as text/plain"),
        (status = 202, description = "Notifications accepted")))]
pub async fn microsoft(
    State(state): State<AppState>,
    Query(validation): Query<Validation>,
    body: axum::body::Bytes,
) -> Response {
    // The handshake comes with any content type (or none): answer it before reading a body.
    if let Some(token) = validation.validation_token {
        // Graph's tokens are short; anything long is not Graph.
        if token.len() > MAX_VALIDATION_TOKEN {
            return StatusCode::BAD_REQUEST.into_response();
        }
        return (
            [(axum::http::header::CONTENT_TYPE, "text/plain"), (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff")],
            token,
        )
            .into_response();
    }
    let Ok(notifications) = serde_json::from_slice::<Notifications>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let sync = &state.sync.providers;
    for n in notifications.value {
        let token = n.client_state.as_deref().unwrap_or_default();
        let accepted = match sync.notified(&n.subscription_id, token).await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::error!(error = %e, "recording a Graph notification failed");
                continue;
            }
        };
        let Some((t, channel)) = accepted else { continue };
        match n.lifecycle_event.as_deref() {
            // Renew now, in the background (Graph wants an answer within 3 s).
            Some("reauthorizationRequired") => {
                let sync = sync.clone();
                tokio::spawn(async move {
                    if let Err(e) = sync.renew(&t, &channel).await {
                        tracing::error!(error = %e, "renewing a Graph subscription failed");
                    }
                });
            }
            // Gone: forget it; the sync that follows opens a new one.
            Some("subscriptionRemoved") => {
                if let Err(e) = state.store.delete_push_channel(&t, &channel.id).await {
                    tracing::error!(error = %e, "dropping a removed Graph subscription failed");
                }
            }
            _ => {}
        }
        // Only now: the sync this wakes must see the subscription dropped above.
        state.sync.nudge.notify_one();
    }
    StatusCode::ACCEPTED.into_response()
}
