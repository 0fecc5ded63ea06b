//! Test support: a fresh, empty database per test on a PostgreSQL server, dropped afterwards.
//!
//! The server is `KAIROS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When none answers, [`FreshDatabase::create`]
//! says so on stderr and returns `None` so the caller can skip — unless
//! `KAIROS_REQUIRE_PEERS=1` (CI), where it panics: a skipped PostgreSQL suite must never pass
//! silently.

#![allow(clippy::expect_used, clippy::panic)] // test support: failing loudly is the point

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::{PgOptions, PgStore};

/// The server tests use.
pub fn server_url() -> String {
    std::env::var("KAIROS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn required() -> bool {
    std::env::var("KAIROS_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// A database created for one test; dropped (with its connections) when this is dropped.
pub struct FreshDatabase {
    server: PgConnectOptions,
    name: String,
    url: String,
}

impl FreshDatabase {
    /// Creates an empty database, or `None` (after saying so) when no server answers.
    pub async fn create() -> Option<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let server: PgConnectOptions = server_url().parse().expect("KAIROS_TEST_POSTGRES_URL is a PostgreSQL URL");
        let mut admin = match tokio::time::timeout(Duration::from_secs(5), server.connect()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return unavailable(&e.to_string()),
            Err(_) => return unavailable("no answer in 5 s"),
        };
        let name = format!(
            "kairos_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            kairos_store::ids::new_id("db").to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "")
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE on the test server");
        let _ = admin.close().await;
        let url = with_database(&server_url(), &name);
        Some(Self { server, name, url })
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A store opened on this database (migrated).
    pub async fn store(&self) -> PgStore {
        let mut options = PgOptions::new(self.url.clone());
        options.max_connections = 8;
        PgStore::open(&options).await.expect("open the PostgreSQL store")
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Async work cannot run in Drop; a short-lived runtime on its own thread can.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async move {
                let mut admin = server.connect().await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.ok()?;
                admin.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("note: could not drop test database {}", self.name);
        }
    }
}

fn unavailable<T>(why: &str) -> Option<T> {
    if required() {
        panic!("KAIROS_REQUIRE_PEERS=1 but PostgreSQL at {} is unavailable: {why}", server_url());
    }
    static BANNER_SHOWN: AtomicBool = AtomicBool::new(false);
    let mut said = String::new();
    if !BANNER_SHOWN.swap(true, Ordering::SeqCst) {
        said.push_str(&format!(
            "\n*** SKIPPING the PostgreSQL tests: PostgreSQL at {} is unavailable ({why}).\n\
             *** They pass as \"ok\" without running. Start a server or set KAIROS_TEST_POSTGRES_URL;\n\
             *** KAIROS_REQUIRE_PEERS=1 makes this a failure.\n",
            server_url()
        ));
    }
    said.push_str(&format!("*** SKIPPED (no PostgreSQL): {}\n", skipped_test()));
    // Not `eprintln!`: the harness captures that. One write, so parallel tests' lines do not
    // interleave.
    let _ = std::io::stderr().lock().write_all(said.as_bytes());
    None
}

/// The running test's name: the harness names each test's thread after it.
fn skipped_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" && !name.starts_with("tokio-") => name.to_string(),
        _ => "a test (run on a thread not named after it)".to_string(),
    }
}

/// `url` with its database path replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
