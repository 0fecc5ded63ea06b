//! Idempotency keys: the first request with a key claims it; its response is kept for 24 hours
//! and replayed to repeats with the same fingerprint.
//!
//! Requests with one key may arrive at several nodes at once, so a claim is decided on the
//! locked row: an insert that wins outright, or the existing row read `FOR UPDATE` and taken
//! over only when it expired or its lease lapsed.

use jiff::Timestamp;
use kairos_store::*;
use sqlx::PgPool;

use crate::db::error;
use crate::rows::ms;

/// fingerprint, status, body, created_at, locked_until
type KeyRow = (String, Option<i64>, Option<String>, i64, i64);

pub(crate) async fn claim(
    db: &PgPool,
    t: &Tenant,
    key: &str,
    fingerprint: &str,
    now: Timestamp,
) -> StoreResult<IdempotencyClaim> {
    let token = ids::new_id("idem");
    let mut tx = db.begin().await.map_err(error)?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (account_id, mode, key, fingerprint, status, body, created_at, locked_until, token)
         VALUES ($1, $2, $3, $4, NULL, NULL, $5, $6, $7)
         ON CONFLICT (account_id, mode, key) DO NOTHING",
    )
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(key)
    .bind(fingerprint)
    .bind(ms(now))
    .bind(ms(now + IDEMPOTENCY_LEASE))
    .bind(&token)
    .execute(&mut *tx)
    .await
    .map_err(error)?;
    if inserted.rows_affected() == 0 {
        let row: Option<KeyRow> = sqlx::query_as(
            "SELECT fingerprint, status, body, created_at, locked_until FROM idempotency_keys
              WHERE account_id = $1 AND mode = $2 AND key = $3 FOR UPDATE",
        )
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
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
            Some((_, None, _, _, locked_until)) if locked_until > ms(now) => {
                return Ok(IdempotencyClaim::InProgress);
            }
            _ => {}
        }
        // Expired, or its claim lapsed (or it was released in between): take it over.
        sqlx::query(
            "INSERT INTO idempotency_keys (account_id, mode, key, fingerprint, status, body, created_at, locked_until, token)
             VALUES ($1, $2, $3, $4, NULL, NULL, $5, $6, $7)
             ON CONFLICT (account_id, mode, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = NULL,
                body = NULL, created_at = excluded.created_at, locked_until = excluded.locked_until, token = excluded.token",
        )
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .bind(key)
        .bind(fingerprint)
        .bind(ms(now))
        .bind(ms(now + IDEMPOTENCY_LEASE))
        .bind(&token)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
    }
    tx.commit().await.map_err(error)?;
    Ok(IdempotencyClaim::Claimed(token))
}

pub(crate) async fn complete(
    db: &PgPool,
    t: &Tenant,
    key: &str,
    token: &str,
    response: &StoredResponse,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE idempotency_keys SET status = $1, body = $2
          WHERE account_id = $3 AND mode = $4 AND key = $5 AND token = $6 AND status IS NULL",
    )
    .bind(i64::from(response.status))
    .bind(&response.body)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(key)
    .bind(token)
    .execute(db)
    .await
    .map_err(error)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn release(db: &PgPool, t: &Tenant, key: &str, token: &str) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE account_id = $1 AND mode = $2 AND key = $3 AND token = $4 AND status IS NULL",
    )
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(key)
    .bind(token)
    .execute(db)
    .await
    .map_err(error)?;
    Ok(())
}
