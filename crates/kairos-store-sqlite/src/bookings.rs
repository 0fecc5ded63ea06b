//! Loading everyone a booking involves, the booking writes (each re-checking the rules inside
//! the write transaction and recording its webhook event there too), reading bookings back,
//! and loading the cache's entries.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use kairos_core::availability::Mode as SearchMode;
use kairos_core::booking::BookingEvent;
use kairos_core::plan::Party;
use kairos_core::{Booking, BookingStatus, Business, Interval, Participant, Timeline, Unavailable, User};
use kairos_store::*;
use rusqlite::{Connection, OptionalExtension, params};

use crate::cache::{CacheKey, CachedBusiness, CachedUser, HeldTime};
use crate::db::error;
use crate::directory;
use crate::memo::Memo;
use crate::rows::{
    BOOKING_COLUMNS, BUSINESS_COLUMNS, BookingRow, BusinessRow, USER_COLUMNS, UserRow, corrupt, json, ms, ts,
};

/// The longest a booking can hold time; overlap queries rely on the bound.
pub(crate) const MAX_HELD: SignedDuration = kairos_core::booking::MAX_HELD;
/// Busy blocks are stored in pieces at most this long, for the same reason.
pub(crate) const MAX_BLOCK: SignedDuration = SignedDuration::from_hours(7 * 24);

/// A booking holds time while confirmed, or awaiting payment until its hold lapses (?4 = now).
const HOLDING: &str =
    "(status = 'confirmed' OR (status = 'pending_payment' AND (hold_expires_at IS NULL OR hold_expires_at > ?4)))";

fn interval(start: i64, end: i64) -> Result<Interval, StoreError> {
    Interval::new(ts(start)?, ts(end)?).map_err(|e| corrupt("interval", e))
}

/// Everyone `who` names and what holds their time around `window`, read from the database
/// (the people and the business through the writer's memo, when given one).
pub(crate) fn load_party(
    c: &Connection,
    t: &Tenant,
    who: &Who,
    window: Interval,
    now: Timestamp,
    mut memo: Option<&mut Memo>,
) -> Result<Party, BookingError> {
    let business = match &who.business_id {
        Some(id) => {
            Some(business_of(c, t, id, memo.as_deref_mut())?.ok_or(BookingError::Party(PartyError::UnknownBusiness))?)
        }
        None => None,
    };
    party::check_named(who).map_err(BookingError::Party)?;
    let host_refs: Vec<UserRef> = business.iter().flat_map(|b| b.hosts.iter().cloned().map(UserRef::Id)).collect();
    let hosts = if who.named_only { Vec::new() } else { users_of(c, t, &host_refs, memo.as_deref_mut())? };
    let participants = users_of(c, t, &who.participants, memo)?;
    let (members, required) = party::members(who, hosts, participants, |u| &u.id).map_err(BookingError::Party)?;
    let margin = Party::busy_margin(business.as_deref());
    let span = window.widened(margin, margin);
    let ignore = who.ignore_booking.as_deref();
    let busy = members.iter().map(|m| member_busy(c, &m.id, span, now, ignore)).collect::<Result<Vec<_>, _>>()?;
    let (mut base_busy, mut booked_starts) = (Vec::new(), Vec::new());
    if let Some(b) = &business {
        base_busy = business_busy(c, &b.id, span, now, ignore)?
            .into_iter()
            .filter(|(_, _, holds_business)| *holds_business)
            .map(|(held, _, _)| held)
            .collect();
        if b.max_bookings_per_day.is_some() {
            let days = window.widened(party::DAY_REACH, party::DAY_REACH);
            booked_starts =
                business_busy(c, &b.id, days, now, ignore)?.into_iter().map(|(_, start, _)| start).collect();
        }
    }
    let busy = busy.into_iter().map(Timeline::new).collect();
    Ok(Party { business, members, required, busy, base_busy: Timeline::new(base_busy), booked_starts })
}

