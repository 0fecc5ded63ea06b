//! Leases: one upsert that takes a free or lapsed lease, or extends the caller's own. The
//! row lock of `ON CONFLICT DO UPDATE` makes two nodes racing for one key agree on a winner.

use jiff::Timestamp;
use kairos_store::StoreResult;
use sqlx::PgPool;

use crate::db::error;
use crate::rows::ms;

pub(crate) async fn take(db: &PgPool, key: &str, holder: &str, until: Timestamp, now: Timestamp) -> StoreResult<bool> {
    let taken: Option<(String,)> = sqlx::query_as(
        "INSERT INTO leases (key, holder, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
          WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder
         RETURNING holder",
    )
    .bind(key)
    .bind(holder)
    .bind(ms(until))
    .bind(ms(now))
    .fetch_optional(db)
    .await
    .map_err(error)?;
    Ok(taken.is_some())
}

pub(crate) async fn release(db: &PgPool, key: &str, holder: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM leases WHERE key = $1 AND holder = $2")
        .bind(key)
        .bind(holder)
        .execute(db)
        .await
        .map_err(error)?;
    Ok(())
}
