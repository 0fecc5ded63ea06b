//! The storage boundary: the [`Store`] trait every backend implements (SQLite now,
//! PostgreSQL next), the records it speaks in, its errors, and the [`contract`] test suite
//! each backend must pass.
//!
//! Architecture invariant: the trait speaks the domain (`create_booking`, `load_party`), never
//! tables or SQL, and each method is one unit of atomicity — transactions live inside the
//! implementations. Every query is scoped by a [`Tenant`] (account and mode).
#![forbid(unsafe_code)]

pub mod contract;
pub mod ids;
pub mod keys;
pub mod party;
mod records;

pub use records::*;

use async_trait::async_trait;
use jiff::Timestamp;
use kairos_core::plan::Party;
use kairos_core::{Booking, Business, Interval, User};

/// A failure of the store itself, or a request it refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist for this tenant.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the payload names the field.
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// An edit refused the record it was given (it would make it invalid). `missing` when a
    /// required field is absent rather than wrong.
    #[error("invalid {param}: {message}")]
    Invalid { param: String, message: String, missing: bool },
    /// The database failed; the detail is for logs, never for clients.
    #[error("database error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A change to a record, applied to its current state inside the write transaction (so two
/// concurrent PATCHes cannot undo each other). It may refuse with [`StoreError::Invalid`].
pub type Edit<T> = Box<dyn FnOnce(&mut T) -> StoreResult<()> + Send>;

/// Why a booking write was refused.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error("the time is not available")]
    Unavailable(Refusal),
    #[error("the party could not be resolved")]
    Party(PartyError),
    #[error("a cancelled booking cannot be rescheduled")]
    Cancelled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The store's persistence contract. See the crate docs for the invariants.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Creates the account `account_name` if needed and stores a key (by hash) for `mode`.
    async fn create_api_key(
        &self,
        account_name: &str,
        mode: Mode,
        key: &keys::HashedKey,
        now: Timestamp,
    ) -> StoreResult<Account>;
    /// The tenant a key hash belongs to, if the key exists and is not revoked.
    async fn tenant_for_key(&self, key_hash: &str) -> StoreResult<Option<Tenant>>;

    /// Inserts a user; `Conflict("email")` when the email is taken in this tenant.
    async fn insert_user(&self, t: &Tenant, user: &User) -> StoreResult<()>;
    async fn user(&self, t: &Tenant, id: &str) -> StoreResult<Option<User>>;
    async fn users(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<User>>;
    /// Applies `edit` to the user inside one transaction and returns the result; `NotFound`,
    /// `Conflict("email")`, or the edit's own refusal.
    async fn update_user(&self, t: &Tenant, id: &str, edit: Edit<User>) -> StoreResult<User>;
    /// Deletes a user and removes them from businesses' hosts; false when absent.
    async fn delete_user(&self, t: &Tenant, id: &str) -> StoreResult<bool>;
    /// Resolves references to users, keeping order; `None` for each that does not exist.
    async fn resolve_users(&self, t: &Tenant, refs: &[UserRef]) -> StoreResult<Vec<Option<User>>>;

    /// Inserts a business; its hosts must be users of this tenant (`NotFound` otherwise).
    async fn insert_business(&self, t: &Tenant, business: &Business) -> StoreResult<()>;
    async fn business(&self, t: &Tenant, id: &str) -> StoreResult<Option<Business>>;
    async fn businesses(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Business>>;
    /// Applies `edit` to the business (fields and hosts) inside one transaction and returns the
    /// result; `NotFound` for the business, `Invalid` naming `hosts` for a host that does not
    /// exist, or the edit's own refusal.
    async fn update_business(&self, t: &Tenant, id: &str, edit: Edit<Business>) -> StoreResult<Business>;
    async fn delete_business(&self, t: &Tenant, id: &str) -> StoreResult<bool>;

    /// Records busy time on a user's calendar (what calendar sync writes).
    async fn add_busy_blocks(&self, t: &Tenant, user_id: &str, blocks: &[NewBusyBlock]) -> StoreResult<()>;

    /// Loads everyone `who` names and everything holding their time around `window`.
    async fn load_party(&self, t: &Tenant, who: &Who, window: Interval, now: Timestamp) -> Result<Party, BookingError>;

    /// Re-checks the rules and writes the booking and its `booking.created` event in one
    /// transaction; two bookings can never take the same time of one person.
    async fn create_booking(&self, t: &Tenant, new: &NewBooking, now: Timestamp) -> Result<Booking, BookingError>;
    async fn booking(&self, t: &Tenant, id: &str) -> StoreResult<Option<Booking>>;
    async fn bookings(&self, t: &Tenant, filter: &BookingFilter, page: &PageRequest) -> StoreResult<Page<Booking>>;
    /// Moves a booking under the same rules (ignoring its own time) and records
    /// `booking.updated`.
    async fn reschedule_booking(
        &self,
        t: &Tenant,
        id: &str,
        to: Interval,
        now: Timestamp,
    ) -> Result<Booking, BookingError>;
    /// Cancels a booking and records `booking.cancelled`; cancelling again changes nothing.
    async fn cancel_booking(
        &self,
        t: &Tenant,
        id: &str,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<Booking, BookingError>;

    /// Claims an idempotency key for a request with this fingerprint.
    async fn claim_idempotency_key(
        &self,
        t: &Tenant,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> StoreResult<IdempotencyClaim>;
    /// Stores the response of a key claimed with `token`; false when the claim is no longer
    /// the caller's.
    async fn complete_idempotency_key(
        &self,
        t: &Tenant,
        key: &str,
        token: &str,
        response: &StoredResponse,
    ) -> StoreResult<bool>;
    /// Gives a claim up (the request failed in a way worth retrying); only its owner can.
    async fn release_idempotency_key(&self, t: &Tenant, key: &str, token: &str) -> StoreResult<()>;

    /// Finishes queued work and releases the store's resources; called once at shutdown.
    async fn close(&self) {}

    /// Webhook events recorded for the tenant, newest first.
    async fn outbox_events(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<OutboxEvent>>;
}
