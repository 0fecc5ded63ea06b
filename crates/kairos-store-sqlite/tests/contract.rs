//! The Store contract suite on SQLite: each case gets a fresh database file.

#![allow(clippy::expect_used)] // test setup: failing loudly is the point

use std::sync::Arc;

use kairos_store::Store;
use kairos_store_sqlite::{SqliteOptions, SqliteStore};

async fn fresh() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store =
        SqliteStore::open(&SqliteOptions::new(dir.path().join("kairos.db"))).await.expect("open a fresh SQLite store");
    (Arc::new(store), dir)
}

kairos_store::store_contract_tests!(fresh());
