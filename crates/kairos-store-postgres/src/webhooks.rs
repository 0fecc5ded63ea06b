//! Webhook subscriptions, the outbox as the API lists it, and delivery history, as the API
//! sees them (one tenant at a time). The worker's side of the queue is in [`crate::queue`].
//!
//! Other nodes dispatch and claim while these run, so the writes that queue work or stop it
//! lock the subscription row: an edit takes it `FOR NO KEY UPDATE`, and pings, redeliveries
//! and the fan-out take it `FOR SHARE`. Disabling a subscription therefore either waits for a
//! fan-out to commit and then fails what it queued, or is seen by it and gets nothing queued.

use std::collections::HashMap;

use jiff::Timestamp;
use kairos_core::webhook::{Attempt, Delivery, DeliveryStatus, PING, Webhook, WebhookSecret, endpoint_of};
use kairos_store::{
    DeliveryFilter, Edit, OutboxEvent, Page, PageRequest, StoreError, StoreResult, Tenant, event_envelope, ids,
};
use sqlx::{PgConnection, PgExecutor, PgPool};

use crate::db::error;
use crate::rows::{corrupt, json, ms, opt_ts, parse_json, ts};

/// The columns [`WebhookRow`] reads (a macro so that queries stay `&'static str`).
macro_rules! webhook_columns {
    () => {
        "id, url, events, description, enabled, secret, previous_secret, previous_secret_expires_at, created_at, \
         updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: String,
    url: String,
    events: String,
    description: Option<String>,
    enabled: bool,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_expires_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl WebhookRow {
    fn into_webhook(self) -> StoreResult<Webhook> {
        let previous_secret = match (self.previous_secret, self.previous_secret_expires_at) {
            (Some(secret), Some(until)) => Some((WebhookSecret::new(secret), ts(until)?)),
            _ => None,
        };
        Ok(Webhook {
            id: self.id,
            url: self.url,
            events: parse_json("webhook events", &self.events)?,
            description: self.description,
            enabled: self.enabled,
            created_at: ts(self.created_at)?,
            updated_at: ts(self.updated_at)?,
            secret: Some(WebhookSecret::new(self.secret)),
            previous_secret,
        })
    }
}

fn secret_of(w: &Webhook) -> StoreResult<&str> {
    w.secret.as_ref().map(WebhookSecret::expose).ok_or_else(|| StoreError::Invalid {
        param: "secret".into(),
        message: "A webhook needs a signing secret.".into(),
        missing: true,
    })
}

fn split_previous(w: &Webhook) -> (Option<&str>, Option<i64>) {
    match &w.previous_secret {
        Some((secret, until)) => (Some(secret.expose()), Some(ms(*until))),
        None => (None, None),
    }
}

pub(crate) async fn outbox_events(db: &PgPool, t: &Tenant, page: &PageRequest) -> StoreResult<Page<OutboxEvent>> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, event_type, payload, created_at FROM outbox_events
          WHERE account_id = $1 AND mode = $2 AND ($3::text IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
    )
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(page.cursor.as_deref())
    .bind(limit_plus_one(page))
    .fetch_all(db)
    .await
    .map_err(error)?;
    let events = rows
        .into_iter()
        .map(|(id, event_type, payload, created_at)| {
            Ok(OutboxEvent { id, event_type, payload, created_at: ts(created_at)? })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(events, page.limit, |e| &e.id))
}

/// The `LIMIT` that fetches one row past the page, to know whether another follows.
fn limit_plus_one(page: &PageRequest) -> i64 {
    i64::try_from(page.limit).unwrap_or(i64::MAX - 1) + 1
}

pub(crate) async fn insert(db: &PgPool, t: &Tenant, webhook: &Webhook) -> StoreResult<()> {
    let w = webhook;
    let (previous, until) = split_previous(w);
    let secret = secret_of(w)?;
    sqlx::query(
        "INSERT INTO webhooks (id, account_id, mode, url, events, description, enabled, secret, previous_secret,
                               previous_secret_expires_at, created_at, updated_at, endpoint)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&w.id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&w.url)
    .bind(json(&w.events))
    .bind(&w.description)
    .bind(w.enabled)
    .bind(secret)
    .bind(previous)
    .bind(until)
    .bind(ms(w.created_at))
    .bind(ms(w.updated_at))
    .bind(endpoint_of(&w.url))
    .execute(db)
    .await
    .map_err(error)?;
    Ok(())
}

pub(crate) async fn get(db: &PgPool, t: &Tenant, id: &str) -> StoreResult<Option<Webhook>> {
    sqlx::query_as::<_, WebhookRow>(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks WHERE id = $1 AND account_id = $2 AND mode = $3"
    ))
    .bind(id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .fetch_optional(db)
    .await
    .map_err(error)?
    .map(WebhookRow::into_webhook)
    .transpose()
}

pub(crate) async fn list(db: &PgPool, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Webhook>> {
    let rows = sqlx::query_as::<_, WebhookRow>(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks WHERE account_id = $1 AND mode = $2 AND ($3::text IS NULL OR id < $3)
          ORDER BY id DESC LIMIT $4"
    ))
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(page.cursor.as_deref())
    .bind(limit_plus_one(page))
    .fetch_all(db)
    .await
    .map_err(error)?;
    let hooks = rows.into_iter().map(WebhookRow::into_webhook).collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(hooks, page.limit, |w| &w.id))
}

