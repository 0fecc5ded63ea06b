//! Idempotency keys: the first request with a key claims it; its response is kept for 24 hours
//! and replayed to repeats with the same fingerprint.

use jiff::Timestamp;
use kairos_store::{IDEMPOTENCY_LEASE, IDEMPOTENCY_TTL, IdempotencyClaim, StoreResult, StoredResponse, Tenant};
use sqlx::{SqliteConnection, SqlitePool};

use crate::backend;
use crate::rows::ms;

/// fingerprint, status, body, created_at, locked_until
type KeyRow = (String, Option<i64>, Option<String>, i64, i64);

pub(crate) async fn claim(
    conn: &mut SqliteConnection,
    t: &Tenant,
    key: &str,
    fingerprint: &str,
    now: Timestamp,
) -> StoreResult<IdempotencyClaim> {
    let row: Option<KeyRow> = sqlx::query_as(
        "SELECT fingerprint, status, body, created_at, locked_until FROM idempotency_keys WHERE account_id = $1 AND mode = $2 AND key = $3",
    )
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    let outcome = match row {
        Some((_, _, _, created_at, _)) if created_at + IDEMPOTENCY_TTL.as_millis() as i64 <= ms(now) => {
            IdempotencyClaim::Claimed
        }
        Some((stored, _, _, _, _)) if stored != fingerprint => return Ok(IdempotencyClaim::Mismatch),
        Some((_, Some(status), body, _, _)) => {
            return Ok(IdempotencyClaim::Completed(StoredResponse {
                status: u16::try_from(status).unwrap_or(500),
                body: body.unwrap_or_default(),
            }));
        }
        Some((_, None, _, _, locked_until)) if locked_until > ms(now) => return Ok(IdempotencyClaim::InProgress),
        _ => IdempotencyClaim::Claimed,
    };
    sqlx::query(
        "INSERT INTO idempotency_keys (account_id, mode, key, fingerprint, status, body, created_at, locked_until)
         VALUES ($1, $2, $3, $4, NULL, NULL, $5, $6)
         ON CONFLICT (account_id, mode, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = NULL, body = NULL,
            created_at = excluded.created_at, locked_until = excluded.locked_until",
    )
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(key)
    .bind(fingerprint)
    .bind(ms(now))
    .bind(ms(now + IDEMPOTENCY_LEASE))
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(outcome)
}

pub(crate) async fn complete(pool: &SqlitePool, t: &Tenant, key: &str, response: &StoredResponse) -> StoreResult<()> {
    sqlx::query("UPDATE idempotency_keys SET status = $1, body = $2 WHERE account_id = $3 AND mode = $4 AND key = $5")
        .bind(i64::from(response.status))
        .bind(&response.body)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .bind(key)
        .execute(pool)
        .await
        .map_err(backend)?;
    Ok(())
}

pub(crate) async fn release(pool: &SqlitePool, t: &Tenant, key: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE account_id = $1 AND mode = $2 AND key = $3 AND status IS NULL")
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .bind(key)
        .execute(pool)
        .await
        .map_err(backend)?;
    Ok(())
}
