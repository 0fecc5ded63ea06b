//! The delivery worker's side of the webhook queue, shared by every node: fanning committed
//! events out to subscriptions, claiming due deliveries under a lease, recording attempts,
//! queue statistics and the retention sweep.
//!
//! Several nodes run the worker against one database, so nothing here may rest on being the
//! only writer (as on SQLite):
//! - the fan-out takes its events `FOR UPDATE SKIP LOCKED` and marks them dispatched in the
//!   transaction that queues their deliveries, so each event fans out exactly once;
//! - claims are serialized by a transaction-scoped advisory lock ([`CLAIM_LOCK`]): the
//!   per-endpoint limits count every node's claims in flight, and counting then claiming must
//!   be one step for the limits to hold. Claims are a few statements long, so the wait is
//!   short; the candidate rows are still taken `FOR UPDATE SKIP LOCKED`, past the rows that
//!   edits and records hold;
//! - an attempt is recorded only under the lease that claimed it, by one conditional
//!   `UPDATE`, so a worker whose lease lapsed (and was taken) cannot decide the outcome.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use kairos_core::webhook::{DeliveryStatus, Next, WebhookSecret, subscribes};
use kairos_store::{
    AttemptRecord, ClaimLimits, ClaimedDelivery, Dispatched, IDEMPOTENCY_TTL, QueueStats, StoreResult, SweepReport, ids,
};
use sqlx::PgPool;

use crate::db::{self, error};
use crate::rows::{corrupt, ms, opt_ts, parse_json, ts};
use crate::webhooks::{NewDelivery, queue_deliveries};

/// The advisory lock (two-key form: its own key space, apart from the single-key locks of
/// bookings) that serializes delivery claims across nodes: "KAIR" and 1.
const CLAIM_LOCK: (i32, i32) = (0x4B41_4952, 1);

/// Rows one sweep statement deletes at most, so that a large backlog never holds locks long.
const SWEEP_BATCH: i64 = 2_000;

/// A subscription as fan-out needs it.
struct Subscriber {
    id: String,
    events: Vec<String>,
    created_at: i64,
}

pub(crate) async fn dispatch(db: &PgPool, now: Timestamp, limit: usize) -> StoreResult<Dispatched> {
    let mut tx = db.begin().await.map_err(error)?;
    // Another node's fan-out holds its events until it commits; we take the next ones.
    let events: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT id, account_id, mode, event_type, created_at FROM outbox_events
          WHERE NOT dispatched ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *tx)
    .await
    .map_err(error)?;
    if events.is_empty() {
        return Ok(Dispatched::default());
    }
    let mut accounts: Vec<&str> = Vec::new();
    let mut modes: Vec<&str> = Vec::new();
    for (_, account_id, mode, ..) in &events {
        if !accounts.iter().zip(&modes).any(|(a, m)| a == account_id && m == mode) {
            accounts.push(account_id);
            modes.push(mode);
        }
    }
    // FOR SHARE: a subscription being disabled right now is either seen disabled here, or
    // its disabling waits for this commit and then fails what we queue for it.
    let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT w.id, w.account_id, w.mode, w.events, w.created_at FROM webhooks w
          WHERE w.enabled AND (w.account_id, w.mode) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))
          ORDER BY w.id FOR SHARE",
    )
    .bind(&accounts)
    .bind(&modes)
    .fetch_all(&mut *tx)
    .await
    .map_err(error)?;
    let mut tenants: HashMap<(String, String), Vec<Subscriber>> = HashMap::new();
    for (id, account_id, mode, events, created_at) in rows {
        // An unreadable subscription is skipped (and logged), never allowed to stop every
        // tenant's fan-out.
        match parse_json::<Vec<String>>("webhook events", &events) {
            Ok(events) => tenants.entry((account_id, mode)).or_default().push(Subscriber { id, events, created_at }),
            Err(e) => tracing::error!(webhook = %id, error = %e, "skipping a webhook"),
        }
    }
    let mut new = Vec::new();
    for (id, account_id, mode, event_type, created_at) in &events {
        for sub in tenants.get(&(account_id.clone(), mode.clone())).into_iter().flatten() {
            // A subscription hears of events from its creation on, however late the fan-out.
            if sub.created_at <= *created_at && subscribes(&sub.events, event_type) {
                new.push(NewDelivery { webhook_id: &sub.id, event_id: id, event_type, event_created_at: *created_at });
            }
        }
    }
    if !new.is_empty() {
        queue_deliveries(&mut tx, &new, now).await?;
    }
    // Exactly the events we locked: others may lie between them, held by another node.
    let ids: Vec<&str> = events.iter().map(|(id, ..)| id.as_str()).collect();
    sqlx::query("UPDATE outbox_events SET dispatched = TRUE WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
    tx.commit().await.map_err(error)?;
    Ok(Dispatched { events: events.len(), deliveries: new.len() })
}

