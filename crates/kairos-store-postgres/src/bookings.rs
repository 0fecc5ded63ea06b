//! Loading everyone a booking involves, the booking writes, and reading bookings back.
//!
//! Several nodes write bookings at once, so no double booking cannot rest on one process. Each
//! write transaction (READ COMMITTED) first resolves who is involved, then takes a
//! transaction-scoped advisory lock on each of those people and on the business, in one fixed
//! order (so writers touching the same people queue up and never deadlock), and only then
//! reads the held time and re-checks the rules: the reads after the locks see every booking
//! committed by the previous holder. Under all of that the exclusion constraint
//! `booking_participants_no_overlap` is the database's last word; its violation is refused
//! exactly as the rule check refuses a taken slot.
//!
//! Each write records its webhook event and queues its calendar writes in the same
//! transaction; the store tells every node once it is committed (see `db::forward`).

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use kairos_core::availability::Mode as SearchMode;
use kairos_core::booking::BookingEvent;
use kairos_core::plan::Party;
use kairos_core::{Booking, BookingStatus, Business, Interval, Participant, Timeline, Unavailable, User};
use kairos_store::*;
use sqlx::{PgConnection, PgPool};

use crate::db::{self, error};
use crate::directory;
use crate::rows::{BOOKING_COLUMNS, BookingRow, corrupt, json, ms, ts};

/// The longest a booking can hold time; overlap queries rely on the bound.
const MAX_HELD: SignedDuration = kairos_core::booking::MAX_HELD;
/// Busy blocks are stored in pieces at most this long, for the same reason.
pub(crate) const MAX_BLOCK: SignedDuration = SignedDuration::from_hours(7 * 24);

fn interval(start: i64, end: i64) -> Result<Interval, StoreError> {
    Interval::new(ts(start)?, ts(end)?).map_err(|e| corrupt("interval", e))
}

/// Who a [`Who`] names, before their held time is read.
struct Resolved {
    business: Option<Business>,
    members: Vec<Arc<User>>,
    required: Vec<bool>,
}

impl Resolved {
    /// What a write locks: every member and the business, sorted and once each by the SQL.
    fn lock_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.members.iter().map(|m| m.id.clone()).collect();
        keys.extend(self.business.as_ref().map(|b| b.id.clone()));
        keys
    }
}

/// The business and the people `who` names (hosts first), in two statements.
async fn resolve(c: &mut PgConnection, t: &Tenant, who: &Who) -> Result<Resolved, BookingError> {
    let business = match &who.business_id {
        Some(id) => Some(
            directory::business_on(c, t, id, false).await?.ok_or(BookingError::Party(PartyError::UnknownBusiness))?,
        ),
        None => None,
    };
    party::check_named(who).map_err(BookingError::Party)?;
    let mut refs: Vec<UserRef> = Vec::new();
    if !who.named_only {
        refs.extend(business.iter().flat_map(|b| b.hosts.iter().cloned().map(UserRef::Id)));
    }
    let hosts = refs.len();
    refs.extend(who.participants.iter().cloned());
    let mut users = directory::resolve_users_on(c, t, &refs).await?;
    let participants = users.split_off(hosts);
    let (members, required) = party::members(
        who,
        users.into_iter().map(|u| u.map(Arc::new)),
        participants.into_iter().map(|u| u.map(Arc::new)),
        |u| &u.id,
    )
    .map_err(BookingError::Party)?;
    Ok(Resolved { business, members, required })
}

/// Takes the write's advisory locks, held until commit or rollback. Sorted by the lock key
/// itself (PostgreSQL evaluates the volatile lock calls after the ORDER BY), so any two
/// writers take their common locks in the same order.
async fn lock(c: &mut PgConnection, keys: &[String]) -> StoreResult<()> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(k) FROM
            (SELECT DISTINCT hashtextextended(key, 0) AS k FROM UNNEST($1::text[]) AS u(key)) AS keys
          ORDER BY k",
    )
    .bind(keys)
    .execute(c)
    .await
    .map_err(error)?;
    Ok(())
}

