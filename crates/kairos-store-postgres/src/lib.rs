//! The PostgreSQL implementation of [`Store`]: the backend for several Kairos nodes sharing
//! one database.
//!
//! Multi-node rules, all enforced by the database rather than by this process:
//! - no double booking: an exclusion constraint on each person's holding time, plus
//!   transaction-scoped advisory locks per person and business while the rules are re-checked
//!   (see [`bookings`]);
//! - shared background work: deliveries, calendar syncs and calendar writes are claimed with
//!   `FOR UPDATE SKIP LOCKED` under leases, so each is done once and a dead node's claims
//!   lapse to the others;
//! - no cache: every read goes to the database, so nothing can be stale on another node;
//! - LISTEN/NOTIFY wakes every node's delivery worker when events are recorded anywhere (the
//!   NOTIFY is sent after the commit, never inside it: see [`db::forward`]);
//! - migrations run under sqlx's advisory lock, so nodes starting together migrate once.
#![forbid(unsafe_code)]

mod bookings;
mod calendars;
mod db;
mod directory;
mod emails;
mod idempotency;
mod leases;
mod links;
mod proposals;
mod providers;
mod queue;
mod rows;
mod webhooks;
mod writes;

pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use kairos_core::plan::Party;
use kairos_core::proposal::{Action as ProposalAction, Proposal, ProposalStatus};
use kairos_core::webhook::{Delivery, Webhook};
use kairos_core::{Booking, Business, Interval, Link, User};
use kairos_store::*;
use sqlx::PgPool;
use tokio::sync::Notify;

pub use db::PgOptions;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// This node's workers wait on these (woken by its own writes and by other nodes').
    events: Arc<Notify>,
    deliveries: Arc<Notify>,
    /// Signalled after this node commits work, for the tasks that tell the other nodes.
    outgoing_events: Arc<Notify>,
    outgoing_deliveries: Arc<Notify>,
    tasks: Arc<Vec<tokio::task::JoinHandle<()>>>,
}

impl PgStore {
    /// Connects, applies pending migrations (under an advisory lock: several nodes may start
    /// at once) and starts listening for other nodes' notifications.
    pub async fn open(options: &PgOptions) -> Result<Self, StoreError> {
        let mut migrating = db::connect_for_migrations(options).await?;
        MIGRATOR.run(&mut migrating).await.map_err(|e| StoreError::Backend(format!("migrations failed: {e}")))?;
        // Closing is a courtesy to the server; the migrations are committed either way.
        let _ = sqlx::Connection::close(migrating).await;
        let pool = db::connect(options).await?;
        let (events, deliveries) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (outgoing_events, outgoing_deliveries) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let tasks = vec![
            db::listen(pool.clone(), events.clone(), deliveries.clone()),
            db::forward(pool.clone(), db::EVENTS_CHANNEL, outgoing_events.clone()),
            db::forward(pool.clone(), db::DELIVERIES_CHANNEL, outgoing_deliveries.clone()),
        ];
        Ok(Self { pool, events, deliveries, outgoing_events, outgoing_deliveries, tasks: Arc::new(tasks) })
    }

    /// After a commit that recorded events: wake this node's worker now, and every node's.
    fn events_committed(&self) {
        self.events.notify_one();
        self.outgoing_events.notify_one();
    }