/// A delivery that the claim took, as `UPDATE … RETURNING` gives it.
#[derive(sqlx::FromRow)]
struct TakenRow {
    id: String,
    webhook_id: String,
    url: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_expires_at: Option<i64>,
    event_id: String,
    event_type: String,
    event_created_at: i64,
    payload: String,
    attempts: i64,
}

pub(crate) async fn claim(db: &PgPool, now: Timestamp, limits: &ClaimLimits) -> StoreResult<Vec<ClaimedDelivery>> {
    if limits.max == 0 || limits.per_endpoint == 0 {
        return Ok(Vec::new());
    }
    let lease = ids::new_id("lease");
    let until = now.saturating_add(limits.lease).unwrap_or(now);
    let mut tx = db.begin().await.map_err(error)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(CLAIM_LOCK.0)
        .bind(CLAIM_LOCK.1)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
    // Enabled subscriptions with work due, and their endpoints: one index probe per
    // subscription rather than a pass over every due delivery, so a claim stays cheap however
    // large a backlog grows.
    let mut due: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT w.id, w.endpoint, d.due FROM webhooks w
           CROSS JOIN LATERAL (SELECT min(next_attempt_at) AS due FROM webhook_deliveries
                                WHERE webhook_id = w.id AND status = 'pending') d
          WHERE w.enabled AND d.due <= $1",
    )
    .bind(ms(now))
    .fetch_all(&mut *tx)
    .await
    .map_err(error)?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    // Attempts in flight per endpoint: unexpired claims, any node's, any subscription's.
    let mut endpoints: Vec<&str> = due.iter().map(|(_, endpoint, _)| endpoint.as_str()).collect();
    endpoints.sort_unstable();
    endpoints.dedup();
    let mut busy: HashMap<String, usize> = sqlx::query_as::<_, (String, i64)>(
        "SELECT w.endpoint, count(*) FROM webhooks w
           JOIN webhook_deliveries d ON d.webhook_id = w.id AND d.status = 'pending' AND d.locked_until > $2
          WHERE w.endpoint = ANY($1) GROUP BY w.endpoint",
    )
    .bind(&endpoints)
    .bind(ms(now))
    .fetch_all(&mut *tx)
    .await
    .map_err(error)?
    .into_iter()
    .map(|(endpoint, n)| (endpoint, usize::try_from(n).unwrap_or(usize::MAX)))
    .collect();
    // Idle endpoints first, then the longest waiting: a busy receiver cannot crowd out the
    // others even when its backlog is the oldest.
    due.sort_by_key(|(_, endpoint, due)| (busy.get(endpoint).copied().unwrap_or(0), *due));
    // The candidates: each subscription's oldest due, unclaimed deliveries, as many as any
    // endpoint could take; rows another transaction holds are passed over.
    let hooks: Vec<&str> = due.iter().map(|(id, ..)| id.as_str()).collect();
    let most = limits.per_endpoint.min(limits.max);
    let candidates: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.webhook_id, c.id FROM UNNEST($1::text[]) WITH ORDINALITY AS w (id, n)
           CROSS JOIN LATERAL (SELECT d.id, d.webhook_id, d.next_attempt_at FROM webhook_deliveries d
                                WHERE d.webhook_id = w.id AND d.status = 'pending' AND d.next_attempt_at <= $2
                                  AND (d.locked_until IS NULL OR d.locked_until <= $2)
                                ORDER BY d.next_attempt_at, d.id LIMIT $3
                                FOR UPDATE SKIP LOCKED) c
          ORDER BY w.n, c.next_attempt_at, c.id",
    )
    .bind(&hooks)
    .bind(ms(now))
    .bind(i64::try_from(most).unwrap_or(i64::MAX))
    .fetch_all(&mut *tx)
    .await
    .map_err(error)?;
    let mut of_hook: HashMap<&str, Vec<String>> = HashMap::new();
    for (webhook_id, id) in &candidates {
        of_hook.entry(webhook_id.as_str()).or_default().push(id.clone());
    }
    // Share out the places as SQLite does: subscription by subscription, in the order above.
    let mut chosen: Vec<String> = Vec::new();
    for (webhook_id, endpoint, _) in &due {
        let room = limits.per_endpoint.saturating_sub(busy.get(endpoint).copied().unwrap_or(0));
        let n = room.min(limits.max.saturating_sub(chosen.len()));
        let Some(ids) = of_hook.get_mut(webhook_id.as_str()) else { continue };
        let take = n.min(ids.len());
        if take == 0 {
            continue;
        }
        chosen.extend(ids.drain(..take));
        *busy.entry(endpoint.clone()).or_default() += take;
        if chosen.len() >= limits.max {
            break;
        }
    }
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let taken = sqlx::query_as::<_, TakenRow>(
        "UPDATE webhook_deliveries d SET lease = $2, locked_until = $3
           FROM webhooks w, outbox_events e
          WHERE d.id = ANY($1) AND w.id = d.webhook_id AND e.id = d.event_id
         RETURNING d.id, d.webhook_id, w.url, w.secret, w.previous_secret, w.previous_secret_expires_at,
                   d.event_id, d.event_type, d.event_created_at, e.payload, d.attempts",
    )
    .bind(&chosen)
    .bind(&lease)
    .bind(ms(until))
    .fetch_all(&mut *tx)
    .await
    .map_err(error)?;
    tx.commit().await.map_err(error)?;
    let order: HashMap<&str, usize> = chosen.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut out = taken
        .into_iter()
        .map(|r| {
            let mut secrets = vec![WebhookSecret::new(r.secret)];
            if let (Some(previous), Some(previous_until)) = (r.previous_secret, r.previous_secret_expires_at)
                && previous_until > ms(now)
            {
                secrets.push(WebhookSecret::new(previous));
            }
            Ok(ClaimedDelivery {
                attempts_made: u32::try_from(r.attempts).map_err(|e| corrupt("delivery attempts", e))?,
                event_created_at: ts(r.event_created_at)?,
                id: r.id,
                webhook_id: r.webhook_id,
                url: r.url,
                secrets,
                event_id: r.event_id,
                event_type: r.event_type,
                payload: r.payload,
                lease: lease.clone(),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    out.sort_by_key(|d| order.get(d.id.as_str()).copied().unwrap_or(usize::MAX));
    Ok(out)
}

pub(crate) async fn record(db: &PgPool, record: &AttemptRecord, now: Timestamp) -> StoreResult<bool> {
    let r = record;
    let a = &r.attempt;
    let mut tx = db.begin().await.map_err(error)?;
    // The attempt is history whoever holds the lease now; none is kept when the subscription
    // (and its history) was deleted meanwhile.
    let kept = sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, duration_ms, error, response_body)
         SELECT id, $2, $3, $4, $5, $6 FROM webhook_deliveries WHERE id = $1",
    )
    .bind(&r.delivery_id)
    .bind(ms(a.attempted_at))
    .bind(a.status_code.map(i64::from))
    .bind(i64::try_from(a.duration_ms).unwrap_or(i64::MAX))
    .bind(&a.error)
    .bind(&a.response_body)
    .execute(&mut *tx)
    .await;
    match kept {
        Ok(done) if done.rows_affected() == 0 => return Ok(false),
        Ok(_) => {}
        // Deleted between our read and the foreign-key check.
        Err(e) if db::code(&e).as_deref() == Some("23503") => return Ok(false),
        Err(e) => return Err(error(e)),
    }
    let (retry_at, done) = match r.next {
        Next::RetryAt(at) => (Some(ms(at)), DeliveryStatus::Failed),
        Next::Done(status) => (None, status),
    };
    // Only under our lease. A retry of a subscription disabled meanwhile fails instead: it
    // would wait forever. The subscription is read, not locked: disabling it rewrites this
    // row (clearing the lease), so the row lock orders the two.
    let decided = sqlx::query(
        "UPDATE webhook_deliveries d
            SET status = CASE WHEN $2::bigint IS NOT NULL AND w.enabled THEN 'pending' ELSE $3 END,
                next_attempt_at = CASE WHEN w.enabled THEN $2::bigint END,
                attempts = d.attempts + 1, lease = NULL, locked_until = NULL, updated_at = $4
           FROM webhooks w
          WHERE d.id = $1 AND d.lease = $5 AND w.id = d.webhook_id",
    )
    .bind(&r.delivery_id)
    .bind(retry_at)
    .bind(done.as_str())
    .bind(ms(now))
    .bind(&r.lease)
    .execute(&mut *tx)
    .await
    .map_err(error)?;
    tx.commit().await.map_err(error)?;
    Ok(decided.rows_affected() > 0)
}

pub(crate) async fn stats(db: &PgPool, now: Timestamp) -> StoreResult<QueueStats> {
    let (undispatched, oldest_event, due, oldest_due, scheduled): (i64, Option<i64>, i64, Option<i64>, i64) =
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM outbox_events WHERE NOT dispatched),
                    (SELECT min(created_at) FROM outbox_events WHERE NOT dispatched),
                    count(*) FILTER (WHERE next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until <= $1)),
                    min(next_attempt_at) FILTER (WHERE next_attempt_at <= $1
                                                   AND (locked_until IS NULL OR locked_until <= $1)),
                    count(*) FILTER (WHERE next_attempt_at > $1)
               FROM webhook_deliveries WHERE status = 'pending'",
        )
        .bind(ms(now))
        .fetch_one(db)
        .await
        .map_err(error)?;
    let oldest = [oldest_event, oldest_due].into_iter().flatten().min();
    Ok(QueueStats {
        undispatched_events: u64::try_from(undispatched).unwrap_or(0),
        due_deliveries: u64::try_from(due).unwrap_or(0),
        scheduled_retries: u64::try_from(scheduled).unwrap_or(0),
        oldest_due: opt_ts(oldest)?,
    })
}

