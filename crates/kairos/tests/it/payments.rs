//! Paid bookings against the Stripe emulator (which speaks Stripe's wire format and signs its
//! webhooks as Stripe does): a Checkout Session per hold, confirmation by
//! `checkout.session.completed` (once, whatever the duplicates), release by
//! `checkout.session.expired` or the sweep, and refusal of forged or stale deliveries.

use jiff::SignedDuration;
use kairos::config::StripeConfig;
use kairos_emulators::stripe::StripeEmulator;
use kairos_store::{Clock, PageRequest, keys};
use serde_json::{Value, json};

use crate::support::*;

const WEBHOOK_SECRET: &str = "whsec_kairos_test_endpoint_secret_0123456789";

async fn paid_app() -> (TestApp, StripeEmulator) {
    let stripe = StripeEmulator::start().await.unwrap();
    let api_base = url::Url::parse(&stripe.base_url()).unwrap();
    let app = TestApp::start_with(|config| {
        config.stripe = Some(StripeConfig {
            secret_key: StripeEmulator::SECRET_KEY.into(),
            webhook_secret: Some(WEBHOOK_SECRET.into()),
            api_base,
        });
    })
    .await;
    stripe.set_webhook(&format!("{}/v1/providers/stripe/webhook", app.base), WEBHOOK_SECRET);
    (app, stripe)
}

async fn paid_business(app: &TestApp) -> String {
    app.user("alice@example.com", "UTC").await;
    app.business(json!({"name": "Paid consult", "timezone": "UTC", "hosts": ["alice@example.com"],
        "working_hours": all_week(), "price_amount": 5000, "price_currency": "USD"}))
        .await
}

fn booking_at(business: &str, hour: u32) -> Value {
    json!({"business_id": business, "customer_email": "jane@example.com", "customer_name": "Jane Doe",
        "start_time": format!("2030-01-02T{hour:02}:00:00Z"), "end_time": format!("2030-01-02T{hour:02}:30:00Z")})
}

/// The session id of a booking's checkout, from the session Stripe holds for it.
fn session_of(stripe: &StripeEmulator, booking_id: &str) -> String {
    let sessions = stripe.sessions();
    let session =
        sessions.iter().find(|s| s["metadata"]["booking_id"] == booking_id).expect("a session for the booking");
    session["id"].as_str().unwrap().to_string()
}

async fn events_of(app: &TestApp, kind: &str) -> Vec<Value> {
    let t = app.store.tenant_for_key(&keys::hash(&app.key)).await.unwrap().unwrap();
    let page = app.store.outbox_events(&t, &PageRequest { limit: 100, cursor: None }).await.unwrap();
    page.data.into_iter().filter(|e| e.event_type == kind).map(|e| serde_json::from_str(&e.payload).unwrap()).collect()
}

#[tokio::test]
async fn a_paid_booking_holds_its_slot_until_stripe_confirms_the_payment_once() {
    let (app, stripe) = paid_app().await;
    let biz = paid_business(&app).await;
    let held = app.post("/v1/bookings", booking_at(&biz, 10)).await;
    assert_eq!(held.status, 201, "{}", held.body);
    assert_eq!(held.body["status"], "pending_payment");
    let id = held.body["id"].as_str().unwrap();
    let checkout = held.body["checkout_url"].as_str().expect("a checkout URL");
    assert!(checkout.starts_with(&stripe.base_url()), "Stripe's hosted page: {checkout}");

    // What went to Stripe: form-encoded, keyed for retries, tagged with the booking.
    let create = stripe.requests().into_iter().find(|r| r.path == "/v1/checkout/sessions").unwrap();
    assert_eq!(create.header("idempotency-key"), Some(format!("kairos-checkout-{id}").as_str()));
    assert_eq!(create.param("mode"), Some("payment"));
    assert_eq!(create.param("line_items[0][price_data][currency]"), Some("usd"));
    assert_eq!(create.param("line_items[0][price_data][unit_amount]"), Some("5000"));
    assert_eq!(create.param("line_items[0][quantity]"), Some("1"));
    assert_eq!(create.param("metadata[booking_id]"), Some(id));
    assert_eq!(create.param("customer_email"), Some("jane@example.com"));
    assert!(create.param("success_url").unwrap().contains("{CHECKOUT_SESSION_ID}"));

    assert_error(&app.post("/v1/bookings", booking_at(&biz, 10)).await, 409, "slot_unavailable", None);

    let session = session_of(&stripe, id);
    assert_eq!(stripe.complete(&session).await.unwrap(), 200);
    let paid = app.get(&format!("/v1/bookings/{id}")).await;
    assert_eq!(
        (paid.body["status"].as_str(), paid.body["payment_amount"].as_i64(), paid.body["payment_currency"].as_str()),
        (Some("confirmed"), Some(5000), Some("usd"))
    );
    assert_eq!(stripe.resend_last().await.unwrap(), 200, "a duplicate delivery is accepted");
    let confirmed = events_of(&app, "booking.confirmed").await;
    assert_eq!(confirmed.len(), 1, "booking.confirmed once, whatever the duplicates");
    assert_eq!(confirmed[0]["data"]["booking"]["payment_amount"], 5000);
    assert_eq!(confirmed[0]["data"]["booking"]["payment_currency"], "usd");
    app.clock.advance(SignedDuration::from_hours(1));
    assert_error(&app.post("/v1/bookings", booking_at(&biz, 10)).await, 409, "slot_unavailable", None);
}

