//! Webhook delivery benchmark (issue 4): the real server (in-process, SQLite, the real worker)
//! and a local receiver on one machine. Bookings are made over HTTP; each one's
//! `booking.created` event goes to one subscription. Two runs:
//!   1. paced at a steady rate (default 1,000 events/s): the lag from commit to first attempt,
//!      p50 / p99 / max;
//!   2. a burst, bookings as fast as 16 connections make them: sustained deliveries per second.
//!
//! Prints the figures; exits non-zero when an event is missing or, in a full run, when a
//! target is missed (p99 lag under 1 s at 1,000 events/s; at least 1,000 deliveries/s).
//! `--short` (what CI runs) takes 3 s per phase and only reports.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use jiff::{SignedDuration, Timestamp};
use kairos::Config;
use kairos_store::{Clock, Mode, keys};
use serde_json::{Value, json};

/// What the receiver saw: for each request, the event id and the lag from the event's
/// `created_at` (taken inside the committing transaction) to the arrival.
#[derive(Default)]
struct Seen {
    events: Mutex<Vec<(String, f64, Instant)>>,
}

async fn receiver(seen: Arc<Seen>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let seen = seen.clone();
            async move {
                let arrived = Timestamp::now();
                let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let created: Timestamp = event["created_at"].as_str().and_then(|t| t.parse().ok()).unwrap_or(arrived);
                let lag = arrived.duration_since(created).as_secs_f64();
                let id = event["id"].as_str().unwrap_or_default().to_string();
                seen.events.lock().unwrap().push((id, lag, Instant::now()));
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
    next_slot: AtomicU64,
}

impl Api {
    /// One booking on its own hour: one `booking.created` event.
    async fn book(&self) -> bool {
        let n = self.next_slot.fetch_add(1, Ordering::Relaxed);
        let start = Timestamp::from_second(2_051_222_400 + i64::try_from(n).unwrap() * 3600).unwrap();
        let end = start + SignedDuration::from_mins(30);
        let body = json!({"participants": ["user:host@example.com"], "start": start.to_string(), "end": end.to_string(), "title": "bench"});
        match self.client.post(format!("{}/v1/bookings", self.base)).bearer_auth(&self.key).json(&body).send().await {
            Ok(r) => r.status().as_u16() == 201,
            Err(_) => false,
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Waits until `expected` events have arrived (or 30 s pass); returns them.
async fn wait_for(seen: &Seen, expected: usize) -> Vec<(String, f64, Instant)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = seen.events.lock().unwrap().len();
        if n >= expected || Instant::now() > deadline {
            return std::mem::take(&mut *seen.events.lock().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn check_complete(phase: &str, made: usize, got: &[(String, f64, Instant)]) {
    let distinct: std::collections::HashSet<&str> = got.iter().map(|(id, _, _)| id.as_str()).collect();
    if distinct.len() != made {
        eprintln!("FAIL: {phase}: {made} events made, {} distinct delivered", distinct.len());
        std::process::exit(1);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let short = std::env::args().any(|a| a == "--short");
    let phase = Duration::from_secs(if short { 3 } else { 10 });
    let rate: u32 = std::env::var("RATE").ok().and_then(|r| r.parse().ok()).unwrap_or(1000);

    let dir = tempfile::tempdir()?;
    let mut config = Config::new(format!("sqlite://{}", dir.path().join("bench.db").display()), "127.0.0.1:0");
    config.webhooks.allow_private = true;
    let store = kairos::open_store(&config).await?;
    let (key, hashed) = keys::generate(Mode::Test);
    store.create_api_key("bench", Mode::Test, &hashed, Timestamp::now()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let (store, config) = (store.clone(), config.clone());
        async move {
            kairos::serve(store, Clock::system(), listener, &config, async move {
                let _ = stopped.await;
            })
            .await
        }
    });

    let seen = Arc::new(Seen::default());
    let url = receiver(seen.clone()).await;
    let api = Arc::new(Api { client: reqwest::Client::new(), base, key, next_slot: AtomicU64::new(0) });
    let always = json!([{"start": "00:00", "end": "24:00"}]);
    let hours = json!({"monday": always, "tuesday": always, "wednesday": always, "thursday": always,
        "friday": always, "saturday": always, "sunday": always});
    let post = |path: &str, body: Value| {
        api.client.post(format!("{}{path}", api.base)).bearer_auth(&api.key).json(&body).send()
    };
    assert_eq!(
        post("/v1/users", json!({"email": "host@example.com", "timezone": "UTC", "working_hours": hours}))
            .await?
            .status(),
        201
    );
    assert_eq!(post("/v1/webhooks", json!({"url": url, "events": ["booking.created"]})).await?.status(), 201);
    println!("webhook delivery: server, worker and receiver in one process on this machine (SQLite)");

    // 1. Paced: `rate` bookings per second.
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let made = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    while started.elapsed() < phase {
        tick.tick().await;
        let (api, made) = (api.clone(), made.clone());
        tasks.spawn(async move {
            if api.book().await {
                made.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let offered = made.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let got = wait_for(&seen, made.load(Ordering::Relaxed) as usize).await;
    check_complete("paced", made.load(Ordering::Relaxed) as usize, &got);
    let mut lags: Vec<f64> = got.iter().map(|(_, lag, _)| *lag).collect();
    lags.sort_by(f64::total_cmp);
    let paced_p99 = percentile(&lags, 99.0);
    println!(
        "paced    {offered:8.0} events/s offered   commit → first attempt: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} events)",
        percentile(&lags, 50.0) * 1e3,
        percentile(&lags, 99.0) * 1e3,
        percentile(&lags, 100.0) * 1e3,
        lags.len()
    );

    // 2. Burst: as fast as 16 connections book; deliveries per second while they arrive.
    let made = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    for _ in 0..16 {
        let (api, made) = (api.clone(), made.clone());
        tasks.spawn(async move {
            while started.elapsed() < phase {
                if api.book().await {
                    made.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let booked = made.load(Ordering::Relaxed) as usize;
    let got = wait_for(&seen, booked).await;
    check_complete("burst", booked, &got);
    let first = got.iter().map(|(_, _, at)| *at).min().unwrap();
    let last = got.iter().map(|(_, _, at)| *at).max().unwrap();
    let delivered_rate = got.len() as f64 / last.duration_since(first).as_secs_f64().max(1e-3);
    let mut lags: Vec<f64> = got.iter().map(|(_, lag, _)| *lag).collect();
    lags.sort_by(f64::total_cmp);
    println!(
        "burst    {:8.0} events/s booked    {delivered_rate:8.0} events/s delivered   lag p99 {:.0} ms  ({booked} events)",
        booked as f64 / phase.as_secs_f64(),
        percentile(&lags, 99.0) * 1e3,
    );

    let _ = stop.send(());
    server.await??;
    if !short && (paced_p99 >= 1.0 || delivered_rate < 1000.0) {
        eprintln!("FAIL: targets are p99 < 1 s at {rate} events/s and >= 1,000 deliveries/s");
        std::process::exit(1);
    }
    Ok(())
}
