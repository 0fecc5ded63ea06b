//! ICS feed sync: fetch with a conditional GET (ETag / Last-Modified), read the feed with the
//! calendar core, turn its events into the user's busy time, record the result; and the
//! background loop that syncs every connection when it falls due.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kairos_core::calendar::{BusyRules, Calendar, Event, Skipped, busy_of};
use kairos_core::{Interval, User};
use kairos_store::{
    CalendarConnection, Clock, ProviderSyncOutcome, Store, StoreError, SyncOutcome, SyncRecord, Tenant,
};

use crate::egress;
use crate::lease::Lease;
use crate::provider_sync::{ProviderSync, Providers};

/// Busy time is kept from a day ago to this far ahead (re-derived at every sync).
pub const HORIZON: SignedDuration = SignedDuration::from_hours(180 * 24);
/// The largest feed read.
const MAX_FEED_BYTES: usize = 20 * 1024 * 1024;

/// How feeds are synced.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Between background syncs of one connection (`KAIROS_CALENDAR_SYNC_INTERVAL`, 15 min).
    pub every: Duration,
    /// Lets feed URLs use http and private addresses (`KAIROS_ALLOW_PRIVATE_URLS`).
    pub allow_private: bool,
    /// Whether tentative events hold time (`KAIROS_TENTATIVE_IS_BUSY`, default true).
    pub tentative_is_busy: bool,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self { every: Duration::from_secs(15 * 60), allow_private: false, tentative_is_busy: true }
    }
}

/// A fetched feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Changed { text: String, etag: Option<String>, last_modified: Option<String> },
    Unchanged,
}

/// What a feed holds for one user.
#[derive(Debug, Clone)]
pub struct Digest {
    /// X-WR-CALNAME.
    pub name: Option<String>,
    /// Events (a series counts once).
    pub events: u32,
    pub busy: Vec<Interval>,
    /// Events that could not be read, and why.
    pub skipped: Vec<Skipped>,
}

/// `webcal://` is how calendar apps spell an https feed.
pub fn normalise_feed_url(url: &str) -> String {
    match url.trim().strip_prefix("webcal://") {
        Some(rest) => format!("https://{rest}"),
        None => url.trim().to_string(),
    }
}

/// Reads a calendar's text for `user`: its name, its events, the busy time they hold (from a
/// day ago to [`HORIZON`] ahead) and the events it had to skip.
pub fn digest(text: &str, user: &User, now: Timestamp, tentative_is_busy: bool) -> Result<Digest, String> {
    let calendar = Calendar::parse(text).map_err(|e| format!("the feed is not iCalendar: {e}"))?;
    Ok(digest_calendar(calendar, user, now, tentative_is_busy))
}

/// [`digest`] of a calendar already read.
pub fn digest_calendar(calendar: Calendar, user: &User, now: Timestamp, tentative_is_busy: bool) -> Digest {
    let mut digest = digest_events(&calendar.events, &calendar.skipped, user, now, tentative_is_busy);
    digest.name = calendar.name;
    digest.skipped = calendar.skipped;
    digest
}

/// [`digest`] of events held anywhere (a calendar read item by item).
pub fn digest_events<'a>(
    events: impl IntoIterator<Item = &'a Event> + Clone,
    skipped: impl IntoIterator<Item = &'a Skipped>,
    user: &User,
    now: Timestamp,
    tentative_is_busy: bool,
) -> Digest {
    let skipped: Vec<Skipped> = skipped.into_iter().cloned().collect();
    for s in &skipped {
        tracing::warn!(uid = ?s.uid, line = s.line, reason = %s.reason, "skipped an event of a calendar");
    }
    let from = now.saturating_sub(SignedDuration::from_hours(24)).unwrap_or(now);
    let to = now.saturating_add(HORIZON).unwrap_or(now);
    let busy = match Interval::new(from, to) {
        Ok(window) => {
            let rules = BusyRules { email: Some(&user.email), tentative_is_busy };
            busy_of(events.clone(), window, user.schedule.timezone.tz(), &rules)
        }
        Err(_) => Vec::new(),
    };
    let events = u32::try_from(events.into_iter().filter(|e| e.recurrence_id.is_none()).count()).unwrap_or(u32::MAX);
    Digest { name: None, events, busy, skipped }
}

/// The feed syncer.
#[derive(Clone)]
pub struct FeedSync {
    store: Arc<dyn Store>,
    clock: Clock,
    client: reqwest::Client,
    config: SyncConfig,
}

