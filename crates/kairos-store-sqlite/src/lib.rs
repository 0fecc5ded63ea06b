//! The embedded SQLite implementation of [`Store`]: the default, one file, no server.
//!
//! Reads run on a pool of read-only connections (WAL: they never wait for the writer); writes
//! run on one writer thread that commits them in groups, each inside its own savepoint (see
//! [`db`]). Slot searches read a cache of users and businesses with their held time, which
//! the writer invalidates after each commit (see [`cache`]); booking writes always re-read the
//! database inside their transaction, so the no-double-booking rule never rests on the cache.
//!
//! rusqlite rather than sqlx for this backend: sqlx's SQLite driver crosses threads for every
//! statement and every row, which measured 69 µs per INSERT and 7 ms to read 5,000 rows here —
//! an order of magnitude over this project's speed targets.
#![forbid(unsafe_code)]

mod bookings;
mod cache;
mod calendars;
mod checks;
mod db;
mod directory;
mod emails;
mod idempotency;
mod leases;
mod links;
mod memo;
mod proposals;
mod providers;
mod queue;
mod rows;
mod webhooks;
mod writes;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use kairos_core::plan::Party;
use kairos_core::proposal::{Action as ProposalAction, Proposal, ProposalStatus};
use kairos_core::webhook::{Delivery, Webhook};
use kairos_core::{Booking, Business, Interval, Link, User};
use kairos_store::*;
use rusqlite_migration::{M, Migrations};

use cache::{Cache, CacheKey, CachedBusiness, CachedUser, LOOKBACK};
use db::{Journal, Readers, Writer};

pub use db::path_of;

/// How the SQLite file is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file.
    pub path: PathBuf,
    /// Connections for reads.
    pub readers: usize,
    /// `FULL` also survives power loss (an fsync per commit); `NORMAL`, the default, survives
    /// process crashes, which is what WAL guarantees without syncing every commit.
    pub synchronous_full: bool,
}

