//! The booking write path without HTTP: `N` bookings (default 20,000), 16 at a time, straight
//! through `Store::create_booking` on the configured database (a fresh temporary SQLite file
//! when `KAIROS_DATABASE_URL` is unset). Prints bookings per second: the store's share of
//! `bench/http.sh`'s booking figure, measurable on its own.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use kairos::Config;
use kairos_core::availability::Mode as SearchMode;
use kairos_core::schedule::{DateOverrides, Schedule, WorkingHours};
use kairos_core::{Business, Interval, User, Zone};
use kairos_store::{Mode, NewBooking, Tenant, Who, ids, keys};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(20_000);
    let dir = tempfile::tempdir()?;
    if std::env::var("KAIROS_DATABASE_URL").is_err() {
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        return run(Config::new(url, "127.0.0.1:0"), n).await;
    }
    run(Config::from_env()?, n).await
}

async fn run(config: Config, n: usize) -> anyhow::Result<()> {
    let store = kairos::open_store(&config).await?;
    let now = Timestamp::now();
    let (_, hashed) = keys::generate(Mode::Test);
    let account = store.create_api_key("bench", Mode::Test, &hashed, now).await?;
    let t = Tenant { account_id: account.id, mode: Mode::Test };
    let host = User {
        id: ids::new_id("usr"),
        email: "free@bench.example".into(),
        name: None,
        schedule: Schedule::new(Zone::utc(), WorkingHours::always(), DateOverrides::default()),
        created_at: now,
        updated_at: now,
    };
    store.insert_user(&t, &host).await?;
    let business = Business {
        id: ids::new_id("biz"),
        name: "Open".into(),
        schedule: Schedule::new(Zone::utc(), WorkingHours::always(), DateOverrides::default()),
        buffer_before_minutes: 5,
        buffer_after_minutes: 5,
        minimum_notice_minutes: 0,
        max_bookings_per_day: None,
        slot_step_minutes: None,
        price_amount: None,
        price_currency: None,
        hosts: vec![host.id.clone()],
        created_at: now,
        updated_at: now,
    };
    store.insert_business(&t, &business).await?;
    let origin: Timestamp = "2035-01-01T00:00:00Z".parse()?;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (store, t, next, business_id) = (store.clone(), t.clone(), next.clone(), business.id.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    let start = origin + SignedDuration::from_hours(i as i64);
                    let new = NewBooking {
                        who: Who { business_id: Some(business_id.clone()), ..Who::default() },
                        mode: SearchMode::Collective,
                        interval: Interval::new(start, start + SignedDuration::from_mins(30)).unwrap(),
                        customer_name: Some("Customer".into()),
                        customer_email: Some("c@example.com".into()),
                        customer_timezone: None,
                        title: None,
                        notes: None,
                        description: None,
                        metadata: Default::default(),
                        payment_holds: false,
                    };
                    store.create_booking(&t, &new, Timestamp::now()).await.unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.await?;
    }
    let elapsed = started.elapsed();
    println!("{n} bookings in {:.2} s: {:.0} bookings/s", elapsed.as_secs_f64(), n as f64 / elapsed.as_secs_f64());
    store.close().await;
    Ok(())
}