impl FeedSync {
    pub fn new(store: Arc<dyn Store>, clock: Clock, config: SyncConfig) -> reqwest::Result<Self> {
        let client = egress::client(Duration::from_secs(30), config.allow_private)?;
        Ok(Self { store, clock, client, config })
    }

    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// GETs a feed, conditionally when validators are known. The error says what failed in
    /// words an API user can act on.
    pub async fn fetch(&self, url: &str, etag: Option<&str>, last_modified: Option<&str>) -> Result<Fetched, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("the URL is not valid ({e})"))?;
        egress::check_target(&parsed, self.config.allow_private).map_err(|e| e.to_string())?;
        let mut request = self.client.get(parsed).header("accept", "text/calendar, */*;q=0.5");
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        if let Some(lm) = last_modified {
            request = request.header("if-modified-since", lm);
        }
        let mut response = request.send().await.map_err(|e| describe(&e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Fetched::Unchanged);
        }
        if !status.is_success() {
            return Err(format!("the feed's server answered {status}"));
        }
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (etag, last_modified) = (header("etag"), header("last-modified"));
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_FEED_BYTES {
                return Err(format!("the feed is larger than {} MiB", MAX_FEED_BYTES / 1024 / 1024));
            }
        }
        let text = String::from_utf8(body).map_err(|_| "the feed is not UTF-8 text".to_string())?;
        Ok(Fetched::Changed { text, etag, last_modified })
    }

    /// Reads a feed for `user`: its name, its events, the busy time they hold and the events
    /// it had to skip.
    pub fn digest(&self, text: &str, user: &User, now: Timestamp) -> Result<Digest, String> {
        digest(text, user, now, self.config.tentative_is_busy)
    }

    /// Syncs one connection and records the result; returns it.
    pub async fn sync(&self, t: &Tenant, conn: &CalendarConnection) -> Result<SyncOutcome, StoreError> {
        let now = self.clock.now();
        let outcome = match self.store.user(t, &conn.user_id).await? {
            None => SyncOutcome::Failed("the connection's user no longer exists".into()),
            Some(user) => match self.fetch(&conn.url, conn.etag.as_deref(), conn.last_modified.as_deref()).await {
                // Unchanged text still yields new busy time: the horizon moves on, and the
                // user's zone may have changed. Re-derive it from what was stored.
                Ok(Fetched::Unchanged) => {
                    let stored = self.store.calendar_sources(t, &conn.user_id).await?;
                    match stored.into_iter().find(|(c, _)| c.connection_id == conn.id) {
                        Some((_, text)) => match self.digest(&text, &user, now) {
                            Ok(Digest { name, events, busy, .. }) => SyncOutcome::Changed {
                                source: text,
                                name,
                                etag: conn.etag.clone(),
                                last_modified: conn.last_modified.clone(),
                                events,
                                busy,
                            },
                            Err(why) => SyncOutcome::Failed(why),
                        },
                        None => SyncOutcome::Unchanged,
                    }
                }
                Ok(Fetched::Changed { text, etag, last_modified }) => match self.digest(&text, &user, now) {
                    Ok(Digest { name, events, busy, .. }) => {
                        SyncOutcome::Changed { source: text, name, etag, last_modified, events, busy }
                    }
                    Err(why) => SyncOutcome::Failed(why),
                },
                Err(why) => SyncOutcome::Failed(why),
            },
        };
        let every = SignedDuration::try_from(self.config.every).unwrap_or(SignedDuration::from_mins(15));
        let record = SyncRecord {
            connection_id: conn.id.clone(),
            at: now,
            next_sync_at: now.saturating_add(every).unwrap_or(now),
            outcome: outcome.clone(),
        };
        self.store.record_calendar_sync(t, &record).await?;
        metrics::counter!("kairos_calendar_syncs_total", "outcome" => match &outcome {
            SyncOutcome::Changed { .. } => "changed",
            SyncOutcome::Unchanged => "unchanged",
            SyncOutcome::Failed(_) => "failed",
        })
        .increment(1);
        Ok(outcome)
    }
}

/// Every calendar connection's background sync: ICS feeds and provider accounts, each as
/// it falls due (or as a push notification makes it due).
#[derive(Clone)]
pub struct Syncer {
    pub feeds: FeedSync,
    pub providers: ProviderSync,
    /// Rung when a connection became due early (push), so it need not wait for the tick.
    pub nudge: Arc<tokio::sync::Notify>,
}

/// How long a sync's lease lasts unrenewed. The guard renews it while the sync runs (see
/// [`Lease`]), so this bounds how long a node that died mid-sync keeps the connection from the
/// others, not how long a sync may take.
pub(crate) const SYNC_LEASE: SignedDuration = SignedDuration::from_mins(5);
/// The longest a sync may run: the renewed lease would otherwise let a hung one keep its
/// connection from every node for good. Generous: a first sync of a large account pages
/// through thousands of events.
const SYNC_LIMIT: Duration = Duration::from_secs(15 * 60);
/// How long an on-demand sync waits for a sync already running elsewhere.
const SYNC_WAIT: Duration = Duration::from_secs(30);
/// Background syncs run at once per node, at most (each one a connection).
const SYNCS_AT_ONCE: usize = 4;

