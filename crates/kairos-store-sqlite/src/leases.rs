//! Leases: one upsert that takes a free or lapsed lease, or extends the caller's own.

use jiff::Timestamp;
use kairos_store::StoreResult;
use rusqlite::{Connection, OptionalExtension, params};

use crate::db::error;
use crate::rows::ms;

pub(crate) fn take(c: &Connection, key: &str, holder: &str, until: Timestamp, now: Timestamp) -> StoreResult<bool> {
    let taken: Option<String> = c
        .prepare_cached(
            "INSERT INTO leases (key, holder, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
              WHERE leases.expires_at <= ?4 OR leases.holder = excluded.holder
             RETURNING holder",
        )
        .and_then(|mut s| s.query_row(params![key, holder, ms(until), ms(now)], |r| r.get(0)).optional())
        .map_err(error)?;
    Ok(taken.is_some())
}

pub(crate) fn release(c: &Connection, key: &str, holder: &str) -> StoreResult<()> {
    c.prepare_cached("DELETE FROM leases WHERE key = ?1 AND holder = ?2")
        .and_then(|mut s| s.execute(params![key, holder]))
        .map_err(error)?;
    Ok(())
}
