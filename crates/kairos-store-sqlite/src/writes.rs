//! Write-back queue: a booking's event on each participant's own calendar. Rows are queued
//! (or re-wanted) in the booking's transaction, so a change is never lost between the commit
//! and the provider call; the worker claims them under a lease.

use jiff::{SignedDuration, Timestamp};
use kairos_core::{Booking, BookingStatus};
use kairos_store::{CalendarWrite, StoreError, StoreResult, Tenant, WriteOutcome};
use rusqlite::{Connection, params};

use crate::db::error;
use crate::rows::{ms, ts};

/// Queues the booking's wanted state for each participant who has a writable calendar of a
/// provider account (their primary one first). `fresh` when the booking was just created: it
/// can have no rows yet, so there is nothing to re-want (one statement fewer per person on the
/// booking path).
pub(crate) fn enqueue(c: &Connection, t: &Tenant, booking: &Booking, now: Timestamp, fresh: bool) -> StoreResult<()> {
    let wanted = if booking.status == BookingStatus::Confirmed { "present" } else { "absent" };
    for p in &booking.participants {
        if !fresh {
            let updated = c
                .prepare_cached(
                    "UPDATE calendar_writes SET wanted = ?1, version = version + 1, status = 'pending', attempts = 0,
                            next_attempt_at = ?2, last_error = NULL, updated_at = ?2
                      WHERE booking_id = ?3 AND user_id = ?4",
                )
                .and_then(|mut s| s.execute(params![wanted, ms(now), booking.id, p.id]))
                .map_err(error)?;
            if updated > 0 {
                continue;
            }
        }
        if wanted == "absent" {
            continue;
        }
        // Most people have no writable calendar: one index probe says so, sparing the sorted
        // search below (its ORDER BY builds a temporary b-tree even when nothing matches).
        let writable: bool = c
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM calendars WHERE account_id = ?1 AND mode = ?2 AND user_id = ?3 AND writable = 1)",
            )
            .and_then(|mut s| s.query_row(params![t.account_id, t.mode.as_str(), p.id], |r| r.get(0)))
            .map_err(error)?;
        if !writable {
            continue;
        }
        // The target calendar and the new row in one statement (none when there is no target).
        c.prepare_cached(
            "INSERT INTO calendar_writes (booking_id, user_id, account_id, mode, connection_id, calendar_id, wanted,
                                          version, status, next_attempt_at, updated_at)
             SELECT ?1, ?2, ?3, ?4, cal.connection_id, cal.id, 'present', 1, 'pending', ?5, ?5
               FROM calendars cal
               JOIN calendar_connections conn ON conn.id = cal.connection_id
              WHERE cal.user_id = ?2 AND cal.account_id = ?3 AND cal.mode = ?4 AND cal.writable = 1
                AND (conn.provider = 'google' OR conn.provider = 'microsoft' OR conn.provider = 'caldav')
              ORDER BY cal.is_primary DESC, cal.selected DESC, cal.created_at, cal.id LIMIT 1",
        )
        .and_then(|mut s| s.execute(params![booking.id, p.id, t.account_id, t.mode.as_str(), ms(now)]))
        .map_err(error)?;
    }
    Ok(())
}

const COLUMNS: &str = "booking_id, user_id, connection_id, calendar_id, remote_id, etag, wanted, version, status, \
                       attempts, next_attempt_at, last_error, updated_at, account_id, mode, leased_until";

type Row = (CalendarWrite, i64, i64, String, String, Option<i64>);

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        CalendarWrite {
            booking_id: r.get(0)?,
            user_id: r.get(1)?,
            connection_id: r.get(2)?,
            calendar_id: r.get(3)?,
            remote_id: r.get(4)?,
            etag: r.get(5)?,
            present: r.get::<_, String>(6)? == "present",
            version: r.get(7)?,
            status: r.get(8)?,
            attempts: r.get(9)?,
            next_attempt_at: Timestamp::UNIX_EPOCH,
            last_error: r.get(11)?,
            updated_at: Timestamp::UNIX_EPOCH,
            lease: None,
        },
        r.get(10)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
        r.get(15)?,
    ))
}

fn finish(row: Row) -> StoreResult<(Tenant, CalendarWrite)> {
    let (write, next, updated, account_id, mode, lease) = row;
    let mode = kairos_store::Mode::parse(&mode).ok_or_else(|| StoreError::Backend(format!("unknown mode {mode}")))?;
    let write = CalendarWrite {
        next_attempt_at: ts(next)?,
        updated_at: ts(updated)?,
        lease: lease.map(ts).transpose()?,
        ..write
    };
    Ok((Tenant { account_id, mode }, write))
}

