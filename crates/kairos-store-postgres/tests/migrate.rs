//! Nodes starting together: every one migrates (under sqlx's advisory lock) and opens the same
//! schema; nobody fails on a half-made table.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: failing loudly is the point

use futures::future::join_all;
use kairos_store::Store;
use kairos_store_postgres::testing::FreshDatabase;
use kairos_store_postgres::{PgOptions, PgStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_opening_one_empty_database_at_once_all_migrate_it_once() {
    let Some(db) = FreshDatabase::create().await else { return };
    let opened = join_all((0..6).map(|_| async {
        let mut options = PgOptions::new(db.url());
        options.max_connections = 3;
        PgStore::open(&options).await
    }))
    .await;
    let stores: Vec<PgStore> = opened.into_iter().map(|s| s.expect("every node opens the database")).collect();
    for store in &stores {
        store.ping().await.unwrap();
    }
    let (applied,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM _sqlx_migrations").fetch_one(stores[0].pool()).await.unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).unwrap().count() as i64;
    assert_eq!(applied, files, "each migration applied exactly once");
    for store in stores {
        store.close().await;
    }
}
