//! Rows as SQLite returns them, and their conversion to domain values. Times are stored as
//! Unix milliseconds; schedules and metadata as their JSON shape.

use jiff::Timestamp;
use kairos_core::schedule::Schedule;
use kairos_core::{Booking, BookingStatus, Business, Participant, User, Zone};
use kairos_store::StoreError;
use rusqlite::Row;

pub(crate) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

pub(crate) fn ts(ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(ms).map_err(|e| corrupt("timestamp", e))
}

fn opt_ts(ms: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    ms.map(ts).transpose()
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("unreadable {what} in the database: {e}"))
}

pub(crate) fn json<T: serde::Serialize>(value: &T) -> String {
    // Our plain data types always serialize (string keys only).
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

/// A schedule as stored (zone name, hours and overrides as JSON), read once per distinct text
/// on each thread: every booking re-reads its business and people inside the write
/// transaction, and parsing their schedules was a tenth of the booking path. Keyed by the text
/// itself, so an edited schedule is simply a new key; never stale.
fn schedule(timezone: &str, hours: &str, overrides: &str) -> Result<Schedule, StoreError> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    /// Enough for every business and person a busy server books; cleared when exceeded.
    const KEPT: usize = 512;
    thread_local! {
        static READ: RefCell<HashMap<(String, String, String), Schedule>> = RefCell::new(HashMap::new());
    }
    let key = (timezone.to_string(), hours.to_string(), overrides.to_string());
    if let Some(found) = READ.with(|m| m.borrow().get(&key).cloned()) {
        return Ok(found);
    }
    let parsed =
        Schedule::new(zone(timezone)?, parse_json("working hours", hours)?, parse_json("date overrides", overrides)?);
    READ.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= KEPT {
            m.clear();
        }
        m.insert(key, parsed.clone());
    });
    Ok(parsed)
}

fn zone(name: &str) -> Result<Zone, StoreError> {
    Zone::parse(name).map_err(|e| corrupt("time zone", e))
}

fn count(what: &str, n: Option<i64>) -> Result<Option<u32>, StoreError> {
    n.map(|n| u32::try_from(n).map_err(|e| corrupt(what, e))).transpose()
}

pub(crate) const USER_COLUMNS: &str =
    "id, email, name, timezone, working_hours, date_overrides, created_at, updated_at";

pub(crate) struct UserRow {
    id: String,
    email: String,
    name: Option<String>,
    timezone: String,
    working_hours: String,
    date_overrides: String,
    created_at: i64,
    updated_at: i64,
}

impl UserRow {
    /// Reads [`USER_COLUMNS`] starting at column `at`.
    pub(crate) fn read(row: &Row<'_>, at: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(at)?,
            email: row.get(at + 1)?,
            name: row.get(at + 2)?,
            timezone: row.get(at + 3)?,
            working_hours: row.get(at + 4)?,
            date_overrides: row.get(at + 5)?,
            created_at: row.get(at + 6)?,
            updated_at: row.get(at + 7)?,
        })
    }

    pub(crate) fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            id: self.id,
            email: self.email,
            name: self.name,
            schedule: schedule(&self.timezone, &self.working_hours, &self.date_overrides)?,
            created_at: ts(self.created_at)?,
            updated_at: ts(self.updated_at)?,
        })
    }
}

pub(crate) const BUSINESS_COLUMNS: &str = "id, name, timezone, working_hours, date_overrides, buffer_before_minutes, \
    buffer_after_minutes, minimum_notice_minutes, max_bookings_per_day, slot_step_minutes, price_amount, price_currency, \
    created_at, updated_at";

