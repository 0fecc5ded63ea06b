//! Webhooks over HTTP: the subscription API, and deliveries to local receivers (signatures,
//! filtering, retries, timeouts, hang-ups, redirects, redelivery, rotation, the test ping,
//! per-endpoint concurrency) made by the real background worker.
//!
//! The API's clock is fixed; the worker runs on the system clock, so nothing here looks at the
//! wall clock's value: waits poll with a deadline, and timestamps the worker writes are only
//! compared with each other.

use std::future::Future;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use kairos_store::{Mode, PageRequest, keys};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::receiver::{Behaviour, Receiver, Request};
use crate::support::*;

/// The longest any wait here lasts before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `check` until it returns `Some`, failing the test after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "gave up after {DEADLINE:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Registers a webhook; returns its id and secret.
async fn create_hook(app: &TestApp, url: &str, events: &[&str]) -> (String, String) {
    let r = app.post("/v1/webhooks", json!({"url": url, "events": events})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    (r.body["id"].as_str().unwrap().to_string(), r.body["secret"].as_str().unwrap().to_string())
}

/// A webhook's deliveries (newest first) for `query` (e.g. `?status=failed`).
async fn deliveries(app: &TestApp, hook: &str, query: &str) -> Vec<Value> {
    let r = app.get(&format!("/v1/webhooks/{hook}/deliveries{query}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

/// Waits until the webhook has exactly one delivery and it is finished with `status`; returns it.
async fn finished_delivery(app: &TestApp, hook: &str, status: &str) -> Value {
    eventually(&format!("one `{status}` delivery of {hook}"), || async move {
        let list = deliveries(app, hook, "").await;
        (list.len() == 1 && list[0]["status"] == status).then(|| list[0].clone())
    })
    .await
}

/// Creates the user every booking here holds: open all day, every day, in UTC.
async fn alice(app: &TestApp) {
    app.user("alice@example.com", "UTC").await;
}

/// Books alice for the half hour starting `n` hours after 2030-01-02T00:00Z; returns the id.
async fn book(app: &TestApp, n: i64) -> String {
    let start: Timestamp = "2030-01-02T00:00:00Z".parse().unwrap();
    let start = start + SignedDuration::from_hours(n);
    let end = start + SignedDuration::from_mins(30);
    let r = app
        .post(
            "/v1/bookings",
            json!({"participants": ["user:alice@example.com"], "start": start.to_string(), "end": end.to_string(), "title": "Sync"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn tenant(app: &TestApp) -> kairos_store::Tenant {
    app.store.tenant_for_key(&keys::hash(&app.key)).await.unwrap().unwrap()
}

/// The exact payload the outbox holds for event `id`.
async fn outbox_payload(app: &TestApp, id: &str) -> String {
    let page = app.store.outbox_events(&tenant(app).await, &PageRequest { limit: 100, cursor: None }).await.unwrap();
    page.data.into_iter().find(|e| e.id == id).unwrap_or_else(|| panic!("no outbox event {id}")).payload
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The Standard Webhooks signature of a request, computed here from the secret.
fn standard_signature(secret: &str, req: &Request) -> String {
    let key = BASE64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let id = req.header("webhook-id").unwrap();
    let ts = req.header("webhook-timestamp").unwrap();
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", &req.body];
    let signed = parts.concat();
    format!("v1,{}", BASE64.encode(hmac_sha256(&key, &signed)))
}

/// `X-Webhook-Signature` as the contract defines it: hex HMAC of the raw body keyed with the
/// whole secret string.
fn body_signature(secret: &str, body: &[u8]) -> String {
    hmac_sha256(secret.as_bytes(), body).iter().map(|b| format!("{b:02x}")).collect()
}

/// The messages of a delivery's attempts' errors.
fn errors(delivery: &Value) -> Vec<String> {
    delivery["attempts"].as_array().unwrap().iter().map(|a| a["error"].as_str().unwrap_or("").to_string()).collect()
}

fn status_codes(delivery: &Value) -> Vec<Value> {
    delivery["attempts"].as_array().unwrap().iter().map(|a| a["status_code"].clone()).collect()
}

// ——— The subscription API ———

#[tokio::test]
async fn a_webhook_is_created_read_updated_and_deleted_and_its_secret_is_shown_only_at_creation() {
    let app = TestApp::start().await;
    let created = app
        .post(
            "/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "events": ["booking.created"], "description": "orders"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap();
    let encoded = secret.strip_prefix("whsec_").unwrap_or_else(|| panic!("`{secret}` starts with whsec_"));
    assert_eq!(BASE64.decode(encoded).unwrap().len(), 32, "the secret is 32 random bytes");
    let id = created.body["id"].as_str().unwrap();
    assert!(id.starts_with("wh_"), "{id}");
    assert_eq!(created.body["url"], "http://127.0.0.1:9/hook");
    assert_eq!(created.body["events"], json!(["booking.created"]));
    assert_eq!(created.body["description"], "orders");
    assert_eq!(created.body["enabled"], true);
    assert_eq!(created.body["created_at"], NOW);

    let mut shown = created.body.clone();
    shown.as_object_mut().unwrap().remove("secret");
    let got = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, shown, "GET shows everything but the secret");
    let list = app.get("/v1/webhooks").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["data"], json!([shown]));
    assert_eq!(list.body["next_cursor"], Value::Null);

    let patched = app
        .patch(
            &format!("/v1/webhooks/{id}"),
            json!({"url": "http://127.0.0.1:10/other", "events": ["booking.cancelled", "booking.updated"], "description": "ops", "enabled": false}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["url"], "http://127.0.0.1:10/other");
    assert_eq!(patched.body["events"], json!(["booking.cancelled", "booking.updated"]));
    assert_eq!(patched.body["description"], "ops");
    assert_eq!(patched.body["enabled"], false);
    assert!(patched.body.get("secret").is_none(), "{}", patched.body);
    assert_eq!(app.get(&format!("/v1/webhooks/{id}")).await.body, patched.body);

    let cleared = app.patch(&format!("/v1/webhooks/{id}"), json!({"description": null, "enabled": true})).await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.body["description"], Value::Null);
    assert_eq!(cleared.body["enabled"], true);
    assert_eq!(cleared.body["url"], "http://127.0.0.1:10/other", "what the PATCH leaves out stays");

    let deleted = app.delete(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.body, json!({"id": id, "deleted": true}));
    assert_error(&app.get(&format!("/v1/webhooks/{id}")).await, 404, "resource_missing", None);
    assert_error(&app.delete(&format!("/v1/webhooks/{id}")).await, 404, "resource_missing", None);
    assert_eq!(app.get("/v1/webhooks").await.body["data"], json!([]));
}

#[tokio::test]
async fn another_accounts_webhook_is_not_found_by_any_route() {
    let app = TestApp::start().await;
    let (id, _) = create_hook(&app, "http://127.0.0.1:9/hook", &["*"]).await;
    let other = app.new_key("globex", Mode::Test).await;
    let calls: [(Method, String, Option<&str>); 7] = [
        (Method::GET, format!("/v1/webhooks/{id}"), None),
        (Method::PATCH, format!("/v1/webhooks/{id}"), Some(r#"{"enabled": false}"#)),
        (Method::DELETE, format!("/v1/webhooks/{id}"), None),
        (Method::GET, format!("/v1/webhooks/{id}/deliveries"), None),
        (Method::POST, format!("/v1/webhooks/{id}/test"), None),
        (Method::POST, format!("/v1/webhooks/{id}/rotate_secret"), None),
        (Method::POST, format!("/v1/webhooks/{id}/deliveries/whd_nope/redeliver"), None),
    ];
    for (method, path, body) in calls {
        let r = app.send(method.clone(), &path, Some(&other), body, &[]).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "resource_missing", "{method} {path}: {}", r.body);
    }
    assert_eq!(app.get("/v1/webhooks").await.body["data"].as_array().unwrap().len(), 1);
    let own = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!((own.status.as_u16(), &own.body["enabled"]), (200, &json!(true)), "unchanged: {}", own.body);
    assert_eq!(deliveries(&app, &id, "").await, Vec::<Value>::new(), "the other account's ping queued nothing");
    let theirs = app.send(Method::GET, "/v1/webhooks", Some(&other), None, &[]).await;
    assert_eq!(theirs.body["data"], json!([]));
}

#[tokio::test]
async fn invalid_events_and_urls_are_refused_with_422_and_nothing_is_written() {
    let app = TestApp::start().await;
    let unknown = app.post("/v1/webhooks", json!({"url": "http://127.0.0.1:9/hook", "events": ["booking.made"]})).await;
    assert_error(&unknown, 422, "parameter_invalid", Some("events"));
    let message = unknown.body["error"]["message"].as_str().unwrap();
    for named in ["booking.made", "\"*\"", "\"booking.created\"", "\"proposal.resolved\"", "\"connection.reactivated\""]
    {
        assert!(message.contains(named), "the message names {named}: {message}");
    }
    let ping = app.post("/v1/webhooks", json!({"url": "http://127.0.0.1:9/hook", "events": ["ping"]})).await;
    assert_error(&ping, 422, "parameter_invalid", Some("events"));
    let empty = app.post("/v1/webhooks", json!({"url": "http://127.0.0.1:9/hook", "events": []})).await;
    assert_error(&empty, 422, "parameter_invalid", Some("events"));
    for url in ["ftp://127.0.0.1/hook", "not a url", "/relative/path", "http://"] {
        let r = app.post("/v1/webhooks", json!({"url": url, "events": ["*"]})).await;
        assert_eq!(r.status, 422, "{url}: {}", r.body);
        assert_eq!(r.body["error"]["param"], "url", "{url}: {}", r.body);
    }
    let ftp = app.post("/v1/webhooks", json!({"url": "ftp://127.0.0.1/hook", "events": ["*"]})).await;
    assert!(ftp.body["error"]["message"].as_str().unwrap().contains("https"), "{}", ftp.body);
    assert_eq!(app.get("/v1/webhooks").await.body["data"], json!([]), "nothing was written");

    let all = app.post("/v1/webhooks", json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]})).await;
    assert_eq!(all.status, 201, "{}", all.body);
    assert_eq!(all.body["events"], json!(["*"]));
    let id = all.body["id"].as_str().unwrap();
    let bad_patch = app.patch(&format!("/v1/webhooks/{id}"), json!({"events": ["nope"], "url": "ftp://x"})).await;
    assert_eq!(bad_patch.status, 422, "{}", bad_patch.body);
    let bad_url = app.patch(&format!("/v1/webhooks/{id}"), json!({"url": "ftp://127.0.0.1/x"})).await;
    assert_error(&bad_url, 422, "parameter_invalid", Some("url"));
    let after = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(after.body["events"], json!(["*"]), "a refused PATCH changes nothing");
    assert_eq!(after.body["url"], "http://127.0.0.1:9/hook");
}

#[tokio::test]
async fn without_the_private_url_allowance_http_loopback_link_local_and_metadata_urls_are_refused() {
    let app = TestApp::start_with(|config| config.webhooks.allow_private = false).await;
    let cases = [
        ("http://example.com/x", "must use https"),
        ("https://127.0.0.1/x", "private address"),
        ("https://[::1]/x", "private address"),
        ("https://[::ffff:127.0.0.1]/x", "private address"),
        ("https://169.254.169.254/latest/meta-data", "private address"),
        ("https://[fd00:ec2::254]/", "private address"),
        ("https://10.1.2.3/x", "private address"),
        ("https://localhost/x", "`localhost` resolves to a private"),
        ("https://[::ffff:0:7f00:1]/x", "private"),
        ("https://user:secret@example.com/x", "must not carry credentials"),
    ];
    for (url, problem) in cases {
        let r = app.post("/v1/webhooks", json!({"url": url, "events": ["*"]})).await;
        assert_eq!(r.status, 422, "{url}: {}", r.body);
        assert_eq!(r.body["error"]["param"], "url", "{url}: {}", r.body);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(problem), "{url}: the message names the problem ({problem}): {message}");
    }
    assert_eq!(app.get("/v1/webhooks").await.body["data"], json!([]), "nothing was written");
}

// ——— Deliveries ———

#[tokio::test]
async fn a_booking_event_arrives_as_the_outbox_bytes_with_both_signatures_and_is_recorded_as_succeeded() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(Behaviour::Ok).await;
    let (hook, secret) = create_hook(&app, &receiver.url(), &["booking.created"]).await;
    alice(&app).await;
    let booking = book(&app, 10).await;

    let req = receiver.wait_for(1, DEADLINE).await.remove(0);
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/hook"));
    let envelope = req.json();
    let event_id = envelope["id"].as_str().unwrap();
    assert!(event_id.starts_with("evt_"), "{envelope}");
    assert_eq!(req.body, outbox_payload(&app, event_id).await.into_bytes(), "the exact bytes the outbox holds");
    let mut keys: Vec<&str> = envelope.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "data", "id", "type"]);
    assert_eq!(envelope["type"], "booking.created");
    assert_eq!(envelope["created_at"], NOW);
    assert_eq!(envelope["data"]["booking"]["id"], booking.as_str());

    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("webhook-id"), Some(event_id));
    // Receivers check it against their own clock to refuse replays: it is the sending time in
    // Unix seconds (compared with this machine's clock at arrival, never with a fixed value).
    let timestamp: i64 = req.header("webhook-timestamp").unwrap().parse().expect("Unix seconds");
    let skew = (timestamp - req.arrived_at.as_second()).abs();
    assert!(skew <= 5, "webhook-timestamp {timestamp} is the sending time in Unix seconds (skew {skew} s)");
    let signature = req.header("webhook-signature").unwrap();
    assert!(!signature.contains(' '), "one secret, one signature: {signature}");
    assert_eq!(signature, standard_signature(&secret, &req), "webhook-signature verifies");
    assert_eq!(req.header("x-webhook-signature"), Some(body_signature(&secret, &req.body).as_str()));
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature", "x-webhook-signature"] {
        assert_eq!(req.header_count(name), 1, "{name} once");
    }

    let delivery = finished_delivery(&app, &hook, "succeeded").await;
    assert!(delivery["id"].as_str().unwrap().starts_with("whd_"), "{delivery}");
    assert_eq!(delivery["webhook_id"], hook.as_str());
    assert_eq!(delivery["event_id"], event_id);
    assert_eq!(delivery["event_type"], "booking.created");
    assert_eq!(delivery["next_attempt_at"], Value::Null);
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{delivery}");
    assert_eq!(attempts[0]["status_code"], 200);
    assert!(attempts[0]["duration_ms"].is_u64(), "{delivery}");
    assert_eq!(attempts[0]["error"], Value::Null);
    assert_eq!(attempts[0]["response_body"], "ok");
}

