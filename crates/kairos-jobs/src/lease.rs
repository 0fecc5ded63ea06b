//! Leases held across nodes (see [`Store::try_lease`]): a guard that keeps its lease alive
//! while the work runs and gives it back when dropped. A node that dies holding one stops
//! renewing it, so it lapses and nothing waits forever.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::SignedDuration;
use kairos_store::{Clock, Store, StoreError, ids};
use tokio::sync::oneshot;

/// The shortest pause between two renewals, whatever the lease's length.
const MIN_HEARTBEAT: Duration = Duration::from_millis(10);

/// A lease this process holds: renewed every third of its length while the guard lives (so
/// work that runs longer than the lease keeps it), released on drop.
pub struct Lease {
    /// False once a renewal found the lease taken by another holder (it had lapsed).
    held: Arc<AtomicBool>,
    /// Dropped with the guard: the heartbeat then stops and releases the lease. The release
    /// runs on the heartbeat's task after its last renewal, so a renewal in flight can never
    /// take the lease again after it was given back.
    _stop: oneshot::Sender<()>,
}

impl Lease {
    /// Takes `key` for `ttl` when nobody else holds it; `None` when someone does.
    pub async fn try_take(
        store: &Arc<dyn Store>,
        clock: &Clock,
        key: String,
        ttl: SignedDuration,
    ) -> Result<Option<Self>, StoreError> {
        let holder = ids::new_id("lease");
        let now = clock.now();
        let until = now.saturating_add(ttl).unwrap_or(now);
        if !store.try_lease(&key, &holder, until, now).await? {
            return Ok(None);
        }
        let held = Arc::new(AtomicBool::new(true));
        let (stop, stopped) = oneshot::channel();
        let heartbeat = Heartbeat { store: store.clone(), clock: clock.clone(), key, holder, ttl, held: held.clone() };
        tokio::spawn(heartbeat.run(stopped));
        Ok(Some(Self { held, _stop: stop }))
    }

    /// Takes `key` for `ttl`, waiting (polling) up to `wait` for its holder to give it up;
    /// `None` when it is still held then.
    pub async fn take(
        store: &Arc<dyn Store>,
        clock: &Clock,
        key: String,
        ttl: SignedDuration,
        wait: Duration,
    ) -> Result<Option<Self>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(lease) = Self::try_take(store, clock, key.clone(), ttl).await? {
                return Ok(Some(lease));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the lease is still this guard's: false once a renewal found that it had lapsed
    /// (renewals kept failing) and another holder had taken it.
    pub fn held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }
}

/// Keeps one lease alive, then gives it back.
struct Heartbeat {
    store: Arc<dyn Store>,
    clock: Clock,
    key: String,
    holder: String,
    ttl: SignedDuration,
    held: Arc<AtomicBool>,
}

impl Heartbeat {
    /// How often a lease of `ttl` is renewed: a third of it, so that one late or failed renewal
    /// still leaves time for the next before it lapses.
    fn period(ttl: SignedDuration) -> Duration {
        (Duration::try_from(ttl).unwrap_or(Duration::ZERO) / 3).max(MIN_HEARTBEAT)
    }

    async fn run(self, mut stopped: oneshot::Receiver<()>) {
        let every = Self::period(self.ttl);
        // When the lease last surely ran to: renewing after it lapsed could take back a lease
        // another holder had taken and given back meanwhile, with nobody the wiser.
        let mut held_until = self.clock.now().saturating_add(self.ttl).unwrap_or_else(|_| self.clock.now());
        loop {
            // The renewal itself is never cancelled half-way: the stop is looked at between
            // renewals only, so the release below always comes after the last one.
            tokio::select! {
                _ = &mut stopped => break,
                () = tokio::time::sleep(every) => {}
            }
            let now = self.clock.now();
            if now >= held_until {
                // Renewals failed for a whole lease: it lapsed, and may have changed hands.
                self.held.store(false, Ordering::SeqCst);
                tracing::warn!(lease = %self.key, "a lease lapsed while its renewals failed; its work may now overlap");
                return;
            }
            let until = now.saturating_add(self.ttl).unwrap_or(now);
            // A lease's holder may extend it (the Store's contract).
            match self.store.try_lease(&self.key, &self.holder, until, now).await {
                Ok(true) => held_until = until,
                Ok(false) => {
                    self.held.store(false, Ordering::SeqCst);
                    tracing::warn!(lease = %self.key, "a lease lapsed and another holder took it; its work may now overlap");
                    // Nothing of ours left to release.
                    return;
                }
                Err(e) => tracing::warn!(lease = %self.key, error = %e, "renewing a lease failed; will retry"),
            }
        }
        // Release is best effort: should it fail, the lease lapses on its own.
        if let Err(e) = self.store.release_lease(&self.key, &self.holder).await {
            tracing::warn!(lease = %self.key, error = %e, "releasing a lease failed; it will lapse");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_renewed_every_third_of_its_length() {
        assert_eq!(Heartbeat::period(SignedDuration::from_mins(5)), Duration::from_secs(100));
        assert_eq!(Heartbeat::period(SignedDuration::from_secs(45)), Duration::from_secs(15));
        // Never a busy loop, even for a lease of nothing.
        assert_eq!(Heartbeat::period(SignedDuration::ZERO), MIN_HEARTBEAT);
        assert_eq!(Heartbeat::period(SignedDuration::from_secs(-5)), MIN_HEARTBEAT);
    }
}