/// Reads what holds the time of `resolved` around `window`: two statements, whatever the
/// number of people.
async fn held_time(
    c: &mut PgConnection,
    resolved: Resolved,
    window: Interval,
    now: Timestamp,
    ignore: Option<&str>,
) -> StoreResult<Party> {
    let Resolved { business, members, required } = resolved;
    let margin = Party::busy_margin(business.as_ref());
    let span = window.widened(margin, margin);
    let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
    // One row per member, named by its position in `ids`, with its intervals as two arrays:
    // decoding a few arrays costs far less than thousands of rows (a row is an allocation and
    // a column lookup each in sqlx). Unsorted: `Timeline::new` sorts each member's time.
    let rows: Vec<(i32, Vec<i64>, Vec<i64>)> = if ids.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "WITH m AS (SELECT id, (i - 1)::int4 AS i FROM unnest($1::text[]) WITH ORDINALITY AS u(id, i)),
                  held AS (
                    SELECT m.i, b.start_at AS s, b.end_at AS e FROM m JOIN busy_blocks b ON b.user_id = m.id
                     WHERE b.start_at > $2 - $6 AND b.start_at < $3 AND b.end_at > $2
                    UNION ALL
                    SELECT m.i, p.held_from, p.held_until FROM m JOIN booking_participants p ON p.user_id = m.id
                     WHERE p.holds AND p.held_from > $2 - $7 AND p.held_from < $3 AND p.held_until > $2
                       AND (p.hold_expires_at IS NULL OR p.hold_expires_at > $4)
                       AND p.booking_id IS DISTINCT FROM $5::text)
             SELECT i, array_agg(s), array_agg(e) FROM held GROUP BY i",
        )
        .bind(&ids)
        .bind(ms(span.start()))
        .bind(ms(span.end()))
        .bind(ms(now))
        .bind(ignore)
        .bind(MAX_BLOCK.as_millis() as i64)
        .bind(MAX_HELD.as_millis() as i64)
        .fetch_all(&mut *c)
        .await
        .map_err(error)?
    };
    let mut busy: Vec<Vec<Interval>> = vec![Vec::new(); members.len()];
    for (i, starts, ends) in rows {
        if let Some(member) = usize::try_from(i).ok().and_then(|i| busy.get_mut(i)) {
            member.reserve(starts.len());
            for (start, end) in starts.into_iter().zip(ends) {
                member.push(interval(start, end)?);
            }
        }
    }
    let (mut base_busy, mut booked_starts) = (Vec::new(), Vec::new());
    if let Some(b) = &business {
        // One read covers both the buffers' span and, under a daily cap, the days around.
        let days = b.max_bookings_per_day.map(|_| window.widened(party::DAY_REACH, party::DAY_REACH));
        let reach =
            days.map_or(span, |d| Interval::new(d.start().min(span.start()), d.end().max(span.end())).unwrap_or(span));
        let rows: Vec<(i64, i64, i64, bool)> = sqlx::query_as(
            "SELECT held_from, held_until, start_at, holds_business FROM bookings
              WHERE business_id = $1 AND held_from > $2 - $6 AND held_from < $3 AND held_until > $2
                AND (status = 'confirmed' OR (status = 'pending_payment' AND (hold_expires_at IS NULL OR hold_expires_at > $4)))
                AND id IS DISTINCT FROM $5::text
              ORDER BY held_from",
        )
        .bind(&b.id)
        .bind(ms(reach.start()))
        .bind(ms(reach.end()))
        .bind(ms(now))
        .bind(ignore)
        .bind(MAX_HELD.as_millis() as i64)
        .fetch_all(&mut *c)
        .await
        .map_err(error)?;
        for (from, until, start, holds_business) in rows {
            let held = interval(from, until)?;
            if holds_business && held.overlaps(&span) {
                base_busy.push(held);
            }
            if days.is_some_and(|d| held.overlaps(&d)) {
                booked_starts.push(ts(start)?);
            }
        }
    }
    Ok(Party {
        business: business.map(Arc::new),
        members,
        required,
        busy: busy.into_iter().map(Timeline::new).collect(),
        base_busy: Timeline::new(base_busy),
        booked_starts,
    })
}

/// Everyone `who` names and what holds their time around `window`, read from the database.
pub(crate) async fn load_party(
    db: &PgPool,
    t: &Tenant,
    who: &Who,
    window: Interval,
    now: Timestamp,
) -> Result<Party, BookingError> {
    let mut c = db.acquire().await.map_err(error)?;
    let resolved = resolve(&mut c, t, who).await?;
    Ok(held_time(&mut c, resolved, window, now, who.ignore_booking.as_deref()).await?)
}

