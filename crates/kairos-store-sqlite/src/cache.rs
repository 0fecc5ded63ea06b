//! An in-memory copy of what slot searches read: users and businesses with everything that
//! holds their time from a little before "now" onwards, and API key lookups.
//!
//! Correctness: the writer thread is the only writer of this process, and it marks entries
//! stale right after each `COMMIT`, before any caller hears back. A reader records an entry's
//! version before loading it from the database and stores what it loaded only if the version
//! is unchanged, so a load that raced a write is never kept. Entries are per id and carry
//! their tenant. Booking writes never trust the cache: they re-read the database inside their
//! transaction. One caveat, documented in ARCHITECTURE.md: another *process* writing the same
//! file (two servers on one SQLite database) would not invalidate this process's cache; run
//! one server per SQLite file (PostgreSQL is the multi-node backend).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kairos_core::{Business, Interval, Timeline, User};
use kairos_store::{Mode, Tenant};

/// API key lookups are kept this long (keys cannot be revoked yet; when they can, revocation
/// will invalidate the entry too).
const KEY_TTL: Duration = Duration::from_secs(60);
/// Cached entries hold everything that ends after this long before they were loaded; searches
/// reaching further back go to the database.
pub(crate) const LOOKBACK: jiff::SignedDuration = jiff::SignedDuration::from_hours(48);
/// Entries kept before the cache starts over (a crude bound on memory).
const MAX_ENTRIES: usize = 100_000;

/// Held time, ready to share with searches.
#[derive(Debug, Default)]
pub(crate) struct HeldTime {
    /// Time that stays held.
    fixed: Timeline,
    /// Payment holds and when they lapse, sorted by start.
    lapsing: Vec<(Interval, Timestamp)>,
}

impl HeldTime {
    /// From held spans and, for payment holds, their expiry (any order).
    pub(crate) fn new(held: impl IntoIterator<Item = (Interval, Option<Timestamp>)>) -> Self {
        let (mut fixed, mut lapsing) = (Vec::new(), Vec::new());
        for (span, expires) in held {
            match expires {
                Some(at) => lapsing.push((span, at)),
                None => fixed.push(span),
            }
        }
        lapsing.sort_unstable_by_key(|(span, _)| span.start());
        Self { fixed: Timeline::new(fixed), lapsing }
    }

    /// What holds at `now`, sorted by start: shared without copying when nothing can lapse
    /// (the common case), else a merged copy.
    pub(crate) fn at(&self, now: Timestamp) -> Timeline {
        if self.lapsing.is_empty() {
            return self.fixed.clone();
        }
        let mut all = self.fixed.to_vec();
        all.extend(self.lapsing.iter().filter(|(_, at)| *at > now).map(|(span, _)| *span));
        Timeline::new(all)
    }
}

#[derive(Debug)]
pub(crate) struct CachedUser {
    pub tenant: Tenant,
    pub user: Arc<User>,
    pub held: HeldTime,
    pub since: Timestamp,
}

#[derive(Debug)]
pub(crate) struct CachedBusiness {
    pub tenant: Tenant,
    pub business: Arc<Business>,
    /// The time its own holding bookings hold (with buffers).
    pub held: HeldTime,
    /// Those bookings' own starts, and when each lapses if it is a payment hold (daily caps).
    pub starts: Vec<(Timestamp, Option<Timestamp>)>,
    pub since: Timestamp,
}

/// What a write can make stale.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum CacheKey {
    User(String),
    Business(String),
    /// Every business (a user left all the businesses they hosted).
    AllBusinesses,
    /// Every email → user id mapping.
    Emails,
}

#[derive(Default)]
struct Inner {
    users: HashMap<String, Arc<CachedUser>>,
    businesses: HashMap<String, Arc<CachedBusiness>>,
    emails: HashMap<(String, Mode, String), String>,
    keys: HashMap<String, (Tenant, Instant)>,
    /// Bumped on every invalidation of a key; absent means 0.
    versions: HashMap<CacheKey, u64>,
    /// Bumped when everything is dropped at once.
    epoch: u64,
}

