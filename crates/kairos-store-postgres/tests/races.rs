//! Writes that race on shared rows: a disconnect against a sync being recorded, and deleting
//! a user against edits that lock their rows in the other order. The contract suite runs one
//! write at a time; these check the lock order that only concurrent writes can break (a
//! wrong order shows as leftover busy time or as PostgreSQL's deadlock error, 40P01).
//!
//! Needs a PostgreSQL server, like the contract suite (skipped loudly without one).

#![allow(clippy::unwrap_used)] // test helpers: failing loudly is the point

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kairos_core::schedule::{DateOverrides, Schedule, WorkingHours};
use kairos_core::{Business, Interval, User, Zone};
use kairos_store::{
    CalendarConnection, CalendarRecord, Mode, Store, StoreError, SyncOutcome, SyncRecord, Tenant, ids, keys,
};
use kairos_store_postgres::PgStore;
use kairos_store_postgres::testing::FreshDatabase;

/// Rounds of each race: enough that a wrong lock order deadlocks in practice.
const ROUNDS: usize = 25;

fn now() -> Timestamp {
    "2030-01-01T08:00:00Z".parse().unwrap()
}

fn meeting() -> Interval {
    Interval::new("2030-01-02T10:00:00Z".parse().unwrap(), "2030-01-02T11:00:00Z".parse().unwrap()).unwrap()
}

async fn tenant(store: &PgStore) -> Tenant {
    let (_, hashed) = keys::generate(Mode::Test);
    let acct = store.create_api_key("acme", Mode::Test, &hashed, now()).await.unwrap();
    Tenant { account_id: acct.id, mode: Mode::Test }
}

async fn new_user(store: &PgStore, t: &Tenant) -> User {
    let id = ids::new_id("usr");
    let user = User {
        email: format!("{}@example.com", id.to_lowercase()),
        id,
        name: None,
        schedule: Schedule::new(Zone::utc(), WorkingHours::always(), DateOverrides::default()),
        created_at: now(),
        updated_at: now(),
    };
    store.insert_user(t, &user).await.unwrap();
    user
}

/// An ICS connection of `user` with one selected calendar holding no busy time yet.
async fn new_feed(store: &PgStore, t: &Tenant, user: &User) -> (CalendarConnection, CalendarRecord) {
    let conn = CalendarConnection {
        id: ids::new_id("conn"),
        user_id: user.id.clone(),
        provider: "ics".into(),
        url: format!("https://example.com/{}.ics", user.id),
        status: "active".into(),
        etag: None,
        last_modified: None,
        last_sync: None,
        last_error: None,
        next_sync_at: now(),
        created_at: now(),
        updated_at: now(),
    };
    let cal = CalendarRecord {
        id: ids::new_id("cal"),
        connection_id: conn.id.clone(),
        user_id: user.id.clone(),
        name: "Work".into(),
        provider: "ics".into(),
        primary: false,
        selected: true,
        event_count: 0,
        created_at: now(),
        updated_at: now(),
        remote_id: None,
        cursor: None,
        writable: false,
    };
    store.insert_calendar_connection(t, &conn, &cal, "BEGIN:VCALENDAR", &[]).await.unwrap();
    (conn, cal)
}

fn changed(conn: &CalendarConnection) -> SyncRecord {
    SyncRecord {
        connection_id: conn.id.clone(),
        at: now(),
        next_sync_at: now() + SignedDuration::from_mins(15),
        outcome: SyncOutcome::Changed {
            source: "BEGIN:VCALENDAR".into(),
            name: None,
            etag: None,
            last_modified: None,
            events: 1,
            busy: vec![meeting()],
        },
    }
}

