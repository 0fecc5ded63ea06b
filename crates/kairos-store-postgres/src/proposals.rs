//! Proposals: the aggregate as one JSON document, changed only through the core's state
//! machine inside a transaction that holds its row (`SELECT … FOR UPDATE`, so two responses
//! arriving at once on different nodes apply one after the other); response links by token
//! hash; proposal emails (the invitation, then the outcome and its cancellation, re-wanted on
//! the change's own transaction) claimed under a lease like booking emails.
//!
//! An agreement books its slot on the same transaction through the normal booking path
//! (`bookings::create_on`: its advisory locks, the re-check, the exclusion constraint). The
//! proposal's row lock is taken before those advisory locks; no booking write locks a
//! proposal, so the order cannot deadlock.

use jiff::{SignedDuration, Timestamp};
use kairos_core::proposal::{Action, Effect, Proposal, ProposalEvent, ProposalStatus};
use kairos_store::proposals::OutcomeEmails;
use kairos_store::{
    BookingError, EmailOutcome, Page, PageRequest, ProposalEmail, ProposalEmailKind, ProposalError, ProposalToken,
    StoreError, StoreResult, Tenant, TokenHolder, event_envelope, ids,
};
use sqlx::{PgConnection, PgPool};

use crate::calendars::tenant_of;
use crate::db::error;
use crate::rows::{corrupt, json, ms, ts};

fn parse(document: &str) -> StoreResult<Proposal> {
    serde_json::from_str(document).map_err(|e| corrupt("proposal", e))
}

