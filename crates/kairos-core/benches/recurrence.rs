//! Recurrence expansion cost: it should depend on the window, not on how long ago a series
//! began. A daily series from 1990 and one from last week, expanded into the same week of
//! 2030, and a busy calendar (50 weekly series) expanded into a 62-day window.

// Fixed fixtures: a panic here is a broken benchmark, not a runtime path.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::tz::TimeZone;
use kairos_core::Interval;
use kairos_core::calendar::Calendar;

fn feed(events: &[(String, &str, &str)]) -> String {
    let mut text = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
    for (uid, start, rule) in events {
        text.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART;TZID=America/New_York:{start}\r\nDURATION:PT30M\r\nRRULE:{rule}\r\nEND:VEVENT\r\n"
        ));
    }
    text.push_str("END:VCALENDAR\r\n");
    text
}

fn bench(c: &mut Criterion) {
    let week = Interval::new("2030-01-07T00:00:00Z".parse().unwrap(), "2030-01-14T00:00:00Z".parse().unwrap()).unwrap();
    let old = Calendar::parse(&feed(&[("old".into(), "19900101T090000", "FREQ=DAILY")])).unwrap();
    let new = Calendar::parse(&feed(&[("new".into(), "20291231T090000", "FREQ=DAILY")])).unwrap();
    assert_eq!(old.instances(week, &TimeZone::UTC).len(), 7);
    c.bench_function("daily_from_1990_one_week_in_2030", |b| b.iter(|| black_box(old.instances(week, &TimeZone::UTC))));
    c.bench_function("daily_from_last_week_one_week_in_2030", |b| {
        b.iter(|| black_box(new.instances(week, &TimeZone::UTC)))
    });

    let series: Vec<(String, &str, &str)> =
        (0..50).map(|i| (format!("s{i}"), "20250106T090000", "FREQ=WEEKLY;BYDAY=MO,WE,FR")).collect();
    let busy = Calendar::parse(&feed(&series)).unwrap();
    let window =
        Interval::new("2030-01-01T00:00:00Z".parse().unwrap(), "2030-03-04T00:00:00Z".parse().unwrap()).unwrap();
    c.bench_function("50_weekly_series_62_days", |b| b.iter(|| black_box(busy.instances(window, &TimeZone::UTC))));
    let text = feed(&series);
    c.bench_function("parse_50_series", |b| b.iter(|| black_box(Calendar::parse(&text).unwrap())));
}

criterion_group!(benches, bench);
criterion_main!(benches);
