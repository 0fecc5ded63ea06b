//! Leases held across nodes (see [`Store::try_lease`]): a guard that gives its lease back when
//! dropped. A node that dies holding one loses it when it lapses, so nothing waits forever.

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use kairos_store::{Clock, Store, StoreError, ids};

/// A lease this process holds; released on drop.
pub struct Lease {
    store: Arc<dyn Store>,
    key: String,
    holder: String,
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
        Ok(store.try_lease(&key, &holder, until, now).await?.then(|| Self { store: store.clone(), key, holder }))
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
}

impl Drop for Lease {
    fn drop(&mut self) {
        let (store, key, holder) =
            (self.store.clone(), std::mem::take(&mut self.key), std::mem::take(&mut self.holder));
        // Release is best effort: should it fail, the lease lapses on its own.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.release_lease(&key, &holder).await {
                    tracing::warn!(lease = %key, error = %e, "releasing a lease failed; it will lapse");
                }
            });
        }
    }
}
