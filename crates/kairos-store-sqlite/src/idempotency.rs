//! Idempotency keys: the first request with a key claims it; its response is kept for 24 hours
//! and replayed to repeats with the same fingerprint.

use jiff::Timestamp;
use kairos_store::{IDEMPOTENCY_LEASE, IDEMPOTENCY_TTL, IdempotencyClaim, StoreResult, StoredResponse, Tenant};
use rusqlite::{Connection, OptionalExtension, params};

use crate::db::error;
use crate::rows::ms;

/// fingerprint, status, body, created_at, locked_until
type KeyRow = (String, Option<i64>, Option<String>, i64, i64);

pub(crate) fn claim(
    c: &Connection,
    t: &Tenant,
    key: &str,
    fingerprint: &str,
    now: Timestamp,
) -> StoreResult<IdempotencyClaim> {
    let row: Option<KeyRow> = c
        .prepare_cached(
            "SELECT fingerprint, status, body, created_at, locked_until FROM idempotency_keys WHERE account_id = ?1 AND mode = ?2 AND key = ?3",
        )
        .and_then(|mut s| s.query_row(params![t.account_id, t.mode.as_str(), key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).optional())
        .map_err(error)?;
    match row {
        Some((_, _, _, created_at, _)) if created_at + IDEMPOTENCY_TTL.as_millis() as i64 <= ms(now) => {}
        Some((stored, _, _, _, _)) if stored != fingerprint => return Ok(IdempotencyClaim::Mismatch),
        Some((_, Some(status), body, _, _)) => {
            return Ok(IdempotencyClaim::Completed(StoredResponse {
                status: u16::try_from(status).unwrap_or(500),
                body: body.unwrap_or_default(),
            }));
        }
        Some((_, None, _, _, locked_until)) if locked_until > ms(now) => return Ok(IdempotencyClaim::InProgress),
        _ => {}
    }
    let token = kairos_store::ids::new_id("idem");
    c.prepare_cached(
        "INSERT INTO idempotency_keys (account_id, mode, key, fingerprint, status, body, created_at, locked_until, token)
         VALUES (?1, ?2, ?3, ?4, NULL, NULL, ?5, ?6, ?7)
         ON CONFLICT (account_id, mode, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = NULL, body = NULL,
            created_at = excluded.created_at, locked_until = excluded.locked_until, token = excluded.token",
    )
    .and_then(|mut s| s.execute(params![t.account_id, t.mode.as_str(), key, fingerprint, ms(now), ms(now + IDEMPOTENCY_LEASE), token]))
    .map_err(error)?;
    Ok(IdempotencyClaim::Claimed(token))
}

pub(crate) fn complete(
    c: &Connection,
    t: &Tenant,
    key: &str,
    token: &str,
    response: &StoredResponse,
) -> StoreResult<bool> {
    let changed = c
        .prepare_cached(
            "UPDATE idempotency_keys SET status = ?1, body = ?2
              WHERE account_id = ?3 AND mode = ?4 AND key = ?5 AND token = ?6 AND status IS NULL",
        )
        .and_then(|mut s| {
            s.execute(params![i64::from(response.status), response.body, t.account_id, t.mode.as_str(), key, token])
        })
        .map_err(error)?;
    Ok(changed > 0)
}

pub(crate) fn release(c: &Connection, t: &Tenant, key: &str, token: &str) -> StoreResult<()> {
    c.prepare_cached("DELETE FROM idempotency_keys WHERE account_id = ?1 AND mode = ?2 AND key = ?3 AND token = ?4 AND status IS NULL")
        .and_then(|mut s| s.execute(params![t.account_id, t.mode.as_str(), key, token]))
        .map_err(error)?;
    Ok(())
}
