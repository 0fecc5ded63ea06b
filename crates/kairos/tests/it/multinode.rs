//! Many nodes as one system: two `kairos serve` processes on one PostgreSQL database.
//!
//! Skipped (loudly) without a PostgreSQL server, unless `KAIROS_REQUIRE_PEERS=1`, where a
//! missing server fails the run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;

use futures::future::join_all;
use jiff::Timestamp;
use kairos_store::{Mode, Store, keys};
use kairos_store_postgres::testing::FreshDatabase;
use serde_json::{Value, json};

use crate::crash::Recorder;

/// A server process; killed (SIGKILL) when dropped so a failing test leaves none behind.
struct Node {
    child: Child,
    base: String,
}

impl Node {
    fn start(db: &FreshDatabase) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kairos"))
            .arg("serve")
            .env("KAIROS_DATABASE_URL", db.url())
            .env("KAIROS_DATABASE_MAX_CONNECTIONS", "8")
            .env("KAIROS_SECRET_KEY", "multi-node-test-secret-key-0123456789")
            .env("KAIROS_BIND", "127.0.0.1:0")
            .env("KAIROS_LOG", "info")
            .env("KAIROS_ALLOW_PRIVATE_URLS", "true")
            // An attempt's claim lasts the timeout and 15 s: a dead node's claim lapses 18 s on.
            .env("KAIROS_WEBHOOK_TIMEOUT", "3s")
            .env("KAIROS_WEBHOOK_RETRY_SCHEDULE", "100ms,100ms,100ms")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let base = crate::support::base_url_from_log(&mut stderr);
        std::thread::spawn(move || for _ in stderr.lines().map_while(Result::ok) {});
        Self { child, base }
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL: no shutdown, nothing released
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh database with a key of account `acme`, or `None` (said loudly) without a server.
async fn database() -> Option<(FreshDatabase, String)> {
    let db = FreshDatabase::create().await?;
    // Migrate and make a key before any node starts (the nodes migrate too: a no-op then).
    let store = db.store().await;
    let (key, hashed) = keys::generate(Mode::Test);
    store.create_api_key("acme", Mode::Test, &hashed, Timestamp::now()).await.unwrap();
    store.close().await;
    Some((db, key))
}

async fn post(client: &reqwest::Client, base: &str, key: &str, path: &str, body: Value) -> (u16, Value) {
    let res = client.post(format!("{base}{path}")).bearer_auth(key).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn all_week() -> Value {
    let day = json!([{"start": "00:00", "end": "24:00"}]);
    json!({"monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day,
        "saturday": day, "sunday": day})
}

/// Half-hour `i` from 2031-01-06T00:00Z.
fn slot(i: i64) -> (String, String) {
    let start: Timestamp = "2031-01-06T00:00:00Z".parse().unwrap();
    let at = |n: i64| (start + jiff::SignedDuration::from_mins(30 * n)).to_string();
    (at(i), at(i + 1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_admit_one_booking_of_a_slot_and_deliver_each_event_once() {
    let Some((db, key)) = database().await else { return };
    let receiver = Recorder::default();
    let url = receiver.clone().start().await;
    let (a, b) = (Node::start(&db), Node::start(&db));
    let client = reqwest::Client::new();
    let bases = [a.base.clone(), b.base.clone()];

    let (status, _) =
        post(&client, &bases[0], &key, "/v1/webhooks", json!({"url": url, "events": ["booking.created"]})).await;
    assert_eq!(status, 201);
    let (status, _) = post(
        &client,
        &bases[1],
        &key,
        "/v1/users",
        json!({"email": "host@example.com", "timezone": "UTC", "working_hours": all_week()}),
    )
    .await;
    assert_eq!(status, 201);

    // 40 requests for one slot, half through each node: exactly one wins.
    let (start, end) = slot(0);
    let body = json!({"participants": ["user:host@example.com"], "start": start, "end": end, "title": "race"});
    let answers = join_all((0..40).map(|i| post(&client, &bases[i % 2], &key, "/v1/bookings", body.clone()))).await;
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for (status, body) in &answers {
        *statuses.entry(*status).or_default() += 1;
        if *status == 409 {
            assert_eq!(body["error"]["code"], "slot_unavailable", "{body}");
        }
    }
    assert_eq!(statuses, HashMap::from([(201, 1), (409, 39)]), "one booking of the slot across both nodes");

    // 99 more bookings on distinct slots, alternating nodes, 100 in all.
    let made = join_all((1..100).map(|i| {
        let (start, end) = slot(i);
        let body = json!({"participants": ["user:host@example.com"], "start": start, "end": end, "title": "n"});
        post(&client, &bases[i as usize % 2], &key, "/v1/bookings", body)
    }))
    .await;
    assert!(made.iter().all(|(status, _)| *status == 201), "every distinct slot books");

    // Both nodes deliver; each event arrives exactly once.
    let seen = receiver.wait_for("100 booking.created deliveries", |seen| seen.len() >= 100).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await; // room for a duplicate to show
    let seen = if receiver.seen().len() > seen.len() { receiver.seen() } else { seen };
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (id, body) in &seen {
        assert_eq!(body["type"], "booking.created");
        *ids.entry(id.as_str()).or_default() += 1;
    }
    assert_eq!(ids.len(), 100, "one event per booking");
    assert!(ids.values().all(|n| *n == 1), "an event was delivered twice: {ids:?}");
    a.kill();
    b.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_a_node_is_killed_mid_delivery_the_other_finishes_its_work() {
    let Some((db, key)) = database().await else { return };
    let receiver = Recorder::default();
    receiver.hang.store(true, Ordering::SeqCst);
    let url = receiver.clone().start().await;
    let client = reqwest::Client::new();

    // Node A alone: its attempt of the ping hangs in flight.
    let a = Node::start(&db);
    let (_, hook) = post(&client, &a.base, &key, "/v1/webhooks", json!({"url": url, "events": ["*"]})).await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let (_, ping) = post(&client, &a.base, &key, &format!("/v1/webhooks/{hook_id}/test"), json!({})).await;
    let ping_event = ping["event_id"].as_str().unwrap().to_string();
    receiver.wait_for("the ping, held by node A", |seen| seen.len() == 1).await;

    // Node B joins; A dies holding the claim.
    let b = Node::start(&db);
    a.kill();
    receiver.hang.store(false, Ordering::SeqCst);

    // B takes over: the ping once A's claim lapses, and new work as it comes.
    let (status, _) = post(
        &client,
        &b.base,
        &key,
        "/v1/users",
        json!({"email": "host@example.com", "timezone": "UTC", "working_hours": all_week()}),
    )
    .await;
    assert_eq!(status, 201);
    let (start, end) = slot(3);
    let (status, booking) = post(
        &client,
        &b.base,
        &key,
        "/v1/bookings",
        json!({"participants": ["user:host@example.com"], "start": start, "end": end, "title": "after"}),
    )
    .await;
    assert_eq!(status, 201);
    receiver
        .wait_for("node B to retry the ping and deliver the booking", |seen| {
            seen.iter().filter(|(id, _)| *id == ping_event).count() == 2
                && seen.iter().any(|(_, body)| body["data"]["booking"]["id"] == booking["id"])
        })
        .await;
    b.kill();
}
