//! The records the store reads and writes, beyond the domain types of `kairos-core`.

use jiff::Timestamp;
use kairos_core::availability::Mode as SearchMode;
use kairos_core::{Booking, BookingStatus, Interval};

use crate::{BookingError, StoreError};
use serde::{Deserialize, Serialize};

/// Test or live data: separate worlds within one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }

    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "test" => Some(Mode::Test),
            "live" => Some(Mode::Live),
            _ => None,
        }
    }
}

/// Whose data a request may see: one account, one mode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant {
    pub account_id: String,
    pub mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
}

/// A page request: at most `limit` items after `cursor` (an id; newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { limit: 20, cursor: None }
    }
}

/// One page of a list and the cursor of the next (`None` at the end).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in order; `id` gives the cursor.
    pub fn from_rows(mut rows: Vec<T>, limit: usize, id: impl Fn(&T) -> &str) -> Self {
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|r| id(r).to_string())
        } else {
            None
        };
        Self { data: rows, next_cursor }
    }
}

/// A way to name a user: by id (`usr_…`) or by email (`user:alice@example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Email(String),
}

/// Who a search or booking involves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who {
    pub business_id: Option<String>,
    pub participants: Vec<UserRef>,
    /// A booking whose own time is ignored (when rescheduling it).
    pub ignore_booking: Option<String>,
    /// When true the business contributes its hours and rules but not its hosts: only the
    /// named participants count (rescheduling a booking keeps the people it already holds).
    pub named_only: bool,
}

/// Why a [`Who`] could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartyError {
    UnknownBusiness,
    /// The participant at this index does not exist.
    UnknownParticipant(usize),
    /// Neither a business nor participants were named.
    Nobody,
}

/// A refusal to book, with the person in the way when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: kairos_core::Unavailable,
    /// Email of the member concerned (`None` for the business itself or a general rule).
    pub who: Option<String>,
}

/// Busy time to record on a user's calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBusyBlock {
    pub interval: Interval,
    /// Where it came from (a calendar id, `manual`, …).
    pub source: String,
}

/// A booking to make.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBooking {
    pub who: Who,
    /// `Any` books the first free member only; `Collective` books everyone.
    pub mode: SearchMode,
    pub interval: Interval,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    /// An IANA zone name, already checked.
    pub customer_timezone: Option<String>,
    pub title: Option<String>,
    pub notes: Option<String>,
    pub description: Option<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Whether a priced business may be booked (a payment hold). False when no payment
    /// provider is configured: the store then refuses with `payments_not_configured` before
    /// writing, since a hold nobody can pay would only block the time.
    pub payment_holds: bool,
}

/// The JSON envelope of a webhook event, fields in the contract's order:
/// `{"id", "type", "created_at", "data"}`. These exact bytes are stored and delivered.
pub fn event_envelope(id: &str, event_type: &str, created_at: Timestamp, data: &impl Serialize) -> String {
    #[derive(Serialize)]
    struct Envelope<'a, T: Serialize> {
        id: &'a str,
        #[serde(rename = "type")]
        event_type: &'a str,
        created_at: Timestamp,
        data: &'a T,
    }
    // Serializing plain data with string keys cannot fail.
    serde_json::to_string(&Envelope { id, event_type, created_at, data }).unwrap_or_default()
}

/// The `data` of a booking event: `{"booking": {...}}`.
#[derive(Debug, Serialize)]
pub struct BookingEventData<'a> {
    pub booking: &'a kairos_core::Booking,
}

/// Filters for listing bookings. `from`/`to` select bookings overlapping that range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookingFilter {
    pub business_id: Option<String>,
    pub status: Option<BookingStatus>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub customer_email: Option<String>,
}

/// A recorded webhook event: the exact envelope bytes that will be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: Timestamp,
}

/// A response kept for an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// The outcome of claiming an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The caller owns the key and must complete or release it with this token (a claim taken
    /// over after its lease ran out gets a new token, so the old owner cannot touch it).
    Claimed(String),
    /// The first request finished; replay its response.
    Completed(StoredResponse),
    /// The key was used with a different request.
    Mismatch,
    /// Another request with this key is still running.
    InProgress,
}

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);
/// How long a claim may stay unfinished before another request may take it over (its owner
/// crashed).
pub const IDEMPOTENCY_LEASE: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);
/// How long a payment hold lasts.
pub const PAYMENT_HOLD: jiff::SignedDuration = jiff::SignedDuration::from_mins(30);

/// Filters for listing a subscription's deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub status: Option<kairos_core::webhook::DeliveryStatus>,
}

