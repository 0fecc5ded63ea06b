//! Booking emails: one row per booking and recipient, re-wanted in each booking change's own
//! transaction and claimed by the email worker under a lease (the same shape as the
//! write-back queue in `writes.rs`).

use jiff::{SignedDuration, Timestamp};
use kairos_core::booking::BookingEvent;
use kairos_core::{Booking, BookingStatus};
use kairos_store::{BookingEmail, EmailKind, EmailOutcome, StoreError, StoreResult, Tenant};
use rusqlite::{Connection, params};

use crate::db::error;
use crate::rows::{ms, ts};

/// Re-wants the booking's email to each recipient after `event`. A confirmed booking (new,
/// paid or moved) wants an invitation: the first one if none went out yet, else an update; a
/// cancelled one wants a cancellation of whatever went out. Unpaid holds send nothing.
///
/// With `skipped` (there is no mail server, and this is why) each email is recorded as
/// skipped at once rather than left pending for the worker to skip: under a stream of
/// bookings that second write of every row held the writer for a twentieth of each second.
pub(crate) fn enqueue(
    c: &Connection,
    t: &Tenant,
    event: BookingEvent,
    booking: &Booking,
    now: Timestamp,
    skipped: Option<&str>,
) -> StoreResult<()> {
    let status = if skipped.is_some() { "skipped" } else { "pending" };
    if event == BookingEvent::Cancelled {
        c.prepare_cached(
            "UPDATE booking_emails SET kind = 'cancelled', version = version + 1, status = ?3, attempts = 0,
                    next_attempt_at = ?1, last_error = ?4, updated_at = ?1
              WHERE booking_id = ?2",
        )
        .and_then(|mut s| s.execute(params![ms(now), booking.id, status, skipped]))
        .map_err(error)?;
        return Ok(());
    }
    if booking.status != BookingStatus::Confirmed {
        return Ok(());
    }
    let recipients = kairos_store::email_recipients(booking);
    if recipients.is_empty() {
        return Ok(());
    }
    if event == BookingEvent::Created {
        // A new booking has no rows yet: plain inserts, one row each (a statement of several
        // rows would need a statement journal to undo a half-done insert).
        let mut insert = c
            .prepare_cached(
                "INSERT INTO booking_emails (booking_id, recipient, account_id, mode, name, user_id, position, kind, version,
                                             status, last_error, next_attempt_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'confirmation', 0, ?9, ?10, ?8, ?8)",
            )
            .map_err(error)?;
        for (position, (recipient, name, user_id)) in recipients.into_iter().enumerate() {
            insert
                .execute(params![
                    booking.id,
                    recipient,
                    t.account_id,
                    t.mode.as_str(),
                    name,
                    user_id,
                    position as i64,
                    ms(now),
                    status,
                    skipped
                ])
                .map_err(error)?;
        }
        return Ok(());
    }
    let mut upsert = c
        .prepare_cached(
            "INSERT INTO booking_emails (booking_id, recipient, account_id, mode, name, user_id, position, kind, version,
                                         status, last_error, next_attempt_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'confirmation', 0, ?9, ?10, ?8, ?8)
             ON CONFLICT (booking_id, recipient) DO UPDATE
                SET kind = CASE WHEN sent_version IS NULL THEN 'confirmation' ELSE 'updated' END,
                    version = version + 1, status = ?9, attempts = 0, next_attempt_at = ?8,
                    last_error = ?10, updated_at = ?8",
        )
        .map_err(error)?;
    for (position, (recipient, name, user_id)) in recipients.into_iter().enumerate() {
        upsert
            .execute(params![
                booking.id,
                recipient,
                t.account_id,
                t.mode.as_str(),
                name,
                user_id,
                position as i64,
                ms(now),
                status,
                skipped
            ])
            .map_err(error)?;
    }
    Ok(())
}

const COLUMNS: &str = "booking_id, recipient, name, user_id, kind, version, sent_version, status, attempts, \
                       next_attempt_at, last_error, sent_at, updated_at, account_id, mode, leased_until, sent_start_at, sent_end_at";

