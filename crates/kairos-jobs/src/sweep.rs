//! The retention sweep: finished webhook deliveries (with their attempts) and delivered events
//! older than the retention period, and expired idempotency keys, are deleted every hour.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kairos_store::{Clock, Store};

/// How often the sweep runs (and once at start).
pub const EVERY: Duration = Duration::from_secs(3600);

/// Sweeps at start and then every [`EVERY`] until `shutdown`. Deleting rows that are already
/// gone is harmless, so several nodes may sweep one database.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Clock,
    retention: jiff::SignedDuration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        match store.sweep(clock.now(), retention).await {
            Ok(report) => tracing::info!(
                deliveries = report.deliveries,
                events = report.events,
                idempotency_keys = report.idempotency_keys,
                "retention sweep done"
            ),
            Err(e) => tracing::error!(error = %e, "the retention sweep failed"),
        }
    }
}