/// The business `id`, through `memo` when there is one.
fn business_of(c: &Connection, t: &Tenant, id: &str, memo: Option<&mut Memo>) -> StoreResult<Option<Arc<Business>>> {
    let Some(memo) = memo else {
        return Ok(directory::business(c, t, id)?.map(Arc::new));
    };
    if let Some(known) = memo.business(t, id) {
        return Ok(Some(known));
    }
    let found = directory::business(c, t, id)?.map(Arc::new);
    if let Some(b) = &found {
        memo.put_business(t, b.clone());
    }
    Ok(found)
}

/// The user `id`, through `memo` when there is one.
fn user_of(c: &Connection, t: &Tenant, id: &str, memo: Option<&mut Memo>) -> StoreResult<Option<Arc<User>>> {
    let Some(memo) = memo else {
        return Ok(directory::user(c, t, id)?.map(Arc::new));
    };
    if let Some(known) = memo.user(t, id) {
        return Ok(Some(known));
    }
    let found = directory::user(c, t, id)?.map(Arc::new);
    if let Some(u) = &found {
        memo.put_user(t, u.clone());
    }
    Ok(found)
}

/// The users `refs` name (`None` for an unknown one), those named by id through `memo` when
/// there is one.
fn users_of(
    c: &Connection,
    t: &Tenant,
    refs: &[UserRef],
    mut memo: Option<&mut Memo>,
) -> StoreResult<Vec<Option<Arc<User>>>> {
    refs.iter()
        .map(|r| match r {
            UserRef::Id(id) => user_of(c, t, id, memo.as_deref_mut()),
            UserRef::Email(email) => Ok(directory::user_by_email(c, t, email)?.map(Arc::new)),
        })
        .collect()
}

