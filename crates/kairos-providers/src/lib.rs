//! Calendar providers behind one trait.
//!
//! Every provider's events are mapped into iCalendar text (one [`RemoteItem`] per provider
//! object: a single event, a series master, or one changed or cancelled instance of a series,
//! all VEVENTs that share the series' UID). The calendar core then reads every provider the
//! same way: recurrence, exceptions, time zones (Windows names included) and busy rules are
//! written once, in `kairos-core::calendar`.
//!
//! Adapters know the wire formats and nothing of storage: OAuth refresh, retries and
//! persistence are the caller's (`kairos-jobs`).

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

/// How a request to a provider is authorised.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// An OAuth 2.0 access token (Google, Microsoft).
    Bearer(String),
    /// HTTP Basic (CalDAV).
    Basic { username: String, password: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer(…)"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, …)"),
        }
    }
}

/// A calendar as the provider lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCalendar {
    /// The provider's id (Google calendar id, Graph calendar id, CalDAV collection URL).
    pub id: String,
    pub name: String,
    pub primary: bool,
    /// Whether events can be written to it.
    pub writable: bool,
    /// Its IANA time zone, when the provider says.
    pub timezone: Option<String>,
}

/// One provider object as iCalendar: `ical` holds one or more VEVENTs (no VCALENDAR around
/// them; VTIMEZONEs they need may precede them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteItem {
    /// The provider's id of the object (Google event id, Graph event id, CalDAV href).
    pub id: String,
    /// Its version, for conditional writes (ETag), when the provider has one.
    pub etag: Option<String>,
    pub ical: String,
}

/// One change found by a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Upsert(RemoteItem),
    /// The object is gone (deleted, or no longer in the synced window).
    Removed {
        id: String,
    },
}

/// What a sync of one calendar found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// `true` when `changes` is the calendar's whole content (a first sync, or a full resync
    /// after an expired cursor): anything not in it is gone.
    pub full: bool,
    pub changes: Vec<Change>,
    /// Where the next incremental sync starts (sync token, delta link, CalDAV sync-token).
    pub cursor: Option<String>,
}

/// An event to write to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDraft {
    /// Stable across updates: Kairos sets it from the booking id, so a retried create is
    /// recognised.
    pub uid: String,
    pub title: String,
    pub description: Option<String>,
    pub start: Timestamp,
    pub end: Timestamp,
    /// IANA zone the event is shown in.
    pub timezone: String,
    pub attendees: Vec<DraftAttendee>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftAttendee {
    pub email: String,
    pub name: Option<String>,
}

/// A push subscription (Google watch channel, Graph subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: String,
    /// Google's `resourceId` (needed to stop the channel); Graph has none.
    pub resource_id: Option<String>,
    pub expires_at: Timestamp,
}

/// Why a provider call failed, in the categories the caller acts on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The credentials were refused (401): refresh the token, or the user must reconnect.
    #[error("the provider refused the credentials: {0}")]
    Unauthorized(String),
    /// The sync cursor is no longer valid (Google 410, Graph expired delta, CalDAV 403
    /// valid-sync-token): sync from scratch.
    #[error("the sync cursor expired; a full sync is needed")]
    CursorExpired,
    /// 429 or 503 with or without `Retry-After`.
    #[error("the provider is rate limiting or unavailable{}", retry_hint(retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// A conditional write lost (412): someone changed the object meanwhile.
    #[error("the event changed on the provider meanwhile")]
    Conflict,
    #[error("not found on the provider: {0}")]
    NotFound(String),
    /// Any other HTTP error status, with the provider's message.
    #[error("the provider answered {status}: {message}")]
    Http { status: u16, message: String },
    /// The provider could not be reached or did not answer in time.
    #[error("the provider could not be reached: {0}")]
    Transport(String),
    /// The provider answered something we cannot read.
    #[error("the provider's answer could not be read: {0}")]
    Protocol(String),
}

pub type ProviderResult<T> = Result<T, ProviderError>;

fn retry_hint(retry_after: &Option<Duration>) -> String {
    retry_after.map(|d| format!(" (it asked for {} s)", d.as_secs())).unwrap_or_default()
}

/// A calendar provider's API. One value per provider for Google and Microsoft, one per account
/// for CalDAV (it knows its server's URL); every call carries its credentials.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// `google`, `microsoft`, `caldav`.
    fn name(&self) -> &'static str;

    async fn list_calendars(&self, auth: &Credentials) -> ProviderResult<Vec<RemoteCalendar>>;

    /// Syncs one calendar: everything when `cursor` is `None`, else the changes since it.
    /// `window` bounds what a full sync asks for where the provider needs a window (Graph's
    /// calendarView); providers that sync whole calendars ignore it.
    async fn sync(
        &self,
        auth: &Credentials,
        calendar: &str,
        cursor: Option<&str>,
        window: kairos_core::Interval,
    ) -> ProviderResult<SyncResult>;

    /// Busy time of the calendars in the window, straight from the provider.
    async fn free_busy(
        &self,
        auth: &Credentials,
        calendars: &[String],
        window: kairos_core::Interval,
    ) -> ProviderResult<Vec<kairos_core::Interval>>;

    async fn create_event(&self, auth: &Credentials, calendar: &str, draft: &EventDraft) -> ProviderResult<RemoteItem>;
    async fn update_event(
        &self,
        auth: &Credentials,
        calendar: &str,
        id: &str,
        etag: Option<&str>,
        draft: &EventDraft,
    ) -> ProviderResult<RemoteItem>;
    /// Deleting what is already gone is not an error.
    async fn delete_event(
        &self,
        auth: &Credentials,
        calendar: &str,
        id: &str,
        etag: Option<&str>,
    ) -> ProviderResult<()>;

    /// Starts push notifications for a calendar to `address`, tagged with `token` (Google's
    /// channel token, Graph's clientState). `None` when the provider has no push (CalDAV).
    async fn watch(
        &self,
        auth: &Credentials,
        calendar: &str,
        address: &str,
        token: &str,
        expires_at: Timestamp,
    ) -> ProviderResult<Option<Channel>>;
    async fn renew(&self, auth: &Credentials, channel: &Channel, expires_at: Timestamp) -> ProviderResult<Channel>;
    async fn stop(&self, auth: &Credentials, channel: &Channel) -> ProviderResult<()>;
}

pub mod caldav;
pub mod google;
pub mod microsoft;
pub mod oauth;
pub mod sealed;
pub mod stripe;
