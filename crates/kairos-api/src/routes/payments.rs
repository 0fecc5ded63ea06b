//! Paid bookings through Stripe Checkout: opening the session for a new payment hold, and
//! `POST /v1/providers/stripe/webhook`, where Stripe reports payments (no API key: each
//! delivery is trusted only through its `Stripe-Signature`).
//!
//! Duplicates are harmless: the store applies a payment to a booking's current state, so a
//! second `checkout.session.completed` finds the booking confirmed and changes nothing.
//!
//! The pages Stripe sends the customer back to (`/pay/done`, `/pay/cancelled`) are
//! `routes::pages::payment`; their addresses, made here, carry a sealed token naming the booking.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::SignedDuration;
use kairos_core::Booking;
use kairos_providers::stripe::{self, CheckoutRequest, StripeClient, StripeEvent};
use kairos_store::{Clock, PaymentApplied, Tenant};

use crate::AppState;
use crate::error::ApiError;

/// Stripe, when configured (`KAIROS_STRIPE_SECRET_KEY`).
#[derive(Clone, Debug)]
pub struct Payments {
    pub client: StripeClient,
    /// `KAIROS_STRIPE_WEBHOOK_SECRET` (`whsec_…`); without it the webhook endpoint refuses
    /// every delivery.
    pub webhook_secret: Option<String>,
}

/// Stripe refuses a session that closes sooner than this after it is created.
const STRIPE_MIN_EXPIRY: SignedDuration = SignedDuration::from_mins(30);

/// Opens the Checkout Session a new payment hold is paid through and stores its URL on the
/// booking. If Stripe refuses or cannot be reached, the hold is released (cancelled) so the
/// slot is not kept for a payment that cannot happen, and the caller hears 502.
pub(crate) async fn open_checkout(
    state: &AppState,
    payments: &Payments,
    t: &Tenant,
    booking: Booking,
    business_name: Option<&str>,
) -> Result<Booking, ApiError> {
    open_checkout_from(state, payments, t, booking, business_name, None).await
}

/// As [`open_checkout`], for a booking made on the page of the booking link `link` (its
/// slug), which the return pages then offer for picking another time.
pub(crate) async fn open_checkout_from(
    state: &AppState,
    payments: &Payments,
    t: &Tenant,
    booking: Booking,
    business_name: Option<&str>,
    link: Option<&str>,
) -> Result<Booking, ApiError> {
    let (Some(amount), Some(currency)) = (booking.payment_amount, booking.payment_currency.clone()) else {
        return Ok(booking);
    };
    // Stripe checks `expires_at` against its own (real) clock: at least 30 minutes ahead. A
    // payment that lands after our hold lapses is still applied if the time is free.
    let expires_at =
        Clock::system().now().saturating_add(STRIPE_MIN_EXPIRY + SignedDuration::from_mins(1)).unwrap_or_default();
    let (success_url, cancel_url) = super::pages::payment::return_urls(state, t, &booking.id, link);
    let request = CheckoutRequest {
        booking_id: booking.id.clone(),
        amount,
        currency: currency.to_lowercase(),
        product_name: match business_name {
            Some(name) if name != booking.title => format!("{} — {name}", booking.title),
            _ => booking.title.clone(),
        },
        success_url,
        cancel_url,
        customer_email: booking.customer_email.clone(),
        expires_at,
        idempotency_key: format!("kairos-checkout-{}", booking.id),
    };
    let now = state.clock.now();
    match payments.client.create_checkout_session(&request).await {
        Ok(session) => {
            let Some(url) = session.url else {
                return Err(release(state, t, &booking, "Stripe returned a Checkout Session without a URL.").await);
            };
            match state.store.set_checkout(t, &booking.id, &session.id, &url, now).await {
                Ok(booking) => Ok(booking),
                Err(e) => {
                    tracing::error!(error = %e, booking = %booking.id, "storing a Checkout Session failed");
                    if let Err(e) = payments.client.expire_checkout_session(&session.id).await {
                        tracing::warn!(error = %e, session = %session.id, "expiring an unused Checkout Session");
                    }
                    Err(release(state, t, &booking, "The checkout could not be saved.").await)
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, booking = %booking.id, "creating a Stripe Checkout Session failed");
            Err(release(state, t, &booking, &format!("Stripe could not open a checkout for this booking: {e}")).await)
        }
    }
}

/// Cancels a hold whose checkout could not be opened; the error to answer with.
async fn release(state: &AppState, t: &Tenant, booking: &Booking, why: &str) -> ApiError {
    if let Err(e) = state.store.cancel_booking(t, &booking.id, Some("checkout_failed"), state.clock.now()).await {
        tracing::error!(error = %e, booking = %booking.id, "releasing a hold without a checkout failed");
    }
    ApiError::bad_gateway("payment_provider_error", format!("{why} The slot was released; try again."))
}

/// Stripe's notifications of payments. 2xx tells Stripe to stop; anything else makes it
/// retry (for up to three days), so only a failure of ours answers 5xx.
#[utoipa::path(post, path = "/v1/providers/stripe/webhook", tag = super::BOOKINGS, security(()),
    request_body(content = String, description = "A Stripe Event, signed in `Stripe-Signature`", content_type = "application/json"),
    responses((status = 200, description = "Handled, or not a type Kairos acts on"),
        (status = 400, description = "Bad signature, stale timestamp, or not an event"),
        (status = 404, description = "Stripe is not configured on this server")))]
