//! Webhook subscriptions and their delivery history, as the API sees them (one tenant at a
//! time). The worker's side of the queue is in [`crate::queue`].

use std::collections::HashMap;

use jiff::Timestamp;
use kairos_core::webhook::{Attempt, Delivery, DeliveryStatus, PING, Webhook, WebhookSecret, endpoint_of};
use kairos_store::{DeliveryFilter, Page, PageRequest, StoreError, StoreResult, Tenant, event_envelope, ids};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::db::error;
use crate::rows::{corrupt, json, ms, ts};

const WEBHOOK_COLUMNS: &str = "id, url, events, description, enabled, secret, previous_secret, \
     previous_secret_expires_at, created_at, updated_at";

fn read_webhook(r: &Row<'_>) -> rusqlite::Result<WebhookRow> {
    Ok(WebhookRow {
        id: r.get(0)?,
        url: r.get(1)?,
        events: r.get(2)?,
        description: r.get(3)?,
        enabled: r.get(4)?,
        secret: r.get(5)?,
        previous_secret: r.get(6)?,
        previous_secret_expires_at: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

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
            events: serde_json::from_str(&self.events).map_err(|e| corrupt("webhook events", e))?,
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

pub(crate) fn insert(c: &Connection, t: &Tenant, w: &Webhook) -> StoreResult<()> {
    let (previous, until) = split_previous(w);
    let secret = secret_of(w)?;
    c.prepare_cached(
        "INSERT INTO webhooks (id, account_id, mode, url, events, description, enabled, secret, previous_secret,
                               previous_secret_expires_at, created_at, updated_at, endpoint)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .and_then(|mut s| {
        s.execute(params![
            w.id,
            t.account_id,
            t.mode.as_str(),
            w.url,
            json(&w.events),
            w.description,
            w.enabled,
            secret,
            previous,
            until,
            ms(w.created_at),
            ms(w.updated_at),
            endpoint_of(&w.url)
        ])
    })
    .map_err(error)?;
    Ok(())
}

fn split_previous(w: &Webhook) -> (Option<&str>, Option<i64>) {
    match &w.previous_secret {
        Some((secret, until)) => (Some(secret.expose()), Some(ms(*until))),
        None => (None, None),
    }
}

pub(crate) fn get(c: &Connection, t: &Tenant, id: &str) -> StoreResult<Option<Webhook>> {
    c.prepare_cached(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1 AND account_id = ?2 AND mode = ?3"))
        .and_then(|mut s| s.query_row(params![id, t.account_id, t.mode.as_str()], read_webhook).optional())
        .map_err(error)?
        .map(WebhookRow::into_webhook)
        .transpose()
}

pub(crate) fn list(c: &Connection, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Webhook>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE account_id = ?1 AND mode = ?2 AND (?3 IS NULL OR id < ?3)
              ORDER BY id DESC LIMIT ?4"
        ))
        .and_then(|mut s| {
            s.query_map(params![t.account_id, t.mode.as_str(), page.cursor, page.limit as i64 + 1], read_webhook)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    let hooks = rows.into_iter().map(WebhookRow::into_webhook).collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(hooks, page.limit, |w| &w.id))
}

/// Writes back an edited subscription; disabling it fails what was waiting for it.
pub(crate) fn update(c: &Connection, t: &Tenant, w: &Webhook, was_enabled: bool) -> StoreResult<()> {
    let (previous, until) = split_previous(w);
    let secret = secret_of(w)?;
    c.prepare_cached(
        "UPDATE webhooks SET url = ?1, events = ?2, description = ?3, enabled = ?4, secret = ?5, previous_secret = ?6,
                previous_secret_expires_at = ?7, updated_at = ?8, endpoint = ?12
          WHERE id = ?9 AND account_id = ?10 AND mode = ?11",
    )
    .and_then(|mut s| {
        s.execute(params![
            w.url,
            json(&w.events),
            w.description,
            w.enabled,
            secret,
            previous,
            until,
            ms(w.updated_at),
            w.id,
            t.account_id,
            t.mode.as_str(),
            endpoint_of(&w.url)
        ])
    })
    .map_err(error)?;
    if was_enabled && !w.enabled {
        c.prepare_cached(
            "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, lease = NULL, locked_until = NULL,
                    updated_at = ?2
              WHERE webhook_id = ?1 AND status = 'pending'",
        )
        .and_then(|mut s| s.execute(params![w.id, ms(w.updated_at)]))
        .map_err(error)?;
    }
    Ok(())
}

pub(crate) fn delete(c: &Connection, t: &Tenant, id: &str) -> StoreResult<bool> {
    let n = c
        .prepare_cached("DELETE FROM webhooks WHERE id = ?1 AND account_id = ?2 AND mode = ?3")
        .and_then(|mut s| s.execute(params![id, t.account_id, t.mode.as_str()]))
        .map_err(error)?;
    Ok(n > 0)
}

const DELIVERY_COLUMNS: &str =
    "d.id, d.webhook_id, d.event_id, d.event_type, d.status, d.next_attempt_at, d.created_at, d.updated_at";

fn read_delivery(r: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.get(0)?,
        webhook_id: r.get(1)?,
        event_id: r.get(2)?,
        event_type: r.get(3)?,
        status: r.get(4)?,
        next_attempt_at: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

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
            next_attempt_at: self.next_attempt_at.map(ts).transpose()?,
            created_at: ts(self.created_at)?,
            updated_at: ts(self.updated_at)?,
            attempts,
        })
    }
}