#[tokio::test]
async fn forged_stale_and_malformed_deliveries_are_refused() {
    let (app, stripe) = paid_app().await;
    let biz = paid_business(&app).await;
    let held = app.post("/v1/bookings", booking_at(&biz, 10)).await;
    let id = held.body["id"].as_str().unwrap().to_string();
    let session = session_of(&stripe, &id);
    // A completed event signed with another secret, one signed 10 minutes ago, one whose body
    // was altered after signing, and one with no signature at all.
    let event = json!({"id": "evt_forged", "object": "event", "type": "checkout.session.completed", "created": 1,
        "livemode": false, "data": {"object": {"id": session, "object": "checkout.session", "status": "complete",
        "payment_status": "paid", "amount_total": 5000, "currency": "usd", "metadata": {"booking_id": id},
        "expires_at": 1}}});
    let payload = event.to_string();
    let now = Clock::system().now();
    let good = stripe.signature_header(&payload, now).unwrap();
    let t = now.as_second();
    assert_eq!(stripe.send_with_signature(&payload, &format!("t={t},v1={}", "ab".repeat(32))).await.unwrap(), 400);
    let stale = stripe.signature_header(&payload, now - SignedDuration::from_mins(10)).unwrap();
    assert_eq!(stripe.send_with_signature(&payload, &stale).await.unwrap(), 400, "older than 5 minutes");
    assert_eq!(stripe.send_with_signature(&payload.replace("5000", "1"), &good).await.unwrap(), 400, "altered");
    assert_eq!(stripe.send_with_signature(&payload, "").await.unwrap(), 400);
    assert_eq!(app.get(&format!("/v1/bookings/{id}")).await.body["status"], "pending_payment", "nothing changed");
    // The same event, properly signed, is what confirms.
    assert_eq!(stripe.send_with_signature(&payload, &good).await.unwrap(), 200);
    assert_eq!(app.get(&format!("/v1/bookings/{id}")).await.body["status"], "confirmed");
}

#[tokio::test]
async fn an_expired_checkout_or_a_lapsed_hold_releases_the_slot() {
    let (app, stripe) = paid_app().await;
    let biz = paid_business(&app).await;
    let first = app.post("/v1/bookings", booking_at(&biz, 10)).await;
    let first_id = first.body["id"].as_str().unwrap().to_string();
    assert_eq!(stripe.expire(&session_of(&stripe, &first_id)).await.unwrap(), 200);
    let expired = app.get(&format!("/v1/bookings/{first_id}")).await;
    assert_eq!(
        (expired.body["status"].as_str(), expired.body["cancellation_reason"].as_str()),
        (Some("cancelled"), Some("checkout_expired"))
    );
    assert_eq!(events_of(&app, "booking.cancelled").await.len(), 1);
    // The reasons Kairos records for its own cancellations are not the caller's to use.
    let reserved =
        app.post(&format!("/v1/bookings/{first_id}/cancel"), json!({"reason": "payment_not_completed"})).await;
    assert_error(&reserved, 422, "parameter_invalid", Some("reason"));

    // Free again at once; this hold is never paid, and the sweep ends it after 30 minutes.
    let second = app.post("/v1/bookings", booking_at(&biz, 10)).await;
    assert_eq!(second.status, 201, "{}", second.body);
    let second_id = second.body["id"].as_str().unwrap().to_string();
    let before = Clock::fixed(app.clock.now() + SignedDuration::from_mins(29));
    assert_eq!(kairos_jobs::holds::sweep(app.store.as_ref(), &before, None).await.unwrap(), 0);
    let after = Clock::fixed(app.clock.now() + SignedDuration::from_mins(31));
    assert_eq!(kairos_jobs::holds::sweep(app.store.as_ref(), &after, None).await.unwrap(), 1);
    let lapsed = app.get(&format!("/v1/bookings/{second_id}")).await;
    assert_eq!(
        (lapsed.body["status"].as_str(), lapsed.body["cancellation_reason"].as_str()),
        (Some("cancelled"), Some("payment_not_completed"))
    );
}

#[tokio::test]
async fn when_stripe_fails_the_hold_is_released_and_the_caller_hears_502() {
    let (app, stripe) = paid_app().await;
    let biz = paid_business(&app).await;
    stripe.fail_next(1, 500);
    let failed = app.post("/v1/bookings", booking_at(&biz, 10)).await;
    assert_error(&failed, 502, "payment_provider_error", None);
    // The slot was released, so trying again works.
    let retried = app.post("/v1/bookings", booking_at(&biz, 10)).await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert!(retried.body["checkout_url"].is_string());
}

#[tokio::test]
async fn without_stripe_a_priced_business_cannot_be_booked_and_nothing_is_written() {
    let app = TestApp::start().await;
    let biz = paid_business(&app).await;
    let refused = app.post("/v1/bookings", booking_at(&biz, 10)).await;
    assert_error(&refused, 409, "payments_not_configured", Some("business_id"));
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("KAIROS_STRIPE_SECRET_KEY"));
    assert_eq!(app.get("/v1/bookings").await.body["data"], json!([]));
    let webhook = app.client.post(format!("{}/v1/providers/stripe/webhook", app.base)).body("{}").send().await.unwrap();
    assert_eq!(webhook.status(), 404, "no endpoint without a webhook secret");
}
