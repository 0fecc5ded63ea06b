//! Syncing provider connections (Google, Microsoft, CalDAV): credentials opened from their
//! sealed form and refreshed 30 s before expiry (one refresh at a time per connection), each
//! selected calendar synced from its cursor (a full sync first, and again when the provider
//! says the cursor expired), the items applied to what was stored, and the calendar's busy
//! time re-derived by the calendar core — the same path an ICS feed takes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kairos_core::{Interval, User};
use kairos_providers::oauth::{OAuthApp, OAuthError};
use kairos_providers::sealed::Keyring;
use kairos_providers::{Change, Credentials, Provider, ProviderError, SyncResult};
use kairos_store::{
    CalendarConnection, CalendarItem, CalendarRecord, CalendarSync, Clock, EventChange, ProviderSyncOutcome,
    ProviderSyncRecord, Store, StoreError, Tenant,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::calendar_sync::{HORIZON, SyncConfig, digest_events};
use crate::lease::Lease;
use crate::parsed::{ParsedItems, ReadItems};

/// Access tokens are refreshed this long before they expire.
pub const REFRESH_MARGIN: SignedDuration = SignedDuration::from_secs(30);
/// How long a token refresh's lease lasts unrenewed (the guard renews it while the refresh
/// runs), and how long another caller waits for it (a refresh is one HTTP call with a 30 s
/// timeout).
const REFRESH_LEASE: SignedDuration = SignedDuration::from_secs(45);
const REFRESH_WAIT: Duration = Duration::from_secs(45);
/// The sealed secret's place, bound into its associated data.
pub const SECRET_PURPOSE: &str = "calendar_connections.secret";

/// A connection's credentials as sealed in the store.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Secret {
    OAuth { access_token: String, refresh_token: Option<String>, expires_at: Timestamp },
    Basic { username: String, password: String },
}

impl Secret {
    pub fn seal(&self, keyring: &Keyring, connection_id: &str) -> String {
        // Serializing plain strings cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        keyring.seal(SECRET_PURPOSE, connection_id, &json)
    }

