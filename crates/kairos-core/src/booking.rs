//! Bookings as the domain sees them, and the one JSON shape they have everywhere: API
//! responses, webhook payloads and stored idempotent replies all serialize this type.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The longest a booking may last.
pub const MAX_LENGTH: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);
/// The longest buffer a business may set on each side of its bookings, in minutes.
pub const MAX_BUFFER_MINUTES: u32 = 24 * 60;
/// The most time one booking can hold: its length and a buffer on each side. Stores bound
/// their overlap queries with it.
pub const MAX_HELD: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 + 2 * 24);

/// Where a booking stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    Confirmed,
    /// Held while the customer pays; releases itself at `hold_expires_at`.
    PendingPayment,
    Cancelled,
}

impl BookingStatus {
    pub const ALL: [BookingStatus; 3] = [Self::Confirmed, Self::PendingPayment, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::PendingPayment => "pending_payment",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A Kairos user whose time a booking holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Participant {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
}

/// A booking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Booking {
    #[cfg_attr(feature = "openapi", schema(example = "bkg_01jd3k5v7w8x9y0z1a2b3c4d5e"))]
    pub id: String,
    pub status: BookingStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_id: Option<String>,
    pub participants: Vec<Participant>,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    /// The customer's IANA time zone, when known (given at booking, or the zone the visitor
    /// chose on a booking page): their emails show times in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "Europe/Paris"))]
    pub customer_timezone: Option<String>,
    pub title: String,
    pub notes: Option<String>,
    pub description: Option<String>,
    /// Your own key–value data, returned as given.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub start_time: Timestamp,
    pub end_time: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkout_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_amount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
}

impl Booking {
    /// True while the booking keeps its time from others: confirmed, or awaiting payment with
    /// its hold not yet expired.
    pub fn holds_time(&self, now: Timestamp) -> bool {
        holds_time(self.status, self.hold_expires_at, now)
    }

    /// Whether `amount` (minor units) of `currency` is exactly the booking's price.
    pub fn is_price(&self, amount: i64, currency: &str) -> bool {
        self.payment_amount == Some(amount)
            && self.payment_currency.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(currency))
    }
}

/// The holding rule on its own, for stores that filter rows before building bookings.
pub fn holds_time(status: BookingStatus, hold_expires_at: Option<Timestamp>, now: Timestamp) -> bool {
    match status {
        BookingStatus::Confirmed => true,
        BookingStatus::PendingPayment => hold_expires_at.is_none_or(|t| t > now),
        BookingStatus::Cancelled => false,
    }
}

/// The webhook event types a booking change can raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingEvent {
    Created,
    Updated,
    Confirmed,
    Cancelled,
}

impl BookingEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "booking.created",
            Self::Updated => "booking.updated",
            Self::Confirmed => "booking.confirmed",
            Self::Cancelled => "booking.cancelled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payment_hold_stops_holding_when_it_expires() {
        let now: Timestamp = "2026-05-01T10:00:00Z".parse().unwrap();
        let later: Timestamp = "2026-05-01T10:30:00Z".parse().unwrap();
        assert!(holds_time(BookingStatus::PendingPayment, Some(later), now));
        assert!(!holds_time(BookingStatus::PendingPayment, Some(now), now));
        assert!(holds_time(BookingStatus::Confirmed, None, now));
        assert!(!holds_time(BookingStatus::Cancelled, None, now));
    }
}