/// Resolves `who`, locks everyone involved, then reads their held time: the party a write
/// re-checks its rules against.
async fn locked_party(
    c: &mut PgConnection,
    t: &Tenant,
    who: &Who,
    window: Interval,
    now: Timestamp,
) -> Result<Party, BookingError> {
    let resolved = resolve(c, t, who).await?;
    lock(c, &resolved.lock_keys()).await?;
    Ok(held_time(c, resolved, window, now, who.ignore_booking.as_deref()).await?)
}

fn refusal(party: &Party, reason: Unavailable) -> BookingError {
    let member = match &reason {
        Unavailable::Busy { member } | Unavailable::OutsideWorkingHours { member } => *member,
        _ => None,
    };
    BookingError::Unavailable(Refusal {
        who: member.and_then(|i| party.members.get(i)).map(|m| m.email.clone()),
        reason,
    })
}

/// Maps a write failure: the exclusion constraint's refusal (someone's time was taken after
/// all) becomes the rule check's refusal for a busy member, naming them when the database's
/// detail does; anything else is a store failure.
fn overlap_or(party: &Party, people: &[&str]) -> impl Fn(sqlx::Error) -> BookingError {
    move |e| {
        if !db::is_overlap(&e) {
            return BookingError::Store(error(e));
        }
        let detail = e
            .as_database_error()
            .and_then(|d| d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
            .and_then(|d| d.detail().map(str::to_string))
            .unwrap_or_default();
        let id = people.iter().find(|id| detail.contains(**id)).or(people.first());
        let member = id.and_then(|id| party.members.iter().position(|m| m.id == *id));
        refusal(party, Unavailable::Busy { member })
    }
}

/// The time a booking keeps from others: its interval widened by its business's buffers. At
/// most [`MAX_HELD`], which overlap queries rely on; the API never asks for more.
fn held(party: &Party, interval: Interval) -> StoreResult<Interval> {
    let held = match &party.business {
        Some(b) => interval.widened(
            SignedDuration::from_mins(i64::from(b.buffer_before_minutes)),
            SignedDuration::from_mins(i64::from(b.buffer_after_minutes)),
        ),
        None => interval,
    };
    if held.duration() > MAX_HELD {
        return Err(StoreError::Backend(format!(
            "a booking may hold at most {} hours with its buffers",
            MAX_HELD.as_hours()
        )));
    }
    Ok(held)
}

fn default_title(party: &Party, customer_name: Option<&str>) -> String {
    match (&party.business, customer_name) {
        (Some(b), Some(name)) => format!("{} with {name}", b.name),
        (Some(b), None) => b.name.clone(),
        (None, _) => "Meeting".to_string(),
    }
}

/// Frees the time of these people's lapsed payment holds, so the exclusion constraint (which
/// knows no clock) does not count them.
async fn clear_lapsed_holds(c: &mut PgConnection, people: &[String], now: Timestamp) -> StoreResult<()> {
    sqlx::query(
        "UPDATE booking_participants SET holds = false
          WHERE user_id = ANY($1) AND holds AND hold_expires_at IS NOT NULL AND hold_expires_at <= $2",
    )
    .bind(people)
    .bind(ms(now))
    .execute(c)
    .await
    .map_err(error)?;
    Ok(())
}

pub(crate) async fn create(db: &PgPool, t: &Tenant, new: &NewBooking, now: Timestamp) -> Result<Booking, BookingError> {
    let mut tx = db.begin().await.map_err(error)?;
    let booking = create_on(&mut tx, t, new, now).await?;
    tx.commit().await.map_err(error)?;
    Ok(booking)
}

/// Creates a booking inside the caller's transaction, which commits it (or rolls it back on
/// an error: after a refusal by the exclusion constraint the transaction is aborted). Takes
/// the people's advisory locks like every booking write; the caller may hold row locks of
/// its own taken before them (a proposal's), never advisory locks.
pub(crate) async fn create_on(
    c: &mut PgConnection,
    t: &Tenant,
    new: &NewBooking,
    now: Timestamp,
) -> Result<Booking, BookingError> {
    let party = locked_party(c, t, &new.who, new.interval, now).await?;
    kairos_store::party::refuse_unpayable(&party, new)?;
    let free = party.check(new.interval, now, new.mode).map_err(|reason| refusal(&party, reason))?;
    // Any mode books everyone required and the first free member of the pool (`free` lists
    // the free pool members; everyone when there is no pool).
    let has_pool = new.mode == SearchMode::Any && party.required.iter().any(|r| !r);
    let booked: Vec<&Arc<User>> = party
        .members
        .iter()
        .enumerate()
        .filter(|(i, _)| !has_pool || party.required[*i] || free.first() == Some(i))
        .map(|(_, u)| u)
        .collect();
    let paid = party.business.as_ref().filter(|b| b.is_paid());
    let held = held(&party, new.interval)?;
    let booking = Booking {
        id: ids::new_id("bkg"),
        status: if paid.is_some() { BookingStatus::PendingPayment } else { BookingStatus::Confirmed },
        business_id: party.business.as_ref().map(|b| b.id.clone()),
        participants: booked
            .iter()
            .map(|u| Participant { id: u.id.clone(), email: u.email.clone(), name: u.name.clone() })
            .collect(),
        customer_name: new.customer_name.clone(),
        customer_email: new.customer_email.clone(),
        customer_timezone: new.customer_timezone.clone(),
        title: new.title.clone().unwrap_or_else(|| default_title(&party, new.customer_name.as_deref())),
        notes: new.notes.clone(),
        description: new.description.clone(),
        metadata: new.metadata.clone(),
        start_time: new.interval.start(),
        end_time: new.interval.end(),
        created_at: now,
        updated_at: now,
        checkout_url: None,
        payment_amount: paid.and_then(|b| b.price_amount),
        payment_currency: paid.and_then(|b| b.price_currency.clone()),
        hold_expires_at: paid.map(|_| now + PAYMENT_HOLD),
        cancelled_at: None,
        cancellation_reason: None,
    };
    sqlx::query(
        "INSERT INTO bookings (id, account_id, mode, business_id, status, customer_name, customer_email, title, notes, description,
            metadata, start_at, end_at, held_from, held_until, hold_expires_at, payment_amount, payment_currency, checkout_url,
            created_at, updated_at, holds_business, customer_timezone)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20, $21, $22)",
    )
    .bind(&booking.id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&booking.business_id)
    .bind(booking.status.as_str())
    .bind(&booking.customer_name)
    .bind(&booking.customer_email)
    .bind(&booking.title)
    .bind(&booking.notes)
    .bind(&booking.description)
    .bind(json(&booking.metadata))
    .bind(ms(booking.start_time))
    .bind(ms(booking.end_time))
    .bind(ms(held.start()))
    .bind(ms(held.end()))
    .bind(booking.hold_expires_at.map(ms))
    .bind(booking.payment_amount)
    .bind(&booking.payment_currency)
    .bind(&booking.checkout_url)
    .bind(ms(now))
    .bind(booking.participants.is_empty())
    .bind(&booking.customer_timezone)
    .execute(&mut *c)
    .await
    .map_err(error)?;
    if !booking.participants.is_empty() {
        let people: Vec<String> = booking.participants.iter().map(|p| p.id.clone()).collect();
        clear_lapsed_holds(c, &people, now).await?;
        let emails: Vec<&str> = booking.participants.iter().map(|p| p.email.as_str()).collect();
        let names: Vec<Option<&str>> = booking.participants.iter().map(|p| p.name.as_deref()).collect();
        let ids: Vec<&str> = people.iter().map(String::as_str).collect();
        sqlx::query(
            "INSERT INTO booking_participants
                (booking_id, user_id, email, name, position, held_from, held_until, holds, hold_expires_at)
             SELECT $1, p.user_id, p.email, p.name, p.position - 1, $5, $6, true, $7
               FROM UNNEST($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS p(user_id, email, name, position)",
        )
        .bind(&booking.id)
        .bind(&people)
        .bind(&emails)
        .bind(&names)
        .bind(ms(held.start()))
        .bind(ms(held.end()))
        .bind(booking.hold_expires_at.map(ms))
        .execute(&mut *c)
        .await
        .map_err(overlap_or(&party, &ids))?;
    }
    record_event(c, t, BookingEvent::Created, &booking, now).await?;
    Ok(booking)
}

