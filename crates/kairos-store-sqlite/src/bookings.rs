//! Loading everyone a booking involves, the booking writes (each re-checking the rules inside
//! its transaction and recording its webhook event there too), and reading bookings back.

use std::collections::HashMap;

use jiff::Timestamp;
use kairos_core::availability::Mode as SearchMode;
use kairos_core::booking::BookingEvent;
use kairos_core::plan::Party;
use kairos_core::{Booking, BookingStatus, Interval, Unavailable, User};
use kairos_store::*;
use sqlx::{SqliteConnection, SqlitePool};

use crate::backend;
use crate::directory;
use crate::rows::{BookingRow, ParticipantRow, corrupt, json, ms, ts};

const HOLDING: &str =
    "(status = 'confirmed' OR (status = 'pending_payment' AND (hold_expires_at IS NULL OR hold_expires_at > $4)))";

pub(crate) async fn load_party(
    conn: &mut SqliteConnection,
    t: &Tenant,
    who: &Who,
    window: Interval,
    now: Timestamp,
) -> Result<Party, BookingError> {
    let business = match &who.business_id {
        Some(id) => {
            Some(directory::business(conn, t, id).await?.ok_or(BookingError::Party(PartyError::UnknownBusiness))?)
        }
        None => None,
    };
    if business.is_none() && who.participants.is_empty() {
        return Err(BookingError::Party(PartyError::Nobody));
    }
    let mut members: Vec<User> = Vec::new();
    if let Some(b) = business.as_ref().filter(|_| !who.named_only) {
        let hosts: Vec<UserRef> = b.hosts.iter().cloned().map(UserRef::Id).collect();
        members.extend(directory::resolve_users(conn, t, &hosts).await?.into_iter().flatten());
    }
    for (index, user) in directory::resolve_users(conn, t, &who.participants).await?.into_iter().enumerate() {
        let user = user.ok_or(BookingError::Party(PartyError::UnknownParticipant(index)))?;
        if !members.iter().any(|m| m.id == user.id) {
            members.push(user);
        }
    }
    let margin = Party::busy_margin(business.as_ref());
    let span = window.widened(margin, margin);
    let ignore = who.ignore_booking.as_deref();
    let busy = members_busy(conn, &members, span, now, ignore).await?;
    let (mut base_busy, mut booked_starts) = (Vec::new(), Vec::new());
    if let Some(b) = &business {
        if b.hosts.is_empty() && !who.named_only {
            base_busy = business_busy(conn, &b.id, span, now, ignore, false).await?;
        }
        if b.max_bookings_per_day.is_some() {
            // Local days are at most 26 hours from the window's UTC edges.
            let day = jiff::SignedDuration::from_hours(26);
            booked_starts = business_busy(conn, &b.id, window.widened(day, day), now, ignore, true)
                .await?
                .into_iter()
                .map(|i| i.start())
                .collect();
        }
    }
    Ok(Party { business, members, busy, base_busy, booked_starts })
}

/// Calendar busy blocks and holding bookings of each member overlapping `span`, sorted.
async fn members_busy(
    conn: &mut SqliteConnection,
    members: &[User],
    span: Interval,
    now: Timestamp,
    ignore: Option<&str>,
) -> StoreResult<Vec<Vec<Interval>>> {
    let mut busy = vec![Vec::new(); members.len()];
    if members.is_empty() {
        return Ok(busy);
    }
    let index: HashMap<&str, usize> = members.iter().enumerate().map(|(i, m)| (m.id.as_str(), i)).collect();
    let ids = json(&members.iter().map(|m| m.id.as_str()).collect::<Vec<_>>());
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT user_id, start_at, end_at FROM busy_blocks
          WHERE user_id IN (SELECT value FROM json_each($1)) AND end_at > $2 AND start_at < $3
         UNION ALL
         SELECT user_id, held_from, held_until FROM booking_participants
          WHERE user_id IN (SELECT value FROM json_each($1)) AND holds = 1 AND held_until > $2 AND held_from < $3
            AND (hold_expires_at IS NULL OR hold_expires_at > $4) AND booking_id IS NOT $5
         ORDER BY start_at",
    )
    .bind(ids)
    .bind(ms(span.start()))
    .bind(ms(span.end()))
    .bind(ms(now))
    .bind(ignore)
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    for (user_id, start, end) in rows {
        if let (Some(&i), Ok(iv)) = (index.get(user_id.as_str()), Interval::new(ts(start)?, ts(end)?)) {
            busy[i].push(iv);
        }
    }
    Ok(busy)
}