/// Claims due writes under a lease. The lease written is the claim's fencing token (see
/// `CalendarWrite::lease`): past the lapsed one it replaces even when `lease` is not positive.
pub(crate) fn claim(
    c: &Connection,
    now: Timestamp,
    lease: SignedDuration,
    limit: usize,
) -> StoreResult<Vec<(Tenant, CalendarWrite)>> {
    let until = now.saturating_add(lease).unwrap_or(now);
    let rows = c
        .prepare_cached(&format!(
            "UPDATE calendar_writes SET leased_until = max(?1, coalesce(leased_until, 0) + 1)
              WHERE rowid IN (SELECT rowid FROM calendar_writes
                               WHERE status = 'pending' AND next_attempt_at <= ?2
                                 AND (leased_until IS NULL OR leased_until <= ?2)
                               ORDER BY next_attempt_at LIMIT ?3)
             RETURNING {COLUMNS}"
        ))
        .and_then(|mut s| s.query_map(params![ms(until), ms(now), limit as i64], read)?.collect::<Result<Vec<_>, _>>())
        .map_err(error)?;
    rows.into_iter().map(finish).collect()
}

/// Records a claimed write; false, changing nothing, when its claim no longer holds the row
/// (`leased_until` is no longer the claim's token).
pub(crate) fn record(
    c: &Connection,
    t: &Tenant,
    w: &CalendarWrite,
    outcome: &WriteOutcome,
    now: Timestamp,
) -> StoreResult<bool> {
    let lease = w.lease.map(ms);
    let recorded = match outcome {
        WriteOutcome::Written { remote_id, etag } => c
            .prepare_cached(
                "UPDATE calendar_writes
                    SET remote_id = ?1, etag = ?2, written_version = ?3, leased_until = NULL, attempts = 0,
                        last_error = NULL, updated_at = ?4,
                        status = CASE WHEN version = ?3 THEN 'done' ELSE 'pending' END
                  WHERE booking_id = ?5 AND user_id = ?6 AND account_id = ?7 AND mode = ?8 AND leased_until = ?9",
            )
            .and_then(|mut s| {
                s.execute(params![
                    remote_id,
                    etag,
                    w.version,
                    ms(now),
                    w.booking_id,
                    w.user_id,
                    t.account_id,
                    t.mode.as_str(),
                    lease
                ])
            }),
        // A newer change resets the attempts: only a failure of the current version counts.
        WriteOutcome::Failed { error: why, retry_at } => c
            .prepare_cached(
                "UPDATE calendar_writes
                    SET leased_until = NULL, last_error = ?1, updated_at = ?2,
                        attempts = CASE WHEN version = ?3 THEN attempts + 1 ELSE attempts END,
                        status = CASE WHEN version = ?3 AND ?4 IS NULL THEN 'failed' ELSE 'pending' END,
                        next_attempt_at = CASE WHEN version = ?3 THEN coalesce(?4, next_attempt_at) ELSE next_attempt_at END
                  WHERE booking_id = ?5 AND user_id = ?6 AND account_id = ?7 AND mode = ?8 AND leased_until = ?9",
            )
            .and_then(|mut s| {
                s.execute(params![
                    why,
                    ms(now),
                    w.version,
                    retry_at.map(ms),
                    w.booking_id,
                    w.user_id,
                    t.account_id,
                    t.mode.as_str(),
                    lease
                ])
            }),
    }
    .map_err(error)?;
    Ok(recorded > 0)
}

pub(crate) fn of_booking(c: &Connection, t: &Tenant, booking_id: &str) -> StoreResult<Vec<CalendarWrite>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM calendar_writes WHERE booking_id = ?1 AND account_id = ?2 AND mode = ?3 ORDER BY user_id"
        ))
        .and_then(|mut s| {
            s.query_map(params![booking_id, t.account_id, t.mode.as_str()], read)?.collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    rows.into_iter().map(|r| finish(r).map(|(_, w)| w)).collect()
}

pub(crate) fn remote_ids(
    c: &Connection,
    t: &Tenant,
    calendar_id: &str,
) -> StoreResult<std::collections::HashSet<String>> {
    c.prepare_cached(
        "SELECT remote_id FROM calendar_writes
          WHERE calendar_id = ?1 AND account_id = ?2 AND mode = ?3 AND remote_id IS NOT NULL",
    )
    .and_then(|mut s| s.query_map(params![calendar_id, t.account_id, t.mode.as_str()], |r| r.get(0))?.collect())
    .map_err(error)
}
