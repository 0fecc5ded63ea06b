//! The payment-hold sweep: a `pending_payment` booking that was not paid within its hold
//! (30 minutes) is cancelled with `booking.cancelled`, releasing its slot, and its Stripe
//! Checkout Session is expired so the customer cannot pay for time they no longer hold. The
//! slot is free the moment the hold lapses either way (the booking rules read
//! `hold_expires_at`); the sweep makes the change visible and announced.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kairos_providers::stripe::StripeClient;
use kairos_store::{Clock, Store, StoreResult};

/// How often lapsed holds are looked for.
pub const EVERY: Duration = Duration::from_secs(10);
/// Holds ended per store call.
const BATCH: usize = 100;

/// Ends lapsed holds every [`EVERY`] until `stop` resolves.
pub async fn run(store: Arc<dyn Store>, clock: Clock, stripe: Option<StripeClient>, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        if let Err(e) = sweep(store.as_ref(), &clock, stripe.as_ref()).await {
            tracing::warn!(error = %e, "the payment-hold sweep failed; trying again shortly");
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// One pass: every hold lapsed by now is ended; returns how many.
pub async fn sweep(store: &dyn Store, clock: &Clock, stripe: Option<&StripeClient>) -> StoreResult<usize> {
    let mut total = 0;
    loop {
        let ended = store.expire_payment_holds(clock.now(), BATCH).await?;
        total += ended.len();
        for (_, booking, session) in &ended {
            tracing::info!(booking = %booking.id, "an unpaid hold lapsed; the slot is released");
            if let (Some(stripe), Some(session)) = (stripe, session) {
                // Best effort: a session that already expired or completed is refused, and a
                // payment that still lands is applied only if the time is free.
                if let Err(e) = stripe.expire_checkout_session(session).await {
                    tracing::debug!(error = %e, session, "expiring a lapsed hold's checkout session");
                }
            }
        }
        if ended.len() < BATCH {
            return Ok(total);
        }
    }
}
