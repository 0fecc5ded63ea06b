//! `/v1/webhooks`: subscriptions, their secrets and rotation, delivery history, redelivery and
//! the test ping. Delivery itself happens in the background (`kairos-jobs`), never here.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kairos_core::webhook::{self, Delivery, DeliveryStatus, Webhook, WebhookSecret};
use kairos_jobs::egress;
use kairos_store::{DeliveryFilter, Edit, ids};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody, on_object};
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::wire::{self, Deleted, Pagination};

/// The longest webhook URL accepted.
const MAX_URL: usize = 2048;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// An https URL that resolves to a public address.
    #[schema(example = "https://example.com/webhooks/kairos")]
    pub url: String,
    /// Event types, or `["*"]` for all of them.
    #[schema(example = json!(["booking.created", "booking.cancelled"]))]
    pub events: Vec<String>,
    pub description: Option<String>,
    /// Defaults to true.
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<String>)]
    pub url: Option<Option<String>>,
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub events: Option<Option<Vec<String>>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Disabling marks what was waiting for this subscription `failed` (redeliver it later).
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<bool>)]
    pub enabled: Option<Option<bool>>,
}

/// A subscription with its signing secret: returned only on creation and rotation.
#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_…`: verify deliveries with it. Shown only now.
    #[schema(example = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")]
    pub secret: String,
}

impl std::fmt::Debug for WebhookWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookWithSecret").field("webhook", &self.webhook).field("secret", &"whsec_…").finish()
    }
}

impl WebhookWithSecret {
    fn of(webhook: Webhook) -> Self {
        let secret = webhook.secret.as_ref().map(|s| s.expose().to_string()).unwrap_or_default();
        Self { webhook, secret }
    }
}

/// A page of subscriptions.
#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub data: Vec<Webhook>,
    pub next_cursor: Option<String>,
}

/// A page of deliveries.
#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    pub data: Vec<Delivery>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// 1 to 100; 20 when absent.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `pending`, `succeeded` or `failed`.
    #[param(value_type = Option<DeliveryStatus>)]
    pub status: Option<String>,
}

fn secret() -> WebhookSecret {
    WebhookSecret::from_random(rand::random())
}

/// Checks a URL: length, https, and (unless private URLs are allowed) a public address.
async fn checked_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    let url = url.trim();
    if url.len() > MAX_URL {
        return Err(ApiError::invalid("url", format!("`url` is longer than {MAX_URL} characters; shorten it.")));
    }
    egress::check_url(url, state.allow_private_urls)
        .await
        .map(|u| u.to_string())
        .map_err(|refusal| ApiError::invalid("url", format!("Refused `{url}`: {refusal}.")))
}

fn events(names: &[String]) -> Result<Vec<String>, ApiError> {
    webhook::parse_events(names).map_err(|e| ApiError::invalid("events", e.to_string()))
}

#[utoipa::path(post, path = "/v1/webhooks", tag = super::WEBHOOKS, request_body = CreateWebhook,
    responses((status = 201, body = WebhookWithSecret), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), ApiError> {
    let events = events(&body.events)?;
    let description = wire::text("description", body.description, 500)?;
    let url = checked_url(&state, &body.url).await?;
    let now = state.clock.now();
    let hook = Webhook {
        id: ids::new_id("wh"),
        url,
        events,
        description,
        enabled: body.enabled.unwrap_or(true),
        created_at: now,
        updated_at: now,
        secret: Some(secret()),
        previous_secret: None,
    };
    state.store.insert_webhook(&t, &hook).await?;
    Ok((StatusCode::CREATED, Json(WebhookWithSecret::of(hook))))
}

