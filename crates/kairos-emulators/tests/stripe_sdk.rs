//! Fidelity: Stripe's own Python library (PyPI `stripe`) against the Stripe emulator. The script
//! (python/stripe_sdk_check.py) creates a Checkout Session with the parameters Kairos sends,
//! replays it with its idempotency key, retrieves it, lists its line items, expires it, checks
//! that Stripe's errors raise the library's exception classes, and verifies an emulator-signed
//! `checkout.session.completed` delivery with `stripe.Webhook.construct_event` (and refuses a
//! tampered, a stale and a wrongly keyed one).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation should fail the test loudly

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use kairos_emulators::stripe::StripeEmulator;

const WEBHOOK_SECRET: &str = "whsec_kairos_sdk_check_2c1f5b0e9a";

/// Whether tests that need optional peers must fail rather than skip (set by `.ci/run`).
fn peers_required() -> bool {
    std::env::var("KAIROS_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

fn has_sdk() -> bool {
    Command::new("python3").args(["-c", "import stripe"]).output().is_ok_and(|o| o.status.success())
}

/// What one webhook delivery carried.
#[derive(Clone, Debug)]
struct Delivery {
    signature: String,
    body: String,
}

/// A webhook receiver on 127.0.0.1 that keeps every delivery and answers 200.
async fn receiver() -> (String, Arc<Mutex<Vec<Delivery>>>) {
    let seen: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/stripe", listener.local_addr().unwrap());
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/stripe",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let signature = headers["stripe-signature"].to_str().unwrap().to_string();
                log.lock().unwrap().push(Delivery { signature, body });
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn python(args: Vec<String>) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/stripe_sdk_check.py");
    tokio::task::spawn_blocking(move || Command::new("python3").arg(script).args(args).output())
        .await
        .unwrap()
        .expect("python3 is needed by this test")
}

fn check(out: &Output, done: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK check failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(stdout.contains(done), "{stdout}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stripe_python_library_reads_the_emulator_and_trusts_its_signatures() {
    if !has_sdk() {
        assert!(!peers_required(), "KAIROS_REQUIRE_PEERS=1 but the `stripe` package is missing");
        eprintln!("SKIPPED: the Stripe SDK check needs `pip install stripe` (CI installs it)");
        return;
    }
    let emu = StripeEmulator::start().await.unwrap();
    let (hook, deliveries) = receiver().await;
    emu.set_webhook(&hook, WEBHOOK_SECRET);

    let out = python(vec!["api".into(), emu.base_url(), StripeEmulator::SECRET_KEY.into()]).await;
    let stdout = check(&out, "stripe-python: api checks passed");
    let to_pay = stdout.lines().find_map(|l| l.strip_prefix("pay: ")).expect("the script names a session").to_string();

    // What the library sent is what Kairos sends: bracket keys, a pinned version, the key.
    let requests = emu.requests();
    let create = requests
        .iter()
        .find(|r| {
            r.method == "POST"
                && r.path == "/v1/checkout/sessions"
                && r.param("metadata[booking_id]") == Some("bkg_sdk_1")
        })
        .unwrap();
    assert_eq!(create.header("idempotency-key"), Some("kairos-checkout-bkg_sdk_1"));
    assert_eq!(create.param("line_items[0][price_data][unit_amount]"), Some("4500"));
    assert_eq!(create.param("line_items[0][price_data][product_data][name]"), Some("Consultation (60 min)"));
    assert!(create.header("stripe-version").is_some_and(|v| !v.is_empty()));
    assert_eq!(create.header("content-type"), Some("application/x-www-form-urlencoded"));

    // The expiry through the API was announced too.
    let expired_types: Vec<_> = emu.events().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(expired_types, ["checkout.session.expired"]);

    assert_eq!(emu.complete(&to_pay).await.unwrap(), 200);
    let delivery = deliveries
        .lock()
        .unwrap()
        .iter()
        .find(|d| d.body.contains("checkout.session.completed"))
        .cloned()
        .expect("the completion was delivered");
    let stale = emu.signature_header(&delivery.body, Timestamp::now() - SignedDuration::from_mins(10)).unwrap();
    let payload = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(payload.path(), &delivery.body).unwrap();
    let out = python(vec![
        "webhook".into(),
        payload.path().display().to_string(),
        delivery.signature,
        stale,
        WEBHOOK_SECRET.into(),
        to_pay.clone(),
    ])
    .await;
    check(&out, "stripe-python: webhook checks passed");
}

// The rest is checked over plain HTTP: what the SDK check does not reach.

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn fixed_now() -> Timestamp {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

/// Creates a session the way Kairos does; the session object.
async fn create(emu: &StripeEmulator, expires_in: SignedDuration) -> serde_json::Value {
    let expires_at = (fixed_now() + expires_in).as_second().to_string();
    let response = http()
        .post(format!("{}/v1/checkout/sessions", emu.base_url()))
        .basic_auth(StripeEmulator::SECRET_KEY, Some(""))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("mode", "payment"),
            ("success_url", "https://kairos.example/done?session={CHECKOUT_SESSION_ID}"),
            ("cancel_url", "https://kairos.example/cancelled"),
            ("line_items[0][price_data][currency]", "jpy"),
            ("line_items[0][price_data][unit_amount]", "4500"),
            ("line_items[0][price_data][product_data][name]", "Tea <ceremony>"),
            ("line_items[0][quantity]", "2"),
            ("expires_at", expires_at.as_str()),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["request-id"].to_str().unwrap().starts_with("req_"));
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_hosted_page_takes_the_payment_and_returns_to_success_url() {
    let emu = StripeEmulator::start().await.unwrap();
    emu.set_now(Some(fixed_now()));
    let (hook, deliveries) = receiver().await;
    emu.set_webhook(&hook, WEBHOOK_SECRET);
    let session = create(&emu, SignedDuration::from_hours(1)).await;
    assert_eq!(session["amount_total"], 9000, "unit amount × quantity");

    let url = session["url"].as_str().unwrap();
    let page = http().get(url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Tea &lt;ceremony&gt; — 9000 JPY"), "{page}");
    assert!(page.contains("href=\"https://kairos.example/cancelled\""), "{page}");

    let paid = http().post(url).send().await.unwrap();
    assert_eq!(paid.status().as_u16(), 303);
    let id = session["id"].as_str().unwrap();
    assert_eq!(paid.headers()["location"], format!("https://kairos.example/done?session={id}").as_str());
    assert_eq!(emu.session(id).unwrap()["payment_status"], "paid");

    // The completion is delivered in the background, as Stripe does.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while deliveries.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no delivery");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let delivery = deliveries.lock().unwrap()[0].clone();
    let event: serde_json::Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(
        (event["type"].as_str(), event["data"]["object"]["id"].as_str()),
        (Some("checkout.session.completed"), Some(id))
    );
    assert!(delivery.signature.starts_with(&format!("t={},v1=", fixed_now().as_second())), "{}", delivery.signature);
    assert_eq!(emu.deliveries()[0].outcome, Ok(200));
}

#[tokio::test]
async fn a_session_past_its_expires_at_expires_with_its_event() {
    let emu = StripeEmulator::start().await.unwrap();
    emu.set_now(Some(fixed_now()));
    let session = create(&emu, SignedDuration::from_mins(30)).await;
    let id = session["id"].as_str().unwrap();

    emu.set_now(Some(fixed_now() + SignedDuration::from_mins(31)));
    let fetched: serde_json::Value = http()
        .get(format!("{}/v1/checkout/sessions/{id}", emu.base_url()))
        .bearer_auth(StripeEmulator::SECRET_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((fetched["status"].as_str(), &fetched["url"]), (Some("expired"), &serde_json::Value::Null));
    let events = emu.events();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0]["type"].as_str(), events[0]["request"]["id"].as_str()),
        (Some("checkout.session.expired"), None)
    );
    assert_eq!(
        emu.complete(id).await,
        Err(kairos_emulators::stripe::StripeEmulatorError::WrongStatus {
            id: id.to_string(),
            status: "expired".into(),
        })
    );
}

#[tokio::test]
async fn errors_have_stripes_shape() {
    let emu = StripeEmulator::start().await.unwrap();
    let base = emu.base_url();

    let anonymous = http().get(format!("{base}/v1/checkout/sessions/cs_test_x")).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let body: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("You did not provide an API key."));

    let unknown =
        http().get(format!("{base}/v1/charges")).bearer_auth(StripeEmulator::SECRET_KEY).send().await.unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().starts_with("Unrecognized request URL (GET: /v1/charges)."));

    let bad = http()
        .post(format!("{base}/v1/checkout/sessions"))
        .bearer_auth(StripeEmulator::SECRET_KEY)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[("mode", "payment"), ("success_url", "https://kairos.example/done")]))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": {"type": "invalid_request_error", "code": "parameter_missing",
            "doc_url": "https://stripe.com/docs/error-codes/parameter-missing",
            "message": "Missing required param: line_items.", "param": "line_items"}})
    );
}
