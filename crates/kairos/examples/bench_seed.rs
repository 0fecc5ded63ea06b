//! Seeds a database for `bench/http.sh` through the Store trait: an API key, a business with
//! 10 hosts who each have 500 busy blocks over the next 14 days (from the coming Monday), and
//! an open business with one free host for booking runs, and sixteen more of those (bookings
//! spread over many people). Prints shell assignments.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use jiff::{SignedDuration, Timestamp, ToSpan};
use kairos::Config;
use kairos_core::schedule::{DateOverrides, Schedule, WorkingHours};
use kairos_core::{Business, Interval, User, Zone};
use kairos_store::{Mode, NewBusyBlock, Tenant, ids, keys};

const ZONES: [&str; 5] = ["America/New_York", "Europe/Berlin", "Europe/London", "America/Toronto", "Europe/Lisbon"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let store = kairos::open_store(&config).await?;
    let now = Timestamp::now();
    let (key, hashed) = keys::generate(Mode::Test);
    let account = store.create_api_key("bench", Mode::Test, &hashed, now).await?;
    let t = Tenant { account_id: account.id, mode: Mode::Test };
    let hours: WorkingHours = serde_json::from_str(
        r#"{"monday":[{"start":"07:00","end":"20:00"}],"tuesday":[{"start":"07:00","end":"20:00"}],
            "wednesday":[{"start":"07:00","end":"20:00"}],"thursday":[{"start":"07:00","end":"20:00"}],
            "friday":[{"start":"07:00","end":"20:00"}],"saturday":[{"start":"10:00","end":"14:00"}]}"#,
    )?;
    // The Monday after tomorrow, 00:00 UTC.
    let mut day = now.to_zoned(jiff::tz::TimeZone::UTC).date().checked_add(1.day())?;
    while day.weekday() != jiff::civil::Weekday::Monday {
        day = day.checked_add(1.day())?;
    }
    let origin = day.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp();
    let user = |email: String, zone: &str, hours: WorkingHours| User {
        id: ids::new_id("usr"),
        email,
        name: None,
        schedule: Schedule::new(Zone::parse(zone).unwrap(), hours, DateOverrides::default()),
        created_at: now,
        updated_at: now,
    };
    let business = |name: &str, hosts: Vec<String>| Business {
        id: ids::new_id("biz"),
        name: name.to_string(),
        schedule: Schedule::new(Zone::utc(), WorkingHours::always(), DateOverrides::default()),
        buffer_before_minutes: 5,
        buffer_after_minutes: 5,
        minimum_notice_minutes: 0,
        max_bookings_per_day: None,
        slot_step_minutes: None,
        price_amount: None,
        price_currency: None,
        hosts,
        created_at: now,
        updated_at: now,
    };
    let mut hosts = Vec::new();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..10 {
        let u = user(format!("host{i}@bench.example"), ZONES[i % ZONES.len()], hours.clone());
        store.insert_user(&t, &u).await?;
        // The engine benchmark's pattern: quarter hours from the same 40% of positions.
        let blocks: Vec<NewBusyBlock> = (0..500)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let quarter = (seed % (14 * 24 * 4)) as i64;
                let quarter = quarter - quarter % 12 + (quarter % 12) % 4;
                let start = origin + SignedDuration::from_mins(quarter * 15);
                let len = SignedDuration::from_mins(15 * (1 + (seed >> 32) % 2) as i64);
                NewBusyBlock { interval: Interval::starting_at(start, len).unwrap(), source: "bench".into() }
            })
            .collect();
        store.add_busy_blocks(&t, &u.id, &blocks).await?;
        hosts.push(u.id);
    }
    let slots_business = business("Ten hosts", hosts);
    store.insert_business(&t, &slots_business).await?;
    let free = user("free@bench.example".into(), "UTC", WorkingHours::always());
    store.insert_user(&t, &free).await?;
    let booking_business = business("Open", vec![free.id]);
    store.insert_business(&t, &booking_business).await?;
    // Sixteen more, a free host each: bookings spread over people who do not share a lock
    // (bench/multinode.sh), as bookings of many hosts do in real use.
    let mut spread = Vec::new();
    for i in 0..16 {
        let host = user(format!("spread{i}@bench.example"), "UTC", WorkingHours::always());
        store.insert_user(&t, &host).await?;
        let b = business(&format!("Open {i}"), vec![host.id]);
        store.insert_business(&t, &b).await?;
        spread.push(b.id);
    }
    println!("KEY={key}");
    println!("BOOKING_BUSINESSES={}", spread.join(","));
    println!("SLOTS_BUSINESS={}", slots_business.id);
    println!("BOOKING_BUSINESS={}", booking_business.id);
    println!("FROM={origin}");
    println!("TO={}", origin + SignedDuration::from_hours(14 * 24));
    Ok(())
}