pub(crate) struct BusinessRow {
    pub(crate) id: String,
    name: String,
    timezone: String,
    working_hours: String,
    date_overrides: String,
    buffer_before_minutes: i64,
    buffer_after_minutes: i64,
    minimum_notice_minutes: i64,
    max_bookings_per_day: Option<i64>,
    slot_step_minutes: Option<i64>,
    price_amount: Option<i64>,
    price_currency: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl BusinessRow {
    /// Reads [`BUSINESS_COLUMNS`] starting at column `at`.
    pub(crate) fn read(row: &Row<'_>, at: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(at)?,
            name: row.get(at + 1)?,
            timezone: row.get(at + 2)?,
            working_hours: row.get(at + 3)?,
            date_overrides: row.get(at + 4)?,
            buffer_before_minutes: row.get(at + 5)?,
            buffer_after_minutes: row.get(at + 6)?,
            minimum_notice_minutes: row.get(at + 7)?,
            max_bookings_per_day: row.get(at + 8)?,
            slot_step_minutes: row.get(at + 9)?,
            price_amount: row.get(at + 10)?,
            price_currency: row.get(at + 11)?,
            created_at: row.get(at + 12)?,
            updated_at: row.get(at + 13)?,
        })
    }

    pub(crate) fn into_business(self, hosts: Vec<String>) -> Result<Business, StoreError> {
        let minutes = |what: &str, n: i64| count(what, Some(n)).map(|n| n.unwrap_or(0));
        Ok(Business {
            id: self.id,
            name: self.name,
            schedule: schedule(&self.timezone, &self.working_hours, &self.date_overrides)?,
            buffer_before_minutes: minutes("buffer", self.buffer_before_minutes)?,
            buffer_after_minutes: minutes("buffer", self.buffer_after_minutes)?,
            minimum_notice_minutes: minutes("notice", self.minimum_notice_minutes)?,
            max_bookings_per_day: count("daily maximum", self.max_bookings_per_day)?,
            slot_step_minutes: count("slot step", self.slot_step_minutes)?,
            price_amount: self.price_amount,
            price_currency: self.price_currency,
            hosts,
            created_at: ts(self.created_at)?,
            updated_at: ts(self.updated_at)?,
        })
    }
}

pub(crate) const BOOKING_COLUMNS: &str = "id, business_id, status, customer_name, customer_email, title, notes, description, \
    metadata, start_at, end_at, hold_expires_at, payment_amount, payment_currency, checkout_url, cancelled_at, \
    cancellation_reason, created_at, updated_at, customer_timezone";

pub(crate) struct BookingRow {
    pub(crate) id: String,
    business_id: Option<String>,
    status: String,
    customer_name: Option<String>,
    customer_email: Option<String>,
    title: String,
    notes: Option<String>,
    description: Option<String>,
    metadata: String,
    start_at: i64,
    end_at: i64,
    hold_expires_at: Option<i64>,
    payment_amount: Option<i64>,
    payment_currency: Option<String>,
    checkout_url: Option<String>,
    cancelled_at: Option<i64>,
    cancellation_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
    customer_timezone: Option<String>,
}

impl BookingRow {
    /// Reads [`BOOKING_COLUMNS`] starting at column `at`.
    pub(crate) fn read(row: &Row<'_>, at: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(at)?,
            business_id: row.get(at + 1)?,
            status: row.get(at + 2)?,
            customer_name: row.get(at + 3)?,
            customer_email: row.get(at + 4)?,
            title: row.get(at + 5)?,
            notes: row.get(at + 6)?,
            description: row.get(at + 7)?,
            metadata: row.get(at + 8)?,
            start_at: row.get(at + 9)?,
            end_at: row.get(at + 10)?,
            hold_expires_at: row.get(at + 11)?,
            payment_amount: row.get(at + 12)?,
            payment_currency: row.get(at + 13)?,
            checkout_url: row.get(at + 14)?,
            cancelled_at: row.get(at + 15)?,
            cancellation_reason: row.get(at + 16)?,
            created_at: row.get(at + 17)?,
            updated_at: row.get(at + 18)?,
            customer_timezone: row.get(at + 19)?,
        })
    }

    pub(crate) fn into_booking(self, participants: Vec<Participant>) -> Result<Booking, StoreError> {
        Ok(Booking {
            id: self.id,
            status: BookingStatus::parse(&self.status).ok_or_else(|| corrupt("booking status", &self.status))?,
            business_id: self.business_id,
            participants,
            customer_name: self.customer_name,
            customer_email: self.customer_email,
            customer_timezone: self.customer_timezone,
            title: self.title,
            notes: self.notes,
            description: self.description,
            metadata: parse_json("metadata", &self.metadata)?,
            start_time: ts(self.start_at)?,
            end_time: ts(self.end_at)?,
            created_at: ts(self.created_at)?,
            updated_at: ts(self.updated_at)?,
            checkout_url: self.checkout_url,
            payment_amount: self.payment_amount,
            payment_currency: self.payment_currency,
            hold_expires_at: opt_ts(self.hold_expires_at)?,
            cancelled_at: opt_ts(self.cancelled_at)?,
            cancellation_reason: self.cancellation_reason,
        })
    }
}