    pub fn open(keyring: &Keyring, connection_id: &str, sealed: &str) -> Result<Self, String> {
        let bytes = keyring
            .open(SECRET_PURPOSE, connection_id, sealed)
            .map_err(|e| format!("the stored credentials could not be opened: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|_| "the stored credentials are unreadable".to_string())
    }

    fn credentials(&self) -> Credentials {
        match self {
            Self::OAuth { access_token, .. } => Credentials::Bearer(access_token.clone()),
            Self::Basic { username, password } => {
                Credentials::Basic { username: username.clone(), password: password.clone() }
            }
        }
    }
}

/// An OAuth provider this server is configured for.
pub struct OAuthProvider {
    pub app: OAuthApp,
    pub api: Arc<dyn Provider>,
}

/// What makes CalDAV adapters (one per account URL).
pub type CalDavFactory = Arc<dyn Fn(&reqwest::Client, &url::Url) -> Arc<dyn Provider> + Send + Sync>;

/// The providers this server can connect.
#[derive(Clone)]
pub struct Providers {
    pub keyring: Arc<Keyring>,
    pub google: Option<Arc<OAuthProvider>>,
    pub microsoft: Option<Arc<OAuthProvider>>,
    pub caldav: Option<CalDavFactory>,
    /// Where providers reach this server for push notifications (`KAIROS_PUBLIC_URL`);
    /// `None` turns push off (syncs then rely on the interval).
    pub push_base: Option<url::Url>,
}

impl Providers {
    /// No OAuth provider configured; CalDAV accounts over `client`s made per account.
    pub fn caldav_only(keyring: Arc<Keyring>) -> Self {
        Self { keyring, google: None, microsoft: None, caldav: Some(caldav_factory()), push_base: None }
    }

    pub fn oauth(&self, provider: &str) -> Option<&Arc<OAuthProvider>> {
        match provider {
            "google" => self.google.as_ref(),
            "microsoft" => self.microsoft.as_ref(),
            _ => None,
        }
    }
}

/// CalDAV adapters over the client the sync gives them.
pub fn caldav_factory() -> CalDavFactory {
    Arc::new(|client: &reqwest::Client, url: &url::Url| {
        Arc::new(kairos_providers::caldav::CalDav::new(client.clone(), url.clone())) as Arc<dyn Provider>
    })
}

/// Why credentials could not be had.
#[derive(Debug)]
pub enum CredentialError {
    /// The grant is gone: the user must connect again.
    Reauth(String),
    /// Try again later.
    Failed(String),
    Store(StoreError),
}

impl From<StoreError> for CredentialError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The provider connection syncer.
#[derive(Clone)]
pub struct ProviderSync {
    store: Arc<dyn Store>,
    clock: Clock,
    client: reqwest::Client,
    config: SyncConfig,
    providers: Providers,
    /// One refresh in flight per connection in this process; across nodes, the connection's
    /// `refresh:` lease (see [`ProviderSync::credentials`]): a rotated refresh token used
    /// twice would be refused.
    refreshing: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// One sync at a time per connection.
    syncing: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// Items read before, so an incremental sync reads only what changed.
    parsed: Arc<ParsedItems>,
}

/// The lock of `key` in `map`; locks nobody holds are dropped as the map grows.
fn lock_in(map: &Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>, key: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut map = map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if map.len() > 1024 {
        map.retain(|_, lock| Arc::strong_count(lock) > 1);
    }
    map.entry(key.to_string()).or_default().clone()
}

impl ProviderSync {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Clock,
        client: reqwest::Client,
        config: SyncConfig,
        providers: Providers,
    ) -> Self {
        Self {
            store,
            clock,
            client,
            config,
            providers,
            refreshing: Arc::default(),
            syncing: Arc::default(),
            parsed: Arc::default(),
        }
    }

    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The adapter for a connection.
    pub fn adapter(&self, conn: &CalendarConnection) -> Result<Arc<dyn Provider>, String> {
        match conn.provider.as_str() {
            "caldav" => {
                let factory = self.providers.caldav.as_ref().ok_or("CalDAV is not enabled on this server")?;
                let url = url::Url::parse(&conn.url).map_err(|e| format!("the CalDAV URL is not valid ({e})"))?;
                Ok(factory(&self.client, &url))
            }
            other => self
                .providers
                .oauth(other)
                .map(|p| p.api.clone())
                .ok_or_else(|| format!("{other} is not configured on this server")),
        }
    }

    fn lock_for(&self, connection_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock_in(&self.refreshing, connection_id)
    }

    /// Usable credentials for a connection: refreshed when within [`REFRESH_MARGIN`] of
    /// expiry, or when `force` (the provider just refused the access token).
    pub async fn credentials(
        &self,
        t: &Tenant,
        conn: &CalendarConnection,
        force: bool,
    ) -> Result<Credentials, CredentialError> {
        let keyring = &self.providers.keyring;
        let open = |sealed: Option<String>| -> Result<(String, Secret), CredentialError> {
            let sealed = sealed.ok_or_else(|| CredentialError::Reauth("the connection has no credentials".into()))?;
            let secret = Secret::open(keyring, &conn.id, &sealed).map_err(CredentialError::Failed)?;
            Ok((sealed, secret))
        };
        let (sealed, secret) = open(self.store.connection_secret(t, &conn.id).await?)?;
        let stale = |secret: &Secret, now: Timestamp| match secret {
            Secret::OAuth { expires_at, .. } => {
                expires_at.saturating_sub(REFRESH_MARGIN).is_ok_and(|refresh_at| now >= refresh_at)
            }
            Secret::Basic { .. } => false,
        };
        let refresh = stale(&secret, self.clock.now()) || (force && matches!(secret, Secret::OAuth { .. }));
        if !refresh {
            if keyring.needs_reseal(&sealed) {
                // Key rotation: rewrite under the current key as it is used — under the
                // refresh lock, re-read, so a refresh's new tokens are never written over.
                let lock = self.lock_for(&conn.id);
                let _one_at_a_time = lock.lock().await;
                if let Some(current) = self.store.connection_secret(t, &conn.id).await?
                    && keyring.needs_reseal(&current)
                    && let Ok(secret) = Secret::open(keyring, &conn.id, &current)
                {
                    let resealed = secret.seal(keyring, &conn.id);
                    self.store.store_connection_secret(t, &conn.id, &resealed, self.clock.now()).await?;
                }
            }
            return Ok(secret.credentials());
        }
        let lock = self.lock_for(&conn.id);
        let _one_at_a_time = lock.lock().await;
        // And one refresh per connection across nodes: a rotated refresh token used twice
        // would be refused, and look like a revoked grant.
        let key = format!("refresh:{}", conn.id);
        let Some(_lease) = Lease::take(&self.store, &self.clock, key, REFRESH_LEASE, REFRESH_WAIT).await? else {
            return Err(CredentialError::Failed("another node is refreshing this connection's tokens".into()));
        };
        // Someone may have refreshed while we waited.
        let (again, secret) = open(self.store.connection_secret(t, &conn.id).await?)?;
        if again != sealed && !stale(&secret, self.clock.now()) {
            return Ok(secret.credentials());
        }
        let Secret::OAuth { refresh_token, .. } = &secret else { return Ok(secret.credentials()) };
        let refresh_token = refresh_token
            .clone()
            .ok_or_else(|| CredentialError::Reauth("the provider gave no refresh token".into()))?;
        let app = &self
            .providers
            .oauth(&conn.provider)
            .ok_or_else(|| CredentialError::Failed(format!("{} is not configured on this server", conn.provider)))?;
        let tokens = match app.app.refresh(&self.client, &refresh_token, self.clock.now()).await {
            Ok(tokens) => tokens,
            Err(OAuthError::Refused(why)) => {
                // Whoever asked (a sync, a write-back, an event write), the connection now
                // waits for its user: say so once, with connection.needs_reauth.
                let record = ProviderSyncRecord {
                    connection_id: conn.id.clone(),
                    at: self.clock.now(),
                    next_sync_at: self.clock.now(),
                    outcome: ProviderSyncOutcome::NeedsReauth(why.clone()),
                };
                self.store.record_provider_sync(t, &record).await?;
                return Err(CredentialError::Reauth(why));
            }
            Err(e) => return Err(CredentialError::Failed(e.to_string())),
        };
        metrics::counter!("kairos_oauth_refreshes_total", "provider" => conn.provider.clone()).increment(1);
        let fresh = Secret::OAuth {
            access_token: tokens.access_token,
            // Microsoft rotates refresh tokens: keep the newest one.
            refresh_token: tokens.refresh_token.or(Some(refresh_token)),
            expires_at: tokens.expires_at,
        };
        self.store.store_connection_secret(t, &conn.id, &fresh.seal(keyring, &conn.id), self.clock.now()).await?;
        Ok(fresh.credentials())
    }

    /// A provider calendar's events as last synced, read through the cache.
    pub async fn read_calendar(&self, t: &Tenant, calendar: &CalendarRecord) -> Result<ReadItems, StoreError> {
        let items = self.store.calendar_items(t, &calendar.id).await?;
        Ok(self.parsed.read(&calendar.id, items.iter(), &std::collections::HashSet::new()))
    }

    /// Before a disconnection: stops the connection's push channels and revokes its grant
    /// where the provider can. Best effort — failures are logged; the data goes regardless.
    pub async fn release(&self, t: &Tenant, conn: &CalendarConnection) {
        let channels = self.store.push_channels(t, &conn.id).await.unwrap_or_default();
        // Fresh credentials (a stored access token may have expired) to stop the channels.
        if let (Ok(adapter), Ok(credentials)) = (self.adapter(conn), self.credentials(t, conn, false).await) {
            for channel in &channels {
                let stub = kairos_providers::Channel {
                    id: channel.id.clone(),
                    resource_id: channel.resource_id.clone(),
                    expires_at: channel.expires_at,
                };
                if let Err(e) = adapter.stop(&credentials, &stub).await {
                    tracing::warn!(connection = %conn.id, channel = %channel.id, error = %e, "stopping a push channel failed");
                }
            }
        }
        let secret = match self.store.connection_secret(t, &conn.id).await {
            Ok(Some(sealed)) => Secret::open(&self.providers.keyring, &conn.id, &sealed).ok(),
            _ => None,
        };
        if let (Some(oauth), Some(Secret::OAuth { refresh_token, access_token, .. })) =
            (self.providers.oauth(&conn.provider), &secret)
        {
            // Revoking the refresh token revokes the grant (and its access tokens).
            let token = refresh_token.as_deref().unwrap_or(access_token);
            if let Err(e) = oauth.app.revoke(&self.client, token).await {
                tracing::warn!(connection = %conn.id, error = %e, "revoking a grant failed");
            }
        }
    }

    /// Syncs one connection and records the result; returns it.
    pub async fn sync(&self, t: &Tenant, conn: &CalendarConnection) -> Result<ProviderSyncOutcome, StoreError> {
        // One sync of a connection at a time in this process (the background loop and a
        // manual sync could otherwise write over each other's snapshot); across nodes, the
        // Syncer's lease.
        let lock = lock_in(&self.syncing, &conn.id);
        let _one_at_a_time = lock.lock().await;
        let now = self.clock.now();
        let every = SignedDuration::try_from(self.config.every).unwrap_or(SignedDuration::from_mins(15));
        let mut next_sync_at = now.saturating_add(every).unwrap_or(now);
        let outcome = match self.sync_calendars(t, conn, now).await {
            Ok(synced) => ProviderSyncOutcome::Synced(synced),
            Err(SyncFailure::Reauth(why)) => ProviderSyncOutcome::NeedsReauth(why),
            Err(SyncFailure::Store(e)) => return Err(e),
            Err(SyncFailure::Failed { why, retry_after }) => {
                if let Some(wait) = retry_after {
                    next_sync_at = now.saturating_add(wait).unwrap_or(next_sync_at);
                }
                ProviderSyncOutcome::Failed(why)
            }
        };
        let record =
            ProviderSyncRecord { connection_id: conn.id.clone(), at: now, next_sync_at, outcome: outcome.clone() };
        self.store.record_provider_sync(t, &record).await?;
        if matches!(outcome, ProviderSyncOutcome::Synced(_)) {
            // Push for calendars that have none yet (first sync, or a channel dropped).
            self.ensure_push(t, conn).await?;
        }
        metrics::counter!("kairos_calendar_syncs_total", "outcome" => match &outcome {
            ProviderSyncOutcome::Synced(_) => "changed",
            ProviderSyncOutcome::Failed(_) => "failed",
            ProviderSyncOutcome::NeedsReauth(_) => "needs_reauth",
        })
        .increment(1);
        Ok(outcome)
    }

    async fn sync_calendars(
        &self,
        t: &Tenant,
        conn: &CalendarConnection,
        now: Timestamp,
    ) -> Result<Vec<CalendarSync>, SyncFailure> {
        let Some(user) = self.store.user(t, &conn.user_id).await? else {
            return Err(SyncFailure::failed("the connection's user no longer exists"));
        };
        let adapter = self.adapter(conn).map_err(SyncFailure::failed)?;
        let mut credentials = self.credentials(t, conn, false).await?;
        let calendars: Vec<CalendarRecord> = self
            .store
            .calendars(t, Some(&conn.user_id))
            .await?
            .into_iter()
            .filter(|c| c.connection_id == conn.id && c.selected)
            .collect();
        let window = sync_window(now);
        let mut synced = Vec::with_capacity(calendars.len());
        let mut calendar_errors = Vec::new();
        'calendars: for calendar in calendars {
            let Some(remote_id) = calendar.remote_id.as_deref() else { continue };
            let mut cursor = calendar.cursor.clone();
            let mut refreshed = false;
            let result = loop {
                match adapter.sync(&credentials, remote_id, cursor.as_deref(), window).await {
                    Ok(result) => break result,
                    Err(ProviderError::CursorExpired) if cursor.is_some() => {
                        tracing::info!(connection = %conn.id, calendar = %calendar.id, "sync cursor expired; syncing in full");
                        cursor = None;
                    }
                    Err(ProviderError::Unauthorized(_)) if !refreshed && conn.provider != "caldav" => {
                        refreshed = true;
                        credentials = self.credentials(t, conn, true).await?;
                    }
                    Err(ProviderError::Unauthorized(why)) if conn.provider == "caldav" => {
                        return Err(SyncFailure::failed(format!("the CalDAV server refused the credentials: {why}")));
                    }
                    Err(ProviderError::Unauthorized(why)) => return Err(SyncFailure::Reauth(why)),
                    Err(ProviderError::RateLimited { retry_after }) => {
                        return Err(SyncFailure::Failed {
                            why: "the provider is rate limiting; will retry".into(),
                            retry_after: Some(backoff(retry_after)),
                        });
                    }
                    // This calendar alone is gone or refused (deleted, unshared): the others
                    // still sync; it keeps what was synced before.
                    Err(e @ (ProviderError::NotFound(_) | ProviderError::Http { .. } | ProviderError::Protocol(_))) => {
                        tracing::warn!(connection = %conn.id, calendar = %calendar.id, error = %e, "a calendar could not be synced");
                        calendar_errors.push(format!("{}: {e}", calendar.name));
                        continue 'calendars;
                    }
                    Err(e) => return Err(SyncFailure::failed(e.to_string())),
                }
            };
            let stored = if result.full { Vec::new() } else { self.store.calendar_items(t, &calendar.id).await? };
            let ours = self.store.written_event_ids(t, &calendar.id).await?;
            synced.push(self.apply(&calendar, &user, stored, result, &ours, now));
        }
        if synced.is_empty() && !calendar_errors.is_empty() {
            return Err(SyncFailure::failed(calendar_errors.join("; ")));
        }
        Ok(synced)
    }