/// Calendar busy blocks and holding bookings of one person overlapping `span`, sorted.
fn member_busy(
    c: &Connection,
    user_id: &str,
    span: Interval,
    now: Timestamp,
    ignore: Option<&str>,
) -> StoreResult<Vec<Interval>> {
    let rows: Vec<(i64, i64)> = c
        .prepare_cached(
            "SELECT start_at, end_at FROM busy_blocks
              WHERE user_id = ?1 AND start_at > ?2 - ?6 AND start_at < ?3 AND end_at > ?2
             UNION ALL
             SELECT held_from, held_until FROM booking_participants
              WHERE user_id = ?1 AND holds = 1
                AND held_from > ?2 - coalesce((SELECT longest_hold_ms FROM users WHERE id = ?1), ?7)
                AND held_from < ?3 AND held_until > ?2
                AND (hold_expires_at IS NULL OR hold_expires_at > ?4) AND booking_id IS NOT ?5
             ORDER BY 1",
        )
        .and_then(|mut s| {
            let bounds = (MAX_BLOCK.as_millis() as i64, MAX_HELD.as_millis() as i64);
            s.query_map(params![user_id, ms(span.start()), ms(span.end()), ms(now), ignore, bounds.0, bounds.1], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect()
        })
        .map_err(error)?;
    rows.into_iter().map(|(s, e)| interval(s, e)).collect()
}

/// Holding bookings of a business whose held time overlaps `span`, sorted: (held span, start,
/// whether it holds the business's own time).
fn business_busy(
    c: &Connection,
    business_id: &str,
    span: Interval,
    now: Timestamp,
    ignore: Option<&str>,
) -> StoreResult<Vec<(Interval, Timestamp, bool)>> {
    let sql = format!(
        "SELECT held_from, held_until, start_at, holds_business FROM bookings
          WHERE business_id = ?1 AND held_from > ?2 - coalesce((SELECT longest_hold_ms FROM businesses WHERE id = ?1), ?6)
            AND held_from < ?3 AND held_until > ?2 AND {HOLDING} AND id IS NOT ?5
          ORDER BY held_from"
    );
    let rows: Vec<(i64, i64, i64, bool)> = c
        .prepare_cached(&sql)
        .and_then(|mut s| {
            let bound = MAX_HELD.as_millis() as i64;
            s.query_map(params![business_id, ms(span.start()), ms(span.end()), ms(now), ignore, bound], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect()
        })
        .map_err(error)?;
    rows.into_iter().map(|(from, until, start, own)| Ok((interval(from, until)?, ts(start)?, own))).collect()
}

/// A user with everything that holds their time and ends after `since`, for the cache.
pub(crate) fn user_entry(c: &Connection, id: &str, since: Timestamp) -> StoreResult<Option<CachedUser>> {
    let sql = format!("SELECT account_id, mode, {USER_COLUMNS} FROM users WHERE id = ?1");
    let row = c
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row([id], |r| {
                let (account_id, mode): (String, String) = (r.get(0)?, r.get(1)?);
                let user = UserRow::read(r, 2)?;
                Ok((account_id, mode, user))
            })
            .optional()
        })
        .map_err(error)?;
    let Some((account_id, mode, row)) = row else { return Ok(None) };
    let tenant = Tenant { account_id, mode: Mode::parse(&mode).ok_or_else(|| corrupt("mode", &mode))? };
    let rows: Vec<(i64, i64, Option<i64>)> = c
        .prepare_cached(
            "SELECT start_at, end_at, NULL FROM busy_blocks WHERE user_id = ?1 AND start_at > ?2 - ?3 AND end_at > ?2
             UNION ALL
             SELECT held_from, held_until, hold_expires_at FROM booking_participants
              WHERE user_id = ?1 AND holds = 1 AND held_from > ?2 - ?4 AND held_until > ?2
             ORDER BY 1",
        )
        .and_then(|mut s| {
            s.query_map(params![id, ms(since), MAX_BLOCK.as_millis() as i64, MAX_HELD.as_millis() as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect()
        })
        .map_err(error)?;
    let held = rows
        .into_iter()
        .map(|(from, until, expires)| Ok((interval(from, until)?, expires.map(ts).transpose()?)))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(CachedUser { tenant, user: Arc::new(row.into_user()?), held: HeldTime::new(held), since }))
}

/// A business with its holding bookings that end after `since`, for the cache.
pub(crate) fn business_entry(c: &Connection, id: &str, since: Timestamp) -> StoreResult<Option<CachedBusiness>> {
    let sql = format!("SELECT account_id, mode, {BUSINESS_COLUMNS} FROM businesses WHERE id = ?1");
    let row = c
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row([id], |r| {
                let (account_id, mode): (String, String) = (r.get(0)?, r.get(1)?);
                Ok((account_id, mode, BusinessRow::read(r, 2)?))
            })
            .optional()
        })
        .map_err(error)?;
    let Some((account_id, mode, row)) = row else { return Ok(None) };
    let tenant = Tenant { account_id, mode: Mode::parse(&mode).ok_or_else(|| corrupt("mode", &mode))? };
    let hosts = directory::hosts_of(c, id)?;
    let rows: Vec<(i64, i64, i64, Option<i64>, bool)> = c
        .prepare_cached(
            "SELECT held_from, held_until, start_at, CASE WHEN status = 'pending_payment' THEN hold_expires_at END, holds_business
               FROM bookings
              WHERE business_id = ?1 AND held_from > ?2 - ?3 AND held_until > ?2 AND status IN ('confirmed', 'pending_payment')
              ORDER BY held_from",
        )
        .and_then(|mut s| {
            s.query_map(params![id, ms(since), MAX_HELD.as_millis() as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect()
        })
        .map_err(error)?;
    let rows = rows
        .into_iter()
        .map(|(from, until, start, expires, own)| {
            Ok((interval(from, until)?, ts(start)?, expires.map(ts).transpose()?, own))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let starts = rows.iter().map(|(_, start, expires, _)| (*start, *expires)).collect();
    let held = HeldTime::new(rows.into_iter().filter(|(.., own)| *own).map(|(span, _, expires, _)| (span, expires)));
    Ok(Some(CachedBusiness { tenant, business: Arc::new(row.into_business(hosts)?), held, starts, since }))
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

/// What a booking write makes stale in the cache.
fn stale(booking: &Booking) -> Vec<CacheKey> {
    let mut keys: Vec<CacheKey> = booking.participants.iter().map(|p| CacheKey::User(p.id.clone())).collect();
    keys.extend(booking.business_id.clone().map(CacheKey::Business));
    keys
}

pub(crate) fn create(
    c: &Connection,
    t: &Tenant,
    new: &NewBooking,
    now: Timestamp,
    mut memo: Option<&mut Memo>,
    skipped: Option<&str>,
) -> Result<(Booking, Vec<CacheKey>), BookingError> {
    let party = load_party(c, t, &new.who, new.interval, now, memo.as_deref_mut())?;
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
    c.prepare_cached(
        "INSERT INTO bookings (id, account_id, mode, business_id, status, customer_name, customer_email, title, notes, description,
            metadata, start_at, end_at, held_from, held_until, hold_expires_at, payment_amount, payment_currency, checkout_url,
            created_at, updated_at, holds_business, customer_timezone)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?20, ?21, ?22)",
    )
    .and_then(|mut s| {
        s.execute(params![
            booking.id,
            t.account_id,
            t.mode.as_str(),
            booking.business_id,
            booking.status.as_str(),
            booking.customer_name,
            booking.customer_email,
            booking.title,
            booking.notes,
            booking.description,
            json(&booking.metadata),
            ms(booking.start_time),
            ms(booking.end_time),
            ms(held.start()),
            ms(held.end()),
            booking.hold_expires_at.map(ms),
            booking.payment_amount,
            booking.payment_currency,
            booking.checkout_url,
            ms(now),
            booking.participants.is_empty(),
            booking.customer_timezone
        ])
    })
    .map_err(error)?;
    let mut insert = c
        .prepare_cached(
            "INSERT INTO booking_participants (booking_id, user_id, email, name, position, held_from, held_until, holds, hold_expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8)",
        )
        .map_err(error)?;
    for (position, p) in booking.participants.iter().enumerate() {
        insert
            .execute(params![
                booking.id,
                p.id,
                p.email,
                p.name,
                position as i64,
                ms(held.start()),
                ms(held.end()),
                booking.hold_expires_at.map(ms)
            ])
            .map_err(error)?;
    }
    keep_longest_hold(c, &booking, held, memo)?;
    record_event(c, t, BookingEvent::Created, &booking, now, skipped)?;
    let keys = stale(&booking);
    Ok((booking, keys))
}

/// Keeps each person's and the business's `longest_hold_ms` (the bound the overlap queries
/// look back by) at least as long as `held`; `memo` spares the updates it knows change nothing.
fn keep_longest_hold(
    c: &Connection,
    booking: &Booking,
    held: Interval,
    mut memo: Option<&mut Memo>,
) -> StoreResult<()> {
    let length = ms(held.end()) - ms(held.start());
    let tables = booking
        .participants
        .iter()
        .map(|p| ("users", &p.id))
        .chain(booking.business_id.iter().map(|b| ("businesses", b)));
    for (table, id) in tables {
        if memo.as_deref_mut().is_some_and(|m| m.holds_at_least(id, length)) {
            continue;
        }
        let sql = if table == "users" {
            "UPDATE users SET longest_hold_ms = ?2 WHERE id = ?1 AND longest_hold_ms < ?2"
        } else {
            "UPDATE businesses SET longest_hold_ms = ?2 WHERE id = ?1 AND longest_hold_ms < ?2"
        };
        c.prepare_cached(sql).and_then(|mut s| s.execute(params![id, length])).map_err(error)?;
        if let Some(m) = memo.as_deref_mut() {
            m.held_at_least(id, length);
        }
    }
    Ok(())
}

/// Writes the booking's webhook event and queues its calendar writes and emails (`skipped`:
/// see [`crate::emails::enqueue`]).
fn record_event(
    c: &Connection,
    t: &Tenant,
    event: BookingEvent,
    booking: &Booking,
    now: Timestamp,
    skipped: Option<&str>,
) -> StoreResult<()> {
    let id = ids::new_id("evt");
    // Every booking change also re-wants its event on the participants' own calendars.
    crate::writes::enqueue(c, t, booking, now, event == BookingEvent::Created)?;
    crate::emails::enqueue(c, t, event, booking, now, skipped)?;
    let payload = event_envelope(&id, event.as_str(), now, &BookingEventData { booking });
    c.prepare_cached("INSERT INTO outbox_events (id, account_id, mode, event_type, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .and_then(|mut s| s.execute(params![id, t.account_id, t.mode.as_str(), event.as_str(), payload, ms(now)]))
        .map_err(error)?;
    Ok(())
}

fn participants_of(c: &Connection, booking_ids: &[&str]) -> StoreResult<HashMap<String, Vec<Participant>>> {
    let rows: Vec<(String, String, String, Option<String>)> = c
        .prepare_cached(
            "SELECT booking_id, user_id, email, name FROM booking_participants
              WHERE booking_id IN (SELECT value FROM json_each(?1)) ORDER BY booking_id, position",
        )
        .and_then(|mut s| {
            s.query_map([json(&booking_ids)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect()
        })
        .map_err(error)?;
    let mut out: HashMap<String, Vec<Participant>> = HashMap::new();
    for (booking_id, id, email, name) in rows {
        out.entry(booking_id).or_default().push(Participant { id, email, name });
    }
    Ok(out)
}

fn hydrate(c: &Connection, rows: Vec<BookingRow>) -> StoreResult<Vec<Booking>> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut participants = participants_of(c, &ids)?;
    rows.into_iter()
        .map(|row| {
            let people = participants.remove(&row.id).unwrap_or_default();
            row.into_booking(people)
        })
        .collect()
}

pub(crate) fn get(c: &Connection, t: &Tenant, id: &str) -> StoreResult<Option<Booking>> {
    let sql = format!("SELECT {BOOKING_COLUMNS} FROM bookings WHERE id = ?1 AND account_id = ?2 AND mode = ?3");
    let row = c
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(params![id, t.account_id, t.mode.as_str()], |r| BookingRow::read(r, 0)).optional()
        })
        .map_err(error)?;
    match row {
        None => Ok(None),
        Some(row) => Ok(hydrate(c, vec![row])?.pop()),
    }
}

pub(crate) fn list(c: &Connection, t: &Tenant, f: &BookingFilter, page: &PageRequest) -> StoreResult<Page<Booking>> {
    let sql = format!(
        "SELECT {BOOKING_COLUMNS} FROM bookings
          WHERE account_id = ?1 AND mode = ?2 AND (?3 IS NULL OR id < ?3)
            AND (?4 IS NULL OR business_id = ?4) AND (?5 IS NULL OR status = ?5) AND (?6 IS NULL OR end_at > ?6)
            AND (?7 IS NULL OR start_at < ?7) AND (?8 IS NULL OR customer_email = ?8)
          ORDER BY id DESC LIMIT ?9"
    );
    let rows = c
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(
                params![
                    t.account_id,
                    t.mode.as_str(),
                    page.cursor,
                    f.business_id,
                    f.status.map(BookingStatus::as_str),
                    f.from.map(ms),
                    f.to.map(ms),
                    f.customer_email,
                    page.limit as i64 + 1
                ],
                |r| BookingRow::read(r, 0),
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    let bookings = hydrate(c, rows)?;
    Ok(Page::from_rows(bookings, page.limit, |b| &b.id))
}

pub(crate) fn reschedule(
    c: &Connection,
    t: &Tenant,
    id: &str,
    to: Interval,
    now: Timestamp,
    skipped: Option<&str>,
) -> Result<(Booking, Vec<CacheKey>), BookingError> {
    let mut booking = get(c, t, id)?.ok_or(StoreError::NotFound)?;
    if booking.status == BookingStatus::Cancelled {
        return Err(BookingError::Cancelled);
    }
    let who = Who {
        business_id: booking.business_id.clone(),
        participants: booking.participants.iter().map(|p| UserRef::Id(p.id.clone())).collect(),
        ignore_booking: Some(booking.id.clone()),
        named_only: true,
    };
    let party = load_party(c, t, &who, to, now, None)?;
    party.check(to, now, SearchMode::Collective).map_err(|reason| refusal(&party, reason))?;
    let held = held(&party, to)?;
    c.prepare_cached("UPDATE bookings SET start_at = ?1, end_at = ?2, held_from = ?3, held_until = ?4, updated_at = ?5 WHERE id = ?6")
        .and_then(|mut s| s.execute(params![ms(to.start()), ms(to.end()), ms(held.start()), ms(held.end()), ms(now), booking.id]))
        .map_err(error)?;
    c.prepare_cached("UPDATE booking_participants SET held_from = ?1, held_until = ?2 WHERE booking_id = ?3")
        .and_then(|mut s| s.execute(params![ms(held.start()), ms(held.end()), booking.id]))
        .map_err(error)?;
    booking.start_time = to.start();
    booking.end_time = to.end();
    booking.updated_at = now;
    keep_longest_hold(c, &booking, held, None)?;
    record_event(c, t, BookingEvent::Updated, &booking, now, skipped)?;
    let keys = stale(&booking);
    Ok((booking, keys))
}

pub(crate) fn cancel(
    c: &Connection,
    t: &Tenant,
    id: &str,
    reason: Option<&str>,
    now: Timestamp,
    skipped: Option<&str>,
) -> Result<(Booking, Vec<CacheKey>), BookingError> {
    let mut booking = get(c, t, id)?.ok_or(StoreError::NotFound)?;
    if booking.status == BookingStatus::Cancelled {
        return Ok((booking, Vec::new()));
    }
    c.prepare_cached("UPDATE bookings SET status = 'cancelled', cancelled_at = ?1, cancellation_reason = ?2, updated_at = ?1 WHERE id = ?3")
        .and_then(|mut s| s.execute(params![ms(now), reason, booking.id]))
        .map_err(error)?;
    c.prepare_cached("UPDATE booking_participants SET holds = 0 WHERE booking_id = ?1")
        .and_then(|mut s| s.execute([&booking.id]))
        .map_err(error)?;
    booking.status = BookingStatus::Cancelled;
    booking.cancelled_at = Some(now);
    booking.cancellation_reason = reason.map(str::to_string);
    booking.updated_at = now;
    record_event(c, t, BookingEvent::Cancelled, &booking, now, skipped)?;
    let keys = stale(&booking);
    Ok((booking, keys))
}

/// What a write returns with the cache keys it made stale.
type Written<T> = (T, Vec<CacheKey>);
/// A lapsed hold, ended: its tenant, the cancelled booking, its checkout session.
type Lapsed = (Tenant, Booking, Option<String>);

/// Stores the checkout session of a payment hold.
pub(crate) fn set_checkout(
    c: &Connection,
    t: &Tenant,
    id: &str,
    session_id: &str,
    url: &str,
    now: Timestamp,
) -> StoreResult<(Booking, Vec<CacheKey>)> {
    let n = c
        .prepare_cached(
            "UPDATE bookings SET checkout_session_id = ?1, checkout_url = ?2, updated_at = ?3
              WHERE id = ?4 AND account_id = ?5 AND mode = ?6",
        )
        .and_then(|mut s| s.execute(params![session_id, url, ms(now), id, t.account_id, t.mode.as_str()]))
        .map_err(error)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    let booking = get(c, t, id)?.ok_or(StoreError::NotFound)?;
    let keys = stale(&booking);
    Ok((booking, keys))
}

/// The tenant of booking `id` when it was opened for checkout session `session_id`.
fn payment_tenant(c: &Connection, id: &str, session_id: &str) -> StoreResult<Option<Tenant>> {
    let row: Option<(String, String)> = c
        .prepare_cached("SELECT account_id, mode FROM bookings WHERE id = ?1 AND checkout_session_id = ?2")
        .and_then(|mut s| s.query_row(params![id, session_id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(error)?;
    row.map(|(account_id, mode)| {
        let mode = Mode::parse(&mode).ok_or_else(|| corrupt("mode", &mode))?;
        Ok(Tenant { account_id, mode })
    })
    .transpose()
}

/// Why an unpaid hold ended: the sweep's reason, after which a late payment may still claim
/// the time if it is free.
pub(crate) const HOLD_LAPSED: &str = "payment_not_completed";

pub(crate) fn complete_payment(
    c: &Connection,
    id: &str,
    session_id: &str,
    amount: i64,
    currency: &str,
    now: Timestamp,
    skipped: Option<&str>,
) -> StoreResult<Written<Option<(Tenant, PaymentApplied)>>> {
    let Some(t) = payment_tenant(c, id, session_id)? else { return Ok((None, Vec::new())) };
    let mut booking = get(c, &t, id)?.ok_or(StoreError::NotFound)?;
    match booking.status {
        BookingStatus::Confirmed => return Ok((Some((t, PaymentApplied::AlreadyConfirmed(booking))), Vec::new())),
        BookingStatus::PendingPayment => {}
        BookingStatus::Cancelled if booking.cancellation_reason.as_deref() == Some(HOLD_LAPSED) => {}
        BookingStatus::Cancelled => return Ok((Some((t, PaymentApplied::Cancelled(booking))), Vec::new())),
    }
    if !booking.is_price(amount, currency) {
        return Ok((Some((t, PaymentApplied::Mismatch(booking))), Vec::new()));
    }
    // The time must still be free: a hold that lapsed may have been taken, and even a live
    // one is re-checked (SQLite has no exclusion constraint behind the rules). The rules of
    // notice and "not in the past" are those of when the hold was made, which it met.
    let span = Interval::new(booking.start_time, booking.end_time).map_err(|e| corrupt("interval", e))?;
    let who = Who {
        business_id: booking.business_id.clone(),
        participants: booking.participants.iter().map(|p| UserRef::Id(p.id.clone())).collect(),
        ignore_booking: Some(booking.id.clone()),
        named_only: true,
    };
    let free = match load_party(c, &t, &who, span, now, None) {
        Ok(party) => party.check(span, booking.created_at, SearchMode::Collective).is_ok(),
        Err(BookingError::Store(e)) => return Err(e),
        Err(_) => false,
    };
    if !free {
        if booking.status == BookingStatus::PendingPayment {
            let (cancelled, keys) = cancel(c, &t, id, Some("payment_too_late"), now, skipped).map_err(store_error)?;
            return Ok((Some((t, PaymentApplied::TooLate(cancelled))), keys));
        }
        // A lapsed hold paid after its time was taken: say so (the customer was charged and is
        // owed a refund), not that nothing was paid.
        c.prepare_cached("UPDATE bookings SET cancellation_reason = 'payment_too_late', updated_at = ?1 WHERE id = ?2")
            .and_then(|mut s| s.execute(params![ms(now), booking.id]))
            .map_err(error)?;
        booking.cancellation_reason = Some("payment_too_late".into());
        booking.updated_at = now;
        return Ok((Some((t, PaymentApplied::TooLate(booking))), Vec::new()));
    }
    c.prepare_cached(
        "UPDATE bookings SET status = 'confirmed', hold_expires_at = NULL, payment_amount = ?1, payment_currency = ?2,
                cancelled_at = NULL, cancellation_reason = NULL, updated_at = ?3 WHERE id = ?4",
    )
    .and_then(|mut s| s.execute(params![amount, currency, ms(now), booking.id]))
    .map_err(error)?;
    c.prepare_cached("UPDATE booking_participants SET holds = 1, hold_expires_at = NULL WHERE booking_id = ?1")
        .and_then(|mut s| s.execute([&booking.id]))
        .map_err(error)?;
    booking.status = BookingStatus::Confirmed;
    booking.hold_expires_at = None;
    booking.payment_amount = Some(amount);
    booking.payment_currency = Some(currency.to_string());
    booking.cancelled_at = None;
    booking.cancellation_reason = None;
    booking.updated_at = now;
    record_event(c, &t, BookingEvent::Confirmed, &booking, now, skipped)?;
    let keys = stale(&booking);
    Ok((Some((t, PaymentApplied::Confirmed(booking))), keys))
}

pub(crate) fn end_payment_hold(
    c: &Connection,
    id: &str,
    session_id: &str,
    reason: &str,
    now: Timestamp,
    skipped: Option<&str>,
) -> StoreResult<Written<Option<(Tenant, Booking)>>> {
    let Some(t) = payment_tenant(c, id, session_id)? else { return Ok((None, Vec::new())) };
    let booking = get(c, &t, id)?.ok_or(StoreError::NotFound)?;
    if booking.status != BookingStatus::PendingPayment {
        return Ok((Some((t, booking)), Vec::new()));
    }
    let (booking, keys) = cancel(c, &t, id, Some(reason), now, skipped).map_err(store_error)?;
    Ok((Some((t, booking)), keys))
}

pub(crate) fn expire_payment_holds(
    c: &Connection,
    now: Timestamp,
    limit: usize,
    skipped: Option<&str>,
) -> StoreResult<Written<Vec<Lapsed>>> {
    let due: Vec<(String, String, String, Option<String>)> = c
        .prepare_cached(
            "SELECT id, account_id, mode, checkout_session_id FROM bookings
              WHERE status = 'pending_payment' AND hold_expires_at <= ?1 ORDER BY hold_expires_at LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![ms(now), limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect()
        })
        .map_err(error)?;
    let (mut out, mut keys) = (Vec::with_capacity(due.len()), Vec::new());
    for (id, account_id, mode, session) in due {
        let mode = Mode::parse(&mode).ok_or_else(|| corrupt("mode", &mode))?;
        let t = Tenant { account_id, mode };
        let (booking, stale) = cancel(c, &t, &id, Some(HOLD_LAPSED), now, skipped).map_err(store_error)?;
        keys.extend(stale);
        out.push((t, booking, session));
    }
    Ok((out, keys))
}

/// A booking write's error where only a store error can happen (cancelling).
fn store_error(e: BookingError) -> StoreError {
    match e {
        BookingError::Store(e) => e,
        other => StoreError::Backend(other.to_string()),
    }
}

pub(crate) fn outbox_events(c: &Connection, t: &Tenant, page: &PageRequest) -> StoreResult<Page<OutboxEvent>> {
    let rows: Vec<(String, String, String, i64)> = c
        .prepare_cached(
            "SELECT id, event_type, payload, created_at FROM outbox_events
              WHERE account_id = ?1 AND mode = ?2 AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4",
        )
        .and_then(|mut s| {
            s.query_map(params![t.account_id, t.mode.as_str(), page.cursor, page.limit as i64 + 1], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect()
        })
        .map_err(error)?;
    let events = rows
        .into_iter()
        .map(|(id, event_type, payload, created_at)| {
            Ok(OutboxEvent { id, event_type, payload, created_at: ts(created_at)? })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(events, page.limit, |e| &e.id))
}