/// Holding bookings of a business whose held time overlaps `span`, sorted: their held spans,
/// or (`own_times`) their own start and end.
async fn business_busy(
    conn: &mut SqliteConnection,
    business_id: &str,
    span: Interval,
    now: Timestamp,
    ignore: Option<&str>,
    own_times: bool,
) -> StoreResult<Vec<Interval>> {
    let columns = if own_times { "start_at, end_at" } else { "held_from, held_until" };
    let rows: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {columns} FROM bookings WHERE business_id = $1 AND held_until > $2 AND held_from < $3 AND {HOLDING}
           AND id IS NOT $5 ORDER BY held_from"
    )))
    .bind(business_id)
    .bind(ms(span.start()))
    .bind(ms(span.end()))
    .bind(ms(now))
    .bind(ignore)
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(|(s, e)| Interval::new(ts(s)?, ts(e)?).map_err(|e| corrupt("booking times", e))).collect()
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

/// The time a booking keeps from others: its interval widened by its business's buffers.
fn held(party: &Party, interval: Interval) -> Interval {
    match &party.business {
        Some(b) => interval.widened(
            jiff::SignedDuration::from_mins(i64::from(b.buffer_before_minutes)),
            jiff::SignedDuration::from_mins(i64::from(b.buffer_after_minutes)),
        ),
        None => interval,
    }
}

fn default_title(party: &Party, customer_name: Option<&str>) -> String {
    match (&party.business, customer_name) {
        (Some(b), Some(name)) => format!("{} with {name}", b.name),
        (Some(b), None) => b.name.clone(),
        (None, _) => "Meeting".to_string(),
    }
}

pub(crate) async fn create(
    conn: &mut SqliteConnection,
    t: &Tenant,
    new: &NewBooking,
    now: Timestamp,
) -> Result<Booking, BookingError> {
    let party = load_party(conn, t, &new.who, new.interval, now).await?;
    let free = party.check(new.interval, now, new.mode).map_err(|reason| refusal(&party, reason))?;
    let booked: Vec<&User> = match new.mode {
        SearchMode::Collective => party.members.iter().collect(),
        SearchMode::Any => free.first().and_then(|&i| party.members.get(i)).into_iter().collect(),
    };
    let paid = party.business.as_ref().filter(|b| b.is_paid());
    let held = held(&party, new.interval);
    let booking = Booking {
        id: ids::new_id("bkg"),
        status: if paid.is_some() { BookingStatus::PendingPayment } else { BookingStatus::Confirmed },
        business_id: party.business.as_ref().map(|b| b.id.clone()),
        participants: booked
            .iter()
            .map(|u| kairos_core::Participant { id: u.id.clone(), email: u.email.clone(), name: u.name.clone() })
            .collect(),
        customer_name: new.customer_name.clone(),
        customer_email: new.customer_email.clone(),
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
            created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
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
    .bind(ms(now))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    for (position, p) in booking.participants.iter().enumerate() {
        sqlx::query(
            "INSERT INTO booking_participants (booking_id, user_id, email, name, position, held_from, held_until, holds,
                hold_expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8)",
        )
        .bind(&booking.id)
        .bind(&p.id)
        .bind(&p.email)
        .bind(&p.name)
        .bind(position as i64)
        .bind(ms(held.start()))
        .bind(ms(held.end()))
        .bind(booking.hold_expires_at.map(ms))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    record_event(conn, t, BookingEvent::Created, &booking, now).await?;
    Ok(booking)
}

async fn record_event(
    conn: &mut SqliteConnection,
    t: &Tenant,
    event: BookingEvent,
    booking: &Booking,
    now: Timestamp,
) -> StoreResult<()> {
    let id = ids::new_id("evt");
    let payload = event_envelope(&id, event.as_str(), now, &BookingEventData { booking });
    sqlx::query("INSERT INTO outbox_events (id, account_id, mode, event_type, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .bind(event.as_str())
        .bind(payload)
        .bind(ms(now))
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

const BOOKING_COLUMNS: &str = "id, business_id, status, customer_name, customer_email, title, notes, description, metadata, start_at, \
    end_at, hold_expires_at, payment_amount, payment_currency, checkout_url, cancelled_at, cancellation_reason, created_at, updated_at";

async fn participants_of(
    conn: &mut SqliteConnection,
    booking_ids: &[&str],
) -> StoreResult<HashMap<String, Vec<kairos_core::Participant>>> {
    let rows: Vec<ParticipantRow> = sqlx::query_as(
        "SELECT booking_id, user_id, email, name FROM booking_participants
          WHERE booking_id IN (SELECT value FROM json_each($1)) ORDER BY booking_id, position",
    )
    .bind(json(&booking_ids))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    let mut out: HashMap<String, Vec<kairos_core::Participant>> = HashMap::new();
    for row in rows {
        out.entry(row.booking_id.clone()).or_default().push(row.into_participant());
    }
    Ok(out)
}

async fn hydrate(conn: &mut SqliteConnection, rows: Vec<BookingRow>) -> StoreResult<Vec<Booking>> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut participants = participants_of(conn, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let people = participants.remove(&row.id).unwrap_or_default();
            row.into_booking(people)
        })
        .collect()
}

pub(crate) async fn get(conn: &mut SqliteConnection, t: &Tenant, id: &str) -> StoreResult<Option<Booking>> {
    let row: Option<BookingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {BOOKING_COLUMNS} FROM bookings WHERE id = $1 AND account_id = $2 AND mode = $3"
    )))
    .bind(id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    match row {
        None => Ok(None),
        Some(row) => Ok(hydrate(conn, vec![row]).await?.pop()),
    }
}

