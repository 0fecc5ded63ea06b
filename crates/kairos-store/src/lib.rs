//! The storage boundary: the [`Store`] trait every backend implements (SQLite now,
//! PostgreSQL next), the records it speaks in, its errors, and the [`contract`] test suite
//! each backend must pass.
//!
//! Architecture invariant: the trait speaks the domain (`create_booking`, `load_party`), never
//! tables or SQL, and each method is one unit of atomicity — transactions live inside the
//! implementations. Every query is scoped by a [`Tenant`] (account and mode).
#![forbid(unsafe_code)]

pub mod clock;
pub mod contract;
pub mod ids;
pub mod keys;
pub mod party;
pub mod proposals;
mod records;

pub use clock::Clock;
pub use records::*;

use async_trait::async_trait;
use jiff::Timestamp;
use kairos_core::plan::Party;
use kairos_core::proposal::{Action as ProposalAction, Proposal, ProposalStatus};
use kairos_core::webhook::{Delivery, Webhook};
use kairos_core::{Booking, Business, Interval, Link, User};

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
    /// The request cannot be done in the object's present state (409); `code` is
    /// machine-readable and `message` says what to do.
    #[error("refused ({code}): {message}")]
    Refused { code: &'static str, message: String },
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

    // Webhook subscriptions. Reads return the secrets too (the API decides what to show).
    async fn insert_webhook(&self, t: &Tenant, webhook: &Webhook) -> StoreResult<()>;
    async fn webhook(&self, t: &Tenant, id: &str) -> StoreResult<Option<Webhook>>;
    async fn webhooks(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Webhook>>;
    /// Applies `edit` to the current subscription. Disabling it marks its pending deliveries
    /// failed, in the same transaction.
    async fn update_webhook(&self, t: &Tenant, id: &str, edit: Edit<Webhook>) -> StoreResult<Webhook>;
    /// Deletes a subscription and its delivery history.
    async fn delete_webhook(&self, t: &Tenant, id: &str) -> StoreResult<bool>;
    /// A subscription's deliveries, newest first, with their attempts. `NotFound` when the
    /// subscription is not the tenant's.
    async fn webhook_deliveries(
        &self,
        t: &Tenant,
        webhook_id: &str,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Delivery>>;
    /// Queues the event of delivery `delivery_id` again, as a new delivery due now;
    /// `Refused("webhook_disabled")` when the subscription is disabled.
    async fn redeliver(&self, t: &Tenant, webhook_id: &str, delivery_id: &str, now: Timestamp)
    -> StoreResult<Delivery>;
    /// Records a `ping` event for one subscription and queues its delivery;
    /// `Refused("webhook_disabled")` when the subscription is disabled.
    async fn ping_webhook(&self, t: &Tenant, webhook_id: &str, now: Timestamp) -> StoreResult<Delivery>;

    // The delivery worker's side: these span every tenant.
    /// Fans up to `limit` undispatched events out to the subscriptions that want them (enabled,
    /// created no later than the event), as deliveries due at `now`.
    async fn dispatch_events(&self, now: Timestamp, limit: usize) -> StoreResult<Dispatched>;
    /// Claims due deliveries for one attempt each, oldest due first, within `limits`.
    async fn claim_deliveries(&self, now: Timestamp, limits: &ClaimLimits) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Records an attempt and what follows it; false (and the delivery left alone) when the
    /// claim had lapsed and been taken by another worker. The attempt is kept either way.
    async fn record_attempt(&self, record: &AttemptRecord, now: Timestamp) -> StoreResult<bool>;
    /// The queue's state for metrics (it may read every waiting delivery: call it sparingly).
    async fn delivery_queue(&self, now: Timestamp) -> StoreResult<QueueStats>;
    /// When the next scheduled attempt falls due after `now` (cheap).
    async fn next_delivery_due(&self, now: Timestamp) -> StoreResult<Option<Timestamp>>;
    /// Deletes finished deliveries, delivered events and expired idempotency keys older than
    /// their retention.
    async fn sweep(&self, now: Timestamp, retention: jiff::SignedDuration) -> StoreResult<SweepReport>;
    // Calendars.
    /// Stores a new connection with its calendar, the calendar's text and its busy time, in
    /// one transaction; `Conflict("url")` when the user already has this feed.
    async fn insert_calendar_connection(
        &self,
        t: &Tenant,
        connection: &CalendarConnection,
        calendar: &CalendarRecord,
        source: &str,
        busy: &[Interval],
    ) -> StoreResult<()>;
    /// Connections, of one user or of the whole tenant.
    async fn calendar_connections(&self, t: &Tenant, user_id: Option<&str>) -> StoreResult<Vec<CalendarConnection>>;
    /// Calendars, of one user or of the whole tenant, oldest first.
    async fn calendars(&self, t: &Tenant, user_id: Option<&str>) -> StoreResult<Vec<CalendarRecord>>;
    /// A user's calendars with their text, for the events API.
    async fn calendar_sources(&self, t: &Tenant, user_id: &str) -> StoreResult<Vec<(CalendarRecord, String)>>;
    /// Selects or deselects a calendar. Deselecting removes its busy time at once; selecting
    /// makes its connection due for a sync (which writes the busy time).
    async fn select_calendar(
        &self,
        t: &Tenant,
        id: &str,
        selected: bool,
        now: Timestamp,
    ) -> StoreResult<CalendarRecord>;
    /// Records a sync: status, validators, and on new content the calendar's text and (when
    /// selected) its busy time, replaced in one transaction.
    async fn record_calendar_sync(&self, t: &Tenant, record: &SyncRecord) -> StoreResult<()>;
    /// Deletes a user's (or every) connection of `provider`, with their calendars, items, push
    /// channels and busy time, recording `consent.revoked` for OAuth providers; returns how
    /// many.
    async fn delete_calendar_connections(
        &self,
        t: &Tenant,
        user_id: Option<&str>,
        provider: &str,
        now: Timestamp,
    ) -> StoreResult<usize>;
    /// Connections due for a background sync, across tenants, the longest due first.
    async fn due_calendar_syncs(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<(Tenant, CalendarConnection)>>;

    // Provider connections (Google, Microsoft, CalDAV).
    /// Stores a provider connection with its sealed credentials and its calendars, or — when
    /// the user already connected this account — takes the new credentials, makes it active
    /// and adds calendars it did not have. Records `consent.granted` for OAuth providers, and
    /// `connection.reactivated` when it was waiting for reauthorization, in the same
    /// transaction.
    async fn connect_provider(
        &self,
        t: &Tenant,
        connection: &CalendarConnection,
        secret: &str,
        calendars: &[CalendarRecord],
        now: Timestamp,
    ) -> StoreResult<Connected>;
    /// The sealed credentials of a connection.
    async fn connection_secret(&self, t: &Tenant, connection_id: &str) -> StoreResult<Option<String>>;
    /// Replaces the sealed credentials (after a refresh, or to reseal under a new key).
    async fn store_connection_secret(
        &self,
        t: &Tenant,
        connection_id: &str,
        secret: &str,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// The items of a calendar as last synced.
    async fn calendar_items(&self, t: &Tenant, calendar_id: &str) -> StoreResult<Vec<CalendarItem>>;
    /// Records a provider sync: items, cursors, texts and busy time of its calendars, and the
    /// connection's status, in one transaction.
    async fn record_provider_sync(&self, t: &Tenant, record: &ProviderSyncRecord) -> StoreResult<()>;
    /// Makes a connection due for a sync now (a push notification arrived).
    async fn request_calendar_sync(&self, t: &Tenant, connection_id: &str, now: Timestamp) -> StoreResult<bool>;
    /// Keeps a pending OAuth authorization.
    async fn insert_oauth_state(&self, t: &Tenant, state: &OAuthState) -> StoreResult<()>;
    /// Takes a pending authorization (it can be taken once); `None` when unknown, used or
    /// expired.
    async fn take_oauth_state(&self, nonce: &str, now: Timestamp) -> StoreResult<Option<(Tenant, OAuthState)>>;
    /// Stores (or replaces, by id) a push channel.
    async fn save_push_channel(&self, t: &Tenant, channel: &PushChannel) -> StoreResult<()>;
    /// A push channel by the provider's id, across tenants (notifications carry no key).
    async fn push_channel(&self, id: &str) -> StoreResult<Option<(Tenant, PushChannel)>>;
    /// The push channels of a connection.
    async fn push_channels(&self, t: &Tenant, connection_id: &str) -> StoreResult<Vec<PushChannel>>;
    /// Push channels expiring before `before`, across tenants, the soonest first.
    async fn expiring_push_channels(&self, before: Timestamp, limit: usize) -> StoreResult<Vec<(Tenant, PushChannel)>>;
    async fn delete_push_channel(&self, t: &Tenant, id: &str) -> StoreResult<bool>;

    // Write-back of bookings to providers' calendars (queued by the booking transactions).
    /// Claims due writes under a lease of `lease`, across tenants; each carries its claim's
    /// fencing token ([`CalendarWrite::lease`]). A write stays claimed until it is recorded or
    /// its lease lapses.
    async fn claim_calendar_writes(
        &self,
        now: Timestamp,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> StoreResult<Vec<(Tenant, CalendarWrite)>>;
    /// Records a claimed write of `version`: done if no newer change of the booking arrived
    /// meanwhile (else it stays pending for that one). Releases the lease. False, and nothing
    /// changed, when the claim no longer holds the row (its lease lapsed and another claim took
    /// it, or the row is gone).
    async fn record_calendar_write(
        &self,
        t: &Tenant,
        write: &CalendarWrite,
        outcome: &WriteOutcome,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// The provider ids of the events written for bookings into a calendar (their time is
    /// the bookings'; a sync must not count it twice).
    async fn written_event_ids(&self, t: &Tenant, calendar_id: &str) -> StoreResult<std::collections::HashSet<String>>;
    /// A booking's writes, one per participant with a writable calendar.
    async fn calendar_writes(&self, t: &Tenant, booking_id: &str) -> StoreResult<Vec<CalendarWrite>>;

    // Booking links (public pages).
    /// Stores a new link; `Conflict("slug")` when the slug is taken (by any tenant).
    async fn insert_link(&self, t: &Tenant, link: &Link) -> StoreResult<()>;
    async fn link(&self, t: &Tenant, id: &str) -> StoreResult<Option<Link>>;
    async fn links(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Link>>;
    /// Applies `edit` to the current link; `Conflict("slug")` when a new slug is taken.
    async fn update_link(&self, t: &Tenant, id: &str, edit: Edit<Link>) -> StoreResult<Link>;
    async fn delete_link(&self, t: &Tenant, id: &str) -> StoreResult<bool>;
    /// The link a public page names, with its tenant (public pages carry no key).
    async fn link_by_slug(&self, slug: &str) -> StoreResult<Option<(Tenant, Link)>>;

    // Booking emails (queued by the booking transactions, sent by the email worker).
    /// Claims due emails under a lease of `lease`, across tenants, the longest waiting first;
    /// each carries its claim's fencing token ([`BookingEmail::lease`]).
    async fn claim_emails(
        &self,
        now: Timestamp,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> StoreResult<Vec<(Tenant, BookingEmail)>>;
    /// Records a claimed email of `email.version`: final only if no newer change of the
    /// booking arrived meanwhile (else it stays pending for that one). Releases the lease.
    /// False, and nothing changed, when the claim no longer holds the row (as for
    /// [`Store::record_calendar_write`]).
    async fn record_email(
        &self,
        t: &Tenant,
        email: &BookingEmail,
        outcome: &EmailOutcome,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Records every due email (booking and proposal emails alike) as skipped for `reason`,
    /// across tenants (with no SMTP server configured there is nothing to attempt); returns
    /// how many. Skipped proposal emails lose their sealed links.
    async fn skip_due_emails(&self, now: Timestamp, reason: &str) -> StoreResult<usize>;
    /// Says that no mail server will send booking emails, and why: from now on a backend may
    /// record each booking email as skipped for `reason` as it queues it, in the booking's own
    /// transaction, rather than leave it pending for [`Store::skip_due_emails`]. Either way an
    /// email ends skipped for `reason`; this only saves writing every row twice. The first
    /// call's reason stands. True when this backend does so; the default does nothing and
    /// says false (every email waits for the sweep).
    fn skip_emails_as_queued(&self, reason: &str) -> bool {
        let _ = reason;
        false
    }
    /// A booking's emails, one per recipient.
    async fn booking_emails(&self, t: &Tenant, booking_id: &str) -> StoreResult<Vec<BookingEmail>>;

    // Payments (Stripe Checkout). Payment notices carry no tenant: bookings are found by id.
    /// Stores the checkout session a payment hold is paid through.
    async fn set_checkout(
        &self,
        t: &Tenant,
        booking_id: &str,
        session_id: &str,
        url: &str,
        now: Timestamp,
    ) -> StoreResult<Booking>;
    /// Applies a completed payment of `session_id` to the booking it was opened for: a held
    /// (or lapsed but still free) booking is confirmed with its amount and `booking.confirmed`
    /// is recorded. `None` when no booking has that id and session.
    async fn complete_payment(
        &self,
        booking_id: &str,
        session_id: &str,
        amount: i64,
        currency: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(Tenant, PaymentApplied)>>;
    /// Ends an unpaid hold (its checkout expired or was abandoned): a `pending_payment`
    /// booking is cancelled with `reason` and `booking.cancelled` recorded. `None` when no
    /// booking has that id and session; the booking unchanged when it is not pending.
    async fn end_payment_hold(
        &self,
        booking_id: &str,
        session_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(Tenant, Booking)>>;
    /// Cancels up to `limit` unpaid holds that lapsed before `now`, across tenants, each with
    /// its `booking.cancelled`; returns them with their checkout session ids.
    async fn expire_payment_holds(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<(Tenant, Booking, Option<String>)>>;

    // Proposals (multi-party scheduling).
    /// Stores a new proposal with its response links' hashes and its invitation emails, and
    /// records `proposal.created`, in one transaction.
    async fn insert_proposal(
        &self,
        t: &Tenant,
        proposal: &Proposal,
        tokens: &[ProposalToken],
        emails: &[ProposalEmail],
        now: Timestamp,
    ) -> StoreResult<()>;
    async fn proposal(&self, t: &Tenant, id: &str) -> StoreResult<Option<Proposal>>;
    /// Proposals, newest first, optionally of one status.
    async fn proposals(
        &self,
        t: &Tenant,
        status: Option<ProposalStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<Proposal>>;
    /// The proposal a response link's token hash opens, with its tenant (response links carry
    /// no key) and whom the link speaks for.
    async fn proposal_by_token(&self, token_hash: &str) -> StoreResult<Option<(Tenant, Proposal, TokenHolder)>>;
    /// Applies `action` to the proposal as it is inside the transaction, carries out its
    /// effect (booking the agreed slot through the normal booking path, or cancelling that
    /// booking) and records each event it emits with the proposal emails it wants (see
    /// [`proposals::outcome_emails`]), all in one transaction. When the agreed slot
    /// cannot be booked nothing of the action is kept; the proposal records the conflict
    /// instead and `ProposalError::Booking` says why.
    async fn act_on_proposal(
        &self,
        t: &Tenant,
        id: &str,
        action: ProposalAction,
        now: Timestamp,
    ) -> Result<Proposal, ProposalError>;
    /// Expires (or, for polls with votes, resolves) up to `limit` open proposals whose
    /// `expires_at` has passed, across tenants, each with its event (and a resolved poll's
    /// emails); returns them.
    async fn expire_proposals(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<(Tenant, Proposal)>>;
    /// Claims due proposal emails (invitations and outcomes) under a lease of `lease`, across
    /// tenants; each carries its claim's fencing token ([`ProposalEmail::lease`]).
    async fn claim_proposal_emails(
        &self,
        now: Timestamp,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> StoreResult<Vec<(Tenant, ProposalEmail)>>;
    /// Records how a claimed proposal email went. It changes the row's status only while the
    /// row is still at the claimed `version` (a newer outcome stays pending); a send, a skip
    /// or a final failure erases its sealed link. Releases the lease. False, and nothing
    /// changed, when the claim no longer holds the row (as for
    /// [`Store::record_calendar_write`]).
    async fn record_proposal_email(
        &self,
        t: &Tenant,
        email: &ProposalEmail,
        outcome: &EmailOutcome,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// A proposal's emails, one per participant it emailed (the invitation, or the outcome
    /// that replaced it).
    async fn proposal_emails(&self, t: &Tenant, proposal_id: &str) -> StoreResult<Vec<ProposalEmail>>;

    // Leases: mutual exclusion across nodes for work that calls out to other services (a
    // calendar sync, a token refresh, a push renewal), where a transaction must not be held.
    /// Takes the lease `key` for `holder` until `until` when nobody else holds it unexpired
    /// (its own holder may extend it); true when taken.
    async fn try_lease(&self, key: &str, holder: &str, until: Timestamp, now: Timestamp) -> StoreResult<bool>;
    /// Gives a lease up; only its holder can.
    async fn release_lease(&self, key: &str, holder: &str) -> StoreResult<()>;

    /// Notified after a commit that recorded events, so the worker need not poll for them.
    fn events_recorded(&self) -> std::sync::Arc<tokio::sync::Notify>;
    /// Notified after a commit that queued deliveries directly (pings, redeliveries).
    fn deliveries_queued(&self) -> std::sync::Arc<tokio::sync::Notify>;
}
