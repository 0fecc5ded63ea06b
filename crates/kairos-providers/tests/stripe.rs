//! The Stripe Checkout client against the Stripe emulator: what arrives at "Stripe", how its
//! answers and errors are read, and the emulator's signed events through `verify_signature`
//! (two independent implementations of Stripe's signature scheme checking each other).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation should fail the test loudly

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use jiff::{SignedDuration, Timestamp};
use kairos_emulators::stripe::StripeEmulator;
use kairos_providers::stripe::{
    API_VERSION, CHECKOUT_SESSION_COMPLETED, CHECKOUT_SESSION_EXPIRED, CheckoutRequest, DEFAULT_TOLERANCE,
    PaymentStatus, SessionStatus, SignatureError, StripeClient, StripeError, StripeEvent, verify_signature,
};
use url::Url;

const WEBHOOK_SECRET: &str = "whsec_kairos_providers_test_8d0b2f";

/// A fixed "now" shared by Kairos and the emulator, as the API's tests run.
fn now() -> Timestamp {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

async fn emulator() -> StripeEmulator {
    let emu = StripeEmulator::start().await.unwrap();
    emu.set_now(Some(now()));
    emu
}

fn client(emu: &StripeEmulator, key: &str) -> StripeClient {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    StripeClient::new(key.to_string(), Url::parse(&emu.base_url()).unwrap(), http)
}

fn request(booking: &str) -> CheckoutRequest {
    CheckoutRequest {
        booking_id: booking.to_string(),
        amount: 4500,
        currency: "eur".into(),
        product_name: "Consultation (60 min)".into(),
        success_url: "https://kairos.example/pay/done?session={CHECKOUT_SESSION_ID}".into(),
        cancel_url: "https://kairos.example/pay/cancelled".into(),
        customer_email: Some("ann@example.com".into()),
        expires_at: now() + SignedDuration::from_mins(45),
        idempotency_key: format!("kairos-checkout-{booking}"),
    }
}

#[tokio::test]
async fn create_sends_the_fields_stripe_expects_and_reads_the_session() {
    let emu = emulator().await;
    let stripe = client(&emu, StripeEmulator::SECRET_KEY);
    let session = stripe.create_checkout_session(&request("bkg_01")).await.unwrap();

    assert!(session.id.starts_with("cs_test_"));
    assert_eq!((session.status, session.payment_status), (SessionStatus::Open, PaymentStatus::Unpaid));
    assert_eq!((session.amount_total, session.currency.as_deref()), (Some(4500), Some("eur")));
    assert_eq!(session.booking_id(), Some("bkg_01"));
    assert_eq!(session.client_reference_id.as_deref(), Some("bkg_01"));
    assert_eq!(session.expires_at, now() + SignedDuration::from_mins(45));
    assert_eq!(session.url, Some(format!("{}/c/pay/{}", emu.base_url(), session.id)));

    let requests = emu.requests();
    let sent = requests.last().unwrap();
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/v1/checkout/sessions"));
    assert_eq!(sent.header("idempotency-key"), Some("kairos-checkout-bkg_01"));
    assert_eq!(sent.header("stripe-version"), Some(API_VERSION));
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {}", StripeEmulator::SECRET_KEY).as_str()));
    assert_eq!(sent.header("content-type"), Some("application/x-www-form-urlencoded"));
    let expected = [
        ("mode", "payment"),
        ("success_url", "https://kairos.example/pay/done?session={CHECKOUT_SESSION_ID}"),
        ("cancel_url", "https://kairos.example/pay/cancelled"),
        ("line_items[0][price_data][currency]", "eur"),
        ("line_items[0][price_data][unit_amount]", "4500"),
        ("line_items[0][price_data][product_data][name]", "Consultation (60 min)"),
        ("line_items[0][quantity]", "1"),
        ("metadata[booking_id]", "bkg_01"),
        ("client_reference_id", "bkg_01"),
        ("customer_email", "ann@example.com"),
        ("expires_at", &(now() + SignedDuration::from_mins(45)).as_second().to_string()),
    ];
    for (key, value) in expected {
        assert_eq!(sent.param(key), Some(value), "{key}");
    }
    assert_eq!(sent.form.len(), expected.len(), "nothing else is sent: {:?}", sent.form);
}

#[tokio::test]
async fn a_retried_create_returns_the_same_session() {
    let emu = emulator().await;
    let stripe = client(&emu, StripeEmulator::SECRET_KEY);
    let first = stripe.create_checkout_session(&request("bkg_02")).await.unwrap();
    let again = stripe.create_checkout_session(&request("bkg_02")).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(emu.sessions().len(), 1);

    let mut changed = request("bkg_02");
    changed.amount = 5000;
    let e = stripe.create_checkout_session(&changed).await.unwrap_err();
    assert!(matches!(&e, StripeError::Api { status: 400, type_, .. } if type_ == "idempotency_error"), "{e:?}");
    assert!(!e.is_transient());
}

#[tokio::test]
async fn retrieve_and_expire_follow_the_session() {
    let emu = emulator().await;
    let stripe = client(&emu, StripeEmulator::SECRET_KEY);
    let created = stripe.create_checkout_session(&request("bkg_03")).await.unwrap();

    let fetched = stripe.retrieve_checkout_session(&created.id).await.unwrap();
    assert_eq!(fetched, created);

    let expired = stripe.expire_checkout_session(&created.id).await.unwrap();
    assert_eq!((expired.status, expired.url.as_deref()), (SessionStatus::Expired, None));
    let sent = emu.requests().last().unwrap().clone();
    assert_eq!(sent.path, format!("/v1/checkout/sessions/{}/expire", created.id));
    assert!(sent.header("idempotency-key").is_some());

    // A retry after a lost answer replays it instead of meeting "already expired".
    assert_eq!(stripe.expire_checkout_session(&created.id).await.unwrap(), expired);
    assert_eq!(stripe.retrieve_checkout_session(&created.id).await.unwrap().status, SessionStatus::Expired);
    assert_eq!(emu.events().iter().filter(|e| e["type"] == CHECKOUT_SESSION_EXPIRED).count(), 1);

    let e = stripe.retrieve_checkout_session("cs_test_missing").await.unwrap_err();
    match &e {
        StripeError::Api { status, code, param, .. } => {
            assert_eq!((*status, code.as_deref(), param.as_deref()), (404, Some("resource_missing"), Some("session")));
        }
        other => panic!("{other:?}"),
    }
    assert!(!e.is_transient());
}

#[tokio::test]
async fn stripes_refusals_are_permanent_and_its_outages_transient() {
    let emu = emulator().await;
    let e =
        client(&emu, "sk_test_wrong_key_000000000000").create_checkout_session(&request("bkg_04")).await.unwrap_err();
    assert!(matches!(e, StripeError::Api { status: 401, .. }), "{e:?}");
    assert!(!e.is_transient());

    let stripe = client(&emu, StripeEmulator::SECRET_KEY);
    let mut soon = request("bkg_04");
    soon.expires_at = now() + SignedDuration::from_mins(10);
    let e = stripe.create_checkout_session(&soon).await.unwrap_err();
    assert!(matches!(&e, StripeError::Api { status: 400, param: Some(p), .. } if p == "expires_at"), "{e:?}");

    for status in [429, 500, 503] {
        emu.fail_next(1, status);
        let e = stripe.create_checkout_session(&request("bkg_05")).await.unwrap_err();
        assert!(e.is_transient(), "{status}: {e:?}");
    }
    // The injected failures never reached the endpoint: the key is still free.
    assert!(stripe.create_checkout_session(&request("bkg_05")).await.is_ok());

    let nowhere = StripeClient::new("k".into(), Url::parse("http://127.0.0.1:9/").unwrap(), reqwest::Client::new());
    assert!(nowhere.retrieve_checkout_session("cs_test_x").await.unwrap_err().is_transient());
}

/// What Kairos's webhook endpoint would do: verify, then read; 400 for anything untrusted.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Result<StripeEvent, SignatureError>>>>,
}

