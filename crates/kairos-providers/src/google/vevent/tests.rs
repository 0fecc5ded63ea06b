//! Each mapping is read back with the calendar core and expanded: what Kairos will see.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use kairos_core::Interval;
use kairos_core::calendar::event::{EventStatus, InstanceTime};
use kairos_core::calendar::{BusyRules, Calendar, busy_intervals};
use serde_json::json;

use super::to_item;
use crate::google::wire::Event;

fn event(value: serde_json::Value) -> Event {
    serde_json::from_value(value).unwrap()
}

fn calendar(events: &[serde_json::Value]) -> (Calendar, String) {
    let body: String = events.iter().map(|e| to_item(&event(e.clone()), Some("Europe/Berlin")).unwrap().ical).collect();
    let text = format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{body}END:VCALENDAR\r\n");
    let cal = Calendar::parse(&text).unwrap();
    assert!(cal.skipped.is_empty(), "{:?}\n{text}", cal.skipped);
    (cal, text)
}

fn window(start: &str, end: &str) -> Interval {
    Interval::new(start.parse().unwrap(), end.parse().unwrap()).unwrap()
}

fn ts(s: &str) -> InstanceTime {
    InstanceTime::Instant(s.parse::<Timestamp>().unwrap())
}

#[test]
fn a_single_event_is_written_in_utc() {
    let (cal, text) = calendar(&[json!({
        "id": "single1", "etag": "\"31\"", "status": "confirmed", "summary": "Lunch; with, Bob",
        "description": "line one\nline two", "location": "Café",
        "start": {"dateTime": "2024-05-01T12:00:00+02:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2024-05-01T13:00:00+02:00", "timeZone": "Europe/Berlin"},
        "organizer": {"email": "alice@example.com", "displayName": "Alice, A."},
        "hangoutLink": "https://meet.google.com/abc-defg-hij",
    })]);
    assert!(text.contains("DTSTART:20240501T100000Z\r\n"), "{text}");
    assert!(text.contains("X-KAIROS-REMOTE-ID:single1\r\n"));
    assert!(text.contains("ORGANIZER;CN=\"Alice, A.\":mailto:alice@example.com\r\n"));
    assert!(text.contains("URL:https://meet.google.com/abc-defg-hij\r\n"));
    let instances = cal.instances(window("2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z"), &TimeZone::UTC);
    assert_eq!(instances.len(), 1);
    assert_eq!((instances[0].start, instances[0].end), (ts("2024-05-01T10:00:00Z"), ts("2024-05-01T11:00:00Z")));
    let e = instances[0].event;
    assert_eq!(e.uid, "single1");
    assert_eq!(e.summary.as_deref(), Some("Lunch; with, Bob"));
    assert_eq!(e.description.as_deref(), Some("line one\nline two"));
    assert_eq!(e.location.as_deref(), Some("Café"));
    assert_eq!(e.status, EventStatus::Confirmed);
    assert!(!e.transparent);
}

#[test]
fn an_all_day_event_keeps_its_dates_with_an_exclusive_end() {
    let (cal, text) = calendar(&[json!({
        "id": "allday1", "summary": "Offsite", "start": {"date": "2024-05-01"}, "end": {"date": "2024-05-03"},
    })]);
    assert!(text.contains("DTSTART;VALUE=DATE:20240501\r\nDTEND;VALUE=DATE:20240503\r\n"), "{text}");
    let instances = cal.instances(window("2024-04-01T00:00:00Z", "2024-06-01T00:00:00Z"), &TimeZone::UTC);
    assert_eq!(instances.len(), 1);
    let (start, end) = (instances[0].start, instances[0].end);
    assert_eq!(
        (start, end),
        (InstanceTime::Date(jiff::civil::date(2024, 5, 1)), InstanceTime::Date(jiff::civil::date(2024, 5, 3)))
    );
}

#[test]
fn a_series_recurs_in_its_zone_across_dst_without_its_exdate() {
    let (cal, text) = calendar(&[json!({
        "id": "series1", "summary": "Standup",
        "start": {"dateTime": "2024-03-28T09:00:00+01:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2024-03-28T09:15:00+01:00", "timeZone": "Europe/Berlin"},
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=5", "EXDATE;TZID=Europe/Berlin:20240330T090000"],
    })]);
    assert!(text.contains("DTSTART;TZID=Europe/Berlin:20240328T090000\r\n"), "{text}");
    assert!(text.contains("RRULE:FREQ=DAILY;COUNT=5\r\n"));
    let instances = cal.instances(window("2024-03-01T00:00:00Z", "2024-04-30T00:00:00Z"), &TimeZone::UTC);
    let starts: Vec<InstanceTime> = instances.iter().map(|i| i.start).collect();
    // 9:00 in Berlin: 08:00Z before 31 March, 07:00Z from then on; the 30th is excluded.
    assert_eq!(
        starts,
        [
            ts("2024-03-28T08:00:00Z"),
            ts("2024-03-29T08:00:00Z"),
            ts("2024-03-31T07:00:00Z"),
            ts("2024-04-01T07:00:00Z")
        ]
    );
    assert!(instances.iter().all(|i| i.event.uid == "series1"));
}

fn series() -> serde_json::Value {
    json!({
        "id": "weekly1", "summary": "Review",
        "start": {"dateTime": "2024-06-03T14:00:00+02:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2024-06-03T15:00:00+02:00", "timeZone": "Europe/Berlin"},
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3"],
    })
}

