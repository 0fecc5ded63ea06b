//! Proposals: the aggregate as one JSON document, changed only through the core's state
//! machine inside the writer's transaction; response links by token hash; proposal emails
//! (the invitation, then the outcome and its cancellation, re-wanted in the change's own
//! transaction) claimed under a lease like booking emails.

use jiff::{SignedDuration, Timestamp};
use kairos_core::proposal::{Action, Effect, Proposal, ProposalEvent, ProposalStatus};
use kairos_store::proposals::OutcomeEmails;
use kairos_store::{
    BookingError, EmailOutcome, Mode, Page, PageRequest, ProposalEmail, ProposalEmailKind, ProposalError,
    ProposalToken, StoreError, StoreResult, Tenant, TokenHolder, event_envelope, ids,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::cache::CacheKey;
use crate::db::error;
use crate::rows::{corrupt, json, ms, ts};

type Written<T> = (T, Vec<CacheKey>);

fn tenant(account_id: String, mode: &str) -> StoreResult<Tenant> {
    let mode = Mode::parse(mode).ok_or_else(|| corrupt("mode", mode))?;
    Ok(Tenant { account_id, mode })
}

fn parse(document: &str) -> StoreResult<Proposal> {
    serde_json::from_str(document).map_err(|e| corrupt("proposal", e))
}

fn record_event(c: &Connection, t: &Tenant, p: &Proposal, event: &ProposalEvent, now: Timestamp) -> StoreResult<()> {
    let id = ids::new_id("evt");
    let payload = event_envelope(&id, event.as_str(), now, &p.event_data(event));
    c.prepare_cached("INSERT INTO outbox_events (id, account_id, mode, event_type, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .and_then(|mut s| s.execute(params![id, t.account_id, t.mode.as_str(), event.as_str(), payload, ms(now)]))
        .map_err(error)?;
    Ok(())
}

pub(crate) fn insert(
    c: &Connection,
    t: &Tenant,
    p: &Proposal,
    tokens: &[ProposalToken],
    emails: &[ProposalEmail],
    now: Timestamp,
) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO proposals (id, account_id, mode, status, expires_at, document, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            p.id,
            t.account_id,
            t.mode.as_str(),
            p.status.as_str(),
            ms(p.expires_at),
            json(p),
            ms(p.created_at),
            ms(p.updated_at)
        ])
    })
    .map_err(error)?;
    let mut insert_token = c
        .prepare_cached("INSERT INTO proposal_tokens (token_hash, proposal_id, participant) VALUES (?1, ?2, ?3)")
        .map_err(error)?;
    for token in tokens {
        let participant = match token.holder {
            TokenHolder::Participant(i) => Some(i as i64),
            TokenHolder::OpenPoll => None,
        };
        insert_token.execute(params![token.hash, p.id, participant]).map_err(error)?;
    }
    let mut insert_email = c
        .prepare_cached(
            "INSERT INTO proposal_emails (proposal_id, recipient, account_id, mode, name, link_sealed, kind, version,
                                          status, next_attempt_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'invitation', 0, 'pending', ?7, ?7)",
        )
        .map_err(error)?;
    for e in emails {
        insert_email
            .execute(params![p.id, e.recipient, t.account_id, t.mode.as_str(), e.name, e.link_sealed, ms(now)])
            .map_err(error)?;
    }
    record_event(c, t, p, &ProposalEvent::Created, now)
}

pub(crate) fn get(c: &Connection, t: &Tenant, id: &str) -> StoreResult<Option<Proposal>> {
    let document: Option<String> = c
        .prepare_cached("SELECT document FROM proposals WHERE id = ?1 AND account_id = ?2 AND mode = ?3")
        .and_then(|mut s| s.query_row(params![id, t.account_id, t.mode.as_str()], |r| r.get(0)).optional())
        .map_err(error)?;
    document.as_deref().map(parse).transpose()
}

