//! The embedded SQLite implementation of [`Store`]: the default, one file, no server.
//!
//! Writes go through a pool of exactly one connection and open with `BEGIN IMMEDIATE`, so
//! write transactions queue fairly inside the process and take SQLite's write lock at their
//! start: a booking's re-check and its insert see the same database, and another process
//! writing the file (say `kairos keys create`) waits its turn instead of interleaving. Reads
//! use a separate pool and, in WAL mode, never wait for writers.
#![forbid(unsafe_code)]

mod bookings;
mod directory;
mod idempotency;
mod rows;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use kairos_core::plan::Party;
use kairos_core::{Booking, Business, Interval, User};
use kairos_store::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// How the SQLite file is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `sqlite://path` or `sqlite::memory:`-style URL understood by sqlx.
    pub url: String,
    /// Connections for reads.
    pub readers: u32,
    /// `FULL` also survives power loss (an fsync per commit); `NORMAL`, the default, survives
    /// process crashes, which is what WAL guarantees without syncing every commit.
    pub synchronous_full: bool,
}

impl SqliteOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), readers: 8, synchronous_full: false }
    }
}

/// The SQLite store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl SqliteStore {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub async fn open(options: &SqliteOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(&options.url)
            .map_err(backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.synchronous_full { SqliteSynchronous::Full } else { SqliteSynchronous::Normal })
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(connect.clone())
            .await
            .map_err(backend)?;
        MIGRATOR.run(&writer).await.map_err(|e| StoreError::Backend(format!("migrations failed: {e}")))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .connect_with(connect.read_only(true))
            .await
            .map_err(backend)?;
        Ok(Self { reader, writer })
    }

    /// Applies pending migrations and returns; what `kairos migrate` runs.
    pub async fn migrate(options: &SqliteOptions) -> Result<(), StoreError> {
        let store = Self::open(options).await?;
        store.close().await;
        Ok(())
    }

    /// Closes both pools, checkpointing the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(backend)
    }
}

/// Maps a database failure to the store's error: unique and foreign-key violations become
/// the domain's conflicts and missing references; anything else is a backend failure.
pub(crate) fn backend(e: impl Into<sqlx::Error>) -> StoreError {
    let e = e.into();
    if let sqlx::Error::Database(db) = &e
        && db.is_foreign_key_violation()
    {
        return StoreError::NotFound;
    }
    StoreError::Backend(e.to_string())
}

/// Like [`backend`], but a unique violation is a conflict on `field`.
pub(crate) fn unique(field: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(field),
        _ => backend(e),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(backend)?;
        Ok(())
    }

    async fn create_api_key(
        &self,
        account_name: &str,
        mode: Mode,
        key: &keys::HashedKey,
        now: Timestamp,
    ) -> StoreResult<Account> {
        let mut tx = self.begin_write().await?;
        let account = directory::create_api_key(&mut tx, account_name, mode, key, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(account)
    }

    async fn tenant_for_key(&self, key_hash: &str) -> StoreResult<Option<Tenant>> {
        directory::tenant_for_key(&self.reader, key_hash).await
    }

    async fn insert_user(&self, t: &Tenant, user: &User) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        directory::insert_user(&mut tx, t, user).await?;
        tx.commit().await.map_err(backend)
    }

    async fn user(&self, t: &Tenant, id: &str) -> StoreResult<Option<User>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        directory::user(&mut conn, t, id).await
    }

    async fn users(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<User>> {
        directory::users(&self.reader, t, page).await
    }

    async fn update_user(&self, t: &Tenant, user: &User) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        directory::update_user(&mut tx, t, user).await?;
        tx.commit().await.map_err(backend)
    }

    async fn delete_user(&self, t: &Tenant, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = directory::delete_user(&mut tx, t, id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }

    async fn resolve_users(&self, t: &Tenant, refs: &[UserRef]) -> StoreResult<Vec<Option<User>>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        directory::resolve_users(&mut conn, t, refs).await
    }

    async fn insert_business(&self, t: &Tenant, business: &Business) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        directory::insert_business(&mut tx, t, business).await?;
        tx.commit().await.map_err(backend)
    }

    async fn business(&self, t: &Tenant, id: &str) -> StoreResult<Option<Business>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        directory::business(&mut conn, t, id).await
    }

    async fn businesses(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Business>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        directory::businesses(&mut conn, t, page).await
    }

    async fn update_business(&self, t: &Tenant, business: &Business) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        directory::update_business(&mut tx, t, business).await?;
        tx.commit().await.map_err(backend)
    }

    async fn delete_business(&self, t: &Tenant, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = directory::delete_business(&mut tx, t, id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }

    async fn add_busy_blocks(&self, t: &Tenant, user_id: &str, blocks: &[NewBusyBlock]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        directory::add_busy_blocks(&mut tx, t, user_id, blocks).await?;
        tx.commit().await.map_err(backend)
    }

    async fn load_party(&self, t: &Tenant, who: &Who, window: Interval, now: Timestamp) -> Result<Party, BookingError> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        bookings::load_party(&mut conn, t, who, window, now).await
    }

    async fn create_booking(&self, t: &Tenant, new: &NewBooking, now: Timestamp) -> Result<Booking, BookingError> {
        let mut tx = self.begin_write().await?;
        let booking = bookings::create(&mut tx, t, new, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(booking)
    }

    async fn booking(&self, t: &Tenant, id: &str) -> StoreResult<Option<Booking>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        bookings::get(&mut conn, t, id).await
    }

    async fn bookings(&self, t: &Tenant, filter: &BookingFilter, page: &PageRequest) -> StoreResult<Page<Booking>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        bookings::list(&mut conn, t, filter, page).await
    }

    async fn reschedule_booking(
        &self,
        t: &Tenant,
        id: &str,
        to: Interval,
        now: Timestamp,
    ) -> Result<Booking, BookingError> {
        let mut tx = self.begin_write().await?;
        let booking = bookings::reschedule(&mut tx, t, id, to, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(booking)
    }

    async fn cancel_booking(
        &self,
        t: &Tenant,
        id: &str,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<Booking, BookingError> {
        let mut tx = self.begin_write().await?;
        let booking = bookings::cancel(&mut tx, t, id, reason, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(booking)
    }

    async fn claim_idempotency_key(
        &self,
        t: &Tenant,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> StoreResult<IdempotencyClaim> {
        let mut tx = self.begin_write().await?;
        let claim = idempotency::claim(&mut tx, t, key, fingerprint, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(claim)
    }

    async fn complete_idempotency_key(&self, t: &Tenant, key: &str, response: &StoredResponse) -> StoreResult<()> {
        idempotency::complete(&self.writer, t, key, response).await
    }

    async fn release_idempotency_key(&self, t: &Tenant, key: &str) -> StoreResult<()> {
        idempotency::release(&self.writer, t, key).await
    }

    async fn outbox_events(&self, t: &Tenant, page: &PageRequest) -> StoreResult<Page<OutboxEvent>> {
        bookings::outbox_events(&self.reader, t, page).await
    }
}