#[tokio::test]
async fn a_subscription_receives_only_the_event_types_it_names() {
    let app = TestApp::start().await;
    let (all, cancels) = (Receiver::start(Behaviour::Ok).await, Receiver::start(Behaviour::Ok).await);
    create_hook(&app, &all.url(), &["*"]).await;
    let (cancels_hook, _) = create_hook(&app, &cancels.url(), &["booking.cancelled"]).await;
    alice(&app).await;
    let booking = book(&app, 10).await;
    assert_eq!(app.post(&format!("/v1/bookings/{booking}/cancel"), json!({})).await.status, 200);

    // Once `*` has both events, both were fanned out to every subscription.
    let types: Vec<Value> = all.wait_for(2, DEADLINE).await.iter().map(|r| r.json()["type"].clone()).collect();
    assert_eq!(types, ["booking.created", "booking.cancelled"]);
    let heard = cancels.wait_for(1, DEADLINE).await;
    assert_eq!(heard[0].json()["type"], "booking.cancelled");
    assert_eq!(heard[0].json()["data"]["booking"]["status"], "cancelled");
    let queued: Vec<Value> =
        deliveries(&app, &cancels_hook, "").await.iter().map(|d| d["event_type"].clone()).collect();
    assert_eq!(queued, ["booking.cancelled"], "booking.created was never queued for it");
    assert_eq!(cancels.requests().len(), 1);
}

