//! The pool as configured (`KAIROS_DATABASE_MAX_CONNECTIONS`,
//! `KAIROS_DATABASE_STATEMENT_TIMEOUT`): its size, and the session timeouts every pooled
//! connection carries — `statement_timeout`, and `lock_timeout` equal to it — so a statement
//! or a lock wait behind a stuck transaction fails instead of waiting for ever.
//!
//! Needs a PostgreSQL server, like the contract suite (skipped loudly without one).

#![allow(clippy::unwrap_used)] // test code: failing loudly is the point

use std::time::{Duration, Instant};

use kairos_store::Store;
use kairos_store_postgres::testing::FreshDatabase;
use kairos_store_postgres::{PgOptions, PgStore};
use sqlx::Connection;

async fn open(db: &FreshDatabase, max_connections: u32, statement_timeout: Duration) -> PgStore {
    let mut options = PgOptions::new(db.url());
    options.max_connections = max_connections;
    options.statement_timeout = statement_timeout;
    options.acquire_timeout = Duration::from_secs(1);
    PgStore::open(&options).await.unwrap()
}

async fn show(conn: &mut sqlx::PgConnection, setting: &str) -> String {
    let (value,): (String,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SHOW {setting}"))).fetch_one(&mut *conn).await.unwrap();
    value
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_has_the_configured_size_and_every_connection_its_timeouts() {
    let Some(db) = FreshDatabase::create().await else { return };
    let store = open(&db, 3, Duration::from_millis(1500)).await;
    let pool = store.pool();
    assert_eq!(pool.options().get_max_connections(), 3);

    // Every connection the pool hands out carries both timeouts (not just the first one), and
    // there are three at most. The node's LISTEN connection is one of the three (taken at
    // start, perhaps after this test's first acquire): requests and workers share the rest.
    let mut held = Vec::new();
    loop {
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(sqlx::Error::PoolTimedOut) => break,
            Err(e) => panic!("acquiring a connection: {e}"),
        };
        assert_eq!(show(&mut conn, "statement_timeout").await, "1500ms");
        assert_eq!(show(&mut conn, "lock_timeout").await, "1500ms", "lock_timeout is the statement timeout");
        held.push(conn);
        assert!(held.len() <= 3, "more connections than configured");
    }
    assert!(held.len() >= 2, "only {} connections", held.len());
    assert_eq!(pool.size(), 3, "the pool grew to its configured size and no further");
    drop(held);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_statement_and_a_stuck_lock_wait_fail_after_the_statement_timeout() {
    let Some(db) = FreshDatabase::create().await else { return };
    let store = open(&db, 4, Duration::from_millis(500)).await;
    let pool = store.pool();

    let started = Instant::now();
    let slept = sqlx::query("SELECT pg_sleep(5)").execute(pool).await.unwrap_err();
    assert_eq!(sqlstate(&slept).as_deref(), Some("57014"), "cancelled by statement_timeout: {slept}");
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());

    // A transaction holds a lock and stalls; a writer that needs the lock gives up.
    let mut stuck = pool.acquire().await.unwrap();
    let mut tx = stuck.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(4242)").execute(&mut *tx).await.unwrap();
    let started = Instant::now();
    let waited = sqlx::query("SELECT pg_advisory_xact_lock(4242)").execute(pool).await.unwrap_err();
    let code = sqlstate(&waited);
    assert!(
        matches!(code.as_deref(), Some("57014" | "55P03")),
        "a lock wait ends by statement_timeout or lock_timeout: {waited}"
    );
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
    tx.rollback().await.unwrap();
    drop(stuck);
    store.ping().await.unwrap();
    store.close().await;
}
