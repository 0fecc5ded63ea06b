//! The delivery worker's side of the webhook queue, across tenants: fanning committed events
//! out to subscriptions, claiming due deliveries under a lease, recording attempts, queue
//! statistics and the retention sweep.
//!
//! Every function here runs inside the writer's transaction (`BEGIN IMMEDIATE`), so a claim
//! and the reads it rests on are one atomic step: two workers never hold one delivery.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use kairos_core::webhook::{DeliveryStatus, Next, WebhookSecret, subscribes};
use kairos_store::{
    AttemptRecord, ClaimLimits, ClaimedDelivery, Dispatched, IDEMPOTENCY_TTL, QueueStats, StoreError, StoreResult,
    SweepReport, ids,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::db::error;
use crate::rows::{corrupt, ms, ts};
use crate::webhooks::queue_delivery;

/// A subscription as fan-out needs it.
struct Subscriber {
    id: String,
    events: Vec<String>,
    created_at: i64,
}

pub(crate) fn dispatch(c: &Connection, now: Timestamp, limit: usize) -> StoreResult<Dispatched> {
    let events: Vec<(String, String, String, String, i64)> = c
        .prepare_cached(
            "SELECT id, account_id, mode, event_type, created_at FROM outbox_events
              WHERE dispatched = 0 ORDER BY id LIMIT ?1",
        )
        .and_then(|mut s| {
            s.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?.collect()
        })
        .map_err(error)?;
    let mut tenants: HashMap<(String, String), Vec<Subscriber>> = HashMap::new();
    let mut subscribers_of = c
        .prepare_cached(
            "SELECT id, events, created_at FROM webhooks WHERE account_id = ?1 AND mode = ?2 AND enabled = 1",
        )
        .map_err(error)?;
    let mut deliveries = 0;
    for (id, account_id, mode, event_type, created_at) in &events {
        let key = (account_id.clone(), mode.clone());
        if !tenants.contains_key(&key) {
            let rows: Vec<(String, String, i64)> = subscribers_of
                .query_map(params![account_id, mode], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect())
                .map_err(error)?;
            // An unreadable subscription is skipped (and logged), never allowed to stop
            // every tenant's fan-out.
            let subs = rows
                .into_iter()
                .filter_map(|(id, events, created_at)| match serde_json::from_str(&events) {
                    Ok(events) => Some(Subscriber { id, events, created_at }),
                    Err(e) => {
                        tracing::error!(webhook = %id, error = %corrupt("webhook events", e), "skipping a webhook");
                        None
                    }
                })
                .collect::<Vec<_>>();
            tenants.insert(key.clone(), subs);
        }
        for sub in tenants.get(&key).into_iter().flatten() {
            // A subscription hears of events from its creation on, however late the fan-out.
            if sub.created_at <= *created_at && subscribes(&sub.events, event_type) {
                queue_delivery(c, &sub.id, id, event_type, *created_at, now)?;
                deliveries += 1;
            }
        }
    }
    // One statement for the batch: the events read above are the undispatched ones up to the
    // last id (the writer is the only one adding events, and it is busy with this).
    if let Some((last, ..)) = events.last() {
        c.prepare_cached("UPDATE outbox_events SET dispatched = 1 WHERE dispatched = 0 AND id <= ?1")
            .and_then(|mut s| s.execute([last]))
            .map_err(error)?;
    }
    Ok(Dispatched { events: events.len(), deliveries })
}

pub(crate) fn claim(c: &Connection, now: Timestamp, limits: &ClaimLimits) -> StoreResult<Vec<ClaimedDelivery>> {
    let lease = ids::new_id("lease");
    let until = now.saturating_add(limits.lease).unwrap_or(now);
    // Enabled subscriptions with work due, and their endpoints: one index probe per
    // subscription rather than a pass over every due delivery, so a claim stays cheap however
    // large a backlog grows.
    let mut due: Vec<(String, String, i64)> = c
        .prepare_cached(
            "SELECT id, endpoint, due FROM (
                 SELECT w.id, w.endpoint, (SELECT min(d.next_attempt_at) FROM webhook_deliveries d
                                            WHERE d.webhook_id = w.id AND d.status = 'pending') AS due
                   FROM webhooks w WHERE w.enabled = 1)
              WHERE due <= ?1",
        )
        .and_then(|mut s| {
            s.query_map([ms(now)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    // Attempts in flight per endpoint: unexpired claims, any worker's, any subscription's.
    let mut busy: HashMap<String, usize> = HashMap::new();
    let mut in_flight = c
        .prepare_cached(
            "SELECT count(*) FROM webhooks w JOIN webhook_deliveries d
                 ON d.webhook_id = w.id AND d.status = 'pending' AND d.locked_until > ?2
              WHERE w.endpoint = ?1",
        )
        .map_err(error)?;
    for (_, endpoint, _) in &due {
        if !busy.contains_key(endpoint) {
            let n: i64 = in_flight.query_row(params![endpoint, ms(now)], |r| r.get(0)).map_err(error)?;
            busy.insert(endpoint.clone(), usize::try_from(n).unwrap_or(usize::MAX));
        }
    }
    // Idle endpoints first, then the longest waiting: a busy receiver cannot crowd out the
    // others even when its backlog is the oldest.
    due.sort_by_key(|(_, endpoint, due)| (busy.get(endpoint).copied().unwrap_or(0), *due));
    let mut take = c
        .prepare_cached(
            "UPDATE webhook_deliveries SET lease = ?4, locked_until = ?5
              WHERE id IN (SELECT id FROM webhook_deliveries
                            WHERE webhook_id = ?1 AND status = 'pending' AND next_attempt_at <= ?2
                              AND (locked_until IS NULL OR locked_until <= ?2)
                            ORDER BY next_attempt_at LIMIT ?3)
             RETURNING id, event_id, event_type, event_created_at, attempts",
        )
        .map_err(error)?;
    let mut hook_of = c
        .prepare_cached("SELECT url, secret, previous_secret, previous_secret_expires_at FROM webhooks WHERE id = ?1")
        .map_err(error)?;
    let mut payload_of = c.prepare_cached("SELECT payload FROM outbox_events WHERE id = ?1").map_err(error)?;
    let mut out = Vec::new();
    for (webhook_id, endpoint, _) in due {
        let room = limits.per_endpoint.saturating_sub(busy.get(&endpoint).copied().unwrap_or(0));
        let n = room.min(limits.max.saturating_sub(out.len()));
        if n == 0 {
            continue;
        }
        let claimed: Vec<(String, String, String, i64, u32)> = take
            .query_map(params![webhook_id, ms(now), n as i64, lease, ms(until)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(error)?;
        if claimed.is_empty() {
            continue;
        }
        *busy.entry(endpoint).or_default() += claimed.len();
        let (url, secret, previous, previous_until): (String, String, Option<String>, Option<i64>) =
            hook_of.query_row([&webhook_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).map_err(error)?;
        let mut secrets = vec![WebhookSecret::new(secret)];
        if let (Some(previous), Some(previous_until)) = (previous, previous_until)
            && previous_until > ms(now)
        {
            secrets.push(WebhookSecret::new(previous));
        }
        for (id, event_id, event_type, event_created_at, attempts_made) in claimed {
            let payload: String = payload_of.query_row([&event_id], |r| r.get(0)).map_err(error)?;
            out.push(ClaimedDelivery {
                id,
                webhook_id: webhook_id.clone(),
                url: url.clone(),
                secrets: secrets.clone(),
                event_id,
                event_type,
                payload,
                event_created_at: ts(event_created_at)?,
                attempts_made,
                lease: lease.clone(),
            });
        }
        if out.len() >= limits.max {
            break;
        }
    }
    Ok(out)
}

pub(crate) fn record(c: &Connection, r: &AttemptRecord, now: Timestamp) -> StoreResult<bool> {
    let found: Option<(Option<String>, bool)> = c
        .prepare_cached(
            "SELECT d.lease, w.enabled FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?1",
        )
        .and_then(|mut s| s.query_row([&r.delivery_id], |row| Ok((row.get(0)?, row.get(1)?))).optional())
        .map_err(error)?;
    // The subscription was deleted meanwhile, and its history with it.
    let Some((lease, enabled)) = found else { return Ok(false) };
    let a = &r.attempt;
    c.prepare_cached(
        "INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, duration_ms, error, response_body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            r.delivery_id,
            ms(a.attempted_at),
            a.status_code,
            i64::try_from(a.duration_ms).unwrap_or(i64::MAX),
            a.error,
            a.response_body
        ])
    })
    .map_err(error)?;
    if lease.as_deref() != Some(r.lease.as_str()) {
        return Ok(false);
    }
    let (status, next_at) = match r.next {
        Next::RetryAt(at) if enabled => (DeliveryStatus::Pending, Some(ms(at))),
        Next::RetryAt(_) => (DeliveryStatus::Failed, None),
        Next::Done(status) => (status, None),
    };
    c.prepare_cached(
        "UPDATE webhook_deliveries SET status = ?1, next_attempt_at = ?2, attempts = attempts + 1, lease = NULL,
                locked_until = NULL, updated_at = ?3
          WHERE id = ?4",
    )
    .and_then(|mut s| s.execute(params![status.as_str(), next_at, ms(now), r.delivery_id]))
    .map_err(error)?;
    Ok(true)
}

pub(crate) fn stats(c: &Connection, now: Timestamp) -> StoreResult<QueueStats> {
    let (undispatched, oldest_event): (i64, Option<i64>) = c
        .prepare_cached("SELECT count(*), min(created_at) FROM outbox_events WHERE dispatched = 0")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(error)?;
    let (due, oldest_due): (i64, Option<i64>) = c
        .prepare_cached(
            "SELECT count(*), min(next_attempt_at) FROM webhook_deliveries
              WHERE status = 'pending' AND next_attempt_at <= ?1 AND (locked_until IS NULL OR locked_until <= ?1)",
        )
        .and_then(|mut s| s.query_row([ms(now)], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(error)?;
    let scheduled: i64 = c
        .prepare_cached("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at > ?1")
        .and_then(|mut s| s.query_row([ms(now)], |r| r.get(0)))
        .map_err(error)?;
    let oldest = [oldest_event, oldest_due].into_iter().flatten().min();
    Ok(QueueStats {
        undispatched_events: u64::try_from(undispatched).unwrap_or(0),
        due_deliveries: u64::try_from(due).unwrap_or(0),
        scheduled_retries: u64::try_from(scheduled).unwrap_or(0),
        oldest_due: oldest.map(ts).transpose()?,
    })
}

pub(crate) fn next_due(c: &Connection, now: Timestamp) -> StoreResult<Option<Timestamp>> {
    let next: Option<i64> = c
        .prepare_cached(
            "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at > ?1",
        )
        .and_then(|mut s| s.query_row([ms(now)], |r| r.get(0)))
        .map_err(error)?;
    next.map(ts).transpose()
}

/// Rows one sweep step deletes at most, so that a large backlog never holds the writer long.
pub(crate) const SWEEP_BATCH: i64 = 2_000;

/// One step of the retention sweep; the caller repeats it until it removes nothing.
pub(crate) fn sweep_step(c: &Connection, now: Timestamp, retention: SignedDuration) -> StoreResult<SweepReport> {
    let cutoff = ms(now.saturating_sub(retention).unwrap_or(now));
    let deliveries = c
        .prepare_cached(
            "DELETE FROM webhook_deliveries WHERE id IN (
                 SELECT id FROM webhook_deliveries WHERE status != 'pending' AND updated_at < ?1 LIMIT ?2)",
        )
        .and_then(|mut s| s.execute(params![cutoff, SWEEP_BATCH]))
        .map_err(error)?;
    let events = c
        .prepare_cached(
            "DELETE FROM outbox_events WHERE id IN (
                 SELECT e.id FROM outbox_events e
                  WHERE e.dispatched = 1 AND e.created_at < ?1
                    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)
                  LIMIT ?2)",
        )
        .and_then(|mut s| s.execute(params![cutoff, SWEEP_BATCH]))
        .map_err(error)?;
    let expired = ms(now.saturating_sub(IDEMPOTENCY_TTL).unwrap_or(now));
    let idempotency_keys = c
        .prepare_cached(
            "DELETE FROM idempotency_keys WHERE rowid IN (
                 SELECT rowid FROM idempotency_keys WHERE created_at < ?1 AND locked_until < ?2 LIMIT ?3)",
        )
        .and_then(|mut s| s.execute(params![expired, ms(now), SWEEP_BATCH]))
        .map_err(error)?;
    let count = |n: usize| u64::try_from(n).map_err(|e| StoreError::Backend(e.to_string()));
    Ok(SweepReport {
        deliveries: count(deliveries)?,
        events: count(events)?,
        idempotency_keys: count(idempotency_keys)?,
    })
}