/// A version stamp taken before a load: the entry may be stored only if it is still current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp(u64, u64);

#[derive(Default)]
pub(crate) struct Cache {
    inner: Mutex<Inner>,
}

impl Cache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn stamp(&self, key: &CacheKey) -> Stamp {
        let inner = self.lock();
        let all = if matches!(key, CacheKey::Business(_)) {
            inner.versions.get(&CacheKey::AllBusinesses).copied().unwrap_or(0)
        } else {
            0
        };
        Stamp(inner.epoch, inner.versions.get(key).copied().unwrap_or(0) + all)
    }

    fn current(inner: &Inner, key: &CacheKey, stamp: Stamp) -> bool {
        let all = if matches!(key, CacheKey::Business(_)) {
            inner.versions.get(&CacheKey::AllBusinesses).copied().unwrap_or(0)
        } else {
            0
        };
        Stamp(inner.epoch, inner.versions.get(key).copied().unwrap_or(0) + all) == stamp
    }

    fn make_room(inner: &mut Inner) {
        if inner.users.len() + inner.businesses.len() + inner.emails.len() + inner.keys.len() >= MAX_ENTRIES {
            inner.users.clear();
            inner.businesses.clear();
            inner.emails.clear();
            inner.keys.clear();
            inner.epoch += 1;
        }
    }

    pub(crate) fn user(&self, id: &str) -> Option<Arc<CachedUser>> {
        self.lock().users.get(id).cloned()
    }

    pub(crate) fn put_user(&self, stamp: Stamp, entry: Arc<CachedUser>) {
        let mut inner = self.lock();
        if Self::current(&inner, &CacheKey::User(entry.user.id.clone()), stamp) {
            Self::make_room(&mut inner);
            inner.users.insert(entry.user.id.clone(), entry);
        }
    }

    pub(crate) fn business(&self, id: &str) -> Option<Arc<CachedBusiness>> {
        self.lock().businesses.get(id).cloned()
    }

    pub(crate) fn put_business(&self, stamp: Stamp, entry: Arc<CachedBusiness>) {
        let mut inner = self.lock();
        if Self::current(&inner, &CacheKey::Business(entry.business.id.clone()), stamp) {
            Self::make_room(&mut inner);
            inner.businesses.insert(entry.business.id.clone(), entry);
        }
    }

    pub(crate) fn email(&self, t: &Tenant, email: &str) -> Option<String> {
        self.lock().emails.get(&(t.account_id.clone(), t.mode, email.to_string())).cloned()
    }

    pub(crate) fn put_email(&self, stamp: Stamp, t: &Tenant, email: &str, id: &str) {
        let mut inner = self.lock();
        if Self::current(&inner, &CacheKey::Emails, stamp) {
            Self::make_room(&mut inner);
            inner.emails.insert((t.account_id.clone(), t.mode, email.to_string()), id.to_string());
        }
    }

    pub(crate) fn key(&self, hash: &str) -> Option<Tenant> {
        let inner = self.lock();
        inner.keys.get(hash).filter(|(_, at)| at.elapsed() < KEY_TTL).map(|(t, _)| t.clone())
    }

    pub(crate) fn put_key(&self, hash: &str, tenant: Tenant) {
        let mut inner = self.lock();
        Self::make_room(&mut inner);
        inner.keys.insert(hash.to_string(), (tenant, Instant::now()));
    }

    pub(crate) fn invalidate<'a>(&self, keys: impl Iterator<Item = &'a CacheKey>) {
        let mut inner = self.lock();
        for key in keys {
            *inner.versions.entry(key.clone()).or_insert(0) += 1;
            match key {
                CacheKey::User(id) => {
                    inner.users.remove(id);
                }
                CacheKey::Business(id) => {
                    inner.businesses.remove(id);
                }
                CacheKey::AllBusinesses => inner.businesses.clear(),
                CacheKey::Emails => inner.emails.clear(),
            }
        }
    }
}
