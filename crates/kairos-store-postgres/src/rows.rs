//! Conversions between stored values and domain values. Times are stored as Unix
//! milliseconds (BIGINT), schedules and metadata as their JSON text — the same values the
//! SQLite backend stores. Rows are read by column name (`sqlx::FromRow`).

use jiff::Timestamp;
use kairos_core::schedule::Schedule;
use kairos_core::{Booking, BookingStatus, Business, Participant, User, Zone};
use kairos_store::StoreError;

pub(crate) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

pub(crate) fn ts(ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(ms).map_err(|e| corrupt("timestamp", e))
}

pub(crate) fn opt_ts(ms: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    ms.map(ts).transpose()
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("unreadable {what} in the database: {e}"))
}

pub(crate) fn json<T: serde::Serialize>(value: &T) -> String {
    // Our plain data types always serialize (string keys only).
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn zone(name: &str) -> Result<Zone, StoreError> {
    Zone::parse(name).map_err(|e| corrupt("time zone", e))
}

fn count(what: &str, n: Option<i64>) -> Result<Option<u32>, StoreError> {
    n.map(|n| u32::try_from(n).map_err(|e| corrupt(what, e))).transpose()
}

/// The columns [`UserRow`] reads.
pub(crate) const USER_COLUMNS: &str =
    "id, email, name, timezone, working_hours, date_overrides, created_at, updated_at";

#[derive(sqlx::FromRow)]
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
    pub(crate) fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            id: self.id,
            email: self.email,
            name: self.name,
            schedule: Schedule::new(
                zone(&self.timezone)?,
                parse_json("working hours", &self.working_hours)?,
                parse_json("date overrides", &self.date_overrides)?,
            ),
            created_at: ts(self.created_at)?,
            updated_at: ts(self.updated_at)?,
        })
    }
}

/// The columns [`BusinessRow`] reads, its hosts (in order) among them: one statement, not two.
pub(crate) const BUSINESS_COLUMNS: &str = "id, name, timezone, working_hours, date_overrides, buffer_before_minutes, \
    buffer_after_minutes, minimum_notice_minutes, max_bookings_per_day, slot_step_minutes, price_amount, price_currency, \
    created_at, updated_at, \
    ARRAY(SELECT h.user_id FROM business_hosts h WHERE h.business_id = businesses.id ORDER BY h.position) AS hosts";

#[derive(sqlx::FromRow)]
pub(crate) struct BusinessRow {
    id: String,
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
    hosts: Vec<String>,
}

impl BusinessRow {
    pub(crate) fn into_business(self) -> Result<Business, StoreError> {
        let minutes = |what: &str, n: i64| count(what, Some(n)).map(|n| n.unwrap_or(0));
        Ok(Business {
            id: self.id,
            name: self.name,
            schedule: Schedule::new(
                zone(&self.timezone)?,
                parse_json("working hours", &self.working_hours)?,
                parse_json("date overrides", &self.date_overrides)?,
            ),
            buffer_before_minutes: minutes("buffer", self.buffer_before_minutes)?,
            buffer_after_minutes: minutes("buffer", self.buffer_after_minutes)?,
            minimum_notice_minutes: minutes("notice", self.minimum_notice_minutes)?,
            max_bookings_per_day: count("daily maximum", self.max_bookings_per_day)?,
            slot_step_minutes: count("slot step", self.slot_step_minutes)?,
            price_amount: self.price_amount,
            price_currency: self.price_currency,
            hosts: self.hosts,
            created_at: ts(self.created_at)?,
            updated_at: ts(self.updated_at)?,
        })
    }
}

/// The columns [`BookingRow`] reads, its participants (in order, as a JSON array of
/// `[id, email, name]`) among them: one statement per read of bookings, not two.
pub(crate) const BOOKING_COLUMNS: &str = "id, business_id, status, customer_name, customer_email, title, notes, \
    description, metadata, start_at, end_at, hold_expires_at, payment_amount, payment_currency, checkout_url, \
    cancelled_at, cancellation_reason, created_at, updated_at, customer_timezone, \
    COALESCE((SELECT json_agg(json_build_array(p.user_id, p.email, p.name) ORDER BY p.position)::text \
                FROM booking_participants p WHERE p.booking_id = bookings.id), '[]') AS participants";

#[derive(sqlx::FromRow)]
pub(crate) struct BookingRow {
    id: String,
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
    participants: String,
}

impl BookingRow {
    pub(crate) fn into_booking(self) -> Result<Booking, StoreError> {
        let people: Vec<(String, String, Option<String>)> = parse_json("participants", &self.participants)?;
        let participants = people.into_iter().map(|(id, email, name)| Participant { id, email, name }).collect();
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