pub(crate) async fn list(
    conn: &mut SqliteConnection,
    t: &Tenant,
    f: &BookingFilter,
    page: &PageRequest,
) -> StoreResult<Page<Booking>> {
    let rows: Vec<BookingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {BOOKING_COLUMNS} FROM bookings
          WHERE account_id = $1 AND mode = $2 AND ($3 IS NULL OR id < $3)
            AND ($4 IS NULL OR business_id = $4) AND ($5 IS NULL OR status = $5) AND ($6 IS NULL OR end_at > $6)
            AND ($7 IS NULL OR start_at < $7) AND ($8 IS NULL OR customer_email = $8)
          ORDER BY id DESC LIMIT $9"
    )))
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&page.cursor)
    .bind(&f.business_id)
    .bind(f.status.map(BookingStatus::as_str))
    .bind(f.from.map(ms))
    .bind(f.to.map(ms))
    .bind(&f.customer_email)
    .bind(page.limit as i64 + 1)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let bookings = hydrate(conn, rows).await?;
    Ok(Page::from_rows(bookings, page.limit, |b| &b.id))
}

pub(crate) async fn reschedule(
    conn: &mut SqliteConnection,
    t: &Tenant,
    id: &str,
    to: Interval,
    now: Timestamp,
) -> Result<Booking, BookingError> {
    let mut booking = get(conn, t, id).await?.ok_or(StoreError::NotFound)?;
    if booking.status == BookingStatus::Cancelled {
        return Err(BookingError::Cancelled);
    }
    let who = Who {
        business_id: booking.business_id.clone(),
        participants: booking.participants.iter().map(|p| UserRef::Id(p.id.clone())).collect(),
        ignore_booking: Some(booking.id.clone()),
        named_only: true,
    };
    let party = load_party(conn, t, &who, to, now).await?;
    party.check(to, now, SearchMode::Collective).map_err(|reason| refusal(&party, reason))?;
    let held = held(&party, to);
    sqlx::query("UPDATE bookings SET start_at = $1, end_at = $2, held_from = $3, held_until = $4, updated_at = $5 WHERE id = $6")
        .bind(ms(to.start()))
        .bind(ms(to.end()))
        .bind(ms(held.start()))
        .bind(ms(held.end()))
        .bind(ms(now))
        .bind(&booking.id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    sqlx::query("UPDATE booking_participants SET held_from = $1, held_until = $2 WHERE booking_id = $3")
        .bind(ms(held.start()))
        .bind(ms(held.end()))
        .bind(&booking.id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    booking.start_time = to.start();
    booking.end_time = to.end();
    booking.updated_at = now;
    record_event(conn, t, BookingEvent::Updated, &booking, now).await?;
    Ok(booking)
}

pub(crate) async fn cancel(
    conn: &mut SqliteConnection,
    t: &Tenant,
    id: &str,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<Booking, BookingError> {
    let mut booking = get(conn, t, id).await?.ok_or(StoreError::NotFound)?;
    if booking.status == BookingStatus::Cancelled {
        return Ok(booking);
    }
    sqlx::query("UPDATE bookings SET status = 'cancelled', cancelled_at = $1, cancellation_reason = $2, updated_at = $1 WHERE id = $3")
        .bind(ms(now))
        .bind(reason)
        .bind(&booking.id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    sqlx::query("UPDATE booking_participants SET holds = 0 WHERE booking_id = $1")
        .bind(&booking.id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    booking.status = BookingStatus::Cancelled;
    booking.cancelled_at = Some(now);
    booking.cancellation_reason = reason.map(str::to_string);
    booking.updated_at = now;
    record_event(conn, t, BookingEvent::Cancelled, &booking, now).await?;
    Ok(booking)
}

pub(crate) async fn outbox_events(pool: &SqlitePool, t: &Tenant, page: &PageRequest) -> StoreResult<Page<OutboxEvent>> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, event_type, payload, created_at FROM outbox_events
          WHERE account_id = $1 AND mode = $2 AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
    )
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&page.cursor)
    .bind(page.limit as i64 + 1)
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    let events = rows
        .into_iter()
        .map(|(id, event_type, payload, created_at)| {
            Ok(OutboxEvent { id, event_type, payload, created_at: ts(created_at)? })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(events, page.limit, |e| &e.id))
}