#[tokio::test]
async fn a_disabled_subscription_receives_nothing_until_enabled_again() {
    let app = TestApp::start().await;
    let (witness, disabled) = (Receiver::start(Behaviour::Ok).await, Receiver::start(Behaviour::Ok).await);
    create_hook(&app, &witness.url(), &["*"]).await;
    let r = app.post("/v1/webhooks", json!({"url": disabled.url(), "events": ["*"], "enabled": false})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["enabled"], false);
    let hook = r.body["id"].as_str().unwrap().to_string();
    alice(&app).await;
    book(&app, 10).await;
    witness.wait_for(1, DEADLINE).await;
    assert_eq!(deliveries(&app, &hook, "").await, Vec::<Value>::new(), "nothing was queued for it");
    assert_eq!(disabled.requests().len(), 0);
    let ping = app.post(&format!("/v1/webhooks/{hook}/test"), json!({})).await;
    assert_error(&ping, 409, "webhook_disabled", None);

    assert_eq!(app.patch(&format!("/v1/webhooks/{hook}"), json!({"enabled": true})).await.status, 200);
    book(&app, 11).await;
    let heard = disabled.wait_for(1, DEADLINE).await;
    assert_eq!(heard.len(), 1);
    assert_eq!(heard[0].json()["data"]["booking"]["start_time"], "2030-01-02T11:00:00Z", "only the later event");
}

