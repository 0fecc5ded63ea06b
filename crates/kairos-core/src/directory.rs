//! The people and businesses whose time Kairos books, as plain data with the JSON shape the
//! API returns.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::availability::{DailyLimit, Rules};
use crate::schedule::Schedule;

/// A person whose calendars count: a host of businesses or a participant of bookings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    /// `timezone`, `working_hours` and `date_overrides` on the wire.
    #[serde(flatten)]
    pub schedule: Schedule,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Something bookable: its own hours and rules, and the hosts whose time it books.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Business {
    pub id: String,
    pub name: String,
    /// `timezone`, `working_hours` and `date_overrides` on the wire.
    #[serde(flatten)]
    pub schedule: Schedule,
    pub buffer_before_minutes: u32,
    pub buffer_after_minutes: u32,
    pub minimum_notice_minutes: u32,
    pub max_bookings_per_day: Option<u32>,
    pub slot_step_minutes: Option<u32>,
    pub price_amount: Option<i64>,
    pub price_currency: Option<String>,
    /// User ids, in the order hosts are offered.
    pub hosts: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Business {
    /// True when bookings must be paid for before they are confirmed.
    pub fn is_paid(&self) -> bool {
        self.price_amount.is_some_and(|a| a > 0)
    }

    /// The business's rules, counting `booked_starts` against its daily cap.
    pub fn rules<'a>(&'a self, booked_starts: &'a [Timestamp]) -> Rules<'a> {
        Rules {
            buffer_before: SignedDuration::from_mins(i64::from(self.buffer_before_minutes)),
            buffer_after: SignedDuration::from_mins(i64::from(self.buffer_after_minutes)),
            minimum_notice: SignedDuration::from_mins(i64::from(self.minimum_notice_minutes)),
            step: self.slot_step_minutes.map(|m| SignedDuration::from_mins(i64::from(m))),
            daily_limit: self.max_bookings_per_day.map(|max| DailyLimit {
                max,
                zone: &self.schedule.timezone,
                booked_starts,
            }),
        }
    }
}

/// A booking link: a public page at `/l/{slug}` where anyone can book `duration_minutes` with a
/// business's hosts or with named people. The page shows only the title, the hosts' display
/// names and free slots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Link {
    #[cfg_attr(feature = "openapi", schema(example = "link_01jd3k5v7w8x9y0z1a2b3c4d5e"))]
    pub id: String,
    /// Lowercase letters, digits and hyphens; unique across the server.
    #[cfg_attr(feature = "openapi", schema(example = "intro-call"))]
    pub slug: String,
    pub title: String,
    /// Book this business (its hosts and rules)…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_id: Option<String>,
    /// …or these people (user ids), all of whom must be free.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<String>,
    pub duration_minutes: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
