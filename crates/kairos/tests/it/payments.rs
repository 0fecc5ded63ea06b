//! Paid bookings against the Stripe emulator (which speaks Stripe's wire format and signs its
//! webhooks as Stripe does): a Checkout Session per hold, confirmation by
//! `checkout.session.completed` (once, whatever the duplicates) and only then the emails (to a
//! real SMTP server), release by `checkout.session.expired` (once, whatever the duplicates) or
//! the sweep, and refusal of forged or stale deliveries, while a header carrying a wrong
//! signature beside the right one (as during a secret's rotation) is accepted. Then the pages
//! Stripe sends the customer back to: addresses with a sealed token, the way back to payment,
//! releasing the held time (CSRF-checked, once), and what the pages say as the booking changes.

use jiff::SignedDuration;
use kairos::config::StripeConfig;
use kairos_emulators::smtp::SmtpServer;
use kairos_emulators::stripe::StripeEmulator;
use kairos_store::{Clock, PageRequest, keys};
use serde_json::{Value, json};

use crate::emails::{emails_of, wait_for};
use crate::pages::{Visitor, unescape};
use crate::support::*;

const WEBHOOK_SECRET: &str = "whsec_kairos_test_endpoint_secret_0123456789";

async fn paid_app() -> (TestApp, StripeEmulator) {
    paid_app_with(|_| {}).await
}