/// Records the booking's webhook event and queues its calendar writes, in the caller's
/// transaction (the store tells every node once that commits).
async fn record_event(
    c: &mut PgConnection,
    t: &Tenant,
    event: BookingEvent,
    booking: &Booking,
    now: Timestamp,
) -> StoreResult<()> {
    let id = ids::new_id("evt");
    // Every booking change also re-wants its event on the participants' own calendars.
    crate::writes::enqueue(&mut *c, t, booking, now).await?;
    crate::emails::enqueue(&mut *c, t, event, booking, now).await?;
    let payload = event_envelope(&id, event.as_str(), now, &BookingEventData { booking });
    sqlx::query(
        "INSERT INTO outbox_events (id, account_id, mode, event_type, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(event.as_str())
    .bind(&payload)
    .bind(ms(now))
    .execute(&mut *c)
    .await
    .map_err(error)?;
    Ok(())
}

/// A booking with its participants; `lock` first locks its row `FOR UPDATE` (writes to one
/// booking queue up behind each other), then reads it in a statement of its own, whose fresh
/// snapshot sees what the previous writer committed — a locking read would re-read the row
/// but not its participants' subquery (see `directory::business_on`).
async fn get_on(c: &mut PgConnection, t: &Tenant, id: &str, lock: bool) -> StoreResult<Option<Booking>> {
    if lock {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM bookings WHERE id = $1 AND account_id = $2 AND mode = $3 FOR UPDATE")
                .bind(id)
                .bind(&t.account_id)
                .bind(t.mode.as_str())
                .fetch_optional(&mut *c)
                .await
                .map_err(error)?;
        if found.is_none() {
            return Ok(None);
        }
    }
    let sql = format!("SELECT {BOOKING_COLUMNS} FROM bookings WHERE id = $1 AND account_id = $2 AND mode = $3");
    let row: Option<BookingRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .fetch_optional(c)
        .await
        .map_err(error)?;
    row.map(BookingRow::into_booking).transpose()
}

pub(crate) async fn get(db: &PgPool, t: &Tenant, id: &str) -> StoreResult<Option<Booking>> {
    get_on(&mut *db.acquire().await.map_err(error)?, t, id, false).await
}

pub(crate) async fn list(db: &PgPool, t: &Tenant, f: &BookingFilter, page: &PageRequest) -> StoreResult<Page<Booking>> {
    let sql = format!(
        "SELECT {BOOKING_COLUMNS} FROM bookings
          WHERE account_id = $1 AND mode = $2 AND ($3::text IS NULL OR id < $3)
            AND ($4::text IS NULL OR business_id = $4) AND ($5::text IS NULL OR status = $5)
            AND ($6::bigint IS NULL OR end_at > $6) AND ($7::bigint IS NULL OR start_at < $7)
            AND ($8::text IS NULL OR customer_email = $8)
          ORDER BY id DESC LIMIT $9"
    );
    let rows: Vec<BookingRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .bind(&page.cursor)
        .bind(&f.business_id)
        .bind(f.status.map(BookingStatus::as_str))
        .bind(f.from.map(ms))
        .bind(f.to.map(ms))
        .bind(&f.customer_email)
        .bind(page.limit as i64 + 1)
        .fetch_all(db)
        .await
        .map_err(error)?;
    let bookings = rows.into_iter().map(BookingRow::into_booking).collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(bookings, page.limit, |b| &b.id))
}