async fn busy_rows(store: &PgStore, user: &User) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM busy_blocks WHERE user_id = $1")
        .bind(&user.id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disconnect_waits_for_a_sync_being_recorded_and_leaves_no_busy_time() {
    let Some(db) = FreshDatabase::create().await else { return };
    let store = db.store().await;
    let t = tenant(&store).await;
    let alice = new_user(&store, &t).await;
    let (conn, cal) = new_feed(&store, &t, &alice).await;

    // A sync is recording: it holds the connection, as `record_calendar_sync` does…
    let mut sync = store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM calendar_connections WHERE id = $1 FOR UPDATE")
        .bind(&conn.id)
        .execute(&mut *sync)
        .await
        .unwrap();
    // …when the user disconnects.
    let disconnect = tokio::spawn({
        let (store, t, user) = (store.clone(), t.clone(), alice.id.clone());
        async move { store.delete_calendar_connections(&t, Some(&user), "ics", now()).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!disconnect.is_finished(), "the disconnect waits for the sync's transaction");
    // The sync writes its busy time and commits.
    sqlx::query(
        "INSERT INTO busy_blocks (account_id, mode, user_id, source, start_at, end_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&alice.id)
    .bind(&cal.id)
    .bind(meeting().start().as_millisecond())
    .bind(meeting().end().as_millisecond())
    .execute(&mut *sync)
    .await
    .unwrap();
    sync.commit().await.unwrap();

    assert_eq!(disconnect.await.unwrap().unwrap(), 1, "the connection went");
    assert_eq!(busy_rows(&store, &alice).await, 0, "and took the busy time the sync had just written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_disconnects_at_once_remove_a_connection_once() {
    let Some(db) = FreshDatabase::create().await else { return };
    let (a, b) = (db.store().await, db.store().await);
    let t = tenant(&a).await;
    for _ in 0..ROUNDS {
        let alice = new_user(&a, &t).await;
        new_feed(&a, &t, &alice).await;
        let (left, right) = tokio::join!(
            a.delete_calendar_connections(&t, Some(&alice.id), "ics", now()),
            b.delete_calendar_connections(&t, None, "ics", now()),
        );
        assert_eq!(left.unwrap() + right.unwrap(), 1, "one of the two deleted it; neither failed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_user_while_their_sync_is_recorded_never_deadlocks() {
    let Some(db) = FreshDatabase::create().await else { return };
    let (a, b) = (db.store().await, db.store().await);
    let t = tenant(&a).await;
    for _ in 0..ROUNDS {
        let alice = new_user(&a, &t).await;
        let (conn, _) = new_feed(&a, &t, &alice).await;
        let record = changed(&conn);
        let (synced, deleted) = tokio::join!(a.record_calendar_sync(&t, &record), b.delete_user(&t, &alice.id));
        synced.unwrap();
        assert!(deleted.unwrap());
        assert_eq!(busy_rows(&a, &alice).await, 0, "nothing of a deleted user's is left");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_host_while_their_business_is_edited_never_deadlocks() {
    let Some(db) = FreshDatabase::create().await else { return };
    let (a, b) = (db.store().await, db.store().await);
    let t = tenant(&a).await;
    for _ in 0..ROUNDS {
        let (alice, bob) = (new_user(&a, &t).await, new_user(&a, &t).await);
        let biz = Business {
            id: ids::new_id("biz"),
            name: "Clinic".into(),
            schedule: Schedule::new(Zone::utc(), WorkingHours::always(), DateOverrides::default()),
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            minimum_notice_minutes: 0,
            max_bookings_per_day: None,
            slot_step_minutes: None,
            price_amount: None,
            price_currency: None,
            hosts: vec![alice.id.clone(), bob.id.clone()],
            created_at: now(),
            updated_at: now(),
        };
        a.insert_business(&t, &biz).await.unwrap();
        let reordered = vec![bob.id.clone(), alice.id.clone()];
        let (edited, deleted) = tokio::join!(
            a.update_business(
                &t,
                &biz.id,
                Box::new(move |b| {
                    b.hosts = reordered;
                    Ok(())
                })
            ),
            b.delete_user(&t, &alice.id),
        );
        assert!(deleted.unwrap());
        match edited {
            // Either the edit went first (and the delete then took alice off)…
            Ok(_) => {}
            // …or it found alice gone: a host that is no user is refused, as always.
            Err(StoreError::Invalid { ref param, .. }) if param == "hosts" => {}
            Err(other) => panic!("the edit failed with {other:?}, not a clean outcome"),
        }
        let hosts = a.business(&t, &biz.id).await.unwrap().unwrap().hosts;
        assert!(!hosts.contains(&alice.id), "a deleted user hosts nothing: {hosts:?}");
    }
}