/// A server taking payments through the emulator, with `configure` applied last.
async fn paid_app_with(configure: impl FnOnce(&mut kairos::Config)) -> (TestApp, StripeEmulator) {
    let stripe = StripeEmulator::start().await.unwrap();
    let api_base = url::Url::parse(&stripe.base_url()).unwrap();
    let app = TestApp::start_with(|config| {
        config.stripe = Some(StripeConfig {
            secret_key: StripeEmulator::SECRET_KEY.into(),
            webhook_secret: Some(WEBHOOK_SECRET.into()),
            api_base,
        });
        configure(config);
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
    assert!(create.param("success_url").unwrap().contains("/pay/done?t="));

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_emailed_while_a_booking_awaits_payment_and_paying_sends_the_confirmation() {
    let Some(smtp) = SmtpServer::start() else { return };
    let url = smtp.url();
    let (app, stripe) = paid_app_with(|config| {
        config.email.smtp_url = Some(url);
        config.email.from = Some("Kairos Bookings <bookings@kairos.test>".into());
    })
    .await;
    let biz = paid_business(&app).await;
    let held = app.post("/v1/bookings", booking_at(&biz, 10)).await;
    assert_eq!(held.body["status"], "pending_payment", "{}", held.body);
    let id = held.body["id"].as_str().unwrap().to_string();
    assert_eq!(app.get(&format!("/v1/bookings/{id}")).await.body["emails"], json!([]), "no email is queued");

    // The email worker is running: a free booking made after the hold is emailed, and by then
    // nothing of the hold has gone out.
    app.user("bob@example.com", "UTC").await;
    let free = app
        .post(
            "/v1/bookings",
            json!({"participants": ["user:bob@example.com"], "start": "2030-01-02T12:00:00Z",
                "end": "2030-01-02T12:30:00Z", "title": "Free sync"}),
        )
        .await;
    assert_eq!(free.body["status"], "confirmed", "{}", free.body);
    let free_id = free.body["id"].as_str().unwrap().to_string();
    assert_eq!(wait_for(&smtp, 1).await[0].to, "bob@example.com");
    eventually("the free booking's email recorded as sent", || async {
        let b = app.get(&format!("/v1/bookings/{free_id}")).await.body;
        emails_of(&b).iter().all(|(_, _, status, _)| status == "sent")
    })
    .await;
    assert_eq!(smtp.messages().len(), 1, "nothing sent for the unpaid booking");
    assert_eq!(app.get(&format!("/v1/bookings/{id}")).await.body["emails"], json!([]));

    // Paid: the customer (and the host) get the confirmation with its invitation.
    assert_eq!(stripe.complete(&session_of(&stripe, &id)).await.unwrap(), 200);
    let received = wait_for(&smtp, 3).await;
    let jane: Vec<_> = received.iter().filter(|r| r.to == "jane@example.com").collect();
    assert_eq!(jane.len(), 1, "one confirmation for the customer");
    assert!(received.iter().any(|r| r.to == "alice@example.com"), "and one for the host");
    let jane = jane[0];
    assert_eq!((jane.method.as_str(), jane.prop("METHOD")), ("REQUEST", "REQUEST"), "{}", jane.raw_ics);
    assert_eq!((jane.prop("UID"), jane.prop("STATUS")), (format!("{id}@kairos").as_str(), "CONFIRMED"));
    assert_eq!((jane.prop("DTSTART"), jane.prop("DTEND")), ("20300102T100000Z", "20300102T103000Z"));
    eventually("the confirmations recorded as sent", || async {
        let b = app.get(&format!("/v1/bookings/{id}")).await.body;
        let emails = emails_of(&b);
        emails.len() == 2 && emails.iter().all(|(_, kind, status, _)| kind == "confirmation" && status == "sent")
    })
    .await;
    assert_eq!(smtp.messages().len(), 3);
}

/// The `t` and the right `v1` of a `Stripe-Signature` for `payload`, signed now.
fn signed_now(stripe: &StripeEmulator, payload: &str) -> (String, String) {
    let header = stripe.signature_header(payload, Clock::system().now()).unwrap();
    let part = |prefix: &str| header.split(',').find_map(|p| p.strip_prefix(prefix)).unwrap().to_string();
    (part("t="), part("v1="))
}

#[tokio::test]
async fn a_delivery_signed_with_a_wrong_and_a_right_v1_is_accepted_once() {
    let (app, stripe) = paid_app().await;
    let biz = paid_business(&app).await;
    let held = app.post("/v1/bookings", booking_at(&biz, 10)).await;
    let id = held.body["id"].as_str().unwrap().to_string();
    let session = session_of(&stripe, &id);
    let event = json!({"id": "evt_rotated", "object": "event", "type": "checkout.session.completed", "created": 1,
        "livemode": false, "data": {"object": {"id": session, "object": "checkout.session", "status": "complete",
        "payment_status": "paid", "amount_total": 5000, "currency": "usd", "metadata": {"booking_id": id},
        "expires_at": 1}}});
    let payload = event.to_string();
    let (t, right) = signed_now(&stripe, &payload);
    let (wrong, other, v0) = ("ab".repeat(32), "ef".repeat(32), "cd".repeat(32));
    // While an endpoint's secret is rolled, Stripe signs with both: one v1 is wrong for us
    // (and test mode adds a v0, which means nothing).
    let rotating = format!("t={t},v1={wrong},v1={right},v0={v0}");
    assert_eq!(stripe.send_with_signature(&payload, &rotating).await.unwrap(), 200);
    let paid = app.get(&format!("/v1/bookings/{id}")).await;
    assert_eq!(paid.body["status"], "confirmed", "{}", paid.body);
    // Two wrong ones are refused; the right one first is accepted too, and changes nothing.
    assert_eq!(stripe.send_with_signature(&payload, &format!("t={t},v1={wrong},v1={other}")).await.unwrap(), 400);
    assert_eq!(stripe.send_with_signature(&payload, &format!("t={t},v1={right},v1={wrong}")).await.unwrap(), 200);
    assert_eq!(events_of(&app, "booking.confirmed").await.len(), 1);
}

#[tokio::test]
async fn a_duplicate_checkout_expired_delivery_is_harmless() {
    let (app, stripe) = paid_app().await;
    let biz = paid_business(&app).await;
    let first = app.post("/v1/bookings", booking_at(&biz, 10)).await;
    let first_id = first.body["id"].as_str().unwrap().to_string();
    assert_eq!(stripe.expire(&session_of(&stripe, &first_id)).await.unwrap(), 200);
    let expired = app.get(&format!("/v1/bookings/{first_id}")).await.body;
    assert_eq!(stripe.resend_last().await.unwrap(), 200, "a duplicate is acknowledged");
    let deliveries = stripe.deliveries();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0].event_id, deliveries[1].event_id, "the same event, delivered twice");
    assert_eq!(deliveries[1].event_type, "checkout.session.expired");
    assert_eq!(app.get(&format!("/v1/bookings/{first_id}")).await.body, expired, "nothing changed");
    assert_eq!(expired["cancellation_reason"], "checkout_expired");
    assert_eq!(events_of(&app, "booking.cancelled").await.len(), 1, "one cancellation, one event");

    // Nor does a late copy touch the next hold of the same time.
    let expired_event = stripe.last_event().unwrap();
    let second = app.post("/v1/bookings", booking_at(&biz, 10)).await;
    assert_eq!(second.status, 201, "{}", second.body);
    let payload = StripeEmulator::payload(&expired_event);
    let signature = stripe.signature_header(&payload, Clock::system().now()).unwrap();
    assert_eq!(stripe.send_with_signature(&payload, &signature).await.unwrap(), 200);
    let second = app.get(&format!("/v1/bookings/{}", second.body["id"].as_str().unwrap())).await.body;
    assert_eq!(second["status"], "pending_payment");
    assert_eq!(events_of(&app, "booking.cancelled").await.len(), 1);
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

/// The addresses the server gave Stripe for a booking's checkout: (success, cancel).
fn return_urls(stripe: &StripeEmulator, booking_id: &str) -> (String, String) {
    let create = stripe
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/checkout/sessions" && r.param("metadata[booking_id]") == Some(booking_id))
        .expect("a Checkout Session request for the booking");
    (create.param("success_url").unwrap().to_string(), create.param("cancel_url").unwrap().to_string())
}

/// An address of this server as a path (what a browser coming back from Stripe asks for).
fn path_of(app: &TestApp, url: &str) -> String {
    url.strip_prefix(&app.base).unwrap_or_else(|| panic!("not an address of this server: {url}")).to_string()
}

/// A hold for Jane (who sees times in New York) at 10:00 UTC: its id, checkout URL and return
/// addresses (as paths).
async fn held_booking(app: &TestApp, stripe: &StripeEmulator, biz: &str) -> (String, String, String, String) {
    let mut body = booking_at(biz, 10);
    body["customer_timezone"] = json!("America/New_York");
    let held = app.post("/v1/bookings", body).await;
    assert_eq!(held.body["status"], "pending_payment", "{}", held.body);
    let id = held.body["id"].as_str().unwrap().to_string();
    let checkout = held.body["checkout_url"].as_str().unwrap().to_string();
    let (done, cancelled) = return_urls(stripe, &id);
    (id, checkout, path_of(app, &done), path_of(app, &cancelled))
}

async fn status_of(app: &TestApp, id: &str) -> (String, Option<String>) {
    let b = app.get(&format!("/v1/bookings/{id}")).await.body;
    (b["status"].as_str().unwrap().to_string(), b["cancellation_reason"].as_str().map(str::to_string))
}

/// The POSTs the server sent Stripe to expire a session.
fn expiries(stripe: &StripeEmulator) -> usize {
    stripe.requests().iter().filter(|r| r.path.ends_with("/expire")).count()
}

#[tokio::test]
async fn the_return_addresses_carry_a_sealed_token_and_no_id_in_clear() {
    let (app, stripe) = paid_app().await;
    let biz = paid_business(&app).await;
    let held = app.post("/v1/bookings", booking_at(&biz, 10)).await;
    let id = held.body["id"].as_str().unwrap();
    let (done, cancelled) = return_urls(&stripe, id);
    let account = app.store.tenant_for_key(&keys::hash(&app.key)).await.unwrap().unwrap().account_id;
    let session = session_of(&stripe, id);
    let token = |url: &str, page: &str| {
        let prefix = format!("{}/pay/{page}?t=", app.base);
        url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}")).to_string()
    };
    let (paid, left) = (token(&done, "done"), token(&cancelled, "cancelled"));
    for (url, token) in [(&done, &paid), (&cancelled, &left)] {
        assert!(token.len() >= 60 && !token.contains('&'), "one opaque token: {url}");
        for clear in [id, account.as_str(), biz.as_str(), session.as_str(), "CHECKOUT_SESSION_ID"] {
            assert!(!url.contains(clear), "{url} shows {clear}");
        }
    }
}

#[tokio::test]
async fn leaving_checkout_shows_until_when_the_time_is_held_and_the_way_back_to_payment() {
    let (app, stripe) = paid_app().await;
    let biz = paid_business(&app).await;
    let (id, checkout, _, cancelled) = held_booking(&app, &stripe, &biz).await;
    let mut visitor = Visitor::new(&app);
    let page = visitor.get(&cancelled).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let html = unescape(&page.html);
    assert!(html.contains("<h1 id=\"heading\">Payment not completed</h1>"), "{html}");
    assert!(
        html.contains(&format!(r#"<a class="button" id="return-to-payment" href="{checkout}">Return to payment</a>"#))
    );
    // In Jane's zone: 10:00 UTC is 5:00 AM in New York, and the hold made at 08:00 UTC lasts
    // until 08:30 UTC.
    assert!(html.contains("Wednesday, January 2, 2030, 5:00 – 5:30 AM EST"), "{html}");
    assert!(html.contains("until <strong>Tuesday, January 1 at 3:30 AM EST</strong>"), "{html}");
    assert!(html.contains("$50.00"));
    assert!(html.contains(r#"<form method="post" action="/pay/cancelled">"#) && html.contains("Release this time"));
    assert!(!page.hidden("csrf").is_empty() && page.hidden("t") == cancelled.split_once("t=").unwrap().1);
    let cookie = page.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("kairos_csrf=") && cookie.contains("Path=/pay/"), "{cookie}");
    assert_eq!(page.headers["cache-control"], "no-store");
    let account = app.store.tenant_for_key(&keys::hash(&app.key)).await.unwrap().unwrap().account_id;
    assert!(html.contains("<strong>Paid consult with Jane Doe</strong>"), "the booking's title");
    for secret in [id.as_str(), &account, &biz, "jane@example.com", "alice@example.com"] {
        assert!(!html.contains(secret), "the page shows {secret}");
    }
    assert!(!html.contains("/l/"), "a booking made through the API has no booking page to go back to");
    assert_eq!(status_of(&app, &id).await.0, "pending_payment", "looking changes nothing");
}

#[tokio::test]
async fn releasing_a_held_time_frees_the_slot_and_expires_the_checkout_once() {
    let (app, stripe) = paid_app().await;
    let biz = paid_business(&app).await;
    let (id, _, _, cancelled) = held_booking(&app, &stripe, &biz).await;
    let session = session_of(&stripe, &id);
    let mut visitor = Visitor::new(&app);
    let page = visitor.get(&cancelled).await;
    let form = [("t", page.hidden("t")), ("csrf", page.hidden("csrf"))];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let released = visitor.post("/pay/cancelled", &form).await;
    assert_eq!(released.status, 303, "{}", released.html);
    assert_eq!(released.location(), cancelled, "back to the page");
    assert_eq!(status_of(&app, &id).await, ("cancelled".into(), Some("payment_not_completed".into())));
    assert_eq!(stripe.session(&session).unwrap()["status"], "expired", "nobody can pay for it any more");
    let page = visitor.get(&cancelled).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("The time was released") && !page.html.contains("Return to payment"), "{}", page.html);

    // The time is free again at once: another customer books it.
    let next = app.post("/v1/bookings", booking_at(&biz, 10)).await;
    assert_eq!(next.status, 201, "{}", next.body);
    let next_id = next.body["id"].as_str().unwrap().to_string();

    // Pressing the button again (a second tab, a reload) changes nothing.
    let again = visitor.post("/pay/cancelled", &form).await;
    assert_eq!((again.status.as_u16(), again.location()), (303, cancelled.clone()));
    assert_eq!(expiries(&stripe), 1, "the checkout is expired once");
    assert_eq!(status_of(&app, &next_id).await.0, "pending_payment", "the next hold is untouched");
    eventually("Stripe's checkout.session.expired handled", || async {
        stripe.deliveries().iter().any(|d| d.event_type == "checkout.session.expired")
    })
    .await;
    assert_eq!(events_of(&app, "booking.cancelled").await.len(), 1, "one cancellation, one event");
    assert_eq!(status_of(&app, &id).await.1.as_deref(), Some("payment_not_completed"));
}

#[tokio::test]
async fn a_payment_made_after_the_page_was_opened_is_never_released() {
    let (app, stripe) = paid_app().await;
    let biz = paid_business(&app).await;
    let (id, _, _, cancelled) = held_booking(&app, &stripe, &biz).await;
    let mut visitor = Visitor::new(&app);
    let page = visitor.get(&cancelled).await;
    assert!(page.html.contains("Release this time"), "{}", page.html);
    let form = [("t", page.hidden("t")), ("csrf", page.hidden("csrf"))];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The customer pays in another tab, then presses the button on the page they left open.
    assert_eq!(stripe.complete(&session_of(&stripe, &id)).await.unwrap(), 200);
    eventually("the payment confirmed", || async { status_of(&app, &id).await.0 == "confirmed" }).await;
    let pressed = visitor.post("/pay/cancelled", &form).await;
    assert_eq!(pressed.status, 303, "{}", pressed.html);
    assert_eq!(status_of(&app, &id).await, ("confirmed".into(), None), "a paid booking is kept");
    assert_eq!(expiries(&stripe), 0);
    assert!(visitor.get(&cancelled).await.html.contains("Payment received"));
}

#[tokio::test]
async fn releasing_without_the_csrf_cookie_or_with_a_forged_token_changes_nothing() {
    let (app, stripe) = paid_app().await;
    let biz = paid_business(&app).await;
    let (id, _, done, cancelled) = held_booking(&app, &stripe, &biz).await;
    let mut visitor = Visitor::new(&app);
    let page = visitor.get(&cancelled).await;
    let (token, csrf) = (page.hidden("t"), page.hidden("csrf"));

    // Another site's form: the right token, but without the page's cookie.
    let stranger = Visitor::new(&app);
    let refused = stranger.post("/pay/cancelled", &[("t", &token), ("csrf", &csrf)]).await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    assert!(refused.html.contains("This form has expired"));
    // The cookie but another form token.
    let other = "0123456789abcdef0123456789abcdef";
    assert_eq!(visitor.post("/pay/cancelled", &[("t", &token), ("csrf", other)]).await.status, 403);

    // Forged and tampered tokens are no booking's, on every page.
    let mut tampered = token.clone().into_bytes();
    let at = tampered.len() - 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let forged = format!("k1.00000000.{}", "A".repeat(120));
    for bad in [tampered.as_str(), forged.as_str(), "bkg_0000"] {
        for path in ["done", "cancelled"] {
            let page = visitor.get(&format!("/pay/{path}?t={bad}")).await;
            assert_eq!(page.status, 404, "{path} {bad}");
            assert!(page.html.contains("Page not found") && page.html.contains("<main id=\"main\">"));
        }
        assert_eq!(visitor.post("/pay/cancelled", &[("t", bad), ("csrf", &csrf)]).await.status, 404);
    }

    assert_eq!(status_of(&app, &id).await, ("pending_payment".into(), None), "nothing changed");
    assert_eq!(expiries(&stripe), 0);
    assert_eq!(events_of(&app, "booking.cancelled").await.len(), 0);
    assert_error(&app.post("/v1/bookings", booking_at(&biz, 10)).await, 409, "slot_unavailable", None);
    assert_eq!(visitor.get(&done).await.status, 200, "the real token still opens");
}

#[tokio::test]
async fn the_done_page_says_confirming_until_stripe_confirms_and_then_payment_received() {
    let (app, stripe) = paid_app().await;
    let biz = paid_business(&app).await;
    let (id, _, done, cancelled) = held_booking(&app, &stripe, &biz).await;
    let mut visitor = Visitor::new(&app);
    let page = visitor.get(&done).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("We are confirming your payment"), "{}", page.html);
    assert!(unescape(&page.html).contains(&format!(r#"href="{done}">Check again"#)));
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(status_of(&app, &id).await.0, "pending_payment", "visiting the page never confirms");

    assert_eq!(stripe.complete(&session_of(&stripe, &id)).await.unwrap(), 200);
    let page = visitor.get(&done).await;
    assert!(page.html.contains("Payment received"), "{}", page.html);
    assert!(page.html.contains("Wednesday, January 2, 2030, 5:00 – 5:30 AM EST"), "in Jane's zone");
    assert!(!page.html.contains("We are confirming"));
    // Back on the cancelled page (an old tab): paid, so nothing to return to or release.
    let page = visitor.get(&cancelled).await;
    assert!(page.html.contains("Payment received"), "{}", page.html);
    assert!(!page.html.contains("Return to payment") && !page.html.contains("Release this time"));
    assert!(!page.headers.contains_key("set-cookie"));
}
