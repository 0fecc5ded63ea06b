//! Proposals: the aggregate as one JSON document, changed only through the core's state
//! machine inside the writer's transaction; response links by token hash; invitation emails
//! claimed under a lease like booking emails.

use jiff::{SignedDuration, Timestamp};
use kairos_core::proposal::{Action, Effect, Proposal, ProposalEvent, ProposalStatus};
use kairos_store::{
    BookingError, EmailOutcome, Mode, Page, PageRequest, ProposalEmail, ProposalError, ProposalToken, StoreError,
    StoreResult, Tenant, TokenHolder, event_envelope, ids,
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
            "INSERT INTO proposal_emails (proposal_id, recipient, account_id, mode, name, link_sealed, status,
                                          next_attempt_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?7)",
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
            match crate::bookings::create(c, t, &new, now) {
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
            match crate::bookings::cancel(c, t, &booking_id, Some(&reason), now) {
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
    }
    Ok((p, stale))
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

pub(crate) fn expire(c: &Connection, now: Timestamp, limit: usize) -> StoreResult<Written<Vec<(Tenant, Proposal)>>> {
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
        match act(c, &t, &id, Action::Expire, now) {
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

const EMAIL_COLUMNS: &str = "proposal_id, recipient, name, link_sealed, status, attempts, next_attempt_at, \
                             last_error, sent_at, updated_at, account_id, mode";

type EmailRaw = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    u32,
    i64,
    Option<String>,
    Option<i64>,
    i64,
    String,
    String,
);

fn read_email(r: &rusqlite::Row<'_>) -> rusqlite::Result<EmailRaw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    ))
}

fn finish_email(
    (proposal_id, recipient, name, link_sealed, status, attempts, next, last_error, sent_at, updated, account_id, mode): EmailRaw,
) -> StoreResult<(Tenant, ProposalEmail)> {
    let email = ProposalEmail {
        proposal_id,
        recipient,
        name,
        link_sealed,
        status,
        attempts,
        next_attempt_at: ts(next)?,
        last_error,
        sent_at: sent_at.map(ts).transpose()?,
        updated_at: ts(updated)?,
    };
    Ok((tenant(account_id, &mode)?, email))
}

pub(crate) fn claim_emails(
    c: &Connection,
    now: Timestamp,
    lease: SignedDuration,
    limit: usize,
) -> StoreResult<Vec<(Tenant, ProposalEmail)>> {
    let until = now.saturating_add(lease).unwrap_or(now);
    let rows = c
        .prepare_cached(&format!(
            "UPDATE proposal_emails SET leased_until = ?1
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

pub(crate) fn record_email(
    c: &Connection,
    t: &Tenant,
    e: &ProposalEmail,
    outcome: &EmailOutcome,
    now: Timestamp,
) -> StoreResult<()> {
    let (status, last_error, retry_at, sent_at): (&str, Option<&str>, Option<Timestamp>, Option<Timestamp>) =
        match outcome {
            EmailOutcome::Sent => ("sent", None, None, Some(now)),
            EmailOutcome::Skipped(why) => ("skipped", Some(why), None, None),
            EmailOutcome::Failed { error, retry_at: Some(at) } => ("pending", Some(error), Some(*at), None),
            EmailOutcome::Failed { error, retry_at: None } => ("failed", Some(error), None, None),
        };
    c.prepare_cached(
        "UPDATE proposal_emails
            SET status = ?1, last_error = ?2, sent_at = coalesce(?3, sent_at), leased_until = NULL, updated_at = ?4,
                attempts = attempts + CASE WHEN ?1 IN ('pending', 'failed') THEN 1 ELSE 0 END,
                next_attempt_at = coalesce(?5, next_attempt_at),
                link_sealed = CASE WHEN ?1 = 'pending' THEN link_sealed ELSE NULL END
          WHERE proposal_id = ?6 AND recipient = ?7 AND account_id = ?8 AND mode = ?9",
    )
    .and_then(|mut s| {
        s.execute(params![
            status,
            last_error,
            sent_at.map(ms),
            ms(now),
            retry_at.map(ms),
            e.proposal_id,
            e.recipient,
            t.account_id,
            t.mode.as_str()
        ])
    })
    .map_err(error)?;
    Ok(())
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
