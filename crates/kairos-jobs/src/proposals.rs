//! The proposal expiry sweep: an `open` proposal past its `expires_at` is closed — a poll with
//! votes is resolved to its winning slot (`proposal.resolved`), anything else expires
//! (`proposal.expired`). Responses after `expires_at` are refused either way; the sweep makes
//! the outcome visible and announced within seconds (the contract allows at most 10 s).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kairos_core::proposal::ProposalStatus;
use kairos_store::{Clock, Store, StoreResult};

/// How often lapsed proposals are looked for.
pub const EVERY: Duration = Duration::from_secs(5);
/// Proposals closed per store call.
const BATCH: usize = 100;

/// Closes lapsed proposals every [`EVERY`] until `stop` resolves.
pub async fn run(store: Arc<dyn Store>, clock: Clock, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        if let Err(e) = sweep(store.as_ref(), &clock).await {
            tracing::warn!(error = %e, "the proposal expiry sweep failed; trying again shortly");
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// One pass: every open proposal lapsed by now is expired or resolved; returns how many.
pub async fn sweep(store: &dyn Store, clock: &Clock) -> StoreResult<usize> {
    let mut total = 0;
    loop {
        let closed = store.expire_proposals(clock.now(), BATCH).await?;
        total += closed.len();
        for (t, proposal) in &closed {
            match proposal.status {
                ProposalStatus::Resolved => tracing::info!(account = %t.account_id, proposal = %proposal.id,
                    slot = proposal.result.as_ref().map(|r| r.winning_slot.id.as_str()),
                    "a poll reached its deadline and was resolved"),
                status => tracing::info!(account = %t.account_id, proposal = %proposal.id, status = status.as_str(),
                    "a proposal reached its deadline"),
            }
        }
        if closed.len() < BATCH {
            if total > 0 {
                tracing::debug!(total, "the proposal expiry sweep closed lapsed proposals");
            }
            return Ok(total);
        }
    }
}
