//! Many nodes as one system: two `kairos serve` processes on one PostgreSQL database; and,
//! for the background work whose races need a precise order of steps, two nodes in this
//! process (each its own store and pool on one database, its own syncer).
//!
//! Skipped (loudly) without a PostgreSQL server, unless `KAIROS_REQUIRE_PEERS=1`, where a
//! missing server fails the run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::join_all;
use jiff::{SignedDuration, Timestamp};
use kairos::config::GoogleConfig;
use kairos_core::schedule::{DateOverrides, Schedule, WorkingHours};
use kairos_core::{User, Zone};
use kairos_emulators::google::GoogleEmulator;
use kairos_jobs::calendar_sync::{SyncConfig, Syncer};
use kairos_jobs::lease::Lease;
use kairos_jobs::provider_sync::{OAuthProvider, ProviderSync, Providers, Secret};
use kairos_providers::google::Google;
use kairos_providers::oauth::OAuthApp;
use kairos_providers::sealed::Keyring;
use kairos_store::{CalendarConnection, CalendarRecord, Clock, Mode, PushChannel, Store, Tenant, ids, keys};
use kairos_store_postgres::testing::FreshDatabase;
use serde_json::{Value, json};

use crate::crash::Recorder;
use crate::support::eventually;

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

/// The webhook deliveries a node completed, from its `/metrics`.
async fn delivered_by(client: &reqwest::Client, base: &str) -> u64 {
    let text = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("kairos_webhook_deliveries_total{status=\"succeeded\"} "))
        .map_or(0, |n| n.trim().parse().unwrap())
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
    // And the work was shared: each node counts the deliveries it made (`/metrics` is per
    // process).
    let (by_a, by_b) = (delivered_by(&client, &bases[0]).await, delivered_by(&client, &bases[1]).await);
    assert_eq!(by_a + by_b, 100, "every delivery counted once, by the node that made it");
    assert!(by_a > 0 && by_b > 0, "both nodes delivered: {by_a} and {by_b}");
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

// Background work, node by node: each node here is its own store (its own pool) on the one
// database, driven step by step so that a race's losing order happens every time.

/// A node's store.
async fn node_store(db: &FreshDatabase) -> Arc<dyn Store> {
    Arc::new(db.store().await)
}

async fn tenant_and_user(store: &Arc<dyn Store>) -> (Tenant, User) {
    let (_, hashed) = keys::generate(Mode::Test);
    let account = store.create_api_key("acme", Mode::Test, &hashed, Timestamp::now()).await.unwrap();
    let t = Tenant { account_id: account.id, mode: Mode::Test };
    let user = User {
        id: ids::new_id("usr"),
        email: "alice@example.com".into(),
        name: None,
        schedule: Schedule::new(Zone::utc(), WorkingHours::always(), DateOverrides::default()),
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
    };
    store.insert_user(&t, &user).await.unwrap();
    (t, user)
}

fn connection(user: &User, provider: &str, url: &str, due: Timestamp) -> CalendarConnection {
    CalendarConnection {
        id: ids::new_id("conn"),
        user_id: user.id.clone(),
        provider: provider.into(),
        url: url.into(),
        status: "active".into(),
        etag: None,
        last_modified: None,
        last_sync: None,
        last_error: None,
        next_sync_at: due,
        created_at: due,
        updated_at: due,
    }
}

fn calendar(conn: &CalendarConnection, remote_id: Option<String>) -> CalendarRecord {
    CalendarRecord {
        id: ids::new_id("cal"),
        connection_id: conn.id.clone(),
        user_id: conn.user_id.clone(),
        name: "Work".into(),
        provider: conn.provider.clone(),
        primary: true,
        selected: true,
        event_count: 0,
        remote_id,
        cursor: None,
        writable: false,
        created_at: conn.created_at,
        updated_at: conn.created_at,
    }
}

/// A feed connection of `user`, due now.
async fn due_feed(store: &Arc<dyn Store>, t: &Tenant, user: &User, url: &str) -> CalendarConnection {
    let conn = connection(user, "ics", url, Timestamp::now() - SignedDuration::from_secs(1));
    store.insert_calendar_connection(t, &conn, &calendar(&conn, None), "", &[]).await.unwrap();
    conn
}

fn sync_config() -> SyncConfig {
    SyncConfig { every: Duration::from_secs(15 * 60), allow_private: true, tentative_is_busy: true }
}

