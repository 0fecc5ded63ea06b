//! The tools' inputs. Each mirrors its REST request (same field names, same meanings) and
//! carries a description per field, which agents read from the JSON schema.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `find_slots` → `GET /v1/availability/slots`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindSlots {
    /// The business whose hosts, working hours and booking rules apply (`biz_…`). Give this,
    /// `participants`, or both.
    pub business_id: Option<String>,
    /// People whose time counts, as user ids (`usr_…`) or `user:alice@example.com`.
    pub participants: Option<Vec<String>>,
    /// `collective` (default): everyone must be free. `any`: at least one host or participant
    /// must be free; each slot then lists who is.
    pub mode: Option<SlotMode>,
    /// Start of the search window, RFC 3339 (e.g. `2026-05-01T00:00:00Z` or
    /// `2026-05-01T00:00:00-04:00`). Now when absent.
    pub from: Option<String>,
    /// End of the search window, RFC 3339. 7 days after `from` when absent; at most 62 days after it.
    pub to: Option<String>,
    /// Length of each slot in minutes (1–1440). 30 when absent.
    pub duration_minutes: Option<u32>,
    /// IANA time zone for the returned times and descriptions (e.g. `America/New_York`). UTC
    /// when absent.
    pub timezone: Option<String>,
    /// Return at most this many slots (1–5000).
    pub limit: Option<u32>,
}

/// Whose freedom a slot needs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlotMode {
    Collective,
    Any,
}

/// `create_booking` → `POST /v1/bookings`, in either of the API's shapes: a business and a
/// customer (`business_id`, `customer_email`, `customer_name`, `start_time`, `end_time`), or
/// named participants (`participants`, `start`, `end`, `title`).
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBooking {
    /// The business to book (`biz_…`); its hosts must be free.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_id: Option<String>,
    /// The customer's email address (business shape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    /// The customer's name (business shape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    /// The customer's IANA time zone (e.g. `Europe/Paris`): their emails show times in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_timezone: Option<String>,
    /// Start, RFC 3339 — e.g. the `start` of a slot from `find_slots`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// End, RFC 3339 — e.g. the `end` of a slot from `find_slots`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// `start_time` under the participants shape's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// `end_time` under the participants shape's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Free text kept with the booking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Up to 50 string values under keys of at most 40 characters, kept with the booking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// People to book, as user ids (`usr_…`) or `user:alice@example.com`; all must be free.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<String>>,
    /// The meeting's title (participants shape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The meeting's description (participants shape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// With a business: `collective` (default) books every host; `any` books the first free one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<SlotMode>,
    /// Any unique string (e.g. a UUID). Retrying with the same key and the same input returns
    /// the first booking instead of booking twice.
    #[serde(skip_serializing)]
    pub idempotency_key: Option<String>,
}

/// `reschedule_booking` → `POST /v1/bookings/{booking_id}/reschedule`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleBooking {
    /// The booking to move (`bkg_…`).
    pub booking_id: String,
    /// The new start, RFC 3339.
    pub start_time: String,
    /// The new end, RFC 3339.
    pub end_time: String,
}

/// `cancel_booking` → `POST /v1/bookings/{booking_id}/cancel`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBooking {
    /// The booking to cancel (`bkg_…`). Cancelling a cancelled booking changes nothing.
    pub booking_id: String,
    /// Why, kept with the booking.
    pub reason: Option<String>,
}

/// `list_bookings` → `GET /v1/bookings`, newest first.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListBookings {
    /// Only this business's bookings (`biz_…`).
    pub business_id: Option<String>,
    /// Only bookings in this state.
    pub status: Option<BookingStatus>,
    /// Only bookings that end after this time (RFC 3339).
    pub from: Option<String>,
    /// Only bookings that start before this time (RFC 3339).
    pub to: Option<String>,
    /// Only this customer's bookings.
    pub customer_email: Option<String>,
    /// Page size (1–100, default 20).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A booking's state.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    Confirmed,
    PendingPayment,
    Cancelled,
}

/// `create_proposal` → `POST /v1/proposals`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProposal {
    /// What the meeting is about.
    pub title: String,
    /// More about the meeting, shown to the participants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The meeting's length in minutes (5–1440).
    pub duration_minutes: u32,
    /// The Kairos user organising it: a user id (`usr_…`), `user:alice@example.com`, or an email.
    pub organiser: String,
    /// Who is asked; each gets a personal response link.
    pub participants: Vec<ProposalParticipant>,
    /// Times to offer; when absent Kairos picks the best 3 common free slots of the organiser
    /// and the participants who are Kairos users, in the next 14 days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<Vec<ProposedSlot>>,
    /// `consensus` (default): every required participant must accept one common slot, which is
    /// then booked. `poll`: participants vote and the most voted slot wins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<ProposalMode>,
    /// For polls: `named` (default; only the participants vote) or `open` (anyone with the
    /// proposal's `vote_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_variant: Option<PollVariant>,
    /// When the proposal closes unresolved, RFC 3339; a week from now (or the last slot's
    /// start, if sooner) when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Any unique string (e.g. a UUID). Retrying with the same key and the same input returns
    /// the first proposal instead of creating another.
    #[serde(skip_serializing)]
    pub idempotency_key: Option<String>,
}

/// A person asked by a proposal.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalParticipant {
    /// Their email address.
    pub email: String,
    /// Their name, for the invitation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether their answer decides (in consensus, a required participant's rejection rejects
    /// the proposal); true when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
}

/// A time offered by a proposal.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposedSlot {
    /// Start, RFC 3339.
    pub start: String,
    /// End, RFC 3339.
    pub end: String,
}

/// How a proposal is decided.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProposalMode {
    Consensus,
    Poll,
}

/// Who may vote in a poll.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PollVariant {
    Named,
    Open,
}

/// The wire name of a serde enum value (its `rename_all` form).
pub fn wire_name(value: impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}