pub(crate) async fn next_due(db: &PgPool, now: Timestamp) -> StoreResult<Option<Timestamp>> {
    let next: Option<i64> = sqlx::query_scalar(
        "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at > $1",
    )
    .bind(ms(now))
    .fetch_one(db)
    .await
    .map_err(error)?;
    opt_ts(next)
}

/// Removes finished deliveries and events older than `retention`, and idempotency keys past
/// their day, in batches of [`SWEEP_BATCH`] rows per statement (each its own transaction), so
/// that a large backlog never holds locks long. Rows another node is sweeping (or anyone is
/// using) are skipped: the next sweep takes them.
pub(crate) async fn sweep(db: &PgPool, now: Timestamp, retention: SignedDuration) -> StoreResult<SweepReport> {
    let cutoff = ms(now.saturating_sub(retention).unwrap_or(now));
    let expired = ms(now.saturating_sub(IDEMPOTENCY_TTL).unwrap_or(now));
    let mut total = SweepReport::default();
    loop {
        let deliveries = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE id IN (
                 SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND updated_at < $1
                  LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(cutoff)
        .bind(SWEEP_BATCH)
        .execute(db)
        .await
        .map_err(error)?
        .rows_affected();
        let events = sqlx::query(
            "DELETE FROM outbox_events WHERE id IN (
                 SELECT e.id FROM outbox_events e
                  WHERE e.dispatched AND e.created_at < $1
                    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)
                  LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(cutoff)
        .bind(SWEEP_BATCH)
        .execute(db)
        .await
        .map_err(error)?
        .rows_affected();
        let keys = sqlx::query(
            "DELETE FROM idempotency_keys WHERE (account_id, mode, key) IN (
                 SELECT account_id, mode, key FROM idempotency_keys WHERE created_at < $1 AND locked_until < $2
                  LIMIT $3 FOR UPDATE SKIP LOCKED)",
        )
        .bind(expired)
        .bind(ms(now))
        .bind(SWEEP_BATCH)
        .execute(db)
        .await
        .map_err(error)?
        .rows_affected();
        total.deliveries += deliveries;
        total.events += events;
        total.idempotency_keys += keys;
        if deliveries.max(events).max(keys) < SWEEP_BATCH.unsigned_abs() {
            return Ok(total);
        }
    }
}
