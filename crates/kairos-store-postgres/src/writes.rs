//! Write-back of bookings to providers' calendars: queued in the booking's transaction
//! ([`enqueue`]), so a change is never lost between the commit and the provider call; claimed
//! under leases by any node (`FOR UPDATE SKIP LOCKED`: two nodes never claim the same row, and
//! a dead node's lease lapses to the others); recorded by the worker that wrote it.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use kairos_core::{Booking, BookingStatus};
use kairos_store::{CalendarWrite, StoreResult, Tenant, WriteOutcome};
use sqlx::{PgConnection, PgPool};

use crate::calendars::tenant_of;
use crate::db::error;
use crate::rows::{corrupt, ms, ts};

/// Queues the booking's wanted state for each participant who has a writable calendar of a
/// provider account (their primary one first). Called by [`crate::bookings`] inside every
/// booking transaction.
pub(crate) async fn enqueue(c: &mut PgConnection, t: &Tenant, booking: &Booking, now: Timestamp) -> StoreResult<()> {
    let wanted = if booking.status == BookingStatus::Confirmed { "present" } else { "absent" };
    for p in &booking.participants {
        let updated = sqlx::query(
            "UPDATE calendar_writes SET wanted = $1, version = version + 1, status = 'pending', attempts = 0,
                    next_attempt_at = $2, last_error = NULL, updated_at = $2
              WHERE booking_id = $3 AND user_id = $4",
        )
        .bind(wanted)
        .bind(ms(now))
        .bind(&booking.id)
        .bind(&p.id)
        .execute(&mut *c)
        .await
        .map_err(error)?
        .rows_affected();
        if updated > 0 || wanted == "absent" {
            continue;
        }
        // No row yet: one for the participant's best writable calendar, if they have one.
        sqlx::query(
            "INSERT INTO calendar_writes (booking_id, user_id, account_id, mode, connection_id, calendar_id, wanted,
                                          version, status, next_attempt_at, updated_at)
             SELECT $1, $2, $3, $4, cal.connection_id, cal.id, 'present', 1, 'pending', $5, $5
               FROM calendars cal JOIN calendar_connections conn ON conn.id = cal.connection_id
              WHERE cal.user_id = $2 AND cal.account_id = $3 AND cal.mode = $4 AND cal.writable
                AND conn.provider IN ('google', 'microsoft', 'caldav')
              ORDER BY cal.is_primary DESC, cal.selected DESC, cal.created_at, cal.id LIMIT 1
                FOR KEY SHARE OF cal, conn",
        )
        .bind(&booking.id)
        .bind(&p.id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .bind(ms(now))
        .execute(&mut *c)
        .await
        .map_err(error)?;
    }
    Ok(())
}

/// The columns [`WriteRow`] reads, as a literal (static SQL is built with `concat!`).
macro_rules! write_columns {
    () => {
        "booking_id, user_id, connection_id, calendar_id, remote_id, etag, wanted, version, status, attempts, \
         next_attempt_at, last_error, updated_at, account_id, mode, leased_until"
    };
}

#[derive(sqlx::FromRow)]
struct WriteRow {
    booking_id: String,
    user_id: String,
    connection_id: String,
    calendar_id: String,
    remote_id: Option<String>,
    etag: Option<String>,
    wanted: String,
    version: i64,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    updated_at: i64,
    account_id: String,
    mode: String,
    leased_until: Option<i64>,
}

impl WriteRow {
    fn into_write(self) -> StoreResult<(Tenant, CalendarWrite)> {
        let tenant = tenant_of(self.account_id, &self.mode)?;
        Ok((
            tenant,
            CalendarWrite {
                booking_id: self.booking_id,
                user_id: self.user_id,
                connection_id: self.connection_id,
                calendar_id: self.calendar_id,
                remote_id: self.remote_id,
                etag: self.etag,
                present: self.wanted == "present",
                version: self.version,
                status: self.status,
                attempts: u32::try_from(self.attempts).map_err(|e| corrupt("attempt count", e))?,
                next_attempt_at: ts(self.next_attempt_at)?,
                last_error: self.last_error,
                updated_at: ts(self.updated_at)?,
                lease: self.leased_until.map(ts).transpose()?,
            },
        ))
    }
}