async fn record_event(
    c: &mut PgConnection,
    t: &Tenant,
    p: &Proposal,
    event: &ProposalEvent,
    now: Timestamp,
) -> StoreResult<()> {
    let id = ids::new_id("evt");
    let payload = event_envelope(&id, event.as_str(), now, &p.event_data(event));
    sqlx::query(
        "INSERT INTO outbox_events (id, account_id, mode, event_type, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(event.as_str())
    .bind(&payload)
    .bind(ms(now))
    .execute(c)
    .await
    .map_err(error)?;
    Ok(())
}

pub(crate) async fn insert(
    db: &PgPool,
    t: &Tenant,
    p: &Proposal,
    tokens: &[ProposalToken],
    emails: &[ProposalEmail],
    now: Timestamp,
) -> StoreResult<()> {
    let mut tx = db.begin().await.map_err(error)?;
    sqlx::query(
        "INSERT INTO proposals (id, account_id, mode, status, expires_at, document, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&p.id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(p.status.as_str())
    .bind(ms(p.expires_at))
    .bind(json(p))
    .bind(ms(p.created_at))
    .bind(ms(p.updated_at))
    .execute(&mut *tx)
    .await
    .map_err(error)?;
    if !tokens.is_empty() {
        let hashes: Vec<&str> = tokens.iter().map(|t| t.hash.as_str()).collect();
        let participants: Vec<Option<i32>> = tokens
            .iter()
            .map(|t| match t.holder {
                TokenHolder::Participant(i) => {
                    i32::try_from(i).map(Some).map_err(|e| StoreError::Backend(format!("participant index: {e}")))
                }
                TokenHolder::OpenPoll => Ok(None),
            })
            .collect::<StoreResult<_>>()?;
        sqlx::query(
            "INSERT INTO proposal_tokens (token_hash, proposal_id, participant)
             SELECT u.hash, $1, u.participant FROM UNNEST($2::text[], $3::int4[]) AS u(hash, participant)",
        )
        .bind(&p.id)
        .bind(&hashes)
        .bind(&participants)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
    }
    if !emails.is_empty() {
        let recipients: Vec<&str> = emails.iter().map(|e| e.recipient.as_str()).collect();
        let names: Vec<Option<&str>> = emails.iter().map(|e| e.name.as_deref()).collect();
        let links: Vec<Option<&str>> = emails.iter().map(|e| e.link_sealed.as_deref()).collect();
        sqlx::query(
            "INSERT INTO proposal_emails (proposal_id, recipient, account_id, mode, position, name, link_sealed, kind,
                                          version, status, next_attempt_at, updated_at)
             SELECT $1, e.recipient, $2, $3, e.position - 1, e.name, e.link, 'invitation', 0, 'pending', $4, $4
               FROM UNNEST($5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS e(recipient, name, link, position)",
        )
        .bind(&p.id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .bind(ms(now))
        .bind(&recipients)
        .bind(&names)
        .bind(&links)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
    }
    record_event(&mut tx, t, p, &ProposalEvent::Created, now).await?;
    tx.commit().await.map_err(error)?;
    Ok(())
}

/// The proposal's document; `lock` takes its row `FOR UPDATE` (a waiting reader then sees
/// the document the previous holder committed).
async fn get_on(c: &mut PgConnection, t: &Tenant, id: &str, lock: bool) -> StoreResult<Option<Proposal>> {
    let sql = if lock {
        "SELECT document FROM proposals WHERE id = $1 AND account_id = $2 AND mode = $3 FOR UPDATE"
    } else {
        "SELECT document FROM proposals WHERE id = $1 AND account_id = $2 AND mode = $3"
    };
    let document: Option<String> = sqlx::query_scalar(sql)
        .bind(id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .fetch_optional(c)
        .await
        .map_err(error)?;
    document.as_deref().map(parse).transpose()
}

pub(crate) async fn get(db: &PgPool, t: &Tenant, id: &str) -> StoreResult<Option<Proposal>> {
    get_on(&mut *db.acquire().await.map_err(error)?, t, id, false).await
}

pub(crate) async fn list(
    db: &PgPool,
    t: &Tenant,
    status: Option<ProposalStatus>,
    page: &PageRequest,
) -> StoreResult<Page<Proposal>> {
    let documents: Vec<String> = sqlx::query_scalar(
        "SELECT document FROM proposals
          WHERE account_id = $1 AND mode = $2 AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR id < $4)
          ORDER BY id DESC LIMIT $5",
    )
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(status.map(ProposalStatus::as_str))
    .bind(&page.cursor)
    .bind(page.limit as i64 + 1)
    .fetch_all(db)
    .await
    .map_err(error)?;
    let rows = documents.iter().map(|d| parse(d)).collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(rows, page.limit, |p| &p.id))
}

pub(crate) async fn by_token(db: &PgPool, hash: &str) -> StoreResult<Option<(Tenant, Proposal, TokenHolder)>> {
    let row: Option<(Option<i32>, String, String, String)> = sqlx::query_as(
        "SELECT t.participant, p.account_id, p.mode, p.document
           FROM proposal_tokens t JOIN proposals p ON p.id = t.proposal_id
          WHERE t.token_hash = $1",
    )
    .bind(hash)
    .fetch_optional(db)
    .await
    .map_err(error)?;
    let Some((participant, account_id, mode, document)) = row else { return Ok(None) };
    let holder = match participant {
        Some(i) => TokenHolder::Participant(usize::try_from(i).map_err(|e| corrupt("token participant", e))?),
        None => TokenHolder::OpenPoll,
    };
    Ok(Some((tenant_of(account_id, &mode)?, parse(&document)?, holder)))
}

async fn save(c: &mut PgConnection, t: &Tenant, p: &Proposal) -> StoreResult<()> {
    sqlx::query(
        "UPDATE proposals SET status = $1, expires_at = $2, document = $3, updated_at = $4
          WHERE id = $5 AND account_id = $6 AND mode = $7",
    )
    .bind(p.status.as_str())
    .bind(ms(p.expires_at))
    .bind(json(p))
    .bind(ms(p.updated_at))
    .bind(&p.id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .execute(c)
    .await
    .map_err(error)?;
    Ok(())
}

/// Applies `action` to the locked proposal, carries out its effect, saves it and records its
/// events, all on the caller's transaction. A failed booking is returned as
/// `ProposalError::Booking`; the caller rolls back.
async fn act_on(
    c: &mut PgConnection,
    t: &Tenant,
    id: &str,
    action: Action,
    now: Timestamp,
) -> Result<Proposal, ProposalError> {
    let mut p = get_on(c, t, id, true).await?.ok_or(ProposalError::NotFound)?;
    let reason = match &action {
        Action::Cancel { reason } => reason.clone(),
        _ => None,
    };
    let transition = p.apply(action, now)?;
    match transition.effect {
        Some(Effect::Book { slot_id }) => {
            let new = kairos_store::proposals::booking_for(&p, &slot_id)
                .ok_or_else(|| StoreError::Backend(format!("agreed slot {slot_id} is not on proposal {id}")))?;
            match crate::bookings::create_on(c, t, &new, now).await {
                Ok(booking) => p.booked(booking.id),
                // The database failing is not a scheduling conflict: nothing to report on it.
                Err(BookingError::Store(e)) => return Err(e.into()),
                Err(error) => return Err(ProposalError::Booking { slot_id, error }),
            }
        }
        Some(Effect::CancelBooking { booking_id }) => {
            let reason = reason.unwrap_or_else(|| "The proposal was cancelled.".to_string());
            match crate::bookings::cancel_by_id_on(c, t, &booking_id, Some(&reason), now).await {
                Ok(_) => {}
                // The booking was deleted with its business or people: nothing left to cancel.
                Err(BookingError::Store(StoreError::NotFound)) => {}
                Err(BookingError::Store(e)) => return Err(e.into()),
                Err(e) => return Err(StoreError::Backend(format!("cancelling booking {booking_id}: {e}")).into()),
            }
        }
        None => {}
    }
    save(c, t, &p).await?;
    for event in &transition.events {
        record_event(c, t, &p, event, now).await?;
        want_outcome_emails(c, t, &p, event, now).await?;
    }
    Ok(p)
}

/// Re-wants the proposal emails `event` calls for (see `kairos_store::proposals::outcome_emails`),
/// on the change's own transaction.
async fn want_outcome_emails(
    c: &mut PgConnection,
    t: &Tenant,
    p: &Proposal,
    event: &ProposalEvent,
    now: Timestamp,
) -> StoreResult<()> {
    match kairos_store::proposals::outcome_emails(p, event) {
        None => {}
        Some(OutcomeEmails::Want(kind, recipients)) => {
            let mut positions = Vec::with_capacity(recipients.len());
            let (mut emails, mut names) = (Vec::with_capacity(recipients.len()), Vec::with_capacity(recipients.len()));
            for (i, r) in recipients {
                positions.push(i32::try_from(i).map_err(|e| StoreError::Backend(format!("participant index: {e}")))?);
                emails.push(r.email.as_str());
                names.push(r.name.as_deref());
            }
            sqlx::query(
                "INSERT INTO proposal_emails (proposal_id, recipient, account_id, mode, position, name, kind, version,
                                              status, next_attempt_at, updated_at)
                 SELECT $1, r.recipient, $2, $3, r.position, r.name, $4, 0, 'pending', $5, $5
                   FROM UNNEST($6::text[], $7::text[], $8::int4[]) AS r(recipient, name, position)
                 ON CONFLICT (proposal_id, recipient) DO UPDATE
                    SET kind = EXCLUDED.kind, version = proposal_emails.version + 1, status = 'pending',
                        attempts = 0, next_attempt_at = EXCLUDED.next_attempt_at, last_error = NULL,
                        updated_at = EXCLUDED.updated_at",
            )
            .bind(&p.id)
            .bind(&t.account_id)
            .bind(t.mode.as_str())
            .bind(kind.as_str())
            .bind(ms(now))
            .bind(&emails)
            .bind(&names)
            .bind(&positions)
            .execute(&mut *c)
            .await
            .map_err(error)?;
        }
        Some(OutcomeEmails::CancelOutcomes) => {
            sqlx::query(
                "UPDATE proposal_emails
                    SET kind = 'cancelled', version = version + 1, status = 'pending', attempts = 0,
                        next_attempt_at = $1, last_error = NULL, updated_at = $1
                  WHERE proposal_id = $2 AND account_id = $3 AND mode = $4 AND kind IN ('accepted', 'resolved')",
            )
            .bind(ms(now))
            .bind(&p.id)
            .bind(&t.account_id)
            .bind(t.mode.as_str())
            .execute(&mut *c)
            .await
            .map_err(error)?;
        }
    }
    Ok(())
}

/// See `Store::act_on_proposal`: one transaction; when the agreed slot cannot be booked it is
/// rolled back and a second one keeps the conflict on the proposal.
pub(crate) async fn act(
    db: &PgPool,
    t: &Tenant,
    id: &str,
    action: Action,
    now: Timestamp,
) -> Result<Proposal, ProposalError> {
    let mut tx = db.begin().await.map_err(error)?;
    match act_on(&mut tx, t, id, action, now).await {
        Ok(p) => {
            tx.commit().await.map_err(error)?;
            Ok(p)
        }
        Err(ProposalError::Booking { slot_id, error: booking_error }) => {
            // Explicitly, so the proposal's row and the people's locks are free before the
            // conflict is written (and the transaction may be aborted by the refusal).
            tx.rollback().await.map_err(error)?;
            let (code, message) = kairos_store::proposals::conflict_text(&booking_error);
            record_conflict(db, t, id, &slot_id, (code, &message), now).await?;
            Err(ProposalError::Booking { slot_id, error: booking_error })
        }
        // Refusals and failures change nothing (dropping the transaction rolls it back).
        Err(e) => Err(e),
    }
}

/// Keeps on the proposal that its agreed slot could not be booked.
async fn record_conflict(
    db: &PgPool,
    t: &Tenant,
    id: &str,
    slot_id: &str,
    (code, message): (&str, &str),
    now: Timestamp,
) -> StoreResult<()> {
    let mut tx = db.begin().await.map_err(error)?;
    let Some(mut p) = get_on(&mut tx, t, id, true).await? else { return Ok(()) };
    // Answered, cancelled or expired meanwhile: the report would be stale.
    if p.status != ProposalStatus::Open {
        return Ok(());
    }
    p.conflicted(slot_id, code, message, now);
    save(&mut tx, t, &p).await?;
    tx.commit().await.map_err(error)?;
    Ok(())
}

/// Expires (or resolves) up to `limit` due open proposals in one transaction. `SKIP LOCKED`:
/// nodes sweeping at once take different proposals, and a proposal being answered right now
/// is left for the next sweep.
pub(crate) async fn expire(db: &PgPool, now: Timestamp, limit: usize) -> StoreResult<Vec<(Tenant, Proposal)>> {
    let mut tx = db.begin().await.map_err(error)?;
    let due: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT account_id, mode, document FROM proposals
          WHERE status = 'open' AND expires_at <= $1
          ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(ms(now))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *tx)
    .await
    .map_err(error)?;
    let mut done = Vec::with_capacity(due.len());
    for (account_id, mode, document) in due {
        // One unreadable row must not stop the sweep for everyone else.
        let (t, mut p) = match tenant_of(account_id, &mode).and_then(|t| Ok((t, parse(&document)?))) {
            Ok(read) => read,
            Err(e) => {
                tracing::error!(error = %e, "an expired proposal could not be read; skipped");
                continue;
            }
        };
        // Expiring has no effect to carry out; a refusal means it was not due after all.
        let Ok(transition) = p.apply(Action::Expire, now) else { continue };
        save(&mut tx, &t, &p).await?;
        for event in &transition.events {
            record_event(&mut tx, &t, &p, event, now).await?;
            want_outcome_emails(&mut tx, &t, &p, event, now).await?;
        }
        done.push((t, p));
    }
    tx.commit().await.map_err(error)?;
    Ok(done)
}

/// The columns [`EmailRow`] reads, as a literal (static SQL is built with `concat!`).
macro_rules! email_columns {
    () => {
        "proposal_id, recipient, name, link_sealed, kind, version, sent_version, status, attempts, next_attempt_at, \
         last_error, sent_at, updated_at, account_id, mode, leased_until, position"
    };
}

#[derive(sqlx::FromRow)]
struct EmailRow {
    proposal_id: String,
    recipient: String,
    name: Option<String>,
    link_sealed: Option<String>,
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
    position: i32,
    leased_until: Option<i64>,
}

impl EmailRow {
    fn into_record(self) -> StoreResult<(Tenant, ProposalEmail)> {
        let email = ProposalEmail {
            kind: ProposalEmailKind::parse(&self.kind).ok_or_else(|| corrupt("proposal email kind", &self.kind))?,
            proposal_id: self.proposal_id,
            recipient: self.recipient,
            name: self.name,
            link_sealed: self.link_sealed,
            version: self.version,
            sent_version: self.sent_version,
            status: self.status,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: ts(self.next_attempt_at)?,
            last_error: self.last_error,
            sent_at: self.sent_at.map(ts).transpose()?,
            updated_at: ts(self.updated_at)?,
            lease: self.leased_until.map(ts).transpose()?,
        };
        Ok((tenant_of(self.account_id, &self.mode)?, email))
    }
}

/// Claims due emails under a lease, its end the claim's fencing token (as in `writes::claim`).
pub(crate) async fn claim_emails(
    db: &PgPool,
    now: Timestamp,
    lease: SignedDuration,
    limit: usize,
) -> StoreResult<Vec<(Tenant, ProposalEmail)>> {
    let until = now.saturating_add(lease).unwrap_or(now);
    let mut rows = sqlx::query_as::<_, EmailRow>(concat!(
        "UPDATE proposal_emails SET leased_until = GREATEST($1, coalesce(leased_until, 0) + 1)
          WHERE (proposal_id, recipient) IN (
                SELECT proposal_id, recipient FROM proposal_emails
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
    rows.sort_by(|a, b| {
        (a.next_attempt_at, &a.proposal_id, a.position).cmp(&(b.next_attempt_at, &b.proposal_id, b.position))
    });
    rows.into_iter().map(EmailRow::into_record).collect()
}

/// Records a claimed proposal email; false, changing nothing, when its claim no longer holds
/// the row.
pub(crate) async fn record_email(
    db: &PgPool,
    t: &Tenant,
    e: &ProposalEmail,
    outcome: &EmailOutcome,
    now: Timestamp,
) -> StoreResult<bool> {
    let (why, retry_at) = match outcome {
        EmailOutcome::Sent => (None, None),
        EmailOutcome::Skipped(why) => (Some(why.as_str()), None),
        EmailOutcome::Failed { error: why, retry_at } => (Some(why.as_str()), retry_at.map(ms)),
    };
    // $1 the version attempted, $2 now, $3 why, $4 the retry time, $9 the claim's lease. A
    // newer version of the row (an outcome or a cancellation wanted meanwhile) stays pending
    // for that one. The sealed link goes with a final outcome, and with any send or skip: once
    // the invitation went out or was given up, or the row moved on to an outcome (which needs
    // no link).
    let set = match outcome {
        EmailOutcome::Sent => {
            "sent_version = $1, sent_at = $2, attempts = 0, last_error = NULL, link_sealed = NULL,
             status = CASE WHEN version = $1 THEN 'sent' ELSE 'pending' END"
        }
        EmailOutcome::Skipped(_) => {
            "last_error = CASE WHEN version = $1 THEN $3 ELSE last_error END, link_sealed = NULL,
             status = CASE WHEN version = $1 THEN 'skipped' ELSE 'pending' END"
        }
        // Only a failure of the current version counts towards giving up.
        EmailOutcome::Failed { .. } => {
            "last_error = $3,
             attempts = CASE WHEN version = $1 THEN attempts + 1 ELSE attempts END,
             link_sealed = CASE WHEN version = $1 AND $4::bigint IS NULL THEN NULL ELSE link_sealed END,
             status = CASE WHEN version = $1 AND $4::bigint IS NULL THEN 'failed' ELSE 'pending' END,
             next_attempt_at = CASE WHEN version = $1 THEN coalesce($4, next_attempt_at) ELSE next_attempt_at END"
        }
    };
    let sql = format!(
        "UPDATE proposal_emails SET leased_until = NULL, updated_at = $2, {set}
          WHERE proposal_id = $5 AND recipient = $6 AND account_id = $7 AND mode = $8 AND leased_until = $9"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(e.version)
        .bind(ms(now))
        .bind(why)
        .bind(retry_at)
        .bind(&e.proposal_id)
        .bind(&e.recipient)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .bind(e.lease.map(ms))
        .execute(db)
        .await
        .map_err(error)?;
    Ok(done.rows_affected() > 0)
}

/// Skips every due, unleased proposal email for `reason`, erasing its sealed link.
pub(crate) async fn skip_due_emails(db: &PgPool, now: Timestamp, reason: &str) -> StoreResult<usize> {
    let n = sqlx::query(
        "UPDATE proposal_emails SET status = 'skipped', last_error = $1, updated_at = $2, link_sealed = NULL
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

pub(crate) async fn emails(db: &PgPool, t: &Tenant, proposal_id: &str) -> StoreResult<Vec<ProposalEmail>> {
    let rows = sqlx::query_as::<_, EmailRow>(concat!(
        "SELECT ",
        email_columns!(),
        " FROM proposal_emails WHERE proposal_id = $1 AND account_id = $2 AND mode = $3 ORDER BY position"
    ))
    .bind(proposal_id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .fetch_all(db)
    .await
    .map_err(error)?;
    rows.into_iter().map(|r| r.into_record().map(|(_, e)| e)).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use kairos_core::proposal::{Invitee, NewProposal, Organiser, ProposalMode};
    use kairos_core::schedule::{DateOverrides, Schedule, WorkingHours};
    use kairos_core::{Interval, User, Zone};
    use kairos_store::{Mode, Store, keys};

    use super::*;
    use crate::testing::FreshDatabase;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn user(email: &str, now: Timestamp) -> User {
        User {
            id: ids::new_id("usr"),
            email: email.into(),
            name: None,
            schedule: Schedule::new(Zone::utc(), WorkingHours::always(), DateOverrides::default()),
            created_at: now,
            updated_at: now,
        }
    }

    fn consensus(org: &User, people: &[&User], now: Timestamp) -> Proposal {
        let start = at("2030-01-02T10:00:00Z");
        Proposal::new(
            NewProposal {
                id: ids::new_id("prop"),
                thread_id: ids::new_id("thr"),
                title: "Sync".into(),
                description: None,
                duration_minutes: 30,
                organiser: Organiser { user_id: org.id.clone(), email: org.email.clone(), name: None },
                mode: ProposalMode::Consensus,
                poll_variant: None,
                participants: people
                    .iter()
                    .map(|u| Invitee {
                        email: u.email.clone(),
                        name: None,
                        required: true,
                        user_id: Some(u.id.clone()),
                    })
                    .collect(),
                slots: vec![(
                    ids::new_id("slot"),
                    Interval::new(start, start + SignedDuration::from_mins(30)).unwrap(),
                )],
                expires_at: Some(at("2030-01-01T20:00:00Z")),
            },
            now,
        )
        .unwrap()
    }

    /// Answers arriving at once on different connections apply one after the other (none is
    /// lost, the agreement books once), and sweeps running at once expire each proposal once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_answers_and_sweeps_apply_once() {
        let Some(fresh) = FreshDatabase::create().await else { return };
        let store = fresh.store().await;
        let now = at("2030-01-01T08:00:00Z");
        let (_, key) = keys::generate(Mode::Test);
        let account = store.create_api_key("acme", Mode::Test, &key, now).await.unwrap();
        let t = Tenant { account_id: account.id, mode: Mode::Test };
        let people: Vec<User> =
            ["org", "ann", "ben", "cat"].iter().map(|n| user(&format!("{n}@example.com"), now)).collect();
        for u in &people {
            store.insert_user(&t, u).await.unwrap();
        }
        let invited: Vec<&User> = people[1..].iter().collect();

        let p = consensus(&people[0], &invited, now);
        store.insert_proposal(&t, &p, &[], &[], now).await.unwrap();
        let slot_id = p.slots[0].id.clone();
        let answers = (0..invited.len()).map(|by| {
            let (store, t, id, slot_id) = (store.clone(), t.clone(), p.id.clone(), slot_id.clone());
            tokio::spawn(async move { store.act_on_proposal(&t, &id, Action::Accept { by, slot_id }, now).await })
        });
        for answer in futures::future::join_all(answers).await {
            answer.unwrap().unwrap();
        }
        let done = store.proposal(&t, &p.id).await.unwrap().unwrap();
        assert_eq!(done.status, ProposalStatus::Accepted, "every answer counted");
        let bookings: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings").fetch_one(store.pool()).await.unwrap();
        assert_eq!(bookings, 1);

        let open: Vec<Proposal> = (0..6).map(|_| consensus(&people[0], &invited, now)).collect();
        for q in &open {
            store.insert_proposal(&t, q, &[], &[], now).await.unwrap();
        }
        let due = open[0].expires_at;
        let sweeps = (0..3).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.expire_proposals(due, 2).await })
        });
        let mut swept = Vec::new();
        for sweep in futures::future::join_all(sweeps).await {
            swept.extend(sweep.unwrap().unwrap().into_iter().map(|(_, q)| q.id));
        }
        swept.extend(store.expire_proposals(due, 10).await.unwrap().into_iter().map(|(_, q)| q.id));
        swept.sort();
        let mut expected: Vec<String> = open.iter().map(|q| q.id.clone()).collect();
        expected.sort();
        assert_eq!(swept, expected, "each expired exactly once");
        let expired: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE event_type = 'proposal.expired'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(expired, 6);
    }
}