/// How much delivery work one claim may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimits {
    /// Deliveries in this claim at most.
    pub max: usize,
    /// Attempts in flight per endpoint (scheme, host and port; however many subscriptions
    /// point there) at most, counting every worker's unexpired claims, so that one slow
    /// receiver cannot take every worker.
    pub per_endpoint: usize,
    /// How long the claim is the claimant's: past it, the attempt is presumed lost (its
    /// worker crashed) and another claim may take the delivery again.
    pub lease: jiff::SignedDuration,
}

/// A delivery claimed for one attempt: everything needed to send it without another read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub id: String,
    pub webhook_id: String,
    pub url: String,
    /// Newest first; two during a rotation's overlap.
    pub secrets: Vec<kairos_core::webhook::WebhookSecret>,
    pub event_id: String,
    pub event_type: String,
    /// The exact envelope bytes.
    pub payload: String,
    pub event_created_at: Timestamp,
    /// Attempts finished before this one.
    pub attempts_made: u32,
    /// Proves the claim is still ours when the attempt is recorded.
    pub lease: String,
}

/// The result of one attempt, to be recorded with what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub delivery_id: String,
    pub lease: String,
    pub attempt: kairos_core::webhook::Attempt,
    pub next: kairos_core::webhook::Next,
}

/// The state of the delivery queue, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Events committed but not yet fanned out to subscriptions.
    pub undispatched_events: u64,
    /// Deliveries due now and not claimed: work the workers have not caught up with.
    pub due_deliveries: u64,
    /// Deliveries waiting for a scheduled retry.
    pub scheduled_retries: u64,
    /// Since when the longest-waiting due work (an undispatched event, or a due, unclaimed
    /// delivery) has been due: the age of the backlog, not of scheduled retries.
    pub oldest_due: Option<Timestamp>,
}

/// What one fan-out did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dispatched {
    /// Events fanned out (each once).
    pub events: usize,
    /// Deliveries they made.
    pub deliveries: usize,
}

/// What a retention sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub deliveries: u64,
    pub events: u64,
    pub idempotency_keys: u64,
}

/// A connection to a source of calendars for one user: an ICS feed, or a Google, Microsoft or
/// CalDAV account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarConnection {
    pub id: String,
    pub user_id: String,
    /// `ics`, `google`, `microsoft`, `caldav`.
    pub provider: String,
    /// The feed's URL, the CalDAV server's URL, or the provider account's email.
    pub url: String,
    /// `active`; `error` when the last sync failed (`last_error` says why); `needs_reauth` when
    /// the provider refused our grant and the user must connect again.
    pub status: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub last_sync: Option<Timestamp>,
    pub last_error: Option<String>,
    pub next_sync_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One calendar of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarRecord {
    pub id: String,
    pub connection_id: String,
    pub user_id: String,
    pub name: String,
    pub provider: String,
    pub primary: bool,
    /// Only selected calendars hold their user's time.
    pub selected: bool,
    /// Events in the calendar as last synced (series count once).
    pub event_count: u32,
    /// The provider's id of the calendar (Google/Graph calendar id, CalDAV collection URL);
    /// `None` for a feed.
    pub remote_id: Option<String>,
    /// Where the next incremental sync starts (sync token, delta link); `None` before the
    /// first sync and after an expired one.
    pub cursor: Option<String>,
    /// Whether events can be written to it.
    pub writable: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What one sync of a connection found.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncOutcome {
    /// New content: the calendar text, its validators, and the busy time it yields (written
    /// only while the calendar is selected).
    Changed {
        source: String,
        name: Option<String>,
        etag: Option<String>,
        last_modified: Option<String>,
        events: u32,
        busy: Vec<Interval>,
    },
    /// The server answered 304 Not Modified.
    Unchanged,
    /// The fetch or the parse failed; what was synced before stays.
    Failed(String),
}

/// A finished sync, to record.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRecord {
    pub connection_id: String,
    pub at: Timestamp,
    pub next_sync_at: Timestamp,
    pub outcome: SyncOutcome,
}

/// One provider object of a calendar, as iCalendar (see `kairos-providers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarItem {
    pub remote_id: String,
    pub etag: Option<String>,
    pub ical: String,
}

/// A synced calendar of a provider connection.
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarSync {
    pub calendar_id: String,
    pub cursor: Option<String>,
    /// `upserts` is the whole content: every other item is gone.
    pub full: bool,
    pub upserts: Vec<CalendarItem>,
    pub removed: Vec<String>,
    /// The calendar's text after the change (empty for provider calendars, whose items are
    /// their text), its event count, and the busy time it yields (written only while the
    /// calendar is selected).
    pub source: String,
    pub events: u32,
    pub busy: Vec<Interval>,
    /// What changed, for `calendar_event.*` webhooks (empty for full syncs).
    pub changes: Vec<EventChange>,
}