/// Reads, edits and writes back a subscription in one transaction, the row locked so that
/// two nodes' edits apply one after the other; disabling it fails what was waiting for it.
pub(crate) async fn update(db: &PgPool, t: &Tenant, id: &str, edit: Edit<Webhook>) -> StoreResult<Webhook> {
    let mut tx = db.begin().await.map_err(error)?;
    let mut hook = sqlx::query_as::<_, WebhookRow>(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks WHERE id = $1 AND account_id = $2 AND mode = $3 FOR NO KEY UPDATE"
    ))
    .bind(id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .fetch_optional(&mut *tx)
    .await
    .map_err(error)?
    .ok_or(StoreError::NotFound)?
    .into_webhook()?;
    let was_enabled = hook.enabled;
    edit(&mut hook)?;
    hook.id = id.to_string();
    let w = &hook;
    let (previous, until) = split_previous(w);
    let secret = secret_of(w)?;
    sqlx::query(
        "UPDATE webhooks SET url = $1, events = $2, description = $3, enabled = $4, secret = $5, previous_secret = $6,
                previous_secret_expires_at = $7, updated_at = $8, endpoint = $9
          WHERE id = $10 AND account_id = $11 AND mode = $12",
    )
    .bind(&w.url)
    .bind(json(&w.events))
    .bind(&w.description)
    .bind(w.enabled)
    .bind(secret)
    .bind(previous)
    .bind(until)
    .bind(ms(w.updated_at))
    .bind(endpoint_of(&w.url))
    .bind(&w.id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .execute(&mut *tx)
    .await
    .map_err(error)?;
    if was_enabled && !w.enabled {
        // Leases go too: an attempt in flight can no longer decide the outcome.
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, lease = NULL, locked_until = NULL,
                    updated_at = $2
              WHERE webhook_id = $1 AND status = 'pending'",
        )
        .bind(&w.id)
        .bind(ms(w.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(error)?;
    }
    tx.commit().await.map_err(error)?;
    Ok(hook)
}

pub(crate) async fn delete(db: &PgPool, t: &Tenant, id: &str) -> StoreResult<bool> {
    // Deliveries and their attempts go with it (ON DELETE CASCADE).
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND account_id = $2 AND mode = $3")
        .bind(id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .execute(db)
        .await
        .map_err(error)?;
    Ok(done.rows_affected() > 0)
}

/// The columns [`DeliveryRow`] reads.
macro_rules! delivery_columns {
    () => {
        "id, webhook_id, event_id, event_type, status, next_attempt_at, created_at, updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: String,
    webhook_id: String,
    event_id: String,
    event_type: String,
    status: String,
    next_attempt_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl DeliveryRow {
    fn into_delivery(self, attempts: Vec<Attempt>) -> StoreResult<Delivery> {
        Ok(Delivery {
            status: DeliveryStatus::parse(&self.status).ok_or_else(|| corrupt("delivery status", &self.status))?,
            id: self.id,
            webhook_id: self.webhook_id,
            event_id: self.event_id,
            event_type: self.event_type,
            next_attempt_at: opt_ts(self.next_attempt_at)?,
            created_at: ts(self.created_at)?,
            updated_at: ts(self.updated_at)?,
            attempts,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    delivery_id: String,
    attempted_at: i64,
    status_code: Option<i64>,
    duration_ms: i64,
    error: Option<String>,
    response_body: Option<String>,
}

impl AttemptRow {
    fn into_attempt(self) -> StoreResult<Attempt> {
        Ok(Attempt {
            attempted_at: ts(self.attempted_at)?,
            status_code: self.status_code.map(u16::try_from).transpose().map_err(|e| corrupt("status code", e))?,
            duration_ms: u64::try_from(self.duration_ms).unwrap_or(0),
            error: self.error,
            response_body: self.response_body,
        })
    }
}

/// Attaches each delivery's attempts, oldest first (one query for the page).
async fn hydrate(db: &PgPool, rows: Vec<DeliveryRow>) -> StoreResult<Vec<Delivery>> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let found = sqlx::query_as::<_, AttemptRow>(
        "SELECT delivery_id, attempted_at, status_code, duration_ms, error, response_body FROM webhook_attempts
          WHERE delivery_id = ANY($1) ORDER BY id",
    )
    .bind(&ids)
    .fetch_all(db)
    .await
    .map_err(error)?;
    let mut attempts: HashMap<String, Vec<Attempt>> = HashMap::new();
    for row in found {
        let key = row.delivery_id.clone();
        attempts.entry(key).or_default().push(row.into_attempt()?);
    }
    rows.into_iter()
        .map(|row| {
            let list = attempts.remove(&row.id).unwrap_or_default();
            row.into_delivery(list)
        })
        .collect()
}

pub(crate) async fn deliveries(
    db: &PgPool,
    t: &Tenant,
    webhook_id: &str,
    filter: &DeliveryFilter,
    page: &PageRequest,
) -> StoreResult<Page<Delivery>> {
    get(db, t, webhook_id).await?.ok_or(StoreError::NotFound)?;
    let rows = sqlx::query_as::<_, DeliveryRow>(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM webhook_deliveries
          WHERE webhook_id = $1 AND ($2::text IS NULL OR id < $2) AND ($3::text IS NULL OR status = $3)
          ORDER BY id DESC LIMIT $4"
    ))
    .bind(webhook_id)
    .bind(page.cursor.as_deref())
    .bind(filter.status.map(DeliveryStatus::as_str))
    .bind(limit_plus_one(page))
    .fetch_all(db)
    .await
    .map_err(error)?;
    Ok(Page::from_rows(hydrate(db, rows).await?, page.limit, |d| &d.id))
}

/// One delivery to queue: (webhook, event, event type, event created at).
pub(crate) struct NewDelivery<'a> {
    pub webhook_id: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub event_created_at: i64,
}

/// Queues new deliveries, due at `now`, in one statement; their ids in order.
pub(crate) async fn queue_deliveries(
    c: &mut PgConnection,
    new: &[NewDelivery<'_>],
    now: Timestamp,
) -> StoreResult<Vec<String>> {
    let ids: Vec<String> = new.iter().map(|_| ids::new_id("whd")).collect();
    let webhooks: Vec<&str> = new.iter().map(|d| d.webhook_id).collect();
    let events: Vec<&str> = new.iter().map(|d| d.event_id).collect();
    let types: Vec<&str> = new.iter().map(|d| d.event_type).collect();
    let created: Vec<i64> = new.iter().map(|d| d.event_created_at).collect();
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, event_created_at, status, next_attempt_at,
                                         created_at, updated_at)
         SELECT id, webhook_id, event_id, event_type, event_created_at, 'pending', $6, $6, $6
           FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
                AS n (id, webhook_id, event_id, event_type, event_created_at)",
    )
    .bind(&ids)
    .bind(&webhooks)
    .bind(&events)
    .bind(&types)
    .bind(&created)
    .bind(ms(now))
    .execute(c)
    .await
    .map_err(error)?;
    Ok(ids)
}

/// Queues one delivery and returns it as the API shows it.
async fn queue_one(c: &mut PgConnection, new: NewDelivery<'_>, now: Timestamp) -> StoreResult<Delivery> {
    let id = queue_deliveries(c, &[new], now).await?.pop().ok_or(StoreError::NotFound)?;
    sqlx::query_as::<_, DeliveryRow>(concat!("SELECT ", delivery_columns!(), " FROM webhook_deliveries WHERE id = $1"))
        .bind(&id)
        .fetch_one(c)
        .await
        .map_err(error)?
        .into_delivery(Vec::new())
}

/// The subscription, which must exist for the tenant and be enabled (work queued for a
/// disabled one would wait forever). Locked `FOR SHARE` until the caller commits, so it
/// cannot be disabled before what the caller queues is visible to the disabling edit.
async fn enabled(c: impl PgExecutor<'_>, t: &Tenant, webhook_id: &str) -> StoreResult<()> {
    let found: Option<bool> =
        sqlx::query_scalar("SELECT enabled FROM webhooks WHERE id = $1 AND account_id = $2 AND mode = $3 FOR SHARE")
            .bind(webhook_id)
            .bind(&t.account_id)
            .bind(t.mode.as_str())
            .fetch_optional(c)
            .await
            .map_err(error)?;
    match found {
        None => Err(StoreError::NotFound),
        Some(false) => Err(StoreError::Refused {
            code: "webhook_disabled",
            message:
                "This webhook is disabled, so nothing would be sent; enable it with PATCH {\"enabled\": true} first."
                    .into(),
        }),
        Some(true) => Ok(()),
    }
}

pub(crate) async fn redeliver(
    db: &PgPool,
    t: &Tenant,
    webhook_id: &str,
    delivery_id: &str,
    now: Timestamp,
) -> StoreResult<Delivery> {
    let mut tx = db.begin().await.map_err(error)?;
    enabled(&mut *tx, t, webhook_id).await?;
    let (event_id, event_type, event_created_at): (String, String, i64) = sqlx::query_as(
        "SELECT event_id, event_type, event_created_at FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2",
    )
    .bind(delivery_id)
    .bind(webhook_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(error)?
    .ok_or(StoreError::NotFound)?;
    let new = NewDelivery { webhook_id, event_id: &event_id, event_type: &event_type, event_created_at };
    let delivery = queue_one(&mut tx, new, now).await?;
    tx.commit().await.map_err(error)?;
    Ok(delivery)
}

pub(crate) async fn ping(db: &PgPool, t: &Tenant, webhook_id: &str, now: Timestamp) -> StoreResult<Delivery> {
    let mut tx = db.begin().await.map_err(error)?;
    enabled(&mut *tx, t, webhook_id).await?;
    let event_id = ids::new_id("evt");
    let payload = event_envelope(&event_id, PING, now, &serde_json::json!({ "webhook_id": webhook_id }));
    // Already dispatched: the ping goes to this subscription only, queued right here.
    sqlx::query(
        "INSERT INTO outbox_events (id, account_id, mode, event_type, payload, created_at, dispatched)
         VALUES ($1, $2, $3, $4, $5, $6, TRUE)",
    )
    .bind(&event_id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(PING)
    .bind(&payload)
    .bind(ms(now))
    .execute(&mut *tx)
    .await
    .map_err(error)?;
    let new = NewDelivery { webhook_id, event_id: &event_id, event_type: PING, event_created_at: ms(now) };
    let delivery = queue_one(&mut tx, new, now).await?;
    tx.commit().await.map_err(error)?;
    Ok(delivery)
}