#[tokio::test]
async fn a_subscription_hears_only_events_from_its_creation_on() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(Behaviour::Ok).await;
    alice(&app).await;
    let before = book(&app, 10).await;
    app.clock.advance(SignedDuration::from_hours(1));
    let (hook, _) = create_hook(&app, &receiver.url(), &["*"]).await;
    // Recorded after the subscription exists but stamped before it was created (a request that
    // began earlier and committed later): it belongs to the time before, however late its fan-out.
    app.clock.advance(SignedDuration::from_mins(-30));
    let stamped_before = book(&app, 11).await;
    app.clock.advance(SignedDuration::from_hours(1));
    let after = book(&app, 12).await;

    let heard = receiver.wait_for(1, DEADLINE).await;
    assert_eq!(heard[0].json()["data"]["booking"]["id"], after.as_str(), "neither {before} nor {stamped_before}");
    // Events are fanned out in order: once the last one is delivered, the others were judged.
    let queued: Vec<Value> = deliveries(&app, &hook, "").await.iter().map(|d| d["event_type"].clone()).collect();
    assert_eq!(queued, ["booking.created"], "one delivery only");
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_the_same_event_id_until_it_answers_2xx() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(Behaviour::FailTimes(2)).await;
    let (hook, _) = create_hook(&app, &receiver.url(), &["*"]).await;
    alice(&app).await;
    book(&app, 10).await;

    let delivery = finished_delivery(&app, &hook, "succeeded").await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.header("webhook-id") == delivery["event_id"].as_str()), "one event id");
    assert!(requests.iter().all(|r| r.body == requests[0].body), "the same bytes every time");
    for pair in requests.windows(2) {
        let gap = pair[1].arrived - pair[0].arrived;
        assert!(gap >= Duration::from_millis(150), "retries wait for the schedule (200 ms ± 10%): {gap:?}");
    }
    assert_eq!(status_codes(&delivery), [json!(500), json!(500), json!(200)]);
    let attempts = delivery["attempts"].as_array().unwrap();
    for failed in &attempts[..2] {
        assert!(failed["error"].as_str().unwrap().contains("500"), "{failed}");
        assert_eq!(failed["response_body"], "nope");
    }
    assert_eq!(attempts[2]["error"], Value::Null);
    assert_eq!(attempts[2]["response_body"], "ok");
}