/// One event changed on the provider, as a `calendar_event.created|updated|deleted` webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventChange {
    /// `created`, `updated` or `deleted`.
    pub kind: &'static str,
    /// The event's UID (the events API's id is `{calendar_id}:{uid}`).
    pub uid: String,
    pub remote_id: String,
}

/// What one sync of a provider connection found.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderSyncOutcome {
    Synced(Vec<CalendarSync>),
    /// The sync failed and will be tried again; what was synced before stays.
    Failed(String),
    /// The provider refused our grant: status `needs_reauth`, `connection.needs_reauth` once,
    /// and no more syncs until the user connects again.
    NeedsReauth(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSyncRecord {
    pub connection_id: String,
    pub at: Timestamp,
    pub next_sync_at: Timestamp,
    pub outcome: ProviderSyncOutcome,
}

/// A provider connection made or made again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    pub connection: CalendarConnection,
    pub calendars: Vec<CalendarRecord>,
    /// Whether the user had connected this account before.
    pub existed: bool,
    /// Whether it was waiting for the user to reconnect (`connection.reactivated` was sent).
    pub reactivated: bool,
}

/// A pending OAuth authorization: the `state` we sent the provider points at it. Used once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthState {
    pub nonce: String,
    pub provider: String,
    pub user_id: String,
    /// Where the browser goes back to (the app's page).
    pub redirect_uri: String,
    /// The app's own `state`, handed back to it.
    pub app_state: Option<String>,
    /// The PKCE verifier, sealed.
    pub verifier: String,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}

/// A push channel (Google watch channel, Graph subscription) of a calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushChannel {
    /// The provider's id for it.
    pub id: String,
    pub connection_id: String,
    pub calendar_id: String,
    pub provider: String,
    /// Google's resourceId.
    pub resource_id: Option<String>,
    /// SHA-256 (hex) of the token the provider echoes with each notification.
    pub token_hash: String,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}

/// A booking's event on one participant's calendar (write-back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarWrite {
    pub booking_id: String,
    pub user_id: String,
    pub connection_id: String,
    pub calendar_id: String,
    /// The provider's id of the event once written.
    pub remote_id: Option<String>,
    pub etag: Option<String>,
    /// Whether the event should exist (the booking holds time) or not (cancelled).
    pub present: bool,
    /// Bumped by every change of the booking; the write records the version it wrote.
    pub version: i64,
    /// `pending`, `done` or `failed` (retries exhausted; `last_error` says why).
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub updated_at: Timestamp,
    /// The lease the row is held under, as its claim wrote it (when it lapses, to the
    /// millisecond); `None` when nobody claimed it since it was last recorded. It is the claim's
    /// fencing token: recording changes the row only while the row still carries this value,
    /// so a worker whose lease lapsed and was taken over records nothing over the new holder.
    ///
    /// The lease's end serves as the token, with no column (and migration) of its own, because
    /// every claim writes a new one: a claim takes only a row whose lease has lapsed and writes
    /// an end past it (by at least a millisecond, whatever the lease). Once the row has been
    /// recorded (released), a later claim could repeat an old end only if its clock read, to the
    /// millisecond, what the clock of a holder that never recorded read, after some node had seen
    /// that holder's lease lapse: nodes' clocks a whole lease apart.
    pub lease: Option<Timestamp>,
}

/// How a claimed write went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The event exists as wanted (or, for an absent one, is gone).
    Written { remote_id: Option<String>, etag: Option<String> },
    /// Failed; try again at `retry_at`, or give up (`None`).
    Failed { error: String, retry_at: Option<Timestamp> },
}

/// What a booking email says: the first invitation, a change of time, or a cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    /// The booking is confirmed: an invitation (`METHOD:REQUEST`).
    Confirmation,
    /// The time changed after an invitation went out: a `REQUEST` with a higher `SEQUENCE`.
    Updated,
    /// The booking was cancelled: `METHOD:CANCEL`.
    Cancelled,
}

impl EmailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmation => "confirmation",
            Self::Updated => "updated",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "confirmation" => Some(Self::Confirmation),
            "updated" => Some(Self::Updated),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A booking's email to one recipient (the customer or a participant). One row per
/// recipient: every booking change re-wants it with the booking's newest state, so an email
/// that has not gone out yet is replaced, never sent stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingEmail {
    pub booking_id: String,
    /// Lowercase address.
    pub recipient: String,
    pub name: Option<String>,
    /// The participant's user id; `None` for the customer.
    pub user_id: Option<String>,
    pub kind: EmailKind,
    /// Bumped by every change of the booking; the invitation's `SEQUENCE`.
    pub version: i64,
    /// The version of the last email that went out, if any did.
    pub sent_version: Option<i64>,
    /// `pending`, `sent`, `skipped` (nothing to send, or no SMTP configured; `last_error`
    /// says why) or `failed` (retries exhausted, or refused for good).
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub sent_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    /// As for [`CalendarWrite::lease`].
    pub lease: Option<Timestamp>,
    /// The booking's times as the last email that went out gave them (an update says "Was:
    /// …"). The worker sets them to what it sent before recording [`EmailOutcome::Sent`],
    /// which keeps them.
    pub sent_times: Option<Interval>,
}