/// The lease a connection's syncs hold, and its push renewals (a renewal opens channels as a
/// sync does: one at a time, or two nodes open two for one calendar).
pub fn sync_lease_key(connection_id: &str) -> String {
    format!("sync:{connection_id}")
}

/// What one sync did, for the manual sync's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synced {
    /// Events (a series counts once) in the calendars that changed.
    pub events: u32,
}

impl Syncer {
    pub fn new(feeds: FeedSync, providers: ProviderSync) -> Self {
        Self { feeds, providers, nudge: Arc::new(tokio::sync::Notify::new()) }
    }

    /// Feeds and providers over one guarded HTTP client each.
    pub fn standard(store: Arc<dyn Store>, clock: Clock, config: SyncConfig, providers: Providers) -> Self {
        // Building a rustls client fails only when the TLS backend cannot start at all.
        let feeds = FeedSync::new(store.clone(), clock.clone(), config.clone())
            .unwrap_or_else(|e| panic!("the HTTP client for feeds could not be built: {e}"));
        let client = egress::client(Duration::from_secs(30), config.allow_private)
            .unwrap_or_else(|e| panic!("the HTTP client for providers could not be built: {e}"));
        Self::new(feeds, ProviderSync::new(store, clock, client, config, providers))
    }

    /// Syncs one connection, whatever its provider, and records the result, due or not. When
    /// another node (or task) is syncing it, waits up to `SYNC_WAIT` (30 s) for that sync to
    /// finish first, then syncs; if it is still running then, does nothing (that sync records
    /// the result).
    pub async fn sync(&self, t: &Tenant, conn: &CalendarConnection) -> Result<Synced, StoreError> {
        let key = sync_lease_key(&conn.id);
        let Some(_lease) = Lease::take(&self.feeds.store, &self.feeds.clock, key, SYNC_LEASE, SYNC_WAIT).await? else {
            tracing::debug!(connection = %conn.id, "another node is syncing this connection");
            return Ok(Synced { events: 0 });
        };
        self.sync_bounded(t, conn).await
    }

    /// A background sync of a connection from a due list: under its lease (held throughout,
    /// one sync of a connection at a time across every node), and only if the connection is
    /// still due once the lease is ours. `None` when it was not synced: another node holds
    /// the lease, or synced it since the list was read (every node reads the same due list,
    /// and one that gets to a connection after another node finished it would sync it twice),
    /// or it was disconnected meanwhile.
    async fn sync_if_due(&self, t: &Tenant, conn: &CalendarConnection) -> Result<Option<Synced>, StoreError> {
        let key = sync_lease_key(&conn.id);
        let Some(_lease) = Lease::try_take(&self.feeds.store, &self.feeds.clock, key, SYNC_LEASE).await? else {
            tracing::debug!(connection = %conn.id, "another node is syncing this connection");
            return Ok(None);
        };
        let Some(current) = self.still_due(t, conn).await? else {
            tracing::debug!(connection = %conn.id, "no longer due: synced by another node, or disconnected");
            return Ok(None);
        };
        // The connection as it is now: its validators may be newer than the list's.
        self.sync_bounded(t, &current).await.map(Some)
    }

    /// [`Self::sync_now`], given up after [`SYNC_LIMIT`]: the lease is renewed while a sync
    /// runs, so a sync that hangs would otherwise keep its connection from every node for good.
    async fn sync_bounded(&self, t: &Tenant, conn: &CalendarConnection) -> Result<Synced, StoreError> {
        match tokio::time::timeout(SYNC_LIMIT, self.sync_now(t, conn)).await {
            Ok(synced) => synced,
            Err(_) => Err(StoreError::Backend(format!(
                "the sync took longer than {} minutes and was given up",
                SYNC_LIMIT.as_secs() / 60
            ))),
        }
    }

    /// `conn` as stored now, if it is still due for a sync.
    async fn still_due(&self, t: &Tenant, conn: &CalendarConnection) -> Result<Option<CalendarConnection>, StoreError> {
        let now = self.feeds.clock.now();
        let current = self.feeds.store.calendar_connections(t, Some(&conn.user_id)).await?;
        // Gone (disconnected), or waiting for its user, is not due.
        Ok(current
            .into_iter()
            .find(|c| c.id == conn.id)
            .filter(|c| c.next_sync_at <= now && c.status != "needs_reauth"))
    }

    async fn sync_now(&self, t: &Tenant, conn: &CalendarConnection) -> Result<Synced, StoreError> {
        if conn.provider == "ics" {
            return Ok(match self.feeds.sync(t, conn).await? {
                SyncOutcome::Changed { events, .. } => Synced { events },
                _ => Synced { events: 0 },
            });
        }
        Ok(match self.providers.sync(t, conn).await? {
            ProviderSyncOutcome::Synced(calendars) => Synced { events: calendars.iter().map(|c| c.events).sum() },
            _ => Synced { events: 0 },
        })
    }