#[utoipa::path(get, path = "/v1/webhooks", tag = super::WEBHOOKS, params(Pagination), responses((status = 200, body = WebhookList)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiQuery(p): ApiQuery<Pagination>,
) -> Result<Json<kairos_store::Page<Webhook>>, ApiError> {
    Ok(Json(state.store.webhooks(&t, &p.page()?).await?))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = super::WEBHOOKS, params(("id" = String, Path)),
    responses((status = 200, body = Webhook), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Json<Webhook>, ApiError> {
    state.store.webhook(&t, &id).await?.map(Json).ok_or_else(|| ApiError::not_found("webhook", &id))
}

#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = super::WEBHOOKS, params(("id" = String, Path)), request_body = UpdateWebhook,
    responses((status = 200, body = Webhook), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateWebhook>,
) -> Result<Json<Webhook>, ApiError> {
    let events = wire::required("events", body.events)?.map(|e| events(&e)).transpose()?;
    let description = body.description.map(|d| wire::text("description", d, 500)).transpose()?;
    let enabled = wire::required("enabled", body.enabled)?;
    let url = match wire::required("url", body.url)? {
        Some(url) => Some(checked_url(&state, &url).await?),
        None => None,
    };
    let now = state.clock.now();
    let edit: Edit<Webhook> = Box::new(move |hook| {
        if let Some(url) = url {
            hook.url = url;
        }
        if let Some(events) = events {
            hook.events = events;
        }
        if let Some(description) = description {
            hook.description = description;
        }
        if let Some(enabled) = enabled {
            hook.enabled = enabled;
        }
        hook.updated_at = now;
        Ok(())
    });
    state.store.update_webhook(&t, &id, edit).await.map(Json).map_err(on_object("webhook", &id))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = super::WEBHOOKS, params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    if state.store.delete_webhook(&t, &id).await? {
        Ok(Json(Deleted { id, deleted: true }))
    } else {
        Err(ApiError::not_found("webhook", &id))
    }
}

/// Replaces the secret. The old one keeps signing beside the new one for 24 hours (both in
/// `webhook-signature`, the new first), so receivers can switch without losing events.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate_secret", tag = super::WEBHOOKS, params(("id" = String, Path)),
    responses((status = 200, body = WebhookWithSecret), (status = 404, body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    let (new, now) = (secret(), state.clock.now());
    let edit: Edit<Webhook> = Box::new(move |hook| {
        hook.rotate(new, now);
        Ok(())
    });
    let hook = state.store.update_webhook(&t, &id, edit).await.map_err(on_object("webhook", &id))?;
    Ok(Json(WebhookWithSecret::of(hook)))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = super::WEBHOOKS, params(("id" = String, Path), DeliveriesQuery),
    responses((status = 200, body = DeliveryList), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<kairos_store::Page<Delivery>>, ApiError> {
    let page = Pagination { limit: q.limit, cursor: q.cursor }.page()?;
    let status = q
        .status
        .map(|s| {
            DeliveryStatus::parse(&s)
                .ok_or_else(|| ApiError::invalid("status", "`status` must be pending, succeeded or failed."))
        })
        .transpose()?;
    let filter = DeliveryFilter { status };
    state.store.webhook_deliveries(&t, &id, &filter, &page).await.map(Json).map_err(on_object("webhook", &id))
}

/// Sends a delivery's event again, as a new delivery with the same event id (so receivers
/// that dedupe by it see a duplicate, not a new event).
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = super::WEBHOOKS,
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202, body = Delivery), (status = 404, body = ErrorBody)))]
pub async fn redeliver(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let delivery = state
        .store
        .redeliver(&t, &id, &delivery_id, state.clock.now())
        .await
        .map_err(on_object("webhook delivery", &delivery_id))?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}

/// Queues a `ping` event to this subscription alone, whatever its `events`; watch it arrive
/// in the deliveries.
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = super::WEBHOOKS, params(("id" = String, Path)),
    responses((status = 202, body = Delivery), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "The webhook is disabled")))]
pub async fn test(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let hook = state.store.webhook(&t, &id).await?.ok_or_else(|| ApiError::not_found("webhook", &id))?;
    if !hook.enabled {
        return Err(ApiError::conflict(
            "webhook_disabled",
            "This webhook is disabled, so nothing would be sent; enable it with PATCH {\"enabled\": true} first.",
        ));
    }
    let delivery = state.store.ping_webhook(&t, &id, state.clock.now()).await.map_err(on_object("webhook", &id))?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}