/// One row as its tenant and email.
fn finish(row: &rusqlite::Row<'_>) -> rusqlite::Result<(BookingEmailRow, String, String)> {
    Ok((
        BookingEmailRow {
            booking_id: row.get(0)?,
            recipient: row.get(1)?,
            name: row.get(2)?,
            user_id: row.get(3)?,
            kind: row.get(4)?,
            version: row.get(5)?,
            sent_version: row.get(6)?,
            status: row.get(7)?,
            attempts: row.get(8)?,
            next_attempt_at: row.get(9)?,
            last_error: row.get(10)?,
            sent_at: row.get(11)?,
            updated_at: row.get(12)?,
            lease: row.get(15)?,
            sent_times: (row.get(16)?, row.get(17)?),
        },
        row.get(13)?,
        row.get(14)?,
    ))
}

struct BookingEmailRow {
    booking_id: String,
    recipient: String,
    name: Option<String>,
    user_id: Option<String>,
    kind: String,
    version: i64,
    sent_version: Option<i64>,
    status: String,
    attempts: u32,
    next_attempt_at: i64,
    last_error: Option<String>,
    sent_at: Option<i64>,
    updated_at: i64,
    lease: Option<i64>,
    sent_times: (Option<i64>, Option<i64>),
}

impl BookingEmailRow {
    fn into_email(self) -> StoreResult<BookingEmail> {
        Ok(BookingEmail {
            kind: EmailKind::parse(&self.kind)
                .ok_or_else(|| StoreError::Backend(format!("unknown email kind {}", self.kind)))?,
            booking_id: self.booking_id,
            recipient: self.recipient,
            name: self.name,
            user_id: self.user_id,
            version: self.version,
            sent_version: self.sent_version,
            status: self.status,
            attempts: self.attempts,
            next_attempt_at: ts(self.next_attempt_at)?,
            last_error: self.last_error,
            sent_at: self.sent_at.map(ts).transpose()?,
            updated_at: ts(self.updated_at)?,
            lease: self.lease.map(ts).transpose()?,
            sent_times: sent_times(self.sent_times)?,
        })
    }
}