    /// After a commit that queued deliveries directly.
    fn deliveries_committed(&self) {
        self.deliveries.notify_one();
        self.outgoing_deliveries.notify_one();
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db::error)?;
        Ok(())
    }

    async fn create_api_key(
        &self,
        account_name: &str,
        mode: Mode,
        key: &keys::HashedKey,
        now: Timestamp,
    ) -> StoreResult<Account> {
        directory::create_api_key(&self.pool, account_name, mode, key, now).await
    }

    async fn tenant_for_key(&self, key_hash: &str) -> StoreResult<Option<Tenant>> {
        directory::tenant_for_key(&self.pool, key_hash).await
    }

    async fn insert_user(&self, t: &Tenant, user: &User) -> StoreResult<()> {
        directory::insert_user(&self.pool, t, user).await
    }

    async fn user(&self, t: &Tenant, id: &str) -> StoreResult<Option<User>> {
        directory::user(&self.pool, t, id).await
    }

    async fn users(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<User>> {
        directory::users(&self.pool, t, page).await
    }

    async fn update_user(&self, t: &Tenant, id: &str, edit: Edit<User>) -> StoreResult<User> {
        directory::update_user(&self.pool, t, id, edit).await
    }

    async fn delete_user(&self, t: &Tenant, id: &str) -> StoreResult<bool> {
        directory::delete_user(&self.pool, t, id).await
    }

    async fn resolve_users(&self, t: &Tenant, refs: &[UserRef]) -> StoreResult<Vec<Option<User>>> {
        directory::resolve_users(&self.pool, t, refs).await
    }

    async fn insert_business(&self, t: &Tenant, business: &Business) -> StoreResult<()> {
        directory::insert_business(&self.pool, t, business).await
    }

    async fn business(&self, t: &Tenant, id: &str) -> StoreResult<Option<Business>> {
        directory::business(&self.pool, t, id).await
    }

    async fn businesses(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Business>> {
        directory::businesses(&self.pool, t, page).await
    }

    async fn update_business(&self, t: &Tenant, id: &str, edit: Edit<Business>) -> StoreResult<Business> {
        directory::update_business(&self.pool, t, id, edit).await
    }

    async fn delete_business(&self, t: &Tenant, id: &str) -> StoreResult<bool> {
        directory::delete_business(&self.pool, t, id).await
    }

    async fn add_busy_blocks(&self, t: &Tenant, user_id: &str, blocks: &[NewBusyBlock]) -> StoreResult<()> {
        directory::add_busy_blocks(&self.pool, t, user_id, blocks).await
    }

    async fn load_party(&self, t: &Tenant, who: &Who, window: Interval, now: Timestamp) -> Result<Party, BookingError> {
        bookings::load_party(&self.pool, t, who, window, now).await
    }

    async fn create_booking(&self, t: &Tenant, new: &NewBooking, now: Timestamp) -> Result<Booking, BookingError> {
        let made = bookings::create(&self.pool, t, new, now).await;
        if made.is_ok() {
            self.events_committed();
        }
        made
    }

    async fn booking(&self, t: &Tenant, id: &str) -> StoreResult<Option<Booking>> {
        bookings::get(&self.pool, t, id).await
    }

    async fn bookings(&self, t: &Tenant, filter: &BookingFilter, page: &PageRequest) -> StoreResult<Page<Booking>> {
        bookings::list(&self.pool, t, filter, page).await
    }

    async fn reschedule_booking(
        &self,
        t: &Tenant,
        id: &str,
        to: Interval,
        now: Timestamp,
    ) -> Result<Booking, BookingError> {
        let moved = bookings::reschedule(&self.pool, t, id, to, now).await;
        if moved.is_ok() {
            self.events_committed();
        }
        moved
    }

    async fn cancel_booking(
        &self,
        t: &Tenant,
        id: &str,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<Booking, BookingError> {
        let cancelled = bookings::cancel(&self.pool, t, id, reason, now).await;
        if cancelled.is_ok() {
            self.events_committed();
        }
        cancelled
    }

    async fn claim_idempotency_key(
        &self,
        t: &Tenant,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> StoreResult<IdempotencyClaim> {
        idempotency::claim(&self.pool, t, key, fingerprint, now).await
    }

    async fn complete_idempotency_key(
        &self,
        t: &Tenant,
        key: &str,
        token: &str,
        response: &StoredResponse,
    ) -> StoreResult<bool> {
        idempotency::complete(&self.pool, t, key, token, response).await
    }

    async fn release_idempotency_key(&self, t: &Tenant, key: &str, token: &str) -> StoreResult<()> {
        idempotency::release(&self.pool, t, key, token).await
    }

    async fn close(&self) {
        for task in self.tasks.iter() {
            task.abort();
        }
        self.pool.close().await;
    }

    async fn outbox_events(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<OutboxEvent>> {
        webhooks::outbox_events(&self.pool, t, page).await
    }

    async fn insert_webhook(&self, t: &Tenant, webhook: &Webhook) -> StoreResult<()> {
        webhooks::insert(&self.pool, t, webhook).await
    }

    async fn webhook(&self, t: &Tenant, id: &str) -> StoreResult<Option<Webhook>> {
        webhooks::get(&self.pool, t, id).await
    }

    async fn webhooks(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Webhook>> {
        webhooks::list(&self.pool, t, page).await
    }

    async fn update_webhook(&self, t: &Tenant, id: &str, edit: Edit<Webhook>) -> StoreResult<Webhook> {
        webhooks::update(&self.pool, t, id, edit).await
    }

    async fn delete_webhook(&self, t: &Tenant, id: &str) -> StoreResult<bool> {
        webhooks::delete(&self.pool, t, id).await
    }

    async fn webhook_deliveries(
        &self,
        t: &Tenant,
        webhook_id: &str,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Delivery>> {
        webhooks::deliveries(&self.pool, t, webhook_id, filter, page).await
    }

    async fn redeliver(
        &self,
        t: &Tenant,
        webhook_id: &str,
        delivery_id: &str,
        now: Timestamp,
    ) -> StoreResult<Delivery> {
        let queued = webhooks::redeliver(&self.pool, t, webhook_id, delivery_id, now).await;
        if queued.is_ok() {
            self.deliveries_committed();
        }
        queued
    }

    async fn ping_webhook(&self, t: &Tenant, webhook_id: &str, now: Timestamp) -> StoreResult<Delivery> {
        let queued = webhooks::ping(&self.pool, t, webhook_id, now).await;
        if queued.is_ok() {
            self.deliveries_committed();
        }
        queued
    }

    async fn dispatch_events(&self, now: Timestamp, limit: usize) -> StoreResult<Dispatched> {
        queue::dispatch(&self.pool, now, limit).await
    }

    async fn claim_deliveries(&self, now: Timestamp, limits: &ClaimLimits) -> StoreResult<Vec<ClaimedDelivery>> {
        queue::claim(&self.pool, now, limits).await
    }

    async fn record_attempt(&self, record: &AttemptRecord, now: Timestamp) -> StoreResult<bool> {
        queue::record(&self.pool, record, now).await
    }

    async fn delivery_queue(&self, now: Timestamp) -> StoreResult<QueueStats> {
        queue::stats(&self.pool, now).await
    }

    async fn next_delivery_due(&self, now: Timestamp) -> StoreResult<Option<Timestamp>> {
        queue::next_due(&self.pool, now).await
    }

    async fn sweep(&self, now: Timestamp, retention: jiff::SignedDuration) -> StoreResult<SweepReport> {
        queue::sweep(&self.pool, now, retention).await
    }

    async fn insert_calendar_connection(
        &self,
        t: &Tenant,
        connection: &CalendarConnection,
        calendar: &CalendarRecord,
        source: &str,
        busy: &[Interval],
    ) -> StoreResult<()> {
        calendars::insert(&self.pool, t, connection, calendar, source, busy).await
    }

    async fn calendar_connections(&self, t: &Tenant, user_id: Option<&str>) -> StoreResult<Vec<CalendarConnection>> {
        calendars::connections(&self.pool, t, user_id).await
    }

    async fn calendars(&self, t: &Tenant, user_id: Option<&str>) -> StoreResult<Vec<CalendarRecord>> {
        calendars::calendars(&self.pool, t, user_id).await
    }

    async fn calendar_sources(&self, t: &Tenant, user_id: &str) -> StoreResult<Vec<(CalendarRecord, String)>> {
        calendars::sources(&self.pool, t, user_id).await
    }

    async fn select_calendar(
        &self,
        t: &Tenant,
        id: &str,
        selected: bool,
        now: Timestamp,
    ) -> StoreResult<CalendarRecord> {
        calendars::select(&self.pool, t, id, selected, now).await
    }

    async fn record_calendar_sync(&self, t: &Tenant, record: &SyncRecord) -> StoreResult<()> {
        calendars::record(&self.pool, t, record).await
    }

    async fn delete_calendar_connections(
        &self,
        t: &Tenant,
        user_id: Option<&str>,
        provider: &str,
        now: Timestamp,
    ) -> StoreResult<usize> {
        let deleted = calendars::delete(&self.pool, t, user_id, provider, now).await;
        if deleted.is_ok() {
            self.events_committed();
        }
        deleted
    }

    async fn due_calendar_syncs(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<(Tenant, CalendarConnection)>> {
        calendars::due(&self.pool, now, limit).await
    }

    async fn connect_provider(
        &self,
        t: &Tenant,
        connection: &CalendarConnection,
        secret: &str,
        calendars: &[CalendarRecord],
        now: Timestamp,
    ) -> StoreResult<Connected> {
        let connected = providers::connect(&self.pool, t, connection, secret, calendars, now).await;
        if connected.is_ok() {
            self.events_committed();
        }
        connected
    }

    async fn connection_secret(&self, t: &Tenant, connection_id: &str) -> StoreResult<Option<String>> {
        providers::secret(&self.pool, t, connection_id).await
    }

    async fn store_connection_secret(
        &self,
        t: &Tenant,
        connection_id: &str,
        secret: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        providers::store_secret(&self.pool, t, connection_id, secret, now).await
    }

    async fn calendar_items(&self, t: &Tenant, calendar_id: &str) -> StoreResult<Vec<CalendarItem>> {
        providers::items(&self.pool, t, calendar_id).await
    }

    async fn record_provider_sync(&self, t: &Tenant, record: &ProviderSyncRecord) -> StoreResult<()> {
        let recorded = providers::record_sync(&self.pool, t, record).await;
        if recorded.is_ok() {
            self.events_committed();
        }
        recorded
    }

    async fn request_calendar_sync(&self, t: &Tenant, connection_id: &str, now: Timestamp) -> StoreResult<bool> {
        providers::request_sync(&self.pool, t, connection_id, now).await
    }

    async fn insert_oauth_state(&self, t: &Tenant, state: &OAuthState) -> StoreResult<()> {
        providers::insert_state(&self.pool, t, state).await
    }

    async fn take_oauth_state(&self, nonce: &str, now: Timestamp) -> StoreResult<Option<(Tenant, OAuthState)>> {
        providers::take_state(&self.pool, nonce, now).await
    }

    async fn save_push_channel(&self, t: &Tenant, channel: &PushChannel) -> StoreResult<()> {
        providers::save_channel(&self.pool, t, channel).await
    }

    async fn push_channel(&self, id: &str) -> StoreResult<Option<(Tenant, PushChannel)>> {
        providers::channel(&self.pool, id).await
    }

    async fn push_channels(&self, t: &Tenant, connection_id: &str) -> StoreResult<Vec<PushChannel>> {
        providers::channels(&self.pool, t, connection_id).await
    }

    async fn expiring_push_channels(&self, before: Timestamp, limit: usize) -> StoreResult<Vec<(Tenant, PushChannel)>> {
        providers::expiring(&self.pool, before, limit).await
    }

    async fn delete_push_channel(&self, t: &Tenant, id: &str) -> StoreResult<bool> {
        providers::delete_channel(&self.pool, t, id).await
    }

    async fn claim_calendar_writes(
        &self,
        now: Timestamp,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> StoreResult<Vec<(Tenant, CalendarWrite)>> {
        writes::claim(&self.pool, now, lease, limit).await
    }

    async fn record_calendar_write(
        &self,
        t: &Tenant,
        write: &CalendarWrite,
        outcome: &WriteOutcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        writes::record(&self.pool, t, write, outcome, now).await
    }

    async fn written_event_ids(&self, t: &Tenant, calendar_id: &str) -> StoreResult<std::collections::HashSet<String>> {
        writes::remote_ids(&self.pool, t, calendar_id).await
    }

    async fn calendar_writes(&self, t: &Tenant, booking_id: &str) -> StoreResult<Vec<CalendarWrite>> {
        writes::of_booking(&self.pool, t, booking_id).await
    }

    async fn insert_link(&self, t: &Tenant, link: &Link) -> StoreResult<()> {
        links::insert(&self.pool, t, link).await
    }

    async fn link(&self, t: &Tenant, id: &str) -> StoreResult<Option<Link>> {
        links::get(&self.pool, t, id).await
    }

    async fn links(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Link>> {
        links::list(&self.pool, t, page).await
    }

    async fn update_link(&self, t: &Tenant, id: &str, edit: Edit<Link>) -> StoreResult<Link> {
        links::update(&self.pool, t, id, edit).await
    }

    async fn delete_link(&self, t: &Tenant, id: &str) -> StoreResult<bool> {
        links::delete(&self.pool, t, id).await
    }

    async fn link_by_slug(&self, slug: &str) -> StoreResult<Option<(Tenant, Link)>> {
        links::by_slug(&self.pool, slug).await
    }

    async fn insert_proposal(
        &self,
        t: &Tenant,
        proposal: &Proposal,
        tokens: &[ProposalToken],
        emails: &[ProposalEmail],
        now: Timestamp,
    ) -> StoreResult<()> {
        proposals::insert(&self.pool, t, proposal, tokens, emails, now).await?;
        self.events_committed();
        Ok(())
    }

    async fn proposal(&self, t: &Tenant, id: &str) -> StoreResult<Option<Proposal>> {
        proposals::get(&self.pool, t, id).await
    }

    async fn proposals(
        &self,
        t: &Tenant,
        status: Option<ProposalStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<Proposal>> {
        proposals::list(&self.pool, t, status, page).await
    }

    async fn proposal_by_token(&self, token_hash: &str) -> StoreResult<Option<(Tenant, Proposal, TokenHolder)>> {
        proposals::by_token(&self.pool, token_hash).await
    }

    async fn act_on_proposal(
        &self,
        t: &Tenant,
        id: &str,
        action: ProposalAction,
        now: Timestamp,
    ) -> Result<Proposal, ProposalError> {
        let acted = proposals::act(&self.pool, t, id, action, now).await?;
        self.events_committed();
        Ok(acted)
    }

    async fn expire_proposals(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<(Tenant, Proposal)>> {
        let expired = proposals::expire(&self.pool, now, limit).await?;
        if !expired.is_empty() {
            self.events_committed();
        }
        Ok(expired)
    }

    async fn claim_proposal_emails(
        &self,
        now: Timestamp,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> StoreResult<Vec<(Tenant, ProposalEmail)>> {
        proposals::claim_emails(&self.pool, now, lease, limit).await
    }

    async fn record_proposal_email(
        &self,
        t: &Tenant,
        email: &ProposalEmail,
        outcome: &EmailOutcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        proposals::record_email(&self.pool, t, email, outcome, now).await
    }

    async fn proposal_emails(&self, t: &Tenant, proposal_id: &str) -> StoreResult<Vec<ProposalEmail>> {
        proposals::emails(&self.pool, t, proposal_id).await
    }

    async fn claim_emails(
        &self,
        now: Timestamp,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> StoreResult<Vec<(Tenant, BookingEmail)>> {
        emails::claim(&self.pool, now, lease, limit).await
    }

    async fn record_email(
        &self,
        t: &Tenant,
        email: &BookingEmail,
        outcome: &EmailOutcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        emails::record(&self.pool, t, email, outcome, now).await
    }

    async fn skip_due_emails(&self, now: Timestamp, reason: &str) -> StoreResult<usize> {
        // Two sweeps, each one statement: a failure between them leaves the rest for the next.
        let bookings = emails::skip_due(&self.pool, now, reason).await?;
        let proposals = proposals::skip_due_emails(&self.pool, now, reason).await?;
        Ok(bookings + proposals)
    }

    async fn booking_emails(&self, t: &Tenant, booking_id: &str) -> StoreResult<Vec<BookingEmail>> {
        emails::of_booking(&self.pool, t, booking_id).await
    }

    async fn set_checkout(
        &self,
        t: &Tenant,
        booking_id: &str,
        session_id: &str,
        url: &str,
        now: Timestamp,
    ) -> StoreResult<Booking> {
        bookings::set_checkout(&self.pool, t, booking_id, session_id, url, now).await
    }

    async fn complete_payment(
        &self,
        booking_id: &str,
        session_id: &str,
        amount: i64,
        currency: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(Tenant, PaymentApplied)>> {
        let applied = bookings::complete_payment(&self.pool, booking_id, session_id, amount, currency, now).await?;
        self.events_committed();
        Ok(applied)
    }

    async fn end_payment_hold(
        &self,
        booking_id: &str,
        session_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(Tenant, Booking)>> {
        let ended = bookings::end_payment_hold(&self.pool, booking_id, session_id, reason, now).await?;
        self.events_committed();
        Ok(ended)
    }

    async fn expire_payment_holds(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<(Tenant, Booking, Option<String>)>> {
        let expired = bookings::expire_payment_holds(&self.pool, now, limit).await?;
        if !expired.is_empty() {
            self.events_committed();
        }
        Ok(expired)
    }

    async fn try_lease(&self, key: &str, holder: &str, until: Timestamp, now: Timestamp) -> StoreResult<bool> {
        leases::take(&self.pool, key, holder, until, now).await
    }

    async fn release_lease(&self, key: &str, holder: &str) -> StoreResult<()> {
        leases::release(&self.pool, key, holder).await
    }

    fn events_recorded(&self) -> Arc<Notify> {
        self.events.clone()
    }

    fn deliveries_queued(&self) -> Arc<Notify> {
        self.deliveries.clone()
    }
}