pub(crate) async fn reschedule(
    db: &PgPool,
    t: &Tenant,
    id: &str,
    to: Interval,
    now: Timestamp,
) -> Result<Booking, BookingError> {
    let mut tx = db.begin().await.map_err(error)?;
    let mut booking = get_on(&mut tx, t, id, true).await?.ok_or(StoreError::NotFound)?;
    if booking.status == BookingStatus::Cancelled {
        return Err(BookingError::Cancelled);
    }
    let who = Who {
        business_id: booking.business_id.clone(),
        participants: booking.participants.iter().map(|p| UserRef::Id(p.id.clone())).collect(),
        ignore_booking: Some(booking.id.clone()),
        named_only: true,
    };
    let party = locked_party(&mut tx, t, &who, to, now).await?;
    party.check(to, now, SearchMode::Collective).map_err(|reason| refusal(&party, reason))?;
    let held = held(&party, to)?;
    sqlx::query(
        "UPDATE bookings SET start_at = $1, end_at = $2, held_from = $3, held_until = $4, updated_at = $5 WHERE id = $6",
    )
    .bind(ms(to.start()))
    .bind(ms(to.end()))
    .bind(ms(held.start()))
    .bind(ms(held.end()))
    .bind(ms(now))
    .bind(&booking.id)
    .execute(&mut *tx)
    .await
    .map_err(error)?;
    let people: Vec<String> = booking.participants.iter().map(|p| p.id.clone()).collect();
    if !people.is_empty() {
        clear_lapsed_holds(&mut tx, &people, now).await?;
        let ids: Vec<&str> = people.iter().map(String::as_str).collect();
        sqlx::query("UPDATE booking_participants SET held_from = $1, held_until = $2 WHERE booking_id = $3")
            .bind(ms(held.start()))
            .bind(ms(held.end()))
            .bind(&booking.id)
            .execute(&mut *tx)
            .await
            .map_err(overlap_or(&party, &ids))?;
    }
    booking.start_time = to.start();
    booking.end_time = to.end();
    booking.updated_at = now;
    record_event(&mut tx, t, BookingEvent::Updated, &booking, now).await?;
    tx.commit().await.map_err(error)?;
    Ok(booking)
}