    /// Applies a sync's changes to the stored items and re-derives the calendar's busy time.
    fn apply(
        &self,
        calendar: &CalendarRecord,
        user: &User,
        stored: Vec<CalendarItem>,
        result: SyncResult,
        ours: &std::collections::HashSet<String>,
        now: Timestamp,
    ) -> CalendarSync {
        let mut items: BTreeMap<String, CalendarItem> =
            stored.into_iter().map(|item| (item.remote_id.clone(), item)).collect();
        let mut upserts = Vec::new();
        let mut removed = Vec::new();
        let mut changes = Vec::new();
        for change in result.changes {
            match change {
                Change::Upsert(item) => {
                    let item = CalendarItem { remote_id: item.id, etag: item.etag, ical: item.ical };
                    let before = items.insert(item.remote_id.clone(), item.clone());
                    if !result.full && before.as_ref().is_none_or(|b| b.ical != item.ical) {
                        let kind = if before.is_some() { "updated" } else { "created" };
                        if let Some(uid) = uid_of(&item.ical) {
                            changes.push(EventChange { kind, uid, remote_id: item.remote_id.clone() });
                        }
                    }
                    upserts.push(item);
                }
                Change::Removed { id } => {
                    let gone = items.remove(&id);
                    if let Some(uid) = gone.as_ref().and_then(|g| uid_of(&g.ical)).filter(|_| !result.full) {
                        changes.push(EventChange { kind: "deleted", uid, remote_id: id.clone() });
                    }
                    if gone.is_some() || result.full {
                        removed.push(id);
                    }
                }
            }
        }
        // A provider calendar's text is its items (the events API reads them through the
        // same cache); none is kept whole.
        let source = String::new();
        // Events Kairos wrote for its own bookings hold no extra time: the bookings do.
        let read = self.parsed.read(&calendar.id, items.values(), ours);
        let digest = digest_events(read.events(), read.skipped(), user, now, self.config.tentative_is_busy);
        CalendarSync {
            calendar_id: calendar.id.clone(),
            cursor: result.cursor,
            full: result.full,
            upserts,
            removed,
            source,
            events: digest.events,
            busy: digest.busy,
            changes,
        }
    }
}