/// Claims due writes under a lease. Rows another node is claiming right now are skipped, not
/// waited for. The lease written is the claim's fencing token (see `CalendarWrite::lease`):
/// past the lapsed one it replaces even when `lease` is not positive.
pub(crate) async fn claim(
    db: &PgPool,
    now: Timestamp,
    lease: SignedDuration,
    limit: usize,
) -> StoreResult<Vec<(Tenant, CalendarWrite)>> {
    let until = now.saturating_add(lease).unwrap_or(now);
    let mut rows = sqlx::query_as::<_, WriteRow>(concat!(
        "UPDATE calendar_writes SET leased_until = GREATEST($1, coalesce(leased_until, 0) + 1)
          WHERE (booking_id, user_id) IN (
                SELECT booking_id, user_id FROM calendar_writes
                 WHERE status = 'pending' AND next_attempt_at <= $2 AND (leased_until IS NULL OR leased_until <= $2)
                 ORDER BY next_attempt_at LIMIT $3
                   FOR UPDATE SKIP LOCKED)
         RETURNING ",
        write_columns!()
    ))
    .bind(ms(until))
    .bind(ms(now))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(db)
    .await
    .map_err(error)?;
    // RETURNING has no order of its own: hand them out oldest first.
    rows.sort_by(|a, b| {
        (a.next_attempt_at, &a.booking_id, &a.user_id).cmp(&(b.next_attempt_at, &b.booking_id, &b.user_id))
    });
    rows.into_iter().map(WriteRow::into_write).collect()
}

/// Records a claimed write; false, changing nothing, when its claim no longer holds the row
/// (`leased_until` is no longer the claim's token).
pub(crate) async fn record(
    db: &PgPool,
    t: &Tenant,
    w: &CalendarWrite,
    outcome: &WriteOutcome,
    now: Timestamp,
) -> StoreResult<bool> {
    let lease = w.lease.map(ms);
    let done = match outcome {
        WriteOutcome::Written { remote_id, etag } => {
            // A change queued while this version was written keeps the row pending.
            sqlx::query(
                "UPDATE calendar_writes
                    SET remote_id = $1, etag = $2, written_version = $3, leased_until = NULL, attempts = 0,
                        last_error = NULL, updated_at = $4,
                        status = CASE WHEN version = $3 THEN 'done' ELSE 'pending' END
                  WHERE booking_id = $5 AND user_id = $6 AND account_id = $7 AND mode = $8 AND leased_until = $9",
            )
            .bind(remote_id.as_deref())
            .bind(etag.as_deref())
            .bind(w.version)
            .bind(ms(now))
            .bind(&w.booking_id)
            .bind(&w.user_id)
            .bind(&t.account_id)
            .bind(t.mode.as_str())
            .bind(lease)
            .execute(db)
            .await
            .map_err(error)?
        }
        WriteOutcome::Failed { error: why, retry_at } => {
            // A newer change resets the attempts: only a failure of the current version counts.
            sqlx::query(
                "UPDATE calendar_writes
                    SET leased_until = NULL, last_error = $1, updated_at = $2,
                        attempts = CASE WHEN version = $3 THEN attempts + 1 ELSE attempts END,
                        status = CASE WHEN version = $3 AND $4::bigint IS NULL THEN 'failed' ELSE 'pending' END,
                        next_attempt_at = CASE WHEN version = $3 THEN coalesce($4::bigint, next_attempt_at)
                                               ELSE next_attempt_at END
                  WHERE booking_id = $5 AND user_id = $6 AND account_id = $7 AND mode = $8 AND leased_until = $9",
            )
            .bind(why)
            .bind(ms(now))
            .bind(w.version)
            .bind(retry_at.map(ms))
            .bind(&w.booking_id)
            .bind(&w.user_id)
            .bind(&t.account_id)
            .bind(t.mode.as_str())
            .bind(lease)
            .execute(db)
            .await
            .map_err(error)?
        }
    };
    Ok(done.rows_affected() > 0)
}

/// The provider event ids Kairos wrote to a calendar (a sync skips them: they are bookings'
/// own time, already held).
pub(crate) async fn remote_ids(db: &PgPool, t: &Tenant, calendar_id: &str) -> StoreResult<HashSet<String>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT remote_id FROM calendar_writes
          WHERE calendar_id = $1 AND account_id = $2 AND mode = $3 AND remote_id IS NOT NULL",
    )
    .bind(calendar_id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .fetch_all(db)
    .await
    .map_err(error)?;
    Ok(ids.into_iter().collect())
}

pub(crate) async fn of_booking(db: &PgPool, t: &Tenant, booking_id: &str) -> StoreResult<Vec<CalendarWrite>> {
    let rows = sqlx::query_as::<_, WriteRow>(concat!(
        "SELECT ",
        write_columns!(),
        " FROM calendar_writes WHERE booking_id = $1 AND account_id = $2 AND mode = $3 ORDER BY user_id"
    ))
    .bind(booking_id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .fetch_all(db)
    .await
    .map_err(error)?;
    rows.into_iter().map(|r| r.into_write().map(|(_, w)| w)).collect()
}