pub(crate) async fn cancel(
    db: &PgPool,
    t: &Tenant,
    id: &str,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<Booking, BookingError> {
    let mut tx = db.begin().await.map_err(error)?;
    let booking = cancel_by_id_on(&mut tx, t, id, reason, now).await?;
    tx.commit().await.map_err(error)?;
    Ok(booking)
}

/// Cancels booking `id` inside the caller's transaction (locking its row); cancelling again
/// changes nothing. `NotFound` when the tenant has no such booking.
pub(crate) async fn cancel_by_id_on(
    c: &mut PgConnection,
    t: &Tenant,
    id: &str,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<Booking, BookingError> {
    let booking = get_on(c, t, id, true).await?.ok_or(StoreError::NotFound)?;
    if booking.status == BookingStatus::Cancelled {
        return Ok(booking);
    }
    Ok(cancel_on(c, t, booking, reason, now).await?)
}

/// Cancels a booking already locked by the caller's transaction.
async fn cancel_on(
    c: &mut PgConnection,
    t: &Tenant,
    mut booking: Booking,
    reason: Option<&str>,
    now: Timestamp,
) -> StoreResult<Booking> {
    sqlx::query(
        "UPDATE bookings SET status = 'cancelled', cancelled_at = $1, cancellation_reason = $2, updated_at = $1 WHERE id = $3",
    )
    .bind(ms(now))
    .bind(reason)
    .bind(&booking.id)
    .execute(&mut *c)
    .await
    .map_err(error)?;
    sqlx::query("UPDATE booking_participants SET holds = false WHERE booking_id = $1")
        .bind(&booking.id)
        .execute(&mut *c)
        .await
        .map_err(error)?;
    booking.status = BookingStatus::Cancelled;
    booking.cancelled_at = Some(now);
    booking.cancellation_reason = reason.map(str::to_string);
    booking.updated_at = now;
    record_event(c, t, BookingEvent::Cancelled, &booking, now).await?;
    Ok(booking)
}

/// Stores the checkout session of a payment hold.
pub(crate) async fn set_checkout(
    db: &PgPool,
    t: &Tenant,
    id: &str,
    session_id: &str,
    url: &str,
    now: Timestamp,
) -> StoreResult<Booking> {
    let mut tx = db.begin().await.map_err(error)?;
    let n = sqlx::query(
        "UPDATE bookings SET checkout_session_id = $1, checkout_url = $2, updated_at = $3
          WHERE id = $4 AND account_id = $5 AND mode = $6",
    )
    .bind(session_id)
    .bind(url)
    .bind(ms(now))
    .bind(id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .execute(&mut *tx)
    .await
    .map_err(error)?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    let booking = get_on(&mut tx, t, id, false).await?.ok_or(StoreError::NotFound)?;
    tx.commit().await.map_err(error)?;
    Ok(booking)
}

/// Booking `id`, locked, with its tenant, when it was opened for checkout session `session_id`.
async fn payment_booking(c: &mut PgConnection, id: &str, session_id: &str) -> StoreResult<Option<(Tenant, Booking)>> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT account_id, mode FROM bookings WHERE id = $1 AND checkout_session_id = $2 FOR UPDATE")
            .bind(id)
            .bind(session_id)
            .fetch_optional(&mut *c)
            .await
            .map_err(error)?;
    let Some((account_id, mode)) = row else { return Ok(None) };
    let t = crate::calendars::tenant_of(account_id, &mode)?;
    let booking = get_on(c, &t, id, false).await?.ok_or(StoreError::NotFound)?;
    Ok(Some((t, booking)))
}

/// Why an unpaid hold ended when the sweep ended it; a late payment may still claim the time
/// if it is free.
const HOLD_LAPSED: &str = "payment_not_completed";

pub(crate) async fn complete_payment(
    db: &PgPool,
    id: &str,
    session_id: &str,
    amount: i64,
    currency: &str,
    now: Timestamp,
) -> StoreResult<Option<(Tenant, PaymentApplied)>> {
    let mut tx = db.begin().await.map_err(error)?;
    let Some((t, mut booking)) = payment_booking(&mut tx, id, session_id).await? else { return Ok(None) };
    let lapsed = match booking.status {
        BookingStatus::Confirmed => return Ok(Some((t, PaymentApplied::AlreadyConfirmed(booking)))),
        BookingStatus::PendingPayment => !booking.holds_time(now),
        BookingStatus::Cancelled if booking.cancellation_reason.as_deref() == Some(HOLD_LAPSED) => true,
        BookingStatus::Cancelled => return Ok(Some((t, PaymentApplied::Cancelled(booking)))),
    };
    if !booking.is_price(amount, currency) {
        return Ok(Some((t, PaymentApplied::Mismatch(booking))));
    }
    let people: Vec<String> = booking.participants.iter().map(|p| p.id.clone()).collect();
    if lapsed {
        // The hold ran out before the payment arrived: the time is the customer's only if
        // nobody took it meanwhile, by the same rules (and locks) as any booking — those of
        // notice and "not in the past" as of when the hold was made, which it met. (A live
        // hold needs no re-check: the exclusion constraint still counts it.)
        let span = Interval::new(booking.start_time, booking.end_time).map_err(|e| corrupt("interval", e))?;
        let who = Who {
            business_id: booking.business_id.clone(),
            participants: people.iter().map(|p| UserRef::Id(p.clone())).collect(),
            ignore_booking: Some(booking.id.clone()),
            named_only: true,
        };
        let free = match locked_party(&mut tx, &t, &who, span, now).await {
            Ok(party) => party.check(span, booking.created_at, SearchMode::Collective).is_ok(),
            Err(BookingError::Store(e)) => return Err(e),
            Err(_) => false,
        };
        if !free {
            let booking = if booking.status == BookingStatus::PendingPayment {
                cancel_on(&mut tx, &t, booking, Some("payment_too_late"), now).await?
            } else {
                // A lapsed hold paid after its time was taken: say so (the customer was
                // charged and is owed a refund), not that nothing was paid.
                sqlx::query(
                    "UPDATE bookings SET cancellation_reason = 'payment_too_late', updated_at = $1 WHERE id = $2",
                )
                .bind(ms(now))
                .bind(&booking.id)
                .execute(&mut *tx)
                .await
                .map_err(error)?;
                Booking { cancellation_reason: Some("payment_too_late".into()), updated_at: now, ..booking }
            };
            tx.commit().await.map_err(error)?;
            return Ok(Some((t, PaymentApplied::TooLate(booking))));
        }
        clear_lapsed_holds(&mut tx, &people, now).await?;
    }
    sqlx::query(
        "UPDATE bookings SET status = 'confirmed', hold_expires_at = NULL, payment_amount = $1, payment_currency = $2,
                cancelled_at = NULL, cancellation_reason = NULL, updated_at = $3 WHERE id = $4",
    )
    .bind(amount)
    .bind(currency)
    .bind(ms(now))
    .bind(&booking.id)
    .execute(&mut *tx)
    .await
    .map_err(error)?;
    // Under the people's locks and after the re-check, the exclusion constraint cannot
    // object; if it did, the error rolls everything back and Stripe retries the event.
    sqlx::query("UPDATE booking_participants SET holds = true, hold_expires_at = NULL WHERE booking_id = $1")
        .bind(&booking.id)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
    booking.status = BookingStatus::Confirmed;
    booking.hold_expires_at = None;
    booking.payment_amount = Some(amount);
    booking.payment_currency = Some(currency.to_string());
    booking.cancelled_at = None;
    booking.cancellation_reason = None;
    booking.updated_at = now;
    record_event(&mut tx, &t, BookingEvent::Confirmed, &booking, now).await?;
    tx.commit().await.map_err(error)?;
    Ok(Some((t, PaymentApplied::Confirmed(booking))))
}

pub(crate) async fn end_payment_hold(
    db: &PgPool,
    id: &str,
    session_id: &str,
    reason: &str,
    now: Timestamp,
) -> StoreResult<Option<(Tenant, Booking)>> {
    let mut tx = db.begin().await.map_err(error)?;
    let Some((t, booking)) = payment_booking(&mut tx, id, session_id).await? else { return Ok(None) };
    if booking.status != BookingStatus::PendingPayment {
        return Ok(Some((t, booking)));
    }
    let booking = cancel_on(&mut tx, &t, booking, Some(reason), now).await?;
    tx.commit().await.map_err(error)?;
    Ok(Some((t, booking)))
}

pub(crate) async fn expire_payment_holds(
    db: &PgPool,
    now: Timestamp,
    limit: usize,
) -> StoreResult<Vec<(Tenant, Booking, Option<String>)>> {
    // One hold per transaction, under the advisory locks of its people and business, the
    // ones every booking write takes first: a write clearing lapsed holds of the same people
    // (`clear_lapsed_holds`) then runs before or after this, never interleaved with it.
    let mut out = Vec::new();
    while out.len() < limit {
        let mut tx = db.begin().await.map_err(error)?;
        // SKIP LOCKED: two nodes sweeping at once take different holds.
        let due: Option<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, account_id, mode, checkout_session_id FROM bookings
              WHERE status = 'pending_payment' AND hold_expires_at <= $1
              ORDER BY hold_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(ms(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(error)?;
        let Some((id, account_id, mode, session)) = due else { break };
        let t = crate::calendars::tenant_of(account_id, &mode)?;
        let booking = get_on(&mut tx, &t, &id, false).await?.ok_or(StoreError::NotFound)?;
        let mut keys: Vec<String> = booking.participants.iter().map(|p| p.id.clone()).collect();
        keys.extend(booking.business_id.clone());
        lock(&mut tx, &keys).await?;
        let booking = cancel_on(&mut tx, &t, booking, Some(HOLD_LAPSED), now).await?;
        tx.commit().await.map_err(error)?;
        out.push((t, booking, session));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use kairos_core::schedule::{DateOverrides, Schedule, WorkingHours};
    use kairos_core::{Unavailable, Zone};

    use super::*;
    use crate::testing::FreshDatabase;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// The exclusion constraint catches what the rule check missed (here a held span longer
    /// than overlap queries assume), and its violation is refused like a busy member.
    #[tokio::test]
    async fn the_exclusion_constraint_refuses_like_the_rules() {
        let Some(fresh) = FreshDatabase::create().await else { return };
        let store = fresh.store().await;
        let db = store.pool();
        let now = at("2030-01-01T08:00:00Z");
        let (_, key) = keys::generate(Mode::Test);
        let account = directory::create_api_key(db, "acme", Mode::Test, &key, now).await.unwrap();
        let t = Tenant { account_id: account.id, mode: Mode::Test };
        let alice = User {
            id: ids::new_id("usr"),
            email: "alice@example.com".into(),
            name: None,
            schedule: Schedule::new(Zone::utc(), WorkingHours::always(), DateOverrides::default()),
            created_at: now,
            updated_at: now,
        };
        directory::insert_user(db, &t, &alice).await.unwrap();
        let new = |a: &str, b: &str| NewBooking {
            who: Who { participants: vec![UserRef::Id(alice.id.clone())], ..Who::default() },
            mode: SearchMode::Collective,
            interval: Interval::new(at(a), at(b)).unwrap(),
            customer_name: None,
            customer_email: None,
            customer_timezone: None,
            title: None,
            notes: None,
            description: None,
            metadata: Default::default(),
            payment_holds: true,
        };
        let first = create(db, &t, &new("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z"), now).await.unwrap();
        sqlx::query("UPDATE booking_participants SET held_from = held_from - $1 WHERE booking_id = $2")
            .bind(SignedDuration::from_hours(96).as_millis() as i64)
            .bind(&first.id)
            .execute(db)
            .await
            .unwrap();
        match create(db, &t, &new("2030-01-02T09:00:00Z", "2030-01-02T09:30:00Z"), now).await {
            Err(BookingError::Unavailable(r)) => assert_eq!(
                r,
                Refusal { reason: Unavailable::Busy { member: Some(0) }, who: Some("alice@example.com".into()) }
            ),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings").fetch_one(db).await.unwrap();
        assert_eq!(count, 1, "nothing written");
    }
}
