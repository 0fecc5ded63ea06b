//! Each Graph recurrence is mapped, parsed back with `Calendar::parse`, expanded by
//! kairos-core, and compared with the instances Outlook shows for it (worked out by hand from
//! Graph's documented rules, not by the emulator).

use jiff::tz::TimeZone;
use kairos_core::Interval;
use kairos_core::calendar::Calendar;
use kairos_core::calendar::event::EventStatus;
use serde_json::{Value, json};

use super::*;

fn event(v: Value) -> Value {
    v
}

fn master(start: &str, end: &str, zone: &str, pattern: Value, range: Value) -> Value {
    event(json!({
        "id": "AAMkADseries=", "type": "seriesMaster", "subject": "Series",
        "start": {"dateTime": start, "timeZone": zone}, "end": {"dateTime": end, "timeZone": zone},
        "originalStartTimeZone": zone,
        "recurrence": {"pattern": pattern, "range": range}
    }))
}

fn window() -> Interval {
    Interval::new("2020-01-01T00:00:00Z".parse().unwrap(), "2031-01-01T00:00:00Z".parse().unwrap()).unwrap()
}

/// The starts kairos-core expands from the VEVENTs, as UTC instants (dates for all-day).
fn starts(vevents: &str) -> Vec<String> {
    let text = format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{vevents}END:VCALENDAR\r\n");
    let cal = Calendar::parse(&text).unwrap();
    assert!(cal.skipped.is_empty(), "{:?}\n{text}", cal.skipped);
    cal.instances(window(), &TimeZone::UTC)
        .iter()
        .filter(|i| i.event.status != EventStatus::Cancelled)
        .map(|i| match i.start {
            kairos_core::calendar::InstanceTime::Date(d) => d.to_string(),
            t => t.instant(&TimeZone::UTC).to_string(),
        })
        .collect()
}

#[test]
fn weekly_in_a_windows_zone_keeps_local_time_across_dst() {
    let m = master(
        "2026-03-02T09:00:00.0000000",
        "2026-03-02T09:15:00.0000000",
        "Pacific Standard Time",
        json!({"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"}),
        json!({"type": "numbered", "startDate": "2026-03-02", "numberOfOccurrences": 3,
               "recurrenceTimeZone": "Pacific Standard Time"}),
    );
    let text = series_vevent(&m).unwrap();
    assert!(text.contains("DTSTART;TZID=Pacific Standard Time:20260302T090000\r\n"), "{text}");
    assert!(text.contains("RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;WKST=SU;COUNT=3\r\n"), "{text}");
    // 09:00 PST = 17:00Z; after 2026-03-08, 09:00 PDT = 16:00Z.
    assert_eq!(starts(&text), ["2026-03-02T17:00:00Z", "2026-03-09T16:00:00Z", "2026-03-16T16:00:00Z"]);
}

#[test]
fn weekly_every_other_week_counts_weeks_from_first_day_of_week() {
    let m = master(
        "2026-03-04T10:00:00",
        "2026-03-04T11:00:00",
        "UTC",
        json!({"type": "weekly", "interval": 2, "daysOfWeek": ["monday", "wednesday"], "firstDayOfWeek": "monday"}),
        json!({"type": "endDate", "startDate": "2026-03-04", "endDate": "2026-03-18"}),
    );
    let text = series_vevent(&m).unwrap();
    assert!(text.contains("RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;WKST=MO;UNTIL=20260318T235959Z\r\n"), "{text}");
    // Weeks of Mon 2 Mar (Wed 4 only, from the start), Mon 16 Mar (16 and 18).
    assert_eq!(starts(&text), ["2026-03-04T10:00:00Z", "2026-03-16T10:00:00Z", "2026-03-18T10:00:00Z"]);
}

#[test]
fn daily_end_date_is_inclusive_in_the_recurrence_zone() {
    let m = master(
        "2026-10-30T23:30:00",
        "2026-10-31T00:30:00",
        "Tokyo Standard Time",
        json!({"type": "daily", "interval": 2}),
        json!({"type": "endDate", "startDate": "2026-10-30", "endDate": "2026-11-03",
               "recurrenceTimeZone": "Tokyo Standard Time"}),
    );
    let text = series_vevent(&m).unwrap();
    // The end of 3 Nov in Tokyo (UTC+9) is 14:59:59Z.
    assert!(text.contains(";UNTIL=20261103T145959Z\r\n"), "{text}");
    assert_eq!(starts(&text), ["2026-10-30T14:30:00Z", "2026-11-01T14:30:00Z", "2026-11-03T14:30:00Z"]);
}