/// The first UID of an item's text (for webhooks; the sync itself reads items in full).
fn uid_of(ical: &str) -> Option<String> {
    ical.lines().find_map(|line| line.strip_prefix("UID:")).map(|uid| uid.trim_end().to_string())
}

/// What a full sync asks for where the provider needs a window: a month back (recently ended
/// events stay visible in the events API) to the busy-time horizon.
pub fn sync_window(now: Timestamp) -> Interval {
    let from = now.saturating_sub(SignedDuration::from_hours(31 * 24)).unwrap_or(now);
    let to = now.saturating_add(HORIZON).unwrap_or(now);
    Interval::new(from, to).unwrap_or_else(|_| unreachable!("the window is non-empty"))
}

/// When to try again after a 429: the provider's Retry-After (or a minute) plus up to 20%
/// jitter, so that many connections throttled together do not come back together.
fn backoff(retry_after: Option<Duration>) -> SignedDuration {
    // Capped at a day: a hostile or broken server's Retry-After must not overflow, nor park
    // a connection for ever.
    let base = retry_after.unwrap_or(Duration::from_secs(60)).clamp(Duration::from_secs(1), MAX_RETRY_AFTER);
    let jitter = rand::rng().random_range(0.0..0.2);
    SignedDuration::try_from(base.mul_f64(1.0 + jitter)).unwrap_or(SignedDuration::from_mins(1))
}

/// The longest wait a provider's Retry-After can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

enum SyncFailure {
    Reauth(String),
    Failed { why: String, retry_after: Option<SignedDuration> },
    Store(StoreError),
}

impl SyncFailure {
    fn failed(why: impl Into<String>) -> Self {
        Self::Failed { why: why.into(), retry_after: None }
    }
}

impl From<StoreError> for SyncFailure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<CredentialError> for SyncFailure {
    fn from(e: CredentialError) -> Self {
        match e {
            CredentialError::Reauth(why) => Self::Reauth(why),
            CredentialError::Failed(why) => Self::failed(why),
            CredentialError::Store(e) => Self::Store(e),
        }
    }
}