#[tokio::test]
async fn a_delivery_fails_after_four_attempts_and_is_not_tried_again() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(Behaviour::FailTimes(10)).await;
    let (hook, _) = create_hook(&app, &receiver.url(), &["*"]).await;
    alice(&app).await;
    book(&app, 10).await;

    let delivery = finished_delivery(&app, &hook, "failed").await;
    assert_eq!(status_codes(&delivery), vec![json!(500); 4], "1 attempt and 3 retries");
    assert_eq!(delivery["next_attempt_at"], Value::Null);
    assert_eq!(receiver.requests().len(), 4);
    // Asserting an absence: give a fifth attempt (due 200 ms later if it were) time to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.requests().len(), 4, "no fifth request");
    let again = deliveries(&app, &hook, "").await;
    assert_eq!((again[0]["status"].clone(), again[0]["attempts"].as_array().unwrap().len()), (json!("failed"), 4));
}

#[tokio::test]
async fn a_receiver_that_does_not_answer_within_the_timeout_fails_the_attempt_and_is_retried() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(Behaviour::Hang).await;
    let (hook, _) = create_hook(&app, &receiver.url(), &["*"]).await;
    alice(&app).await;
    book(&app, 10).await;

    let (app, hook) = (&app, hook.as_str());
    let delivery = eventually("two timed-out attempts", || async move {
        let list = deliveries(app, hook, "").await;
        list.first().filter(|d| d["attempts"].as_array().unwrap().len() >= 2).cloned()
    })
    .await;
    for attempt in &delivery["attempts"].as_array().unwrap()[..2] {
        assert_eq!(attempt["status_code"], Value::Null, "{attempt}");
        assert!(attempt["error"].as_str().unwrap().contains("no answer within"), "{attempt}");
        assert!(attempt["duration_ms"].as_u64().unwrap() >= 900, "it waited for the 1 s timeout: {attempt}");
    }
    let requests = receiver.wait_for(2, DEADLINE).await;
    assert_eq!(requests[0].header("webhook-id"), requests[1].header("webhook-id"));
    assert_eq!(requests[0].header("webhook-id"), delivery["event_id"].as_str());
}