/// How a claimed email went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailOutcome {
    /// The SMTP server accepted it.
    Sent,
    /// Nothing was sent, on purpose (the reason is kept).
    Skipped(String),
    /// Failed; try again at `retry_at`, or give up (`None`).
    Failed { error: String, retry_at: Option<Timestamp> },
}

/// What a completed payment did to its booking.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentApplied {
    /// The hold became a confirmed booking (`booking.confirmed` recorded).
    Confirmed(Booking),
    /// Already confirmed by an earlier delivery of the same payment: nothing changed.
    AlreadyConfirmed(Booking),
    /// The hold had lapsed and its time was taken meanwhile: the booking stays cancelled
    /// and the payment is owed back.
    TooLate(Booking),
    /// The booking was cancelled before the payment completed; nothing changed.
    Cancelled(Booking),
    /// The amount or currency paid is not the booking's price; nothing changed (the hold
    /// lapses unless a right payment arrives).
    Mismatch(Booking),
}

/// Who a booking's emails go to, in order: the customer, then each participant; one email
/// per address (lowercased). Each as (address, name, the participant's user id).
pub fn email_recipients(booking: &Booking) -> Vec<(String, Option<String>, Option<String>)> {
    let mut out: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    if let Some(email) = &booking.customer_email {
        out.push((email.to_lowercase(), booking.customer_name.clone(), None));
    }
    for p in &booking.participants {
        let email = p.email.to_lowercase();
        if !out.iter().any(|(e, _, _)| *e == email) {
            out.push((email, p.name.clone(), Some(p.id.clone())));
        }
    }
    out
}

/// Whom a proposal's response link speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHolder {
    /// The named participant at this index.
    Participant(usize),
    /// An open poll's shared vote link (the voter gives a name).
    OpenPoll,
}

/// A response link's credential as stored: the SHA-256 (hex) of its token, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalToken {
    pub hash: String,
    pub holder: TokenHolder,
}

/// What a proposal email says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProposalEmailKind {
    /// Respond to the proposal, through the personal link the row keeps sealed.
    Invitation,
    /// Everyone agreed: the booked time with a `METHOD:REQUEST` invitation (sent to the
    /// participants who are not Kairos users and can come; users get the booking's emails).
    Accepted,
    /// The poll chose a time (sent to every named participant; nothing is booked).
    Resolved,
    /// The accepted or resolved proposal was called off (sent to those the outcome went to).
    Cancelled,
}

impl ProposalEmailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::Accepted => "accepted",
            Self::Resolved => "resolved",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Invitation, Self::Accepted, Self::Resolved, Self::Cancelled].into_iter().find(|k| k.as_str() == s)
    }
}

/// A proposal's email to one participant: one row per proposal and recipient, first the
/// invitation to respond, then re-wanted (in the transaction of the change) with the outcome
/// and with its cancellation. The invitation's link is a credential: it is stored sealed (by
/// the caller's keyring, bound to the proposal and the recipient) and erased once the email
/// went out or was given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalEmail {
    pub proposal_id: String,
    /// Lowercase address.
    pub recipient: String,
    pub name: Option<String>,
    /// The sealed response link; `None` once sent, skipped or failed.
    pub link_sealed: Option<String>,
    pub kind: ProposalEmailKind,
    /// 0 for the first email, bumped by every re-want: recording a send of an older version
    /// never marks a newer one sent.
    pub version: i64,
    /// The version of the last email that went out, if any did.
    pub sent_version: Option<i64>,
    /// `pending`, `sent`, `skipped` or `failed`, as for booking emails.
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub sent_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    /// As for [`BookingEmail::lease`] (ignored when the email is queued).
    pub lease: Option<Timestamp>,
}

/// Why an action on a proposal did not happen. Nothing changed, except that for `Booking`
/// the proposal now reports the conflict (`Proposal::conflict`).
#[derive(Debug, thiserror::Error)]
pub enum ProposalError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] kairos_core::proposal::Refusal),
    /// Everyone agreed on `slot_id` but it could not be booked.
    #[error("the agreed slot {slot_id} could not be booked: {error}")]
    Booking { slot_id: String, error: BookingError },
    #[error(transparent)]
    Store(#[from] StoreError),
}
