//! The Store contract suite on PostgreSQL: each case gets a fresh database.
//!
//! Needs a PostgreSQL server: `KAIROS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Without one every case says so loudly and is
//! skipped — unless `KAIROS_REQUIRE_PEERS=1` (CI), where a missing server fails the run.

use std::sync::Arc;

use kairos_store::Store;
use kairos_store_postgres::testing::FreshDatabase;

async fn fresh() -> Option<(Arc<dyn Store>, FreshDatabase)> {
    let db = FreshDatabase::create().await?;
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    Some((store, db))
}

kairos_store::store_contract_tests!(optional fresh());
