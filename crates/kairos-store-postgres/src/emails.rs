//! Booking emails: one row per booking and recipient, re-wanted in each booking change's own
//! transaction and claimed by any node's email worker under a lease (`FOR UPDATE SKIP
//! LOCKED`), the same shape as the write-back queue in `writes.rs`.

use jiff::{SignedDuration, Timestamp};
use kairos_core::booking::BookingEvent;
use kairos_core::{Booking, BookingStatus, Interval};
use kairos_store::{BookingEmail, EmailKind, EmailOutcome, StoreResult, Tenant};
use sqlx::{PgConnection, PgPool};

use crate::calendars::tenant_of;
use crate::db::error;
use crate::rows::{corrupt, ms, ts};

/// Re-wants the booking's email to each recipient after `event`: an invitation (the first,
/// or an update) while confirmed, a cancellation once cancelled; unpaid holds send nothing.
pub(crate) async fn enqueue(
    c: &mut PgConnection,
    t: &Tenant,
    event: BookingEvent,
    booking: &Booking,
    now: Timestamp,
) -> StoreResult<()> {
    if event == BookingEvent::Cancelled {
        sqlx::query(
            "UPDATE booking_emails SET kind = 'cancelled', version = version + 1, status = 'pending', attempts = 0,
                    next_attempt_at = $1, last_error = NULL, updated_at = $1
              WHERE booking_id = $2",
        )
        .bind(ms(now))
        .bind(&booking.id)
        .execute(&mut *c)
        .await
        .map_err(error)?;
        return Ok(());
    }
    if booking.status != BookingStatus::Confirmed {
        return Ok(());
    }
    let recipients = kairos_store::email_recipients(booking);
    let (mut emails, mut names, mut users) = (Vec::new(), Vec::new(), Vec::new());
    for (email, name, user) in recipients {
        emails.push(email);
        names.push(name);
        users.push(user);
    }
    sqlx::query(
        "INSERT INTO booking_emails (booking_id, recipient, account_id, mode, name, user_id, position, kind, version,
                                     status, next_attempt_at, updated_at)
         SELECT $1, r.recipient, $2, $3, r.name, r.user_id, r.position - 1, 'confirmation', 0, 'pending', $4, $4
           FROM UNNEST($5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS r(recipient, name, user_id, position)
         ON CONFLICT (booking_id, recipient) DO UPDATE
            SET kind = CASE WHEN booking_emails.sent_version IS NULL THEN 'confirmation' ELSE 'updated' END,
                version = booking_emails.version + 1, status = 'pending', attempts = 0, next_attempt_at = $4,
                last_error = NULL, updated_at = $4",
    )
    .bind(&booking.id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(ms(now))
    .bind(&emails)
    .bind(&names)
    .bind(&users)
    .execute(&mut *c)
    .await
    .map_err(error)?;
    Ok(())
}

/// The columns [`EmailRow`] reads, as a literal (static SQL is built with `concat!`).
macro_rules! email_columns {
    () => {
        "booking_id, recipient, name, user_id, kind, version, sent_version, status, attempts, next_attempt_at, \
         last_error, sent_at, updated_at, account_id, mode, leased_until, sent_start_at, sent_end_at"
    };
}

#[derive(sqlx::FromRow)]
struct EmailRow {
    booking_id: String,
    recipient: String,
    name: Option<String>,
    user_id: Option<String>,
    kind: String,
    version: i64,
    sent_version: Option<i64>,
    status: String,
    attempts: i32,
    next_attempt_at: i64,
    last_error: Option<String>,
    sent_at: Option<i64>,
    updated_at: i64,
    account_id: String,
    mode: String,
    leased_until: Option<i64>,
    sent_start_at: Option<i64>,
    sent_end_at: Option<i64>,
}

impl EmailRow {
    fn into_record(self) -> StoreResult<(Tenant, BookingEmail)> {
        let email = BookingEmail {
            kind: EmailKind::parse(&self.kind).ok_or_else(|| corrupt("email kind", &self.kind))?,
            booking_id: self.booking_id,
            recipient: self.recipient,
            name: self.name,
            user_id: self.user_id,
            version: self.version,
            sent_version: self.sent_version,
            status: self.status,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: ts(self.next_attempt_at)?,
            last_error: self.last_error,
            sent_at: self.sent_at.map(ts).transpose()?,
            updated_at: ts(self.updated_at)?,
            lease: self.leased_until.map(ts).transpose()?,
            sent_times: match (self.sent_start_at, self.sent_end_at) {
                (Some(start), Some(end)) => {
                    Some(Interval::new(ts(start)?, ts(end)?).map_err(|e| corrupt("stored email times", e))?)
                }
                _ => None,
            },
        };
        Ok((tenant_of(self.account_id, &self.mode)?, email))
    }
}

/// Claims due emails under a lease, its end the claim's fencing token (as in `writes::claim`).
pub(crate) async fn claim(
    db: &PgPool,
    now: Timestamp,
    lease: SignedDuration,
    limit: usize,
) -> StoreResult<Vec<(Tenant, BookingEmail)>> {
    let until = now.saturating_add(lease).unwrap_or(now);
    let rows = sqlx::query_as::<_, EmailRow>(concat!(
        "UPDATE booking_emails SET leased_until = GREATEST($1, coalesce(leased_until, 0) + 1)
          WHERE (booking_id, recipient) IN (
                SELECT booking_id, recipient FROM booking_emails
                 WHERE status = 'pending' AND next_attempt_at <= $2 AND (leased_until IS NULL OR leased_until <= $2)
                 ORDER BY next_attempt_at LIMIT $3
                   FOR UPDATE SKIP LOCKED)
         RETURNING ",
        email_columns!()
    ))
    .bind(ms(until))
    .bind(ms(now))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(db)
    .await
    .map_err(error)?;
    let mut claimed = rows.into_iter().map(EmailRow::into_record).collect::<StoreResult<Vec<_>>>()?;
    claimed.sort_by_key(|(_, e)| e.next_attempt_at);
    Ok(claimed)
}

/// Records a claimed email; false, changing nothing, when its claim no longer holds the row.
pub(crate) async fn record(
    db: &PgPool,
    t: &Tenant,
    e: &BookingEmail,
    outcome: &EmailOutcome,
    now: Timestamp,
) -> StoreResult<bool> {
    let (why, retry_at) = match outcome {
        EmailOutcome::Sent => (None, None),
        EmailOutcome::Skipped(why) => (Some(why.as_str()), None),
        EmailOutcome::Failed { error: why, retry_at } => (Some(why.as_str()), retry_at.map(ms)),
    };
    // $1 the version sent, $2 now, $3 why, $4 the retry time, $9 the claim's lease; a newer
    // version of the row (the booking changed meanwhile) stays pending for that one.
    let set = match outcome {
        EmailOutcome::Sent => {
            "sent_version = $1, sent_at = $2, attempts = 0, last_error = NULL,
             status = CASE WHEN version = $1 THEN 'sent' ELSE 'pending' END,
             sent_start_at = $10, sent_end_at = $11"
        }
        EmailOutcome::Skipped(_) => {
            "last_error = CASE WHEN version = $1 THEN $3 ELSE last_error END,
             status = CASE WHEN version = $1 THEN 'skipped' ELSE 'pending' END"
        }
        // Only a failure of the current version counts towards giving up.
        EmailOutcome::Failed { .. } => {
            "last_error = $3,
             attempts = CASE WHEN version = $1 THEN attempts + 1 ELSE attempts END,
             status = CASE WHEN version = $1 AND $4::bigint IS NULL THEN 'failed' ELSE 'pending' END,
             next_attempt_at = CASE WHEN version = $1 THEN coalesce($4, next_attempt_at) ELSE next_attempt_at END"
        }
    };
    let sql = format!(
        "UPDATE booking_emails SET leased_until = NULL, updated_at = $2, {set}
          WHERE booking_id = $5 AND recipient = $6 AND account_id = $7 AND mode = $8 AND leased_until = $9"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(e.version)
        .bind(ms(now))
        .bind(why)
        .bind(retry_at)
        .bind(&e.booking_id)
        .bind(&e.recipient)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .bind(e.lease.map(ms))
        .bind(e.sent_times.map(|i| ms(i.start())))
        .bind(e.sent_times.map(|i| ms(i.end())))
        .execute(db)
        .await
        .map_err(error)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn of_booking(db: &PgPool, t: &Tenant, booking_id: &str) -> StoreResult<Vec<BookingEmail>> {
    let rows = sqlx::query_as::<_, EmailRow>(concat!(
        "SELECT ",
        email_columns!(),
        " FROM booking_emails WHERE booking_id = $1 AND account_id = $2 AND mode = $3 ORDER BY position"
    ))
    .bind(booking_id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .fetch_all(db)
    .await
    .map_err(error)?;
    rows.into_iter().map(|r| r.into_record().map(|(_, e)| e)).collect()
}

pub(crate) async fn skip_due(db: &PgPool, now: Timestamp, reason: &str) -> StoreResult<usize> {
    let n = sqlx::query(
        "UPDATE booking_emails SET status = 'skipped', last_error = $1, updated_at = $2
          WHERE status = 'pending' AND next_attempt_at <= $2 AND (leased_until IS NULL OR leased_until <= $2)",
    )
    .bind(reason)
    .bind(ms(now))
    .execute(db)
    .await
    .map_err(error)?
    .rows_affected();
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}