#[tokio::test]
async fn a_receiver_that_hangs_up_without_answering_fails_the_attempt_and_is_retried() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(Behaviour::Drop).await;
    let (hook, _) = create_hook(&app, &receiver.url(), &["*"]).await;
    alice(&app).await;
    book(&app, 10).await;

    let delivery = finished_delivery(&app, &hook, "failed").await;
    assert_eq!(status_codes(&delivery), vec![Value::Null; 4]);
    assert!(errors(&delivery).iter().all(|e| !e.is_empty()), "each attempt says why: {delivery}");
    assert_eq!(receiver.requests().len(), 4, "every attempt reached the receiver");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(Behaviour::Status(302)).await;
    let (hook, _) = create_hook(&app, &receiver.url(), &["*"]).await;
    alice(&app).await;
    book(&app, 10).await;

    let delivery = finished_delivery(&app, &hook, "failed").await;
    assert_eq!(status_codes(&delivery), vec![json!(302); 4]);
    assert!(errors(&delivery).iter().all(|e| e.contains("redirects are not followed")), "{delivery}");
    let paths: Vec<String> = receiver.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/hook"; 4], "the redirect target (/redirected) was never requested");
}

#[tokio::test]
async fn a_redelivery_sends_the_same_event_again_as_a_new_delivery() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(Behaviour::Ok).await;
    let (hook, _) = create_hook(&app, &receiver.url(), &["*"]).await;
    alice(&app).await;
    book(&app, 10).await;
    let first = finished_delivery(&app, &hook, "succeeded").await;
    let first_id = first["id"].as_str().unwrap();

    let r = app.post(&format!("/v1/webhooks/{hook}/deliveries/{first_id}/redeliver"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_ne!(r.body["id"], first["id"], "a new delivery");
    assert!(r.body["id"].as_str().unwrap().starts_with("whd_"));
    assert_eq!(r.body["event_id"], first["event_id"]);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["attempts"], json!([]));

    let requests = receiver.wait_for(2, DEADLINE).await;
    assert_eq!(requests[1].header("webhook-id"), first["event_id"].as_str());
    assert_eq!(requests[1].body, requests[0].body, "identical bytes");
    let (app, hook, redelivered) = (&app, hook.as_str(), &r.body["id"]);
    eventually("the redelivery to succeed", || async move {
        let list = deliveries(app, hook, "?status=succeeded").await;
        list.iter().any(|d| d["id"] == *redelivered).then_some(())
    })
    .await;

    let unknown = app.post(&format!("/v1/webhooks/{hook}/deliveries/whd_nope/redeliver"), json!({})).await;
    assert_error(&unknown, 404, "resource_missing", None);
}