impl SqliteOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), readers: 4, synchronous_full: false }
    }
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/0001_core.sql")),
        M::up(include_str!("../migrations/0002_webhooks.sql")),
        M::up(include_str!("../migrations/0003_calendars.sql")),
        M::up(include_str!("../migrations/0004_providers.sql")),
        M::up(include_str!("../migrations/0005_leases.sql")),
        M::up(include_str!("../migrations/0006_emails_payments.sql")),
        M::up(include_str!("../migrations/0007_links.sql")),
        M::up(include_str!("../migrations/0008_proposals.sql")),
        M::up(include_str!("../migrations/0009_proposal_outcomes.sql")),
        // 0010: the booking path's CHECKs without `IN` lists (see `checks.rs`).
        M::up_with_hook("", checks::without_in_lists),
        M::up(include_str!("../migrations/0011_booking_path.sql")),
        M::up(include_str!("../migrations/0012_customer_timezone.sql")),
        M::up(include_str!("../migrations/0013_email_sent_times.sql")),
    ])
}

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    readers: Arc<Readers>,
    writer: Arc<Writer>,
    cache: Arc<Cache>,
    events: Arc<tokio::sync::Notify>,
    deliveries: Arc<tokio::sync::Notify>,
    /// Set when no mail server will send booking emails: why they are skipped as queued.
    emails_skipped: Arc<std::sync::OnceLock<Arc<str>>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub async fn open(options: &SqliteOptions) -> Result<Self, StoreError> {
        let options = options.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(&options))
            .await
            .map_err(|e| StoreError::Backend(format!("opening the database failed: {e}")))?
    }

    fn open_blocking(options: &SqliteOptions) -> Result<Self, StoreError> {
        let mut migrating = db::open(&options.path, true, options.synchronous_full)?;
        migrations().to_latest(&mut migrating).map_err(|e| StoreError::Backend(format!("migrations failed: {e}")))?;
        // A connection that migrated may hold the schema as it was (see `checks.rs`): the
        // writer starts on a fresh one.
        drop(migrating);
        let writer = db::open(&options.path, true, options.synchronous_full)?;
        let readers = (0..options.readers.max(1))
            .map(|_| db::open(&options.path, false, false))
            .collect::<Result<Vec<_>, _>>()?;
        let cache = Arc::new(Cache::default());
        Ok(Self {
            readers: Arc::new(Readers::new(readers)),
            writer: Arc::new(Writer::start(
                writer,
                db::open(&options.path, true, options.synchronous_full)?,
                cache.clone(),
            )),
            cache,
            events: Arc::new(tokio::sync::Notify::new()),
            deliveries: Arc::new(tokio::sync::Notify::new()),
            emails_skipped: Arc::default(),
        })
    }

    /// Why booking emails are recorded as skipped when queued, if they are.
    fn emails_skipped(&self) -> Option<Arc<str>> {
        self.emails_skipped.get().cloned()
    }

    async fn write<T, E>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<(T, Vec<CacheKey>), E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.writer.run(f).await
    }

    /// A write that records events: the delivery worker hears of them once committed.
    async fn write_events<T, E>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<(T, Vec<CacheKey>), E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let written = self.writer.run(f).await;
        if written.is_ok() {
            self.events.notify_one();
        }
        written
    }

    async fn read<T, E>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<T, E> + Send + 'static) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.readers.run(f).await
    }

    async fn cached_user(&self, t: &Tenant, id: &str, now: Timestamp) -> StoreResult<Option<Arc<CachedUser>>> {
        let entry = match self.cache.user(id) {
            Some(entry) => entry,
            None => {
                let stamp = self.cache.stamp(&CacheKey::User(id.to_string()));
                let (id, since) = (id.to_string(), now - LOOKBACK);
                let Some(entry) = self.read(move |c| bookings::user_entry(c, &id, since)).await? else {
                    return Ok(None);
                };
                let entry = Arc::new(entry);
                self.cache.put_user(stamp, entry.clone());
                entry
            }
        };
        Ok((entry.tenant == *t).then_some(entry))
    }

    async fn cached_business(&self, t: &Tenant, id: &str, now: Timestamp) -> StoreResult<Option<Arc<CachedBusiness>>> {
        let entry = match self.cache.business(id) {
            Some(entry) => entry,
            None => {
                let stamp = self.cache.stamp(&CacheKey::Business(id.to_string()));
                let (id, since) = (id.to_string(), now - LOOKBACK);
                let Some(entry) = self.read(move |c| bookings::business_entry(c, &id, since)).await? else {
                    return Ok(None);
                };
                let entry = Arc::new(entry);
                self.cache.put_business(stamp, entry.clone());
                entry
            }
        };
        Ok((entry.tenant == *t).then_some(entry))
    }

    async fn user_id(&self, t: &Tenant, r: &UserRef) -> StoreResult<Option<String>> {
        match r {
            UserRef::Id(id) => Ok(Some(id.clone())),
            UserRef::Email(email) => {
                if let Some(id) = self.cache.email(t, email) {
                    return Ok(Some(id));
                }
                let stamp = self.cache.stamp(&CacheKey::Emails);
                let (tenant, address) = (t.clone(), email.clone());
                let found = self.read(move |c| directory::user_by_email(c, &tenant, &address)).await?;
                if let Some(user) = &found {
                    self.cache.put_email(stamp, t, email, &user.id);
                }
                Ok(found.map(|u| u.id))
            }
        }
    }

    /// Assembles a party from the cache (loading missing entries), or `None` when the window
    /// reaches further back than cached entries do.
    async fn party_from_cache(
        &self,
        t: &Tenant,
        who: &Who,
        window: Interval,
        now: Timestamp,
    ) -> Result<Option<Party>, BookingError> {
        let business = match &who.business_id {
            Some(id) => {
                Some(self.cached_business(t, id, now).await?.ok_or(BookingError::Party(PartyError::UnknownBusiness))?)
            }
            None => None,
        };
        party::check_named(who).map_err(BookingError::Party)?;
        let mut hosts = Vec::new();
        for host in business.iter().flat_map(|b| b.business.hosts.iter()).filter(|_| !who.named_only) {
            // A host deleted since the business was cached is simply not there.
            hosts.push(self.cached_user(t, host, now).await?);
        }
        let mut participants = Vec::with_capacity(who.participants.len());
        for r in &who.participants {
            participants.push(match self.user_id(t, r).await? {
                Some(id) => self.cached_user(t, &id, now).await?,
                None => None,
            });
        }
        let (members, required) =
            party::members(who, hosts, participants, |m| &m.user.id).map_err(BookingError::Party)?;
        let margin = Party::busy_margin(business.as_ref().map(|b| b.business.as_ref()));
        let span = window.widened(margin, margin);
        let oldest = members.iter().map(|m| m.since).chain(business.iter().map(|b| b.since)).max();
        if oldest.is_some_and(|since| since > span.start() - party::DAY_REACH) {
            return Ok(None);
        }
        let busy = members.iter().map(|m| m.held.at(now)).collect();
        let (mut base_busy, mut booked_starts): (kairos_core::Timeline, Vec<Timestamp>) = Default::default();
        if let Some(b) = &business {
            base_busy = b.held.at(now);
            if b.business.max_bookings_per_day.is_some() {
                let days = window.widened(party::DAY_REACH, party::DAY_REACH);
                booked_starts = b
                    .starts
                    .iter()
                    .filter(|(start, lapses)| {
                        days.start() <= *start && *start < days.end() && lapses.is_none_or(|at| at > now)
                    })
                    .map(|(start, _)| *start)
                    .collect();
            }
        }
        Ok(Some(Party {
            business: business.map(|b| b.business.clone()),
            members: members.iter().map(|m| m.user.clone()).collect(),
            required,
            busy,
            base_busy,
            booked_starts,
        }))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.execute_batch("SELECT 1").map_err(db::error)).await
    }

    async fn create_api_key(
        &self,
        account_name: &str,
        mode: Mode,
        key: &keys::HashedKey,
        now: Timestamp,
    ) -> StoreResult<Account> {
        let (name, key) = (account_name.to_string(), key.clone());
        self.write(move |c| directory::create_api_key(c, &name, mode, &key, now).map(|a| (a, Vec::new()))).await
    }

    async fn tenant_for_key(&self, key_hash: &str) -> StoreResult<Option<Tenant>> {
        if let Some(t) = self.cache.key(key_hash) {
            return Ok(Some(t));
        }
        let hash = key_hash.to_string();
        let found = self.read(move |c| directory::tenant_for_key(c, &hash)).await?;
        if let Some(t) = &found {
            self.cache.put_key(key_hash, t.clone());
        }
        Ok(found)
    }

    async fn insert_user(&self, t: &Tenant, user: &User) -> StoreResult<()> {
        let (t, user) = (t.clone(), user.clone());
        self.write(move |c| {
            directory::insert_user(c, &t, &user).map(|()| ((), vec![CacheKey::User(user.id.clone()), CacheKey::Emails]))
        })
        .await
    }

    async fn user(&self, t: &Tenant, id: &str) -> StoreResult<Option<User>> {
        let (t, id) = (t.clone(), id.to_string());
        self.read(move |c| directory::user(c, &t, &id)).await
    }

    async fn users(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<User>> {
        let (t, page) = (t.clone(), page.clone());
        self.read(move |c| directory::users(c, &t, &page)).await
    }

    async fn update_user(&self, t: &Tenant, id: &str, edit: Edit<User>) -> StoreResult<User> {
        let (t, id) = (t.clone(), id.to_string());
        self.write(move |c| {
            let mut user = directory::user(c, &t, &id)?.ok_or(StoreError::NotFound)?;
            edit(&mut user)?;
            user.id = id;
            directory::update_user(c, &t, &user)?;
            let stale = vec![CacheKey::User(user.id.clone()), CacheKey::Emails];
            Ok((user, stale))
        })
        .await
    }

    async fn delete_user(&self, t: &Tenant, id: &str) -> StoreResult<bool> {
        let (t, id) = (t.clone(), id.to_string());
        self.write(move |c| {
            let deleted = directory::delete_user(c, &t, &id)?;
            Ok((deleted, vec![CacheKey::User(id.clone()), CacheKey::Emails, CacheKey::AllBusinesses]))
        })
        .await
    }

    async fn resolve_users(&self, t: &Tenant, refs: &[UserRef]) -> StoreResult<Vec<Option<User>>> {
        let (t, refs) = (t.clone(), refs.to_vec());
        self.read(move |c| directory::resolve_users(c, &t, &refs)).await
    }

    async fn insert_business(&self, t: &Tenant, business: &Business) -> StoreResult<()> {
        let (t, b) = (t.clone(), business.clone());
        self.write(move |c| {
            directory::insert_business(c, &t, &b).map(|()| ((), vec![CacheKey::Business(b.id.clone())]))
        })
        .await
    }

    async fn business(&self, t: &Tenant, id: &str) -> StoreResult<Option<Business>> {
        let (t, id) = (t.clone(), id.to_string());
        self.read(move |c| directory::business(c, &t, &id)).await
    }

    async fn businesses(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Business>> {
        let (t, page) = (t.clone(), page.clone());
        self.read(move |c| directory::businesses(c, &t, &page)).await
    }

    async fn update_business(&self, t: &Tenant, id: &str, edit: Edit<Business>) -> StoreResult<Business> {
        let (t, id) = (t.clone(), id.to_string());
        self.write(move |c| {
            let mut business = directory::business(c, &t, &id)?.ok_or(StoreError::NotFound)?;
            edit(&mut business)?;
            business.id = id;
            directory::update_business(c, &t, &business).map_err(|e| match e {
                // The business exists (it was just read): a missing row is a host.
                StoreError::NotFound => StoreError::Invalid {
                    param: "hosts".into(),
                    message: "A host no longer exists; check the hosts and retry.".into(),
                    missing: false,
                },
                other => other,
            })?;
            let stale = vec![CacheKey::Business(business.id.clone())];
            Ok((business, stale))
        })
        .await
    }

    async fn delete_business(&self, t: &Tenant, id: &str) -> StoreResult<bool> {
        let (t, id) = (t.clone(), id.to_string());
        self.write(move |c| directory::delete_business(c, &t, &id).map(|d| (d, vec![CacheKey::Business(id.clone())])))
            .await
    }

    async fn add_busy_blocks(&self, t: &Tenant, user_id: &str, blocks: &[NewBusyBlock]) -> StoreResult<()> {
        let (t, id, blocks) = (t.clone(), user_id.to_string(), blocks.to_vec());
        self.write(move |c| {
            directory::add_busy_blocks(c, &t, &id, &blocks).map(|()| ((), vec![CacheKey::User(id.clone())]))
        })
        .await
    }

    async fn load_party(&self, t: &Tenant, who: &Who, window: Interval, now: Timestamp) -> Result<Party, BookingError> {
        if who.ignore_booking.is_none()
            && !who.named_only
            && let Some(party) = self.party_from_cache(t, who, window, now).await?
        {
            return Ok(party);
        }
        let (t, who) = (t.clone(), who.clone());
        self.read(move |c| bookings::load_party(c, &t, &who, window, now, None)).await
    }

    async fn create_booking(&self, t: &Tenant, new: &NewBooking, now: Timestamp) -> Result<Booking, BookingError> {
        let (t, new, skipped) = (t.clone(), new.clone(), self.emails_skipped());
        // `bookings::create` checks every rule before its first write (see `Journal`).
        let written = self
            .writer
            .run_memo(Journal::CheckedFirst, move |c, memo| {
                bookings::create(c, &t, &new, now, Some(memo), skipped.as_deref())
            })
            .await;
        if written.is_ok() {
            self.events.notify_one();
        }
        written
    }

    async fn booking(&self, t: &Tenant, id: &str) -> StoreResult<Option<Booking>> {
        let (t, id) = (t.clone(), id.to_string());
        self.read(move |c| bookings::get(c, &t, &id)).await
    }

    async fn bookings(&self, t: &Tenant, filter: &BookingFilter, page: &PageRequest) -> StoreResult<Page<Booking>> {
        let (t, filter, page) = (t.clone(), filter.clone(), page.clone());
        self.read(move |c| bookings::list(c, &t, &filter, &page)).await
    }

    async fn reschedule_booking(
        &self,
        t: &Tenant,
        id: &str,
        to: Interval,
        now: Timestamp,
    ) -> Result<Booking, BookingError> {
        let (t, id, skipped) = (t.clone(), id.to_string(), self.emails_skipped());
        self.write_events(move |c| bookings::reschedule(c, &t, &id, to, now, skipped.as_deref())).await
    }

    async fn cancel_booking(
        &self,
        t: &Tenant,
        id: &str,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<Booking, BookingError> {
        let (t, id, reason, skipped) = (t.clone(), id.to_string(), reason.map(str::to_string), self.emails_skipped());
        self.write_events(move |c| bookings::cancel(c, &t, &id, reason.as_deref(), now, skipped.as_deref())).await
    }

    async fn claim_idempotency_key(
        &self,
        t: &Tenant,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> StoreResult<IdempotencyClaim> {
        let (t, key, fingerprint) = (t.clone(), key.to_string(), fingerprint.to_string());
        self.write(move |c| idempotency::claim(c, &t, &key, &fingerprint, now).map(|claim| (claim, Vec::new()))).await
    }

    async fn complete_idempotency_key(
        &self,
        t: &Tenant,
        key: &str,
        token: &str,
        response: &StoredResponse,
    ) -> StoreResult<bool> {
        let (t, key, token, response) = (t.clone(), key.to_string(), token.to_string(), response.clone());
        self.write(move |c| idempotency::complete(c, &t, &key, &token, &response).map(|done| (done, Vec::new()))).await
    }

    async fn release_idempotency_key(&self, t: &Tenant, key: &str, token: &str) -> StoreResult<()> {
        let (t, key, token) = (t.clone(), key.to_string(), token.to_string());
        self.write(move |c| idempotency::release(c, &t, &key, &token).map(|()| ((), Vec::new()))).await
    }

    async fn close(&self) {
        // Finishes queued writes and joins the writer thread.
        let writer = self.writer.clone();
        let _ = tokio::task::spawn_blocking(move || writer.stop()).await;
    }

    async fn outbox_events(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<OutboxEvent>> {
        let (t, page) = (t.clone(), page.clone());
        self.read(move |c| bookings::outbox_events(c, &t, &page)).await
    }

    async fn insert_webhook(&self, t: &Tenant, webhook: &Webhook) -> StoreResult<()> {
        let (t, w) = (t.clone(), webhook.clone());
        self.write(move |c| webhooks::insert(c, &t, &w).map(|()| ((), Vec::new()))).await
    }

    async fn webhook(&self, t: &Tenant, id: &str) -> StoreResult<Option<Webhook>> {
        let (t, id) = (t.clone(), id.to_string());
        self.read(move |c| webhooks::get(c, &t, &id)).await
    }

    async fn webhooks(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Webhook>> {
        let (t, page) = (t.clone(), page.clone());
        self.read(move |c| webhooks::list(c, &t, &page)).await
    }

    async fn update_webhook(&self, t: &Tenant, id: &str, edit: Edit<Webhook>) -> StoreResult<Webhook> {
        let (t, id) = (t.clone(), id.to_string());
        self.write(move |c| {
            let mut hook = webhooks::get(c, &t, &id)?.ok_or(StoreError::NotFound)?;
            let was_enabled = hook.enabled;
            edit(&mut hook)?;
            hook.id = id;
            webhooks::update(c, &t, &hook, was_enabled)?;
            Ok((hook, Vec::new()))
        })
        .await
    }

    async fn delete_webhook(&self, t: &Tenant, id: &str) -> StoreResult<bool> {
        let (t, id) = (t.clone(), id.to_string());
        self.write(move |c| webhooks::delete(c, &t, &id).map(|d| (d, Vec::new()))).await
    }

    async fn webhook_deliveries(
        &self,
        t: &Tenant,
        webhook_id: &str,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Delivery>> {
        let (t, id, filter, page) = (t.clone(), webhook_id.to_string(), filter.clone(), page.clone());
        self.read(move |c| webhooks::deliveries(c, &t, &id, &filter, &page)).await
    }

    async fn redeliver(
        &self,
        t: &Tenant,
        webhook_id: &str,
        delivery_id: &str,
        now: Timestamp,
    ) -> StoreResult<Delivery> {
        let (t, hook, delivery) = (t.clone(), webhook_id.to_string(), delivery_id.to_string());
        let queued =
            self.write(move |c| webhooks::redeliver(c, &t, &hook, &delivery, now).map(|d| (d, Vec::new()))).await?;
        self.deliveries.notify_one();
        Ok(queued)
    }

    async fn ping_webhook(&self, t: &Tenant, webhook_id: &str, now: Timestamp) -> StoreResult<Delivery> {
        let (t, hook) = (t.clone(), webhook_id.to_string());
        let queued = self.write(move |c| webhooks::ping(c, &t, &hook, now).map(|d| (d, Vec::new()))).await?;
        self.deliveries.notify_one();
        Ok(queued)
    }

    async fn dispatch_events(&self, now: Timestamp, limit: usize) -> StoreResult<Dispatched> {
        self.write(move |c| queue::dispatch(c, now, limit).map(|n| (n, Vec::new()))).await
    }

    async fn claim_deliveries(&self, now: Timestamp, limits: &ClaimLimits) -> StoreResult<Vec<ClaimedDelivery>> {
        let limits = *limits;
        self.write(move |c| queue::claim(c, now, &limits).map(|d| (d, Vec::new()))).await
    }

    async fn record_attempt(&self, record: &AttemptRecord, now: Timestamp) -> StoreResult<bool> {
        let record = record.clone();
        self.write(move |c| queue::record(c, &record, now).map(|d| (d, Vec::new()))).await
    }

    async fn delivery_queue(&self, now: Timestamp) -> StoreResult<QueueStats> {
        self.read(move |c| queue::stats(c, now)).await
    }

    async fn next_delivery_due(&self, now: Timestamp) -> StoreResult<Option<Timestamp>> {
        self.read(move |c| queue::next_due(c, now)).await
    }

    async fn sweep(&self, now: Timestamp, retention: jiff::SignedDuration) -> StoreResult<SweepReport> {
        let mut total = SweepReport::default();
        loop {
            let step = self.write(move |c| queue::sweep_step(c, now, retention).map(|r| (r, Vec::new()))).await?;
            total.deliveries += step.deliveries;
            total.events += step.events;
            total.idempotency_keys += step.idempotency_keys;
            if step.deliveries.max(step.events).max(step.idempotency_keys) < queue::SWEEP_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    async fn insert_calendar_connection(
        &self,
        t: &Tenant,
        connection: &CalendarConnection,
        calendar: &CalendarRecord,
        source: &str,
        busy: &[Interval],
    ) -> StoreResult<()> {
        let (t, conn, cal, source, busy) =
            (t.clone(), connection.clone(), calendar.clone(), source.to_string(), busy.to_vec());
        self.write(move |c| {
            calendars::insert(c, &t, &conn, &cal, &source, &busy)
                .map(|()| ((), vec![CacheKey::User(cal.user_id.clone())]))
        })
        .await
    }

    async fn calendar_connections(&self, t: &Tenant, user_id: Option<&str>) -> StoreResult<Vec<CalendarConnection>> {
        let (t, user) = (t.clone(), user_id.map(str::to_string));
        self.read(move |c| calendars::connections(c, &t, user.as_deref())).await
    }

    async fn calendars(&self, t: &Tenant, user_id: Option<&str>) -> StoreResult<Vec<CalendarRecord>> {
        let (t, user) = (t.clone(), user_id.map(str::to_string));
        self.read(move |c| calendars::calendars(c, &t, user.as_deref())).await
    }

    async fn calendar_sources(&self, t: &Tenant, user_id: &str) -> StoreResult<Vec<(CalendarRecord, String)>> {
        let (t, user) = (t.clone(), user_id.to_string());
        self.read(move |c| calendars::sources(c, &t, &user)).await
    }

    async fn select_calendar(
        &self,
        t: &Tenant,
        id: &str,
        selected: bool,
        now: Timestamp,
    ) -> StoreResult<CalendarRecord> {
        let (t, id) = (t.clone(), id.to_string());
        self.write(move |c| {
            calendars::select(c, &t, &id, selected, now).map(|cal| {
                let stale = vec![CacheKey::User(cal.user_id.clone())];
                (cal, stale)
            })
        })
        .await
    }

    async fn record_calendar_sync(&self, t: &Tenant, record: &SyncRecord) -> StoreResult<()> {
        let (t, record) = (t.clone(), record.clone());
        self.write(move |c| {
            calendars::record(c, &t, &record).map(|user| ((), user.into_iter().map(CacheKey::User).collect()))
        })
        .await
    }

    async fn delete_calendar_connections(
        &self,
        t: &Tenant,
        user_id: Option<&str>,
        provider: &str,
        now: Timestamp,
    ) -> StoreResult<usize> {
        let (t, user, provider) = (t.clone(), user_id.map(str::to_string), provider.to_string());
        self.write_events(move |c| {
            calendars::delete(c, &t, user.as_deref(), &provider, now)
                .map(|(n, users)| (n, users.into_iter().map(CacheKey::User).collect()))
        })
        .await
    }

    async fn due_calendar_syncs(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<(Tenant, CalendarConnection)>> {
        self.read(move |c| calendars::due(c, now, limit)).await
    }

    async fn connect_provider(
        &self,
        t: &Tenant,
        connection: &CalendarConnection,
        secret: &str,
        calendars: &[CalendarRecord],
        now: Timestamp,
    ) -> StoreResult<Connected> {
        let (t, conn, secret, cals) = (t.clone(), connection.clone(), secret.to_string(), calendars.to_vec());
        self.write_events(move |c| providers::connect(c, &t, &conn, &secret, &cals, now).map(|done| (done, Vec::new())))
            .await
    }

    async fn connection_secret(&self, t: &Tenant, connection_id: &str) -> StoreResult<Option<String>> {
        let (t, id) = (t.clone(), connection_id.to_string());
        self.read(move |c| providers::secret(c, &t, &id)).await
    }

    async fn store_connection_secret(
        &self,
        t: &Tenant,
        connection_id: &str,
        secret: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let (t, id, secret) = (t.clone(), connection_id.to_string(), secret.to_string());
        self.write(move |c| providers::store_secret(c, &t, &id, &secret, now).map(|()| ((), Vec::new()))).await
    }

    async fn calendar_items(&self, t: &Tenant, calendar_id: &str) -> StoreResult<Vec<CalendarItem>> {
        let (t, id) = (t.clone(), calendar_id.to_string());
        self.read(move |c| providers::items(c, &t, &id)).await
    }

    async fn record_provider_sync(&self, t: &Tenant, record: &ProviderSyncRecord) -> StoreResult<()> {
        let (t, record) = (t.clone(), record.clone());
        self.write_events(move |c| {
            providers::record_sync(c, &t, &record).map(|user| ((), user.into_iter().map(CacheKey::User).collect()))
        })
        .await
    }

    async fn request_calendar_sync(&self, t: &Tenant, connection_id: &str, now: Timestamp) -> StoreResult<bool> {
        let (t, id) = (t.clone(), connection_id.to_string());
        self.write(move |c| providers::request_sync(c, &t, &id, now).map(|n| (n, Vec::new()))).await
    }

    async fn insert_oauth_state(&self, t: &Tenant, state: &OAuthState) -> StoreResult<()> {
        let (t, state) = (t.clone(), state.clone());
        self.write(move |c| providers::insert_state(c, &t, &state).map(|()| ((), Vec::new()))).await
    }

    async fn take_oauth_state(&self, nonce: &str, now: Timestamp) -> StoreResult<Option<(Tenant, OAuthState)>> {
        let nonce = nonce.to_string();
        self.write(move |c| providers::take_state(c, &nonce, now).map(|s| (s, Vec::new()))).await
    }

    async fn save_push_channel(&self, t: &Tenant, channel: &PushChannel) -> StoreResult<()> {
        let (t, channel) = (t.clone(), channel.clone());
        self.write(move |c| providers::save_channel(c, &t, &channel).map(|()| ((), Vec::new()))).await
    }

    async fn push_channel(&self, id: &str) -> StoreResult<Option<(Tenant, PushChannel)>> {
        let id = id.to_string();
        self.read(move |c| providers::channel(c, &id)).await
    }

    async fn push_channels(&self, t: &Tenant, connection_id: &str) -> StoreResult<Vec<PushChannel>> {
        let (t, id) = (t.clone(), connection_id.to_string());
        self.read(move |c| providers::channels(c, &t, &id)).await
    }

    async fn expiring_push_channels(&self, before: Timestamp, limit: usize) -> StoreResult<Vec<(Tenant, PushChannel)>> {
        self.read(move |c| providers::expiring(c, before, limit)).await
    }

    async fn delete_push_channel(&self, t: &Tenant, id: &str) -> StoreResult<bool> {
        let (t, id) = (t.clone(), id.to_string());
        self.write(move |c| providers::delete_channel(c, &t, &id).map(|n| (n, Vec::new()))).await
    }

    async fn claim_calendar_writes(
        &self,
        now: Timestamp,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> StoreResult<Vec<(Tenant, CalendarWrite)>> {
        self.write(move |c| writes::claim(c, now, lease, limit).map(|w| (w, Vec::new()))).await
    }

    async fn record_calendar_write(
        &self,
        t: &Tenant,
        write: &CalendarWrite,
        outcome: &WriteOutcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (t, write, outcome) = (t.clone(), write.clone(), outcome.clone());
        self.write(move |c| writes::record(c, &t, &write, &outcome, now).map(|r| (r, Vec::new()))).await
    }

    async fn written_event_ids(&self, t: &Tenant, calendar_id: &str) -> StoreResult<std::collections::HashSet<String>> {
        let (t, id) = (t.clone(), calendar_id.to_string());
        self.read(move |c| writes::remote_ids(c, &t, &id)).await
    }

    async fn calendar_writes(&self, t: &Tenant, booking_id: &str) -> StoreResult<Vec<CalendarWrite>> {
        let (t, id) = (t.clone(), booking_id.to_string());
        self.read(move |c| writes::of_booking(c, &t, &id)).await
    }

    async fn insert_link(&self, t: &Tenant, link: &Link) -> StoreResult<()> {
        let (t, link) = (t.clone(), link.clone());
        self.write(move |c| links::insert(c, &t, &link).map(|()| ((), Vec::new()))).await
    }

    async fn link(&self, t: &Tenant, id: &str) -> StoreResult<Option<Link>> {
        let (t, id) = (t.clone(), id.to_string());
        self.read(move |c| links::get(c, &t, &id)).await
    }

    async fn links(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Link>> {
        let (t, page) = (t.clone(), page.clone());
        self.read(move |c| links::list(c, &t, &page)).await
    }

    async fn update_link(&self, t: &Tenant, id: &str, edit: Edit<Link>) -> StoreResult<Link> {
        let (t, id) = (t.clone(), id.to_string());
        self.write(move |c| {
            let mut link = links::get(c, &t, &id)?.ok_or(StoreError::NotFound)?;
            edit(&mut link)?;
            link.id = id;
            links::update(c, &t, &link)?;
            Ok((link, Vec::new()))
        })
        .await
    }

    async fn delete_link(&self, t: &Tenant, id: &str) -> StoreResult<bool> {
        let (t, id) = (t.clone(), id.to_string());
        self.write(move |c| links::delete(c, &t, &id).map(|d| (d, Vec::new()))).await
    }

    async fn link_by_slug(&self, slug: &str) -> StoreResult<Option<(Tenant, Link)>> {
        let slug = slug.to_string();
        self.read(move |c| links::by_slug(c, &slug)).await
    }

    async fn insert_proposal(
        &self,
        t: &Tenant,
        proposal: &Proposal,
        tokens: &[ProposalToken],
        emails: &[ProposalEmail],
        now: Timestamp,
    ) -> StoreResult<()> {
        let (t, proposal, tokens, emails) = (t.clone(), proposal.clone(), tokens.to_vec(), emails.to_vec());
        self.write_events(move |c| {
            proposals::insert(c, &t, &proposal, &tokens, &emails, now).map(|()| ((), Vec::new()))
        })
        .await
    }

    async fn proposal(&self, t: &Tenant, id: &str) -> StoreResult<Option<Proposal>> {
        let (t, id) = (t.clone(), id.to_string());
        self.read(move |c| proposals::get(c, &t, &id)).await
    }

    async fn proposals(
        &self,
        t: &Tenant,
        status: Option<ProposalStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<Proposal>> {
        let (t, page) = (t.clone(), page.clone());
        self.read(move |c| proposals::list(c, &t, status, &page)).await
    }

    async fn proposal_by_token(&self, token_hash: &str) -> StoreResult<Option<(Tenant, Proposal, TokenHolder)>> {
        let hash = token_hash.to_string();
        self.read(move |c| proposals::by_token(c, &hash)).await
    }

    async fn act_on_proposal(
        &self,
        t: &Tenant,
        id: &str,
        action: ProposalAction,
        now: Timestamp,
    ) -> Result<Proposal, ProposalError> {
        let (tenant, proposal_id, skipped) = (t.clone(), id.to_string(), self.emails_skipped());
        let acted =
            self.write_events(move |c| proposals::act(c, &tenant, &proposal_id, action, now, skipped.as_deref())).await;
        let Err(ProposalError::Booking { slot_id, error }) = acted else { return acted };
        // The agreeing response was rolled back with its booking; the proposal keeps why.
        let (code, message) = kairos_store::proposals::conflict_text(&error);
        let (t, id, slot) = (t.clone(), id.to_string(), slot_id.clone());
        self.write(move |c| {
            proposals::record_conflict(c, &t, &id, &slot, (code, &message), now).map(|()| ((), Vec::new()))
        })
        .await?;
        Err(ProposalError::Booking { slot_id, error })
    }

    async fn expire_proposals(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<(Tenant, Proposal)>> {
        let skipped = self.emails_skipped();
        self.write_events(move |c| proposals::expire(c, now, limit, skipped.as_deref())).await
    }

    async fn claim_proposal_emails(
        &self,
        now: Timestamp,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> StoreResult<Vec<(Tenant, ProposalEmail)>> {
        self.write(move |c| proposals::claim_emails(c, now, lease, limit).map(|e| (e, Vec::new()))).await
    }

    async fn record_proposal_email(
        &self,
        t: &Tenant,
        email: &ProposalEmail,
        outcome: &EmailOutcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (t, email, outcome) = (t.clone(), email.clone(), outcome.clone());
        self.write(move |c| proposals::record_email(c, &t, &email, &outcome, now).map(|r| (r, Vec::new()))).await
    }

    async fn proposal_emails(&self, t: &Tenant, proposal_id: &str) -> StoreResult<Vec<ProposalEmail>> {
        let (t, id) = (t.clone(), proposal_id.to_string());
        self.read(move |c| proposals::emails(c, &t, &id)).await
    }

    async fn claim_emails(
        &self,
        now: Timestamp,
        lease: jiff::SignedDuration,
        limit: usize,
    ) -> StoreResult<Vec<(Tenant, BookingEmail)>> {
        self.write(move |c| emails::claim(c, now, lease, limit).map(|e| (e, Vec::new()))).await
    }

    async fn record_email(
        &self,
        t: &Tenant,
        email: &BookingEmail,
        outcome: &EmailOutcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (t, email, outcome) = (t.clone(), email.clone(), outcome.clone());
        self.write(move |c| emails::record(c, &t, &email, &outcome, now).map(|r| (r, Vec::new()))).await
    }

    async fn skip_due_emails(&self, now: Timestamp, reason: &str) -> StoreResult<usize> {
        let reason = reason.to_string();
        self.write(move |c| {
            let bookings = emails::skip_due(c, now, &reason)?;
            let proposals = proposals::skip_due_emails(c, now, &reason)?;
            Ok((bookings + proposals, Vec::new()))
        })
        .await
    }

    fn skip_emails_as_queued(&self, reason: &str) -> bool {
        let _ = self.emails_skipped.set(reason.into());
        true
    }

    async fn booking_emails(&self, t: &Tenant, booking_id: &str) -> StoreResult<Vec<BookingEmail>> {
        let (t, id) = (t.clone(), booking_id.to_string());
        self.read(move |c| emails::of_booking(c, &t, &id)).await
    }

    async fn set_checkout(
        &self,
        t: &Tenant,
        booking_id: &str,
        session_id: &str,
        url: &str,
        now: Timestamp,
    ) -> StoreResult<Booking> {
        let (t, id, session, url) = (t.clone(), booking_id.to_string(), session_id.to_string(), url.to_string());
        self.write(move |c| bookings::set_checkout(c, &t, &id, &session, &url, now)).await
    }

    async fn complete_payment(
        &self,
        booking_id: &str,
        session_id: &str,
        amount: i64,
        currency: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(Tenant, PaymentApplied)>> {
        let (id, session, currency) = (booking_id.to_string(), session_id.to_string(), currency.to_string());
        let skipped = self.emails_skipped();
        self.write_events(move |c| {
            bookings::complete_payment(c, &id, &session, amount, &currency, now, skipped.as_deref())
        })
        .await
    }

    async fn end_payment_hold(
        &self,
        booking_id: &str,
        session_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(Tenant, Booking)>> {
        let (id, session, reason) = (booking_id.to_string(), session_id.to_string(), reason.to_string());
        let skipped = self.emails_skipped();
        self.write_events(move |c| bookings::end_payment_hold(c, &id, &session, &reason, now, skipped.as_deref())).await
    }

    async fn expire_payment_holds(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<(Tenant, Booking, Option<String>)>> {
        let skipped = self.emails_skipped();
        self.write_events(move |c| bookings::expire_payment_holds(c, now, limit, skipped.as_deref())).await
    }

    async fn try_lease(&self, key: &str, holder: &str, until: Timestamp, now: Timestamp) -> StoreResult<bool> {
        let (key, holder) = (key.to_string(), holder.to_string());
        self.write(move |c| leases::take(c, &key, &holder, until, now).map(|taken| (taken, Vec::new()))).await
    }

    async fn release_lease(&self, key: &str, holder: &str) -> StoreResult<()> {
        let (key, holder) = (key.to_string(), holder.to_string());
        self.write(move |c| leases::release(c, &key, &holder).map(|()| ((), Vec::new()))).await
    }

    fn events_recorded(&self) -> Arc<tokio::sync::Notify> {
        self.events.clone()
    }

    fn deliveries_queued(&self) -> Arc<tokio::sync::Notify> {
        self.deliveries.clone()
    }
}