pub(crate) fn list(
    c: &Connection,
    t: &Tenant,
    status: Option<ProposalStatus>,
    page: &PageRequest,
) -> StoreResult<Page<Proposal>> {
    let documents: Vec<String> = c
        .prepare_cached(
            "SELECT document FROM proposals
              WHERE account_id = ?1 AND mode = ?2 AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR id < ?4)
              ORDER BY id DESC LIMIT ?5",
        )
        .and_then(|mut s| {
            s.query_map(
                params![t.account_id, t.mode.as_str(), status.map(|s| s.as_str()), page.cursor, page.limit as i64 + 1],
                |r| r.get(0),
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    let rows = documents.iter().map(|d| parse(d)).collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(rows, page.limit, |p| &p.id))
}

pub(crate) fn by_token(c: &Connection, hash: &str) -> StoreResult<Option<(Tenant, Proposal, TokenHolder)>> {
    let row: Option<(Option<i64>, String, String, String)> = c
        .prepare_cached(
            "SELECT t.participant, p.account_id, p.mode, p.document
               FROM proposal_tokens t JOIN proposals p ON p.id = t.proposal_id
              WHERE t.token_hash = ?1",
        )
        .and_then(|mut s| s.query_row([hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional())
        .map_err(error)?;
    let Some((participant, account_id, mode, document)) = row else { return Ok(None) };
    let holder = match participant {
        Some(i) => TokenHolder::Participant(usize::try_from(i).map_err(|e| corrupt("token participant", e))?),
        None => TokenHolder::OpenPoll,
    };
    Ok(Some((tenant(account_id, &mode)?, parse(&document)?, holder)))
}

fn save(c: &Connection, t: &Tenant, p: &Proposal) -> StoreResult<()> {
    c.prepare_cached(
        "UPDATE proposals SET status = ?1, expires_at = ?2, document = ?3, updated_at = ?4
          WHERE id = ?5 AND account_id = ?6 AND mode = ?7",
    )
    .and_then(|mut s| {
        s.execute(params![
            p.status.as_str(),
            ms(p.expires_at),
            json(p),
            ms(p.updated_at),
            p.id,
            t.account_id,
            t.mode.as_str()
        ])
    })
    .map_err(error)?;
    Ok(())
}

/// Applies `action` and its effect, saves, and records the events (see `Store::act_on_proposal`).
/// On a failed booking the caller rolls this back and calls [`record_conflict`].
pub(crate) fn act(
    c: &Connection,
    t: &Tenant,
    id: &str,
    action: Action,
    now: Timestamp,
    skipped: Option<&str>,
) -> Result<Written<Proposal>, ProposalError> {
    let mut p = get(c, t, id)?.ok_or(ProposalError::NotFound)?;
    let reason = match &action {
        Action::Cancel { reason } => reason.clone(),
        _ => None,
    };
    let transition = p.apply(action, now)?;
    let mut stale = Vec::new();
    match transition.effect {
        Some(Effect::Book { slot_id }) => {
            let new = kairos_store::proposals::booking_for(&p, &slot_id)
                .ok_or_else(|| StoreError::Backend(format!("agreed slot {slot_id} is not on proposal {id}")))?;
            match crate::bookings::create(c, t, &new, now, None, skipped) {
                Ok((booking, keys)) => {
                    p.booked(booking.id);
                    stale = keys;
                }
                // The database failing is not a scheduling conflict: nothing to report on it.
                Err(BookingError::Store(e)) => return Err(e.into()),
                Err(error) => return Err(ProposalError::Booking { slot_id, error }),
            }
        }
        Some(Effect::CancelBooking { booking_id }) => {
            let reason = reason.unwrap_or_else(|| "The proposal was cancelled.".to_string());
            match crate::bookings::cancel(c, t, &booking_id, Some(&reason), now, skipped) {
                Ok((_, keys)) => stale = keys,
                // The booking was deleted with its business or people: nothing left to cancel.
                Err(BookingError::Store(StoreError::NotFound)) => {}
                Err(BookingError::Store(e)) => return Err(e.into()),
                Err(e) => return Err(StoreError::Backend(format!("cancelling booking {booking_id}: {e}")).into()),
            }
        }
        None => {}
    }
    save(c, t, &p)?;
    for event in &transition.events {
        record_event(c, t, &p, event, now)?;
        want_outcome_emails(c, t, &p, event, now)?;
    }
    Ok((p, stale))
}

/// Re-wants the proposal emails `event` calls for (see `kairos_store::proposals::outcome_emails`),
/// on the change's own transaction.
fn want_outcome_emails(
    c: &Connection,
    t: &Tenant,
    p: &Proposal,
    event: &ProposalEvent,
    now: Timestamp,
) -> StoreResult<()> {
    match kairos_store::proposals::outcome_emails(p, event) {
        None => {}
        Some(OutcomeEmails::Want(kind, recipients)) => {
            let mut upsert = c
                .prepare_cached(
                    "INSERT INTO proposal_emails (proposal_id, recipient, account_id, mode, name, kind, version, status,
                                                  next_attempt_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 'pending', ?7, ?7)
                     ON CONFLICT (proposal_id, recipient) DO UPDATE
                        SET kind = excluded.kind, version = version + 1, status = 'pending', attempts = 0,
                            next_attempt_at = excluded.next_attempt_at, last_error = NULL,
                            updated_at = excluded.updated_at",
                )
                .map_err(error)?;
            for (_, r) in recipients {
                upsert
                    .execute(params![p.id, r.email, t.account_id, t.mode.as_str(), r.name, kind.as_str(), ms(now)])
                    .map_err(error)?;
            }
        }
        Some(OutcomeEmails::CancelOutcomes) => {
            c.prepare_cached(
                "UPDATE proposal_emails
                    SET kind = 'cancelled', version = version + 1, status = 'pending', attempts = 0,
                        next_attempt_at = ?1, last_error = NULL, updated_at = ?1
                  WHERE proposal_id = ?2 AND account_id = ?3 AND mode = ?4 AND kind IN ('accepted', 'resolved')",
            )
            .and_then(|mut s| s.execute(params![ms(now), p.id, t.account_id, t.mode.as_str()]))
            .map_err(error)?;
        }
    }
    Ok(())
}

/// Keeps on the proposal that its agreed slot could not be booked.
pub(crate) fn record_conflict(
    c: &Connection,
    t: &Tenant,
    id: &str,
    slot_id: &str,
    (code, message): (&str, &str),
    now: Timestamp,
) -> StoreResult<()> {
    let Some(mut p) = get(c, t, id)? else { return Ok(()) };
    // Answered, cancelled or expired meanwhile: the report would be stale.
    if p.status != ProposalStatus::Open {
        return Ok(());
    }
    p.conflicted(slot_id, code, message, now);
    save(c, t, &p)
}

pub(crate) fn expire(
    c: &Connection,
    now: Timestamp,
    limit: usize,
    skipped: Option<&str>,
) -> StoreResult<Written<Vec<(Tenant, Proposal)>>> {
    let due: Vec<(String, String, String)> = c
        .prepare_cached(
            "SELECT id, account_id, mode FROM proposals WHERE status = 'open' AND expires_at <= ?1
              ORDER BY expires_at LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![ms(now), limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    let mut done = Vec::with_capacity(due.len());
    let mut stale = Vec::new();
    for (id, account_id, mode) in due {
        let t = tenant(account_id, &mode)?;
        match act(c, &t, &id, Action::Expire, now, skipped) {
            Ok((p, keys)) => {
                stale.extend(keys);
                done.push((t, p));
            }
            // One unreadable row must not stop the sweep for everyone else.
            Err(ProposalError::Store(e)) => {
                tracing::error!(proposal = %id, error = %e, "an expired proposal could not be swept; skipped")
            }
            // Expiring books nothing, so only a refusal can remain: it was not due after all.
            Err(_) => {}
        }
    }
    Ok((done, stale))
}

const EMAIL_COLUMNS: &str = "proposal_id, recipient, name, link_sealed, kind, version, sent_version, status, \
                             attempts, next_attempt_at, last_error, sent_at, updated_at, account_id, mode, \
                             leased_until";

/// One `proposal_emails` row as read, before its values are checked.
struct EmailRaw {
    proposal_id: String,
    recipient: String,
    name: Option<String>,
    link_sealed: Option<String>,
    kind: String,
    version: i64,
    sent_version: Option<i64>,
    status: String,
    attempts: u32,
    next_attempt_at: i64,
    last_error: Option<String>,
    sent_at: Option<i64>,
    updated_at: i64,
    account_id: String,
    mode: String,
    lease: Option<i64>,
}

fn read_email(r: &rusqlite::Row<'_>) -> rusqlite::Result<EmailRaw> {
    Ok(EmailRaw {
        proposal_id: r.get(0)?,
        recipient: r.get(1)?,
        name: r.get(2)?,
        link_sealed: r.get(3)?,
        kind: r.get(4)?,
        version: r.get(5)?,
        sent_version: r.get(6)?,
        status: r.get(7)?,
        attempts: r.get(8)?,
        next_attempt_at: r.get(9)?,
        last_error: r.get(10)?,
        sent_at: r.get(11)?,
        updated_at: r.get(12)?,
        account_id: r.get(13)?,
        mode: r.get(14)?,
        lease: r.get(15)?,
    })
}

fn finish_email(raw: EmailRaw) -> StoreResult<(Tenant, ProposalEmail)> {
    let email = ProposalEmail {
        kind: ProposalEmailKind::parse(&raw.kind).ok_or_else(|| corrupt("proposal email kind", &raw.kind))?,
        proposal_id: raw.proposal_id,
        recipient: raw.recipient,
        name: raw.name,
        link_sealed: raw.link_sealed,
        version: raw.version,
        sent_version: raw.sent_version,
        status: raw.status,
        attempts: raw.attempts,
        next_attempt_at: ts(raw.next_attempt_at)?,
        last_error: raw.last_error,
        sent_at: raw.sent_at.map(ts).transpose()?,
        updated_at: ts(raw.updated_at)?,
        lease: raw.lease.map(ts).transpose()?,
    };
    Ok((tenant(raw.account_id, &raw.mode)?, email))
}

/// Claims due proposal emails under a lease, its end the claim's fencing token (as in
/// `writes::claim`).
pub(crate) fn claim_emails(
    c: &Connection,
    now: Timestamp,
    lease: SignedDuration,
    limit: usize,
) -> StoreResult<Vec<(Tenant, ProposalEmail)>> {
    let until = now.saturating_add(lease).unwrap_or(now);
    let rows = c
        .prepare_cached(&format!(
            "UPDATE proposal_emails SET leased_until = max(?1, coalesce(leased_until, 0) + 1)
              WHERE rowid IN (SELECT rowid FROM proposal_emails
                               WHERE status = 'pending' AND next_attempt_at <= ?2
                                 AND (leased_until IS NULL OR leased_until <= ?2)
                               ORDER BY next_attempt_at LIMIT ?3)
             RETURNING {EMAIL_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_map(params![ms(until), ms(now), limit as i64], read_email)?.collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    rows.into_iter().map(finish_email).collect()
}

/// Records a claimed proposal email; false, changing nothing, when its claim no longer holds
/// the row.
pub(crate) fn record_email(
    c: &Connection,
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
    // ?1 the version attempted, ?2 now, ?3 why, ?4 the retry time, ?9 the claim's lease. A
    // newer version of the row (an outcome or a cancellation wanted meanwhile) stays pending
    // for that one. The sealed link goes with a final outcome, and with any send or skip: once
    // the invitation went out or was given up, or the row moved on to an outcome (which needs
    // no link).
    let set = match outcome {
        EmailOutcome::Sent => {
            "sent_version = ?1, sent_at = ?2, attempts = 0, last_error = NULL, link_sealed = NULL,
             status = CASE WHEN version = ?1 THEN 'sent' ELSE 'pending' END"
        }
        EmailOutcome::Skipped(_) => {
            "last_error = CASE WHEN version = ?1 THEN ?3 ELSE last_error END, link_sealed = NULL,
             status = CASE WHEN version = ?1 THEN 'skipped' ELSE 'pending' END"
        }
        // Only a failure of the current version counts towards giving up.
        EmailOutcome::Failed { .. } => {
            "last_error = ?3,
             attempts = CASE WHEN version = ?1 THEN attempts + 1 ELSE attempts END,
             link_sealed = CASE WHEN version = ?1 AND ?4 IS NULL THEN NULL ELSE link_sealed END,
             status = CASE WHEN version = ?1 AND ?4 IS NULL THEN 'failed' ELSE 'pending' END,
             next_attempt_at = CASE WHEN version = ?1 THEN coalesce(?4, next_attempt_at) ELSE next_attempt_at END"
        }
    };
    let recorded = c
        .prepare_cached(&format!(
            "UPDATE proposal_emails SET leased_until = NULL, updated_at = ?2, {set}
              WHERE proposal_id = ?5 AND recipient = ?6 AND account_id = ?7 AND mode = ?8 AND leased_until = ?9"
        ))
        .and_then(|mut s| {
            s.execute(params![
                e.version,
                ms(now),
                why,
                retry_at,
                e.proposal_id,
                e.recipient,
                t.account_id,
                t.mode.as_str(),
                e.lease.map(ms)
            ])
        })
        .map_err(error)?;
    Ok(recorded > 0)
}

pub(crate) fn skip_due_emails(c: &Connection, now: Timestamp, reason: &str) -> StoreResult<usize> {
    c.prepare_cached(
        "UPDATE proposal_emails SET status = 'skipped', last_error = ?1, updated_at = ?2, link_sealed = NULL
          WHERE status = 'pending' AND next_attempt_at <= ?2 AND (leased_until IS NULL OR leased_until <= ?2)",
    )
    .and_then(|mut s| s.execute(params![reason, ms(now)]))
    .map_err(error)
}

pub(crate) fn emails(c: &Connection, t: &Tenant, proposal_id: &str) -> StoreResult<Vec<ProposalEmail>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {EMAIL_COLUMNS} FROM proposal_emails
              WHERE proposal_id = ?1 AND account_id = ?2 AND mode = ?3 ORDER BY rowid"
        ))
        .and_then(|mut s| {
            s.query_map(params![proposal_id, t.account_id, t.mode.as_str()], read_email)?.collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    rows.into_iter().map(|r| finish_email(r).map(|(_, e)| e)).collect()
}
