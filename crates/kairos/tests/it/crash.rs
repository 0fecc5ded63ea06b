//! Durability across a crash: the real binary is killed with SIGKILL while an attempt is in
//! flight and another event waits behind it; after a restart both arrive.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::{Value, json};

/// A receiver that records each request's `webhook-id` and body, and hangs while `hang` is set.
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    pub(crate) seen: Arc<Mutex<Vec<(String, Value)>>>,
    pub(crate) hang: Arc<AtomicBool>,
}

impl Recorder {
    pub(crate) async fn start(self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let this = self.clone();
                async move {
                    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                    this.seen.lock().unwrap().push((id, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                    if this.hang.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    "ok"
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    pub(crate) fn seen(&self) -> Vec<(String, Value)> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) async fn wait_for(&self, what: &str, done: impl Fn(&[(String, Value)]) -> bool) -> Vec<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            let seen = self.seen();
            if done(&seen) {
                return seen;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; seen: {seen:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn kairos(db: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kairos"));
    cmd.env("KAIROS_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("KAIROS_BIND", "127.0.0.1:0")
        .env("KAIROS_LOG", "info")
        .env("KAIROS_ALLOW_PRIVATE_URLS", "true")
        // The claim on an attempt lasts the timeout and 15 s: the hung attempt's claim lapses
        // 18 s after it was made.
        .env("KAIROS_WEBHOOK_TIMEOUT", "3s")
        .env("KAIROS_WEBHOOK_RETRY_SCHEDULE", "100ms,100ms,100ms")
        .env("KAIROS_WEBHOOK_ENDPOINT_CONCURRENCY", "1");
    cmd
}

/// Starts `kairos serve`; returns the child and its base URL (read from its first log lines).
fn serve(db: &std::path::Path) -> (Child, String) {
    let mut child = kairos(db).arg("serve").stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let base = crate::support::base_url_from_log(&mut stderr);
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in stderr.lines().map_while(Result::ok) {});
    (child, base)
}

async fn post(client: &reqwest::Client, base: &str, key: &str, path: &str, body: Value) -> Value {
    let res = client.post(format!("{base}{path}")).bearer_auth(key).json(&body).send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_survive_kill_9_and_an_attempt_in_flight_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let key = String::from_utf8(kairos(&db).args(["keys", "create", "--account", "acme"]).output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let receiver = Recorder::default();
    receiver.hang.store(true, Ordering::SeqCst);
    let url = receiver.clone().start().await;
    let client = reqwest::Client::new();

    let (mut first, base) = serve(&db);
    let hook = post(&client, &base, &key, "/v1/webhooks", json!({"url": url, "events": ["*"]})).await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    // The ping's attempt hangs: it is in flight, holding the subscription's one place.
    let ping = post(&client, &base, &key, &format!("/v1/webhooks/{hook_id}/test"), json!({})).await;
    let ping_event = ping["event_id"].as_str().unwrap().to_string();
    receiver.wait_for("the ping", |seen| seen.len() == 1).await;
    // A booking's event is committed and waits behind it.
    let all_week = json!([{"start": "00:00", "end": "24:00"}]);
    let hours = json!({"monday": all_week, "tuesday": all_week, "wednesday": all_week, "thursday": all_week,
        "friday": all_week, "saturday": all_week, "sunday": all_week});
    post(
        &client,
        &base,
        &key,
        "/v1/users",
        json!({"email": "a@example.com", "timezone": "UTC", "working_hours": hours}),
    )
    .await;
    let booking = post(
        &client,
        &base,
        &key,
        "/v1/bookings",
        json!({"participants": ["user:a@example.com"], "start": "2031-01-06T10:00:00Z", "end": "2031-01-06T10:30:00Z", "title": "x"}),
    )
    .await;
    first.kill().unwrap(); // SIGKILL: no shutdown, no flush, nothing recorded for the attempt
    first.wait().unwrap();
    assert_eq!(receiver.seen().len(), 1, "the booking's event was not sent before the crash");

    receiver.hang.store(false, Ordering::SeqCst);
    let (mut second, _) = serve(&db);
    let seen = receiver
        .wait_for("the retried ping and the booking event", |seen| {
            seen.iter().filter(|(id, _)| *id == ping_event).count() == 2
                && seen.iter().any(|(_, body)| body["data"]["booking"]["id"] == booking["id"])
        })
        .await;
    let created = seen.iter().find(|(_, body)| body["type"] == "booking.created").unwrap();
    assert_eq!(created.0, created.1["id"].as_str().unwrap(), "webhook-id is the event id, for dedupe");
    second.kill().unwrap();
    second.wait().unwrap();
}