pub async fn stripe_webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = state.payments.as_ref().and_then(|p| p.webhook_secret.as_deref()) else {
        return (StatusCode::NOT_FOUND, "Stripe webhooks are not configured (KAIROS_STRIPE_WEBHOOK_SECRET)")
            .into_response();
    };
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    // Stripe signs with its clock, which is the real one whatever the API's clock says.
    if let Err(e) = stripe::verify_signature(signature, &body, secret, Clock::system().now(), stripe::DEFAULT_TOLERANCE)
    {
        tracing::warn!(error = %e, "refused a Stripe webhook delivery");
        return (StatusCode::BAD_REQUEST, format!("Stripe-Signature refused: {e}")).into_response();
    }
    let event: StripeEvent = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not a Stripe event: {e}")).into_response(),
    };
    match handle(&state, &event).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::error!(error = %e, event = %event.id, "handling a Stripe event failed; Stripe will retry");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn handle(state: &AppState, event: &StripeEvent) -> Result<(), kairos_store::StoreError> {
    let now = state.clock.now();
    let paid = matches!(
        event.type_.as_str(),
        stripe::CHECKOUT_SESSION_COMPLETED | stripe::CHECKOUT_SESSION_ASYNC_PAYMENT_SUCCEEDED
    );
    let ended = matches!(
        event.type_.as_str(),
        stripe::CHECKOUT_SESSION_EXPIRED | stripe::CHECKOUT_SESSION_ASYNC_PAYMENT_FAILED
    );
    if !paid && !ended {
        tracing::debug!(event = %event.id, kind = %event.type_, "ignored a Stripe event");
        return Ok(());
    }
    let session = match event.checkout_session() {
        Ok(session) => session,
        Err(e) => {
            tracing::warn!(error = %e, "a Stripe checkout event without a readable session");
            return Ok(());
        }
    };
    let Some(booking_id) = session.booking_id() else {
        tracing::debug!(session = %session.id, "a Checkout Session Kairos did not open");
        return Ok(());
    };
    if paid {
        // A completed session paid by a delayed method is not paid yet: its
        // `async_payment_succeeded` confirms it later.
        if !session.is_paid() {
            return Ok(());
        }
        let (Some(amount), Some(currency)) = (session.amount_total, session.currency.as_deref()) else {
            tracing::warn!(session = %session.id, "a paid Checkout Session without an amount");
            return Ok(());
        };
        match state.store.complete_payment(booking_id, &session.id, amount, currency, now).await? {
            None => tracing::warn!(booking = booking_id, session = %session.id, "a payment for no booking of ours"),
            Some((_, PaymentApplied::Confirmed(b))) => {
                tracing::info!(booking = %b.id, "payment received; booking confirmed")
            }
            Some((_, PaymentApplied::AlreadyConfirmed(_))) => {}
            Some((_, PaymentApplied::Mismatch(b))) => tracing::error!(
                booking = %b.id, session = %session.id, amount, currency,
                "a payment that is not the booking's price; the booking stays unpaid; refund it in Stripe"
            ),
            Some((_, PaymentApplied::TooLate(b) | PaymentApplied::Cancelled(b))) => tracing::error!(
                booking = %b.id, session = %session.id,
                "a payment arrived for a booking that no longer holds its time; refund it in Stripe"
            ),
        }
    } else {
        let reason =
            if event.type_ == stripe::CHECKOUT_SESSION_EXPIRED { "checkout_expired" } else { "payment_failed" };
        if state.store.end_payment_hold(booking_id, &session.id, reason, now).await?.is_none() {
            tracing::debug!(booking = booking_id, "an ended checkout for no booking of ours");
        }
    }
    Ok(())
}