#[test]
fn absolute_monthly_day_31_falls_on_the_last_day_of_short_months() {
    let m = master(
        "2026-01-31T08:00:00",
        "2026-01-31T09:00:00",
        "UTC",
        json!({"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31}),
        json!({"type": "numbered", "startDate": "2026-01-31", "numberOfOccurrences": 4}),
    );
    let text = series_vevent(&m).unwrap();
    assert!(text.contains("RRULE:FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=-1;COUNT=4\r\n"), "{text}");
    assert_eq!(
        starts(&text),
        ["2026-01-31T08:00:00Z", "2026-02-28T08:00:00Z", "2026-03-31T08:00:00Z", "2026-04-30T08:00:00Z"]
    );
}

#[test]
fn absolute_monthly_day_30_clamps_in_february() {
    let m = master(
        "2028-01-30T08:00:00",
        "2028-01-30T09:00:00",
        "UTC",
        json!({"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 30}),
        json!({"type": "numbered", "startDate": "2028-01-30", "numberOfOccurrences": 3}),
    );
    let text = series_vevent(&m).unwrap();
    assert!(text.contains("BYMONTHDAY=28,29,30;BYSETPOS=-1;COUNT=3\r\n"), "{text}");
    assert_eq!(starts(&text), ["2028-01-30T08:00:00Z", "2028-02-29T08:00:00Z", "2028-03-30T08:00:00Z"]);
}

#[test]
fn relative_monthly_last_weekday_and_second_tuesday_every_other_month() {
    let last_weekday = master(
        "2026-01-30T17:00:00",
        "2026-01-30T17:30:00",
        "W. Europe Standard Time",
        json!({"type": "relativeMonthly", "interval": 1, "index": "last",
               "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"]}),
        json!({"type": "numbered", "startDate": "2026-01-01", "numberOfOccurrences": 3}),
    );
    let text = series_vevent(&last_weekday).unwrap();
    assert!(text.contains("BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=3\r\n"), "{text}");
    // 17:00 in Berlin: CET (UTC+1) in January–March 2026 until the 29th, CEST (UTC+2) after.
    assert_eq!(starts(&text), ["2026-01-30T16:00:00Z", "2026-02-27T16:00:00Z", "2026-03-31T15:00:00Z"]);
    let second_tuesday = master(
        "2026-01-13T12:00:00",
        "2026-01-13T13:00:00",
        "UTC",
        json!({"type": "relativeMonthly", "interval": 2, "index": "second", "daysOfWeek": ["tuesday"]}),
        json!({"type": "numbered", "startDate": "2026-01-13", "numberOfOccurrences": 3}),
    );
    let text = series_vevent(&second_tuesday).unwrap();
    assert_eq!(starts(&text), ["2026-01-13T12:00:00Z", "2026-03-10T12:00:00Z", "2026-05-12T12:00:00Z"]);
}

#[test]
fn yearly_patterns() {
    let leap_day = master(
        "2028-02-29T12:00:00",
        "2028-02-29T13:00:00",
        "UTC",
        json!({"type": "absoluteYearly", "interval": 1, "month": 2, "dayOfMonth": 29}),
        json!({"type": "numbered", "startDate": "2028-02-29", "numberOfOccurrences": 2}),
    );
    let text = series_vevent(&leap_day).unwrap();
    assert!(text.contains("FREQ=YEARLY;INTERVAL=1;BYMONTH=2;BYMONTHDAY=-1;COUNT=2"), "{text}");
    assert_eq!(starts(&text), ["2028-02-29T12:00:00Z", "2029-02-28T12:00:00Z"]);
    let thanksgiving = master(
        "2026-11-26T15:00:00",
        "2026-11-26T18:00:00",
        "Eastern Standard Time",
        json!({"type": "relativeYearly", "interval": 1, "month": 11, "index": "fourth", "daysOfWeek": ["thursday"]}),
        json!({"type": "endDate", "startDate": "2026-11-26", "endDate": "2028-12-31"}),
    );
    let text = series_vevent(&thanksgiving).unwrap();
    assert_eq!(starts(&text), ["2026-11-26T20:00:00Z", "2027-11-25T20:00:00Z", "2028-11-23T20:00:00Z"]);
}

#[test]
fn recurrence_time_zone_differs_from_the_start_zone() {
    // Created in UTC, recurring in Berlin: midnight Berlin time every other day.
    let m = event(json!({
        "id": "m", "start": {"dateTime": "2026-03-27T23:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-28T00:00:00.0000000", "timeZone": "UTC"},
        "recurrence": {"pattern": {"type": "daily", "interval": 2},
                       "range": {"type": "numbered", "startDate": "2026-03-28", "numberOfOccurrences": 2,
                                 "recurrenceTimeZone": "W. Europe Standard Time"}}
    }));
    let text = series_vevent(&m).unwrap();
    assert!(text.contains("DTSTART;TZID=W. Europe Standard Time:20260328T000000\r\n"), "{text}");
    assert_eq!(starts(&text), ["2026-03-27T23:00:00Z", "2026-03-29T22:00:00Z"]);
}

#[test]
fn a_start_off_the_pattern_moves_to_the_first_occurrence() {
    // Starts on a Tuesday, recurs on Mondays: Outlook's first occurrence is the next Monday.
    let m = master(
        "2026-03-03T09:00:00",
        "2026-03-03T10:00:00",
        "UTC",
        json!({"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"}),
        json!({"type": "numbered", "startDate": "2026-03-03", "numberOfOccurrences": 2}),
    );
    let text = series_vevent(&m).unwrap();
    assert_eq!(starts(&text), ["2026-03-09T09:00:00Z", "2026-03-16T09:00:00Z"]);
}

#[test]
fn all_day_series_with_an_end_date() {
    let m = event(json!({
        "id": "holiday", "isAllDay": true, "subject": "Gym",
        "start": {"dateTime": "2026-03-02T00:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-03T00:00:00.0000000", "timeZone": "UTC"},
        "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "thursday"]},
                       "range": {"type": "endDate", "startDate": "2026-03-02", "endDate": "2026-03-09"}}
    }));
    let text = series_vevent(&m).unwrap();
    assert!(text.contains("DTSTART;VALUE=DATE:20260302\r\nDTEND;VALUE=DATE:20260303\r\n"), "{text}");
    assert!(text.contains(";UNTIL=20260309\r\n"), "{text}");
    assert_eq!(starts(&text), ["2026-03-02", "2026-03-05", "2026-03-09"]);
}

#[test]
fn exceptions_and_cancelled_occurrences_override_their_instances() {
    let m = master(
        "2026-03-02T09:00:00",
        "2026-03-02T09:15:00",
        "Pacific Standard Time",
        json!({"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"}),
        json!({"type": "numbered", "startDate": "2026-03-02", "numberOfOccurrences": 3}),
    );
    let moved = event(json!({
        "id": "AAMkAGmoved=", "type": "exception", "seriesMasterId": "AAMkADseries=", "subject": "Standup (late)",
        "originalStart": "2026-03-09T16:00:00Z",
        "start": {"dateTime": "2026-03-09T18:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-09T18:15:00.0000000", "timeZone": "UTC"}
    }));
    let cancelled = event(json!({
        "id": "AAMkAGgone=", "type": "occurrence", "seriesMasterId": "AAMkADseries=", "isCancelled": true,
        "originalStart": "2026-03-16T16:00:00.0000000Z"
    }));
    let exception = override_vevent(&m, &moved).unwrap();
    assert!(exception.contains("UID:AAMkADseries=\r\nX-KAIROS-REMOTE-ID:AAMkAGmoved=\r\n"), "{exception}");
    assert!(exception.contains("RECURRENCE-ID;TZID=Pacific Standard Time:20260309T090000\r\n"), "{exception}");
    let gone = override_vevent(&m, &cancelled).unwrap();
    assert!(gone.contains("STATUS:CANCELLED\r\n"));
    let all = format!("{}{exception}{gone}", series_vevent(&m).unwrap());
    assert_eq!(starts(&all), ["2026-03-02T17:00:00Z", "2026-03-09T18:00:00Z"]);
}

#[test]
fn unreadable_recurrences_are_errors_not_guesses() {
    let m = master(
        "2026-03-02T09:00:00",
        "2026-03-02T10:00:00",
        "UTC",
        json!({"type": "fortnightly", "interval": 1}),
        json!({"type": "noEnd", "startDate": "2026-03-02"}),
    );
    assert!(series_vevent(&m).is_err());
    let zone = master(
        "2026-03-02T09:00:00",
        "2026-03-02T10:00:00",
        "Atlantis Standard Time",
        json!({"type": "daily", "interval": 1}),
        json!({"type": "noEnd", "startDate": "2026-03-02"}),
    );
    assert!(series_vevent(&zone).is_err());
}