fn keyring() -> Arc<Keyring> {
    Arc::new(Keyring::parse(&Keyring::generate_secret()).unwrap())
}

/// Feeds served locally (`/feed/{n}.ics`), each request held `delay`; counts requests, and
/// the most in flight at once.
#[derive(Clone, Default)]
struct Feeds {
    requests: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
}

impl Feeds {
    async fn start(delay: Duration) -> (Self, String) {
        let feeds = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let f = feeds.clone();
        let app = axum::Router::new().route(
            "/feed/{n}",
            axum::routing::get(move || {
                let f = f.clone();
                async move {
                    f.requests.fetch_add(1, Ordering::SeqCst);
                    let now = f.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    f.most_in_flight.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    f.in_flight.fetch_sub(1, Ordering::SeqCst);
                    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (feeds, base)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_synced_by_one_node_is_not_synced_again_from_another_nodes_older_due_list() {
    let Some(db) = FreshDatabase::create().await else { return };
    let (a, b) = (node_store(&db).await, node_store(&db).await);
    let (t, alice) = tenant_and_user(&a).await;
    let (feeds, base) = Feeds::start(Duration::ZERO).await;
    let conn = due_feed(&a, &t, &alice, &format!("{base}/feed/0.ics")).await;
    let node_a = Syncer::standard(a.clone(), Clock::system(), sync_config(), Providers::caldav_only(keyring()));
    let node_b = Syncer::standard(b.clone(), Clock::system(), sync_config(), Providers::caldav_only(keyring()));

    // Both nodes read the due list at the same moment.
    let now = Timestamp::now();
    let (due_a, due_b) = (a.due_calendar_syncs(now, 16).await.unwrap(), b.due_calendar_syncs(now, 16).await.unwrap());
    assert_eq!((due_a.len(), due_b.len()), (1, 1));
    // A syncs it, and gives its lease back…
    assert_eq!(node_a.sync_due(due_a).await, 1);
    let key = kairos_jobs::calendar_sync::sync_lease_key(&conn.id);
    eventually("node A's lease is given back", || async {
        let now = Timestamp::now();
        let free = b.try_lease(&key, "probe", now + SignedDuration::from_mins(1), now).await.unwrap();
        if free {
            b.release_lease(&key, "probe").await.unwrap();
        }
        free
    })
    .await;
    // …before B gets to the connection on its list: the lease is free, but the connection is
    // no longer due.
    assert_eq!(node_b.sync_due(due_b).await, 0, "node B synced a connection node A had just synced");
    assert_eq!(feeds.requests.load(Ordering::SeqCst), 1, "one fetch of the feed");

    // A sync asked for (the API's) syncs whether due or not.
    node_b.sync(&t, &conn).await.unwrap();
    assert_eq!(feeds.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn due_connections_sync_a_few_at_a_time() {
    let Some(db) = FreshDatabase::create().await else { return };
    let store = node_store(&db).await;
    let (t, alice) = tenant_and_user(&store).await;
    let (feeds, base) = Feeds::start(Duration::from_millis(400)).await;
    for n in 0..8 {
        due_feed(&store, &t, &alice, &format!("{base}/feed/{n}.ics")).await;
    }
    let node = Syncer::standard(store.clone(), Clock::system(), sync_config(), Providers::caldav_only(keyring()));
    let due = store.due_calendar_syncs(Timestamp::now(), 16).await.unwrap();
    assert_eq!(due.len(), 8);
    assert_eq!(node.sync_due(due).await, 8);
    assert_eq!(feeds.requests.load(Ordering::SeqCst), 8, "each connection once");
    let most = feeds.most_in_flight.load(Ordering::SeqCst);
    assert!((2..=4).contains(&most), "{most} syncs ran at once");
    assert!(store.due_calendar_syncs(Timestamp::now(), 16).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_is_kept_while_its_work_runs_longer_than_the_lease() {
    let Some(db) = FreshDatabase::create().await else { return };
    let (a, b) = (node_store(&db).await, node_store(&db).await);
    let ttl = SignedDuration::from_millis(600);
    let lease = Lease::try_take(&a, &Clock::system(), "sync:long".into(), ttl).await.unwrap().unwrap();
    // The work outlasts three lease lengths: the holder renewed it meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let now = Timestamp::now();
    assert!(!b.try_lease("sync:long", "node_b", now + ttl, now).await.unwrap(), "the lease lapsed under its holder");
    assert!(lease.held());
    // Done: given back at once, not left to lapse.
    drop(lease);
    eventually("the lease is given back", || async {
        let now = Timestamp::now();
        b.try_lease("sync:long", "node_b", now + ttl, now).await.unwrap()
    })
    .await;
}

/// A node's provider syncer, with Google (the emulator) and push on.
fn google_node(store: Arc<dyn Store>, emu: &GoogleEmulator, keyring: Arc<Keyring>) -> ProviderSync {
    let g = GoogleConfig::new(
        GoogleEmulator::CLIENT_ID.into(),
        GoogleEmulator::CLIENT_SECRET.into(),
        Some(&emu.base_url()),
    )
    .unwrap();
    let client = kairos_jobs::egress::client(Duration::from_secs(30), true).unwrap();
    let google = OAuthProvider {
        app: OAuthApp::google(g.client_id, g.client_secret, g.auth_url, g.token_url, g.revoke_url),
        api: Arc::new(Google::new(client.clone(), g.api_url)),
    };
    let providers = Providers {
        keyring,
        google: Some(Arc::new(google)),
        microsoft: None,
        caldav: None,
        push_base: Some(url::Url::parse("http://127.0.0.1:9/").unwrap()),
    };
    ProviderSync::new(store, Clock::system(), client, sync_config(), providers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_channel_is_renewed_by_one_node_and_never_beside_a_sync_of_its_connection() {
    let Some(db) = FreshDatabase::create().await else { return };
    let emu = GoogleEmulator::start().await.unwrap();
    let (a, b) = (node_store(&db).await, node_store(&db).await);
    let (t, alice) = tenant_and_user(&a).await;
    let keyring = keyring();
    let (node_a, node_b) =
        (google_node(a.clone(), &emu, keyring.clone()), google_node(b.clone(), &emu, keyring.clone()));

    // Alice's Google account, with a watch channel on her primary calendar.
    let now = Timestamp::now();
    let conn = connection(&alice, "google", &emu.account_email(), now + SignedDuration::from_hours(1));
    let secret = Secret::OAuth {
        access_token: emu.access_token_by_consent().await.unwrap(),
        refresh_token: None,
        expires_at: now + SignedDuration::from_hours(1),
    };
    let connected = a
        .connect_provider(
            &t,
            &conn,
            &secret.seal(&keyring, &conn.id),
            &[calendar(&conn, Some(emu.account_email()))],
            now,
        )
        .await
        .unwrap();
    assert_eq!(node_a.ensure_push(&t, &connected.connection).await.unwrap(), 1);
    let [opened] = a.push_channels(&t, &conn.id).await.unwrap().try_into().unwrap();
    assert_eq!(emu.channels().len(), 1);
    // It lapses within the day, as the store sees it: due for renewal.
    let expiring = PushChannel { expires_at: now + SignedDuration::from_hours(2), ..opened.clone() };
    a.save_push_channel(&t, &expiring).await.unwrap();

    // Node A is syncing the connection (it holds the sync lease): node B leaves the channel be.
    let key = kairos_jobs::calendar_sync::sync_lease_key(&conn.id);
    let syncing = Lease::try_take(&a, &Clock::system(), key, SignedDuration::from_mins(5)).await.unwrap().unwrap();
    assert_eq!(node_b.renew_expiring(16).await.unwrap(), 0, "renewed beside a sync of its connection");
    assert_eq!(emu.channels().len(), 1);
    assert_eq!(emu.channels()[0].id, opened.id);
    // The sync over, B renews it: a new channel replaces the old one.
    drop(syncing);
    let mut renewed = 0;
    for _ in 0..100 {
        renewed = node_b.renew_expiring(16).await.unwrap();
        if renewed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(renewed, 1);
    let open = emu.channels();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_ne!(open[0].id, opened.id);
    let stored = b.push_channels(&t, &conn.id).await.unwrap();
    assert_eq!(stored.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [open[0].id.as_str()]);

    // Node A, renewing from its older copy of the channel, finds it replaced and does nothing.
    assert!(!node_a.renew(&t, &expiring).await.unwrap());
    assert_eq!(emu.channels().len(), 1);
    assert_eq!(a.push_channels(&t, &conn.id).await.unwrap(), stored);
}
