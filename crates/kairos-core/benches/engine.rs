//! The engine's speed target: 10 participants × 500 busy intervals each, a 14-day window,
//! 30-minute slots — at most 200 µs per search on the reference 2-core machine.

// Fixed fixtures: a panic here is a broken benchmark, not a runtime path.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use kairos_core::availability::{Member, Mode, Rules, SlotSearch};
use kairos_core::schedule::{DateOverrides, Schedule};
use kairos_core::{Interval, Timeline, Zone, describe};

const ZONES: [&str; 5] = ["America/New_York", "Europe/Berlin", "Europe/London", "America/Toronto", "Europe/Lisbon"];

fn fixture() -> (Schedule, Vec<Schedule>, Vec<Timeline>) {
    let hours = r#"{"monday":[{"start":"07:00","end":"20:00"}],"tuesday":[{"start":"07:00","end":"20:00"}],
      "wednesday":[{"start":"07:00","end":"20:00"}],"thursday":[{"start":"07:00","end":"20:00"}],
      "friday":[{"start":"07:00","end":"20:00"}],"saturday":[{"start":"10:00","end":"14:00"}]}"#;
    let base = Schedule::new(Zone::utc(), serde_json::from_str(r#"{"monday":[{"start":"00:00","end":"24:00"}],"tuesday":[{"start":"00:00","end":"24:00"}],"wednesday":[{"start":"00:00","end":"24:00"}],"thursday":[{"start":"00:00","end":"24:00"}],"friday":[{"start":"00:00","end":"24:00"}],"saturday":[{"start":"00:00","end":"24:00"}],"sunday":[{"start":"00:00","end":"24:00"}]}"#).unwrap(), DateOverrides::default());
    let origin: Timestamp = "2027-01-04T00:00:00Z".parse().unwrap();
    let mut schedules = Vec::new();
    let mut busy = Vec::new();
    // A deterministic spread: 500 blocks of 15–45 minutes per person over the 14 days, placed
    // on quarter hours drawn from the same 40% of the day's positions (meetings cluster), so
    // that collective free time remains and the search has real slots to return.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for p in 0..10 {
        schedules.push(Schedule::new(
            Zone::parse(ZONES[p % ZONES.len()]).unwrap(),
            serde_json::from_str(hours).unwrap(),
            DateOverrides::default(),
        ));
        let mut blocks: Vec<Interval> = (0..500)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let quarter = (seed % (14 * 24 * 4)) as i64;
                let quarter = quarter - quarter % 12 + (quarter % 12) % 4;
                let start = origin + SignedDuration::from_mins(quarter * 15);
                let len = SignedDuration::from_mins(15 * (1 + (seed >> 32) % 2) as i64);
                Interval::starting_at(start, len).unwrap()
            })
            .collect();
        blocks.sort_by_key(|b| b.start());
        busy.push(Timeline::new(blocks));
    }
    (base, schedules, busy)
}

fn bench(c: &mut Criterion) {
    let (base, schedules, busy) = fixture();
    let none = Timeline::default();
    let members: Vec<Member> =
        schedules.iter().zip(&busy).map(|(schedule, busy)| Member { schedule, busy, required: false }).collect();
    let window =
        Interval::new("2027-01-04T00:00:00Z".parse().unwrap(), "2027-01-18T00:00:00Z".parse().unwrap()).unwrap();
    for (name, mode) in [("collective", Mode::Collective), ("any", Mode::Any)] {
        let search = SlotSearch {
            window,
            duration: SignedDuration::from_mins(30),
            now: "2027-01-01T00:00:00Z".parse().unwrap(),
            mode,
            base: Some(&base),
            base_busy: &none,
            members: &members,
            rules: Rules {
                buffer_before: SignedDuration::from_mins(5),
                buffer_after: SignedDuration::from_mins(5),
                ..Rules::default()
            },
            limit: None,
        };
        let found = search.find().len();
        c.bench_function(&format!("slots_10x500_busy_14d_30m_{name} ({found} slots)"), |b| {
            b.iter(|| black_box(black_box(&search).find()))
        });
    }
    let ny = Zone::parse("America/New_York").unwrap();
    let starts: Vec<Timestamp> = (0..40)
        .map(|i| "2027-01-04T14:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_mins(30 * i))
        .collect();
    c.bench_function("render_40_slots_in_a_zone", |b| {
        b.iter(|| {
            let mut render = describe::Renderer::new(&ny);
            for &t in &starts {
                black_box((render.rfc3339(t), render.rfc3339(t), render.describe(t)));
            }
        })
    });
    let span = window.widened(SignedDuration::from_hours(26), SignedDuration::from_hours(26));
    c.bench_function("working_intervals_one_person_16_days", |b| {
        b.iter(|| black_box(schedules[0].working_intervals(black_box(span))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
