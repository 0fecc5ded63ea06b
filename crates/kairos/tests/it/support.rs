//! Test support: the real server on a random port with a temporary SQLite file and a fixed,
//! movable clock, plus a small typed client.
//!
//! `KAIROS_TEST_DATABASE=postgres` runs every test on a fresh PostgreSQL database instead
//! (see `kairos_store_postgres::testing`); CI runs the suite both ways.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use jiff::Timestamp;
use kairos::Config;
use kairos_api::Clock;
use kairos_store::{Mode, Store, keys};
use kairos_store_postgres::testing::FreshDatabase;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;

/// "Now" in every test: Tuesday 2030-01-01 08:00 UTC.
pub const NOW: &str = "2030-01-01T08:00:00Z";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// A test-mode key of account `acme`.
    pub key: String,
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub db_path: std::path::PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
    _pg: Option<FreshDatabase>,
}

/// Whether this run uses PostgreSQL (`KAIROS_TEST_DATABASE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("KAIROS_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

/// The database a test server uses: a fresh PostgreSQL database on `on_postgres()` runs (a
/// missing server fails the test: the run asked for PostgreSQL), else a file in `dir`.
pub async fn test_database(dir: &std::path::Path) -> (String, Option<FreshDatabase>) {
    if on_postgres() {
        let db = FreshDatabase::create().await.expect("KAIROS_TEST_DATABASE=postgres needs a PostgreSQL server");
        return (db.url().to_string(), Some(db));
    }
    (format!("sqlite://{}", dir.join("kairos.db").display()), None)
}

/// A response: status, parsed JSON body (Null when empty or not JSON) and headers.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`TestApp::start`], with `configure` applied to the test configuration last.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_with_clock(Clock::fixed(NOW.parse().unwrap()), configure).await
    }

    /// With the system clock for the API and the background alike (for tests against peers
    /// that keep real time, such as provider emulators).
    pub async fn start_live(configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_with_clock(Clock::system(), |config| {
            config.background_clock = Clock::system();
            configure(config);
        })
        .await
    }

    async fn start_with_clock(clock: Clock, configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("kairos.db");
        let (url, pg) = test_database(dir.path()).await;
        let mut config = Config::new(url, "127.0.0.1:0");
        if pg.is_some() {
            // PostgreSQL needs a shared sealing key (no development key file).
            config.secret_key = Some("test-secret-key-of-at-least-32-characters-long".into());
        }
        config.webhooks.allow_private = true;
        config.calendars.allow_private = true;
        config.background_clock = Clock::running_from(NOW.parse().unwrap());
        config.webhooks.retry =
            kairos_core::webhook::RetrySchedule::new(vec![jiff::SignedDuration::from_millis(200); 3]).unwrap();
        config.webhooks.timeout = std::time::Duration::from_secs(1);
        configure(&mut config);
        let store = kairos::open_store(&config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn({
            let (store, clock) = (store.clone(), clock.clone());
            async move {
                kairos::serve(store, clock, listener, &config, async move {
                    let _ = rx.await;
                })
                .await
            }
        });
        let mut app = TestApp {
            base,
            client: reqwest::Client::new(),
            key: String::new(),
            store,
            clock,
            db_path,
            shutdown: Some(tx),
            server: Some(server),
            _dir: dir,
            _pg: pg,
        };
        app.key = app.new_key("acme", Mode::Test).await;
        app
    }

    /// A new key (creating the account when needed).
    pub async fn new_key(&self, account: &str, mode: Mode) -> String {
        let (key, hashed) = keys::generate(mode);
        self.store.create_api_key(account, mode, &hashed, Timestamp::now()).await.unwrap();
        key
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        Reply { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), headers }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, Some(&self.key), None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(&self.key), Some(&body.to_string()), &[]).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(&self.key), Some(&body.to_string()), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, Some(&self.key), None, &[]).await
    }

    /// Creates a user open every day, all day, in `timezone`; returns its id.
    pub async fn user(&self, email: &str, timezone: &str) -> String {
        let r = self
            .post("/v1/users", serde_json::json!({"email": email, "timezone": timezone, "working_hours": all_week()}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Creates a business with `body`; returns its id.
    pub async fn business(&self, body: Value) -> String {
        let r = self.post("/v1/businesses", body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Reads a starting `kairos serve`'s log until the line that names its address; returns the
/// base URL (`http://127.0.0.1:PORT`).
pub fn base_url_from_log(stderr: &mut impl std::io::BufRead) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "serve exited before listening");
        if let Some(at) = line.find("http://") {
            return line[at..].split_whitespace().next().unwrap().to_string();
        }
    }
}

/// Working hours open all day, every day.
pub fn all_week() -> Value {
    let day = serde_json::json!([{"start": "00:00", "end": "24:00"}]);
    serde_json::json!({"monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day, "saturday": day, "sunday": day})
}

/// Asserts an error reply: status, code and the named param.
pub fn assert_error(r: &Reply, status: u16, code: &str, param: Option<&str>) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.body);
    assert_eq!(r.body["error"]["code"], code, "body: {}", r.body);
    assert_eq!(r.body["error"]["param"].as_str(), param, "body: {}", r.body);
    assert!(r.body["error"]["message"].as_str().is_some_and(|m| m.len() > 10), "a helpful message: {}", r.body);
}

/// Waits (polling; background work) until `check` holds, for at most 15 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A client that shows redirects instead of following them (a browser's steps, one by one).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A response's `Location`.
pub fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// `hour`:00 UTC on `day`, in RFC 3339.
pub fn utc(day: jiff::civil::Date, hour: i8) -> String {
    day.at(hour, 0, 0, 0).to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp().to_string()
}