    /// Records a failed sync of `conn`, due again after the interval, unless it is no longer
    /// due (another node synced it since this sync gave its lease back: that result stands).
    async fn postpone(&self, t: &Tenant, conn: &CalendarConnection, why: &str) -> Result<(), StoreError> {
        if self.still_due(t, conn).await?.is_none() {
            return Ok(());
        }
        let now = self.feeds.clock.now();
        let every = SignedDuration::try_from(self.feeds.config.every).unwrap_or(SignedDuration::from_mins(15));
        let next_sync_at = now.saturating_add(every).unwrap_or(now);
        if conn.provider == "ics" {
            let outcome = SyncOutcome::Failed(why.to_string());
            let record = SyncRecord { connection_id: conn.id.clone(), at: now, next_sync_at, outcome };
            return self.feeds.store.record_calendar_sync(t, &record).await;
        }
        let outcome = ProviderSyncOutcome::Failed(why.to_string());
        let record =
            kairos_store::ProviderSyncRecord { connection_id: conn.id.clone(), at: now, next_sync_at, outcome };
        self.feeds.store.record_provider_sync(t, &record).await
    }

    /// Syncs connections as they fall due until `shutdown`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        // Due connections are looked for every 5 s, or more often when they fall due sooner.
        let mut tick =
            tokio::time::interval(self.feeds.config.every.clamp(Duration::from_millis(100), Duration::from_secs(5)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => {}
                () = self.nudge.notified() => {}
            }
            if let Err(e) = self.providers.renew_expiring(16).await {
                tracing::error!(error = %e, "renewing push channels failed");
            }
            let due = match self.feeds.store.due_calendar_syncs(self.feeds.clock.now(), 16).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(error = %e, "reading due calendar syncs failed");
                    continue;
                }
            };
            self.sync_due(due).await;
        }
    }

    /// Syncs the connections of a due list (from [`Store::due_calendar_syncs`], perhaps read a
    /// while ago), a few at a time (`SYNCS_AT_ONCE`), each under its lease and only if still due;
    /// returns how many it synced. Every node reads the same due list: the lease makes one node
    /// sync each connection, the others move on at once.
    pub async fn sync_due(&self, due: Vec<(Tenant, CalendarConnection)>) -> usize {
        let mut seen = std::collections::HashSet::new();
        let mut due = due.into_iter().filter(|(_, conn)| seen.insert(conn.id.clone()));
        let mut running = tokio::task::JoinSet::new();
        let mut synced = 0;
        loop {
            while running.len() < SYNCS_AT_ONCE {
                let Some((t, conn)) = due.next() else { break };
                running.spawn(self.clone().sync_one_due(t, conn));
            }
            match running.join_next().await {
                Some(Ok(true)) => synced += 1,
                Some(Ok(false)) => {}
                // `sync_one_due` catches its sync's panic; this one is its own bookkeeping's.
                Some(Err(e)) => tracing::error!(error = %e, "a calendar sync task failed"),
                None => return synced,
            }
        }
    }

    /// One connection of a due list: whether it was synced. A sync that fails to record or
    /// panics is postponed.
    async fn sync_one_due(self, t: Tenant, conn: CalendarConnection) -> bool {
        // The sync in its own task: a panic on one hostile feed is that task's, never the
        // loop's (which would stop every account's syncs).
        let this = self.clone();
        let (t2, conn2) = (t.clone(), conn.clone());
        let failure = match tokio::spawn(async move { this.sync_if_due(&t2, &conn2).await }).await {
            Ok(Ok(synced)) => return synced.is_some(),
            Ok(Err(e)) => {
                tracing::error!(connection = %conn.id, error = %e, "recording a calendar sync failed");
                "recording the sync failed"
            }
            Err(e) => {
                tracing::error!(connection = %conn.id, error = %e, "a calendar sync panicked");
                "the sync failed unexpectedly"
            }
        };
        // Not due again at once: a connection that keeps failing this way must not hold the
        // head of the queue for everyone else.
        if let Err(e) = self.postpone(&t, &conn, failure).await {
            tracing::error!(connection = %conn.id, error = %e, "postponing a failed calendar sync failed");
        }
        false
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(refusal) = err.downcast_ref::<egress::UrlRefusal>() {
            return refusal.to_string();
        }
        source = err.source();
    }
    if e.is_timeout() {
        "the feed's server did not answer within 30 s".into()
    } else if e.is_connect() {
        "the feed's server could not be reached".into()
    } else {
        format!("fetching the feed failed: {e}")
    }
}