#[test]
fn a_moved_instance_replaces_its_occurrence() {
    let moved = json!({
        "id": "weekly1_20240610T120000Z", "recurringEventId": "weekly1", "summary": "Review (moved)",
        "originalStartTime": {"dateTime": "2024-06-10T14:00:00+02:00", "timeZone": "Europe/Berlin"},
        "start": {"dateTime": "2024-06-11T16:00:00+02:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2024-06-11T17:00:00+02:00", "timeZone": "Europe/Berlin"},
    });
    let (cal, text) = calendar(&[series(), moved]);
    assert!(text.contains("UID:weekly1\r\nX-KAIROS-REMOTE-ID:weekly1_20240610T120000Z\r\n"), "{text}");
    assert!(text.contains("RECURRENCE-ID;TZID=Europe/Berlin:20240610T140000\r\n"), "{text}");
    let instances = cal.instances(window("2024-06-01T00:00:00Z", "2024-07-01T00:00:00Z"), &TimeZone::UTC);
    let got: Vec<(InstanceTime, Option<&str>)> =
        instances.iter().map(|i| (i.start, i.event.summary.as_deref())).collect();
    assert_eq!(
        got,
        [
            (ts("2024-06-03T12:00:00Z"), Some("Review")),
            (ts("2024-06-11T14:00:00Z"), Some("Review (moved)")),
            (ts("2024-06-17T12:00:00Z"), Some("Review")),
        ]
    );
}

#[test]
fn a_cancelled_instance_stub_removes_its_occurrence() {
    let stub = json!({
        "id": "weekly1_20240610T120000Z", "status": "cancelled", "recurringEventId": "weekly1",
        "originalStartTime": {"dateTime": "2024-06-10T14:00:00+02:00", "timeZone": "Europe/Berlin"},
    });
    let (cal, text) = calendar(&[series(), stub]);
    assert!(text.contains("STATUS:CANCELLED\r\n"), "{text}");
    let instances = cal.instances(window("2024-06-01T00:00:00Z", "2024-07-01T00:00:00Z"), &TimeZone::UTC);
    let starts: Vec<InstanceTime> = instances.iter().map(|i| i.start).collect();
    assert_eq!(starts, [ts("2024-06-03T12:00:00Z"), ts("2024-06-17T12:00:00Z")]);
}

#[test]
fn transparent_declined_and_tentative_events_are_read_as_such() {
    let base = |id: &str, hour: u8| {
        json!({"id": id, "start": {"dateTime": format!("2024-05-02T{hour:02}:00:00Z")},
               "end": {"dateTime": format!("2024-05-02T{:02}:00:00Z", hour + 1)}})
    };
    let mut transparent = base("free1", 9);
    transparent["transparency"] = json!("transparent");
    let mut declined = base("declined1", 11);
    declined["attendees"] = json!([
        {"email": "alice@example.com", "self": true, "responseStatus": "declined"},
        {"email": "bob@example.com", "displayName": "Bob", "responseStatus": "accepted"},
        {"email": "room@resource.calendar.google.com", "resource": true, "responseStatus": "accepted"}
    ]);
    let mut tentative = base("maybe1", 13);
    tentative["status"] = json!("tentative");
    let busy = base("busy1", 15);
    let (cal, text) = calendar(&[transparent, declined, tentative, busy]);
    assert!(text.contains("TRANSP:TRANSPARENT\r\n"));
    assert!(text.contains("ATTENDEE;PARTSTAT=DECLINED:mailto:alice@example.com\r\n"), "{text}");
    assert!(text.contains("ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.com\r\n"));
    assert!(!text.contains("room@resource"), "rooms are not people");
    assert!(text.contains("STATUS:TENTATIVE\r\n"));
    let rules = BusyRules { email: Some("alice@example.com"), tentative_is_busy: false };
    let day = window("2024-05-02T00:00:00Z", "2024-05-03T00:00:00Z");
    let busy = busy_intervals(&cal, day, &TimeZone::UTC, &rules);
    assert_eq!(busy, [window("2024-05-02T15:00:00Z", "2024-05-02T16:00:00Z")]);
}

#[test]
fn unreadable_events_are_reported_not_guessed() {
    let no_start = event(json!({"id": "broken1", "summary": "x"}));
    assert!(to_item(&no_start, None).is_err());
    let local_without_zone = event(json!({"id": "broken2", "start": {"dateTime": "2024-05-01T10:00:00"}}));
    assert!(to_item(&local_without_zone, None).is_err());
    // With the calendar's zone, a local time is read in it.
    let item = to_item(&local_without_zone, Some("Europe/Berlin")).unwrap();
    assert!(item.ical.contains("DTSTART:20240501T080000Z\r\n"), "{}", item.ical);
}

#[test]
fn recurrence_lines_cannot_smuggle_other_properties() {
    let sneaky = event(json!({
        "id": "sneaky1",
        "start": {"dateTime": "2024-05-01T10:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2024-05-01T11:00:00Z", "timeZone": "UTC"},
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=2\r\nEND:VEVENT", "SUMMARY:injected"],
    }));
    let item = to_item(&sneaky, None).unwrap();
    assert!(!item.ical.contains("SUMMARY:injected"));
    assert_eq!(item.ical.split("\r\n").filter(|l| *l == "END:VEVENT").count(), 1, "{}", item.ical);
}