#[tokio::test]
async fn deliveries_filter_by_status_and_page_with_a_cursor() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(Behaviour::FailTimes(4)).await;
    let (hook, _) = create_hook(&app, &receiver.url(), &["*"]).await;
    alice(&app).await;
    book(&app, 10).await;
    finished_delivery(&app, &hook, "failed").await;
    book(&app, 11).await;
    book(&app, 12).await;
    let (app, hook) = (&app, hook.as_str());
    let all = eventually("three finished deliveries", || async move {
        let list = deliveries(app, hook, "").await;
        (list.len() == 3 && list.iter().all(|d| d["status"] != "pending")).then_some(list)
    })
    .await;

    let ids = |list: &[Value]| list.iter().map(|d| d["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let failed = deliveries(app, hook, "?status=failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["attempts"].as_array().unwrap().len(), 4);
    let succeeded = deliveries(app, hook, "?status=succeeded").await;
    assert_eq!(succeeded.len(), 2);
    assert!(succeeded.iter().all(|d| d["status"] == "succeeded"));
    assert_eq!(deliveries(app, hook, "?status=pending").await.len(), 0);
    let mut filtered = [ids(&failed), ids(&succeeded)].concat();
    filtered.sort();
    let mut every = ids(&all);
    every.sort();
    assert_eq!(filtered, every);
    assert_error(
        &app.get(&format!("/v1/webhooks/{hook}/deliveries?status=bogus")).await,
        422,
        "parameter_invalid",
        Some("status"),
    );
    assert_error(
        &app.get(&format!("/v1/webhooks/{hook}/deliveries?limit=0")).await,
        422,
        "parameter_invalid",
        Some("limit"),
    );

    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let query = match &cursor {
            Some(c) => format!("?limit=1&cursor={c}"),
            None => "?limit=1".to_string(),
        };
        let r = app.get(&format!("/v1/webhooks/{hook}/deliveries{query}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["data"].as_array().unwrap().len(), 1, "{}", r.body);
        paged.extend(ids(r.body["data"].as_array().unwrap()));
        cursor = r.body["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(paged, ids(&all), "pages of one, newest first, each delivery once");
}

#[tokio::test]
async fn after_a_rotation_deliveries_are_signed_with_the_new_secret_and_the_old_one() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(Behaviour::Ok).await;
    let (hook, old) = create_hook(&app, &receiver.url(), &["*"]).await;
    alice(&app).await;
    book(&app, 10).await;
    let first = receiver.wait_for(1, DEADLINE).await.remove(0);
    assert_eq!(first.header("webhook-signature").unwrap(), standard_signature(&old, &first));

    let rotated = app.post(&format!("/v1/webhooks/{hook}/rotate_secret"), json!({})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new = rotated.body["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(BASE64.decode(new.strip_prefix("whsec_").unwrap()).unwrap().len(), 32);
    assert_eq!(rotated.body["id"], hook.as_str());
    assert!(app.get(&format!("/v1/webhooks/{hook}")).await.body.get("secret").is_none());

    book(&app, 11).await;
    let second = receiver.wait_for(2, DEADLINE).await.remove(1);
    let signatures: Vec<&str> = second.header("webhook-signature").unwrap().split(' ').collect();
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    assert_eq!(signatures[0], standard_signature(&new, &second), "the new secret's first");
    assert_eq!(signatures[1], standard_signature(&old, &second), "then the old one's");
    assert_eq!(second.header("x-webhook-signature"), Some(body_signature(&new, &second.body).as_str()));
}

#[tokio::test]
async fn the_test_endpoint_sends_a_ping_whatever_the_subscriptions_events() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(Behaviour::Ok).await;
    let (hook, secret) = create_hook(&app, &receiver.url(), &["booking.cancelled"]).await;

    let r = app.post(&format!("/v1/webhooks/{hook}/test"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["event_type"], "ping");
    assert_eq!(r.body["status"], "pending");

    let ping = receiver.wait_for(1, DEADLINE).await.remove(0);
    let envelope = ping.json();
    assert_eq!(envelope["type"], "ping");
    assert_eq!(envelope["data"]["webhook_id"], hook.as_str());
    assert_eq!(envelope["id"], r.body["event_id"]);
    assert_eq!(ping.header("webhook-signature").unwrap(), standard_signature(&secret, &ping));
    let delivery = finished_delivery(&app, &hook, "succeeded").await;
    assert_eq!(delivery["event_type"], "ping");
}

#[tokio::test]
async fn a_slow_receiver_gets_at_most_its_concurrency_and_does_not_hold_up_others() {
    let app = TestApp::start_with(|config| {
        config.webhooks.per_endpoint = 2;
        config.webhooks.max_in_flight = 8;
        config.webhooks.timeout = Duration::from_secs(5);
    })
    .await;
    let (slow, fast) =
        (Receiver::start(Behaviour::Slow(Duration::from_secs(2))).await, Receiver::start(Behaviour::Ok).await);
    create_hook(&app, &slow.url(), &["*"]).await;
    create_hook(&app, &fast.url(), &["*"]).await;
    alice(&app).await;
    for n in 0..10 {
        book(&app, n).await;
    }

    let started = Instant::now();
    fast.wait_for(10, DEADLINE).await;
    assert!(slow.requests().len() < 10, "the fast receiver did not wait for the slow one ({:?})", started.elapsed());
    let slow_ = &slow;
    eventually(
        "the slow receiver to have two requests at once",
        || async move { (slow_.in_flight() == 2).then_some(()) },
    )
    .await;
    assert_eq!(slow.peak_in_flight(), 2, "never more than the per-endpoint limit");
    // Another round of the slow receiver's answers: still two at a time.
    slow.wait_for(4, DEADLINE).await;
    assert_eq!(slow.peak_in_flight(), 2, "never more than the per-endpoint limit");
}

#[tokio::test]
async fn attempts_are_counted_by_outcome_and_timed_in_metrics() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(Behaviour::FailTimes(1)).await;
    let (hook, _) = create_hook(&app, &receiver.url(), &["*"]).await;
    alice(&app).await;
    book(&app, 10).await;
    let delivery = finished_delivery(&app, &hook, "succeeded").await;
    assert_eq!(status_codes(&delivery), [json!(500), json!(200)]);

    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    let sample = |name: &str, label: &str| {
        text.lines().any(|l| l.starts_with(&format!("{name}{{")) && l.contains(label) && !l.ends_with(" 0"))
    };
    assert!(sample("kairos_webhook_attempts_total", "outcome=\"success\""), "{text}");
    assert!(sample("kairos_webhook_attempts_total", "outcome=\"failure\""), "{text}");
    assert!(text.lines().any(|l| l.starts_with("kairos_webhook_attempt_duration_seconds_count")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("kairos_webhook_attempt_duration_seconds_bucket")), "{text}");
}