/// Attaches each delivery's attempts, oldest first.
fn hydrate(c: &Connection, rows: Vec<DeliveryRow>) -> StoreResult<Vec<Delivery>> {
    let mut attempts: HashMap<String, Vec<Attempt>> = HashMap::new();
    let mut stmt = c
        .prepare_cached(
            "SELECT attempted_at, status_code, duration_ms, error, response_body FROM webhook_attempts
              WHERE delivery_id = ?1 ORDER BY id",
        )
        .map_err(error)?;
    for row in &rows {
        let found = stmt
            .query_map([&row.id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<u16>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(error)?;
        let list = found
            .into_iter()
            .map(|(at, status_code, duration_ms, error, response_body)| {
                Ok(Attempt {
                    attempted_at: ts(at)?,
                    status_code,
                    duration_ms: u64::try_from(duration_ms).unwrap_or(0),
                    error,
                    response_body,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        attempts.insert(row.id.clone(), list);
    }
    rows.into_iter()
        .map(|row| {
            let list = attempts.remove(&row.id).unwrap_or_default();
            row.into_delivery(list)
        })
        .collect()
}

pub(crate) fn deliveries(
    c: &Connection,
    t: &Tenant,
    webhook_id: &str,
    filter: &DeliveryFilter,
    page: &PageRequest,
) -> StoreResult<Page<Delivery>> {
    get(c, t, webhook_id)?.ok_or(StoreError::NotFound)?;
    let rows = c
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
              WHERE d.webhook_id = ?1 AND (?2 IS NULL OR d.id < ?2) AND (?3 IS NULL OR d.status = ?3)
              ORDER BY d.id DESC LIMIT ?4"
        ))
        .and_then(|mut s| {
            s.query_map(
                params![webhook_id, page.cursor, filter.status.map(DeliveryStatus::as_str), page.limit as i64 + 1],
                read_delivery,
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    Ok(Page::from_rows(hydrate(c, rows)?, page.limit, |d| &d.id))
}

fn delivery(c: &Connection, id: &str) -> StoreResult<Option<Delivery>> {
    let row = c
        .prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.id = ?1"))
        .and_then(|mut s| s.query_row([id], read_delivery).optional())
        .map_err(error)?;
    Ok(hydrate(c, row.into_iter().collect())?.pop())
}

/// Queues a new delivery of `event_id` to `webhook_id`, due at `now`.
pub(crate) fn queue_delivery(
    c: &Connection,
    webhook_id: &str,
    event_id: &str,
    event_type: &str,
    event_created_at: i64,
    now: Timestamp,
) -> StoreResult<String> {
    let id = ids::new_id("whd");
    c.prepare_cached(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, event_created_at, status, next_attempt_at,
                                         created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6, ?6)",
    )
    .and_then(|mut s| s.execute(params![id, webhook_id, event_id, event_type, event_created_at, ms(now)]))
    .map_err(error)?;
    Ok(id)
}

pub(crate) fn redeliver(
    c: &Connection,
    t: &Tenant,
    webhook_id: &str,
    delivery_id: &str,
    now: Timestamp,
) -> StoreResult<Delivery> {
    enabled(c, t, webhook_id)?;
    let (event_id, event_type, event_created_at): (String, String, i64) = c
        .prepare_cached(
            "SELECT event_id, event_type, event_created_at FROM webhook_deliveries WHERE id = ?1 AND webhook_id = ?2",
        )
        .and_then(|mut s| s.query_row(params![delivery_id, webhook_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
        .optional()
        .map_err(error)?
        .ok_or(StoreError::NotFound)?;
    let id = queue_delivery(c, webhook_id, &event_id, &event_type, event_created_at, now)?;
    delivery(c, &id)?.ok_or(StoreError::NotFound)
}

/// The subscription, which must exist for the tenant and be enabled (work queued for a
/// disabled one would wait forever).
fn enabled(c: &Connection, t: &Tenant, webhook_id: &str) -> StoreResult<Webhook> {
    let hook = get(c, t, webhook_id)?.ok_or(StoreError::NotFound)?;
    if !hook.enabled {
        return Err(StoreError::Refused {
            code: "webhook_disabled",
            message:
                "This webhook is disabled, so nothing would be sent; enable it with PATCH {\"enabled\": true} first."
                    .into(),
        });
    }
    Ok(hook)
}

pub(crate) fn ping(c: &Connection, t: &Tenant, webhook_id: &str, now: Timestamp) -> StoreResult<Delivery> {
    enabled(c, t, webhook_id)?;
    let event_id = ids::new_id("evt");
    let payload = event_envelope(&event_id, PING, now, &serde_json::json!({ "webhook_id": webhook_id }));
    c.prepare_cached(
        "INSERT INTO outbox_events (id, account_id, mode, event_type, payload, created_at, dispatched)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)",
    )
    .and_then(|mut s| s.execute(params![event_id, t.account_id, t.mode.as_str(), PING, payload, ms(now)]))
    .map_err(error)?;
    let id = queue_delivery(c, webhook_id, &event_id, PING, ms(now), now)?;
    delivery(c, &id)?.ok_or(StoreError::NotFound)
}