/// Claims due emails under a lease, its end the claim's fencing token (as in `writes::claim`).
pub(crate) fn claim(
    c: &Connection,
    now: Timestamp,
    lease: SignedDuration,
    limit: usize,
) -> StoreResult<Vec<(Tenant, BookingEmail)>> {
    let until = now.saturating_add(lease).unwrap_or(now);
    let rows = c
        .prepare_cached(&format!(
            "UPDATE booking_emails SET leased_until = max(?1, coalesce(leased_until, 0) + 1)
              WHERE rowid IN (SELECT rowid FROM booking_emails
                               WHERE status = 'pending' AND next_attempt_at <= ?2
                                 AND (leased_until IS NULL OR leased_until <= ?2)
                               ORDER BY next_attempt_at LIMIT ?3)
             RETURNING {COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_map(params![ms(until), ms(now), limit as i64], finish)?.collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    rows.into_iter()
        .map(|(row, account_id, mode)| {
            let mode =
                kairos_store::Mode::parse(&mode).ok_or_else(|| StoreError::Backend(format!("unknown mode {mode}")))?;
            Ok((Tenant { account_id, mode }, row.into_email()?))
        })
        .collect()
}

/// Records a claimed email; false, changing nothing, when its claim no longer holds the row.
pub(crate) fn record(
    c: &Connection,
    t: &Tenant,
    e: &BookingEmail,
    outcome: &EmailOutcome,
    now: Timestamp,
) -> StoreResult<bool> {
    let lease = e.lease.map(ms);
    let recorded = match outcome {
        EmailOutcome::Sent => c
            .prepare_cached(
                "UPDATE booking_emails
                    SET sent_version = ?1, sent_at = ?2, leased_until = NULL, attempts = 0, last_error = NULL,
                        updated_at = ?2, status = CASE WHEN version = ?1 THEN 'sent' ELSE 'pending' END,
                        sent_start_at = ?8, sent_end_at = ?9
                  WHERE booking_id = ?3 AND recipient = ?4 AND account_id = ?5 AND mode = ?6 AND leased_until = ?7",
            )
            .and_then(|mut s| {
                let sent = e.sent_times.map(|i| (ms(i.start()), ms(i.end())));
                s.execute(params![
                    e.version,
                    ms(now),
                    e.booking_id,
                    e.recipient,
                    t.account_id,
                    t.mode.as_str(),
                    lease,
                    sent.map(|s| s.0),
                    sent.map(|s| s.1)
                ])
            }),
        EmailOutcome::Skipped(why) => c
            .prepare_cached(
                "UPDATE booking_emails
                    SET leased_until = NULL, updated_at = ?2,
                        last_error = CASE WHEN version = ?1 THEN ?3 ELSE last_error END,
                        status = CASE WHEN version = ?1 THEN 'skipped' ELSE 'pending' END
                  WHERE booking_id = ?4 AND recipient = ?5 AND account_id = ?6 AND mode = ?7 AND leased_until = ?8",
            )
            .and_then(|mut s| {
                s.execute(params![
                    e.version,
                    ms(now),
                    why,
                    e.booking_id,
                    e.recipient,
                    t.account_id,
                    t.mode.as_str(),
                    lease
                ])
            }),
        // A newer change resets the attempts: only a failure of the current version counts.
        EmailOutcome::Failed { error: why, retry_at } => c
            .prepare_cached(
                "UPDATE booking_emails
                    SET leased_until = NULL, last_error = ?1, updated_at = ?2,
                        attempts = CASE WHEN version = ?3 THEN attempts + 1 ELSE attempts END,
                        status = CASE WHEN version = ?3 AND ?4 IS NULL THEN 'failed' ELSE 'pending' END,
                        next_attempt_at = CASE WHEN version = ?3 THEN coalesce(?4, next_attempt_at) ELSE next_attempt_at END
                  WHERE booking_id = ?5 AND recipient = ?6 AND account_id = ?7 AND mode = ?8 AND leased_until = ?9",
            )
            .and_then(|mut s| {
                s.execute(params![
                    why,
                    ms(now),
                    e.version,
                    retry_at.map(ms),
                    e.booking_id,
                    e.recipient,
                    t.account_id,
                    t.mode.as_str(),
                    lease
                ])
            }),
    }
    .map_err(error)?;
    Ok(recorded > 0)
}

pub(crate) fn of_booking(c: &Connection, t: &Tenant, booking_id: &str) -> StoreResult<Vec<BookingEmail>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM booking_emails WHERE booking_id = ?1 AND account_id = ?2 AND mode = ?3
              ORDER BY position"
        ))
        .and_then(|mut s| {
            s.query_map(params![booking_id, t.account_id, t.mode.as_str()], finish)?.collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    rows.into_iter().map(|(row, _, _)| row.into_email()).collect()
}

pub(crate) fn skip_due(c: &Connection, now: Timestamp, reason: &str) -> StoreResult<usize> {
    c.prepare_cached(
        "UPDATE booking_emails SET status = 'skipped', last_error = ?1, updated_at = ?2
          WHERE status = 'pending' AND next_attempt_at <= ?2 AND (leased_until IS NULL OR leased_until <= ?2)",
    )
    .and_then(|mut s| s.execute(params![reason, ms(now)]))
    .map_err(error)
}

/// The stored start and end of what was last sent, when both are there.
fn sent_times((start, end): (Option<i64>, Option<i64>)) -> StoreResult<Option<kairos_core::Interval>> {
    let (Some(start), Some(end)) = (start, end) else { return Ok(None) };
    kairos_core::Interval::new(ts(start)?, ts(end)?)
        .map(Some)
        .map_err(|e| StoreError::Backend(format!("stored email times: {e}")))
}
