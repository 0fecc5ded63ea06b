//! The delivery queue with several nodes: two stores (two pools, as two servers would have)
//! on one database, claiming and dispatching at the same time. The contract suite covers one
//! store; these check what only many nodes can break.
//!
//! Needs a PostgreSQL server, like the contract suite (skipped loudly without one).

#![allow(clippy::unwrap_used)] // test helpers: failing loudly is the point

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use kairos_core::webhook::{Webhook, WebhookSecret};
use kairos_store::{ClaimLimits, Mode, Store, Tenant, ids};
use kairos_store_postgres::PgStore;
use kairos_store_postgres::testing::FreshDatabase;

fn now() -> Timestamp {
    "2030-01-01T08:00:00Z".parse().unwrap()
}

/// Webhooks need no account row, so the tenant can be made up.
fn tenant() -> Tenant {
    Tenant { account_id: ids::new_id("acct"), mode: Mode::Test }
}

fn hook(url: &str) -> Webhook {
    Webhook {
        id: ids::new_id("wh"),
        url: url.into(),
        events: vec!["*".into()],
        description: None,
        enabled: true,
        created_at: now(),
        updated_at: now(),
        secret: Some(WebhookSecret::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")),
        previous_secret: None,
    }
}

/// Two nodes' stores on one fresh database.
async fn two_nodes() -> Option<(PgStore, PgStore, FreshDatabase)> {
    let db = FreshDatabase::create().await?;
    let (a, b) = (db.store().await, db.store().await);
    Some((a, b, db))
}

/// Claims until nothing is left, recording nothing (every claim stays in flight).
async fn claim_all(store: PgStore, limits: ClaimLimits) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let claimed = store.claim_deliveries(now(), &limits).await.unwrap();
        if claimed.is_empty() {
            return ids;
        }
        ids.extend(claimed.into_iter().map(|d| d.id));
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_receive_the_same_delivery() {
    let Some((a, b, _db)) = two_nodes().await else { return };
    let t = tenant();
    let hooks: Vec<Webhook> = (0..3).map(|i| hook(&format!("https://node{i}.example.com/hook"))).collect();
    for h in &hooks {
        a.insert_webhook(&t, h).await.unwrap();
        for _ in 0..30 {
            a.ping_webhook(&t, &h.id, now()).await.unwrap();
        }
    }
    let limits = ClaimLimits { max: 3, per_endpoint: 1_000, lease: SignedDuration::from_secs(60) };
    let (left, right) = tokio::join!(tokio::spawn(claim_all(a, limits)), tokio::spawn(claim_all(b, limits)));
    let (left, right) = (left.unwrap(), right.unwrap());
    eprintln!("the nodes claimed {} and {} deliveries", left.len(), right.len());
    let all: Vec<&String> = left.iter().chain(&right).collect();
    let distinct: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "no delivery went to two claimers");
    assert_eq!(all.len(), 90, "every delivery was claimed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_keep_an_endpoint_within_its_limit() {
    let Some((a, b, _db)) = two_nodes().await else { return };
    let t = tenant();
    // Two subscriptions, one endpoint: the limit is theirs together, across nodes.
    let (first, second) = (hook("https://slow.example.com/a"), hook("https://slow.example.com/b"));
    for h in [&first, &second] {
        a.insert_webhook(&t, h).await.unwrap();
        for _ in 0..10 {
            a.ping_webhook(&t, &h.id, now()).await.unwrap();
        }
    }
    let limits = ClaimLimits { max: 100, per_endpoint: 3, lease: SignedDuration::from_secs(60) };
    let claims = (0..8).map(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move { store.claim_deliveries(now(), &limits).await.unwrap().len() })
    });
    let mut total = 0;
    for claim in claims.collect::<Vec<_>>() {
        total += claim.await.unwrap();
    }
    assert_eq!(total, 3, "eight claims on two nodes took the endpoint's three places, no more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_dispatchers_fan_each_event_out_once() {
    let Some((a, b, _db)) = two_nodes().await else { return };
    let t = tenant();
    let h = hook("https://fan.example.com/hook");
    a.insert_webhook(&t, &h).await.unwrap();
    sqlx::query(
        "INSERT INTO outbox_events (id, account_id, mode, event_type, payload, created_at)
         SELECT 'evt_' || lpad(n::text, 5, '0'), $1, $2, 'booking.created', '{}', $3 FROM generate_series(1, 200) AS n",
    )
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(now().as_millisecond())
    .execute(a.pool())
    .await
    .unwrap();
    let dispatch_all = |store: PgStore| async move {
        let (mut events, mut deliveries) = (0, 0);
        loop {
            let done = store.dispatch_events(now(), 7).await.unwrap();
            if done.events == 0 {
                return (events, deliveries);
            }
            events += done.events;
            deliveries += done.deliveries;
            tokio::task::yield_now().await;
        }
    };
    let (left, right) = tokio::join!(tokio::spawn(dispatch_all(a.clone())), tokio::spawn(dispatch_all(b)));
    let (left, right) = (left.unwrap(), right.unwrap());
    assert_eq!((left.0 + right.0, left.1 + right.1), (200, 200), "each event once: {left:?} and {right:?}");
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(&h.id)
            .fetch_one(a.pool())
            .await
            .unwrap();
    assert_eq!((rows, distinct), (200, 200));
}