impl Receiver {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/stripe", listener.local_addr().unwrap());
        let seen = self.seen.clone();
        let app = axum::Router::new().route(
            "/webhooks/stripe",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let seen = seen.clone();
                async move {
                    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
                    let verdict = verify_signature(header, &body, WEBHOOK_SECRET, now(), DEFAULT_TOLERANCE)
                        .map(|()| serde_json::from_slice::<StripeEvent>(&body).unwrap());
                    let status = if verdict.is_ok() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
                    seen.lock().unwrap().push(verdict);
                    status
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn last(&self) -> Result<StripeEvent, SignatureError> {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

#[tokio::test]
async fn verify_signature_trusts_the_emulators_events_and_nothing_else() {
    let emu = emulator().await;
    let receiver = Receiver::default();
    emu.set_webhook(&receiver.start().await, WEBHOOK_SECRET);
    let stripe = client(&emu, StripeEmulator::SECRET_KEY);
    let session = stripe.create_checkout_session(&request("bkg_06")).await.unwrap();

    assert_eq!(emu.complete(&session.id).await.unwrap(), 200);
    let event = receiver.last().unwrap();
    assert_eq!(event.type_, CHECKOUT_SESSION_COMPLETED);
    assert_eq!(event.created, now());
    let paid = event.checkout_session().unwrap();
    assert!(paid.is_paid());
    assert_eq!((paid.id.as_str(), paid.booking_id()), (session.id.as_str(), Some("bkg_06")));
    assert_eq!(stripe.retrieve_checkout_session(&session.id).await.unwrap(), paid);

    // A redelivery is the same event: its id is what deduplicates.
    assert_eq!(emu.resend_last().await.unwrap(), 200);
    assert_eq!(receiver.last().unwrap().id, event.id);

    let payload = StripeEmulator::payload(&emu.last_event().unwrap());
    let header = emu.signature_header(&payload, now()).unwrap();
    let tampered = payload.replace("\"paid\"", "\"unpaid\"");
    assert_eq!(emu.send_with_signature(&tampered, &header).await.unwrap(), 400);
    assert_eq!(receiver.last().unwrap_err(), SignatureError::Mismatch);

    let old = now() - SignedDuration::from_mins(6);
    let stale = emu.signature_header(&payload, old).unwrap();
    assert_eq!(emu.send_with_signature(&payload, &stale).await.unwrap(), 400);
    assert_eq!(receiver.last().unwrap_err(), SignatureError::Stale { timestamp: old });

    assert_eq!(emu.send_with_signature(&payload, "t=1,v0=abc").await.unwrap(), 400);
    assert_eq!(receiver.last().unwrap_err(), SignatureError::NoV1Signature);

    // An expiry is announced the same way; the session never becomes payable.
    let unpaid = stripe.create_checkout_session(&request("bkg_07")).await.unwrap();
    assert_eq!(emu.expire(&unpaid.id).await.unwrap(), 200);
    let expired = receiver.last().unwrap();
    assert_eq!(expired.type_, CHECKOUT_SESSION_EXPIRED);
    assert!(!expired.checkout_session().unwrap().is_paid());
}

#[tokio::test]
async fn a_delayed_payment_completes_unpaid_until_it_settles() {
    let emu = emulator().await;
    let receiver = Receiver::default();
    emu.set_webhook(&receiver.start().await, WEBHOOK_SECRET);
    let stripe = client(&emu, StripeEmulator::SECRET_KEY);
    let session = stripe.create_checkout_session(&request("bkg_08")).await.unwrap();

    assert_eq!(emu.complete_unpaid(&session.id).await.unwrap(), 200);
    let completed = receiver.last().unwrap().checkout_session().unwrap();
    assert_eq!((completed.status, completed.payment_status), (SessionStatus::Complete, PaymentStatus::Unpaid));
    assert!(!completed.is_paid());

    assert_eq!(emu.settle_async_payment(&session.id, true).await.unwrap(), 200);
    let settled = receiver.last().unwrap();
    assert_eq!(settled.type_, "checkout.session.async_payment_succeeded");
    assert!(settled.checkout_session().unwrap().is_paid());
}
