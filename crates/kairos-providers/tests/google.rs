//! The Google adapter against the Google emulator: sync (full, paged, incremental, expired),
//! errors, recurring series, write-back, push channels and free/busy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation should fail the test loudly

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use kairos_core::Interval;
use kairos_core::calendar::Calendar;
use kairos_core::calendar::event::InstanceTime;
use kairos_emulators::google::GoogleEmulator;
use kairos_providers::google::Google;
use kairos_providers::{Change, Credentials, DraftAttendee, EventDraft, Provider, ProviderError, SyncResult};
use serde_json::{Value, json};

const TEAM: &str = "team@group.calendar.google.com";

async fn setup() -> (GoogleEmulator, Google, Credentials) {
    let emu = GoogleEmulator::start().await.unwrap();
    let auth = Credentials::Bearer(emu.access_token_by_consent().await.unwrap());
    let google = Google::new(reqwest::Client::new(), url::Url::parse(&emu.base_url()).unwrap());
    (emu, google, auth)
}

fn window(start: &str, end: &str) -> Interval {
    Interval::new(start.parse().unwrap(), end.parse().unwrap()).unwrap()
}

fn any_window() -> Interval {
    window("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z")
}

fn timed(summary: &str, start: &str, end: &str) -> Value {
    json!({"summary": summary, "start": {"dateTime": start}, "end": {"dateTime": end}})
}

fn upserted(result: &SyncResult) -> BTreeMap<String, String> {
    result
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Upsert(item) => Some((item.id.clone(), item.ical.clone())),
            Change::Removed { .. } => None,
        })
        .collect()
}

fn parse(items: &BTreeMap<String, String>) -> Calendar {
    let body: String = items.values().cloned().collect();
    let cal = Calendar::parse(&format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n{body}END:VCALENDAR\r\n"))
        .unwrap();
    assert!(cal.skipped.is_empty(), "{:?}", cal.skipped);
    cal
}

#[tokio::test]
async fn lists_the_accounts_calendars() {
    let (emu, google, auth) = setup().await;
    emu.add_calendar(TEAM, "Team", false, "Europe/Berlin");
    let calendars = google.list_calendars(&auth).await.unwrap();
    assert_eq!(calendars.len(), 2);
    let primary = calendars.iter().find(|c| c.primary).unwrap();
    assert_eq!((primary.id.as_str(), primary.writable), ("alice@example.com", true));
    let team = calendars.iter().find(|c| c.id == TEAM).unwrap();
    assert_eq!((team.name.as_str(), team.timezone.as_deref()), ("Team", Some("Europe/Berlin")));
}

#[tokio::test]
async fn a_full_sync_pages_and_an_incremental_sync_sees_exactly_the_changes() {
    let (emu, google, auth) = setup().await;
    let cal = emu.account_email();
    let events: Vec<Value> = (0..2600)
        .map(|i| {
            let start = Timestamp::from_second(1_717_200_000 + i * 3600).unwrap();
            let end = Timestamp::from_second(1_717_200_000 + i * 3600 + 1800).unwrap();
            timed(&format!("Event {i}"), &start.to_string(), &end.to_string())
        })
        .collect();
    let ids = emu.put_events(&cal, events);
    let before = emu.requests("/calendar/v3/calendars/");
    let full = google.sync(&auth, &cal, None, any_window()).await.unwrap();
    assert_eq!(emu.requests("/calendar/v3/calendars/") - before, 2, "2,600 events take two pages of 2,500");
    assert!(full.full);
    assert_eq!(upserted(&full).len(), 2600);
    let cursor = full.cursor.clone().expect("a sync token");

    emu.put_event(
        &cal,
        json!({"id": ids[0], "summary": "Renamed", "start": {"dateTime": "2024-06-01T00:00:00Z"},
                               "end": {"dateTime": "2024-06-01T01:00:00Z"}}),
    );
    let added = emu.put_event(&cal, timed("New", "2024-07-01T10:00:00Z", "2024-07-01T11:00:00Z"));
    emu.delete_event(&cal, &ids[1]);
    let delta = google.sync(&auth, &cal, Some(&cursor), any_window()).await.unwrap();
    assert!(!delta.full);
    assert_eq!(delta.changes.len(), 3, "{:?}", delta.changes);
    let changed = upserted(&delta);
    assert!(changed[&ids[0]].contains("SUMMARY:Renamed\r\n"));
    assert!(changed[&added].contains("SUMMARY:New\r\n"));
    assert!(delta.changes.contains(&Change::Removed { id: ids[1].clone() }));
    assert_ne!(delta.cursor.as_deref(), Some(cursor.as_str()));

    let quiet = google.sync(&auth, &cal, delta.cursor.as_deref(), any_window()).await.unwrap();
    assert!(quiet.changes.is_empty(), "{:?}", quiet.changes);
}

#[tokio::test]
async fn an_expired_sync_token_is_cursor_expired() {
    let (emu, google, auth) = setup().await;
    let cal = emu.account_email();
    emu.put_event(&cal, timed("x", "2024-06-01T10:00:00Z", "2024-06-01T11:00:00Z"));
    let full = google.sync(&auth, &cal, None, any_window()).await.unwrap();
    emu.expire_sync_tokens();
    let err = google.sync(&auth, &cal, full.cursor.as_deref(), any_window()).await.unwrap_err();
    assert_eq!(err, ProviderError::CursorExpired);
    // A full sync works again and starts a new cursor.
    let again = google.sync(&auth, &cal, None, any_window()).await.unwrap();
    assert_eq!(again.changes.len(), 1);
}

#[tokio::test]
async fn rate_limits_come_back_with_their_retry_after() {
    let (emu, google, auth) = setup().await;
    emu.fail_next(1, 429, Some(7));
    let err = google.list_calendars(&auth).await.unwrap_err();
    assert_eq!(err, ProviderError::RateLimited { retry_after: Some(Duration::from_secs(7)) });
    emu.fail_next(1, 403, None);
    let err = google.sync(&auth, "primary", None, any_window()).await.unwrap_err();
    assert_eq!(err, ProviderError::RateLimited { retry_after: None });
    emu.fail_next(1, 503, Some(2));
    let err = google.list_calendars(&auth).await.unwrap_err();
    assert_eq!(err, ProviderError::RateLimited { retry_after: Some(Duration::from_secs(2)) });
    assert!(google.list_calendars(&auth).await.is_ok(), "the next request goes through");
}

#[tokio::test]
async fn expired_or_revoked_access_is_unauthorized() {
    let (emu, google, auth) = setup().await;
    emu.expire_access_tokens();
    assert!(matches!(google.list_calendars(&auth).await, Err(ProviderError::Unauthorized(_))));
    let fresh = Credentials::Bearer(emu.access_token_by_consent().await.unwrap());
    assert!(google.list_calendars(&fresh).await.is_ok());
    emu.revoke_all_grants();
    assert!(matches!(google.list_calendars(&fresh).await, Err(ProviderError::Unauthorized(_))));
    let basic = Credentials::Basic { username: "a".into(), password: "b".into() };
    assert!(matches!(google.list_calendars(&basic).await, Err(ProviderError::Unauthorized(_))));
}

#[tokio::test]
async fn a_series_with_a_moved_and_a_cancelled_instance_expands_into_the_right_instances() {
    let (emu, google, auth) = setup().await;
    emu.add_calendar(TEAM, "Team", false, "Europe/Berlin");
    emu.put_event(
        TEAM,
        json!({
            "id": "series1", "summary": "Weekly review",
            "start": {"dateTime": "2024-03-18T14:00:00+01:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2024-03-18T15:00:00+01:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=5", "EXDATE;TZID=Europe/Berlin:20240415T140000"],
        }),
    );
    // The user moves the 25 March instance to Tuesday 16:00.
    emu.put_event(
        TEAM,
        json!({
            "recurringEventId": "series1", "summary": "Weekly review (moved)",
            "originalStartTime": {"dateTime": "2024-03-25T14:00:00+01:00", "timeZone": "Europe/Berlin"},
            "start": {"dateTime": "2024-03-26T16:00:00+01:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2024-03-26T17:00:00+01:00", "timeZone": "Europe/Berlin"},
        }),
    );
    let full = google.sync(&auth, TEAM, None, any_window()).await.unwrap();
    // Cancelling the 1 April instance (after DST) through the API stores a cancelled
    // exception; the incremental sync brings it as a CANCELLED override.
    google.delete_event(&auth, TEAM, "series1_20240401T120000Z", None).await.unwrap();
    assert_eq!(emu.event(TEAM, "series1_20240401T120000Z").unwrap()["status"], "cancelled");
    let delta = google.sync(&auth, TEAM, full.cursor.as_deref(), any_window()).await.unwrap();
    let mut items = upserted(&full);
    items.extend(upserted(&delta));
    assert!(items["series1_20240401T120000Z"].contains("STATUS:CANCELLED\r\n"));

    let cal = parse(&items);
    let instances = cal.instances(window("2024-03-01T00:00:00Z", "2024-05-01T00:00:00Z"), &TimeZone::UTC);
    let got: Vec<(InstanceTime, &str)> =
        instances.iter().map(|i| (i.start, i.event.summary.as_deref().unwrap_or_default())).collect();
    let at = |s: &str| InstanceTime::Instant(s.parse().unwrap());
    assert_eq!(
        got,
        [
            (at("2024-03-18T13:00:00Z"), "Weekly review"),
            (at("2024-03-26T15:00:00Z"), "Weekly review (moved)"),
            (at("2024-04-08T12:00:00Z"), "Weekly review"),
        ]
    );
}

fn draft(title: &str) -> EventDraft {
    EventDraft {
        uid: "01J9ZBOOKING0000000000000A".into(),
        title: title.into(),
        description: Some("Booked with Kairos".into()),
        start: "2024-09-02T08:00:00Z".parse().unwrap(),
        end: "2024-09-02T08:30:00Z".parse().unwrap(),
        timezone: "Europe/Paris".into(),
        attendees: vec![DraftAttendee { email: "bob@example.com".into(), name: Some("Bob".into()) }],
    }
}

#[tokio::test]
async fn writes_reach_the_calendar_and_retries_do_not_duplicate() {
    let (emu, google, auth) = setup().await;
    let cal = emu.account_email();
    let created = google.create_event(&auth, "primary", &draft("Intro call")).await.unwrap();
    let stored = emu.event(&cal, &created.id).unwrap();
    assert_eq!(stored["summary"], "Intro call");
    assert_eq!(stored["start"], json!({"dateTime": "2024-09-02T10:00:00+02:00", "timeZone": "Europe/Paris"}));
    assert_eq!(stored["attendees"][0]["email"], "bob@example.com");
    assert!(created.ical.contains("DTSTART:20240902T080000Z\r\n"), "{}", created.ical);

    // A retried create (the first answer was lost) updates the same event.
    let retried = google.create_event(&auth, "primary", &draft("Intro call")).await.unwrap();
    assert_eq!(retried.id, created.id);
    assert_eq!(emu.events(&cal).len(), 1);

    let updated = google
        .update_event(&auth, "primary", &created.id, retried.etag.as_deref(), &draft("Intro call (v2)"))
        .await
        .unwrap();
    assert_eq!(emu.event(&cal, &created.id).unwrap()["summary"], "Intro call (v2)");
    let stale = google.update_event(&auth, "primary", &created.id, created.etag.as_deref(), &draft("x")).await;
    assert_eq!(stale.unwrap_err(), ProviderError::Conflict);

    google.delete_event(&auth, "primary", &created.id, updated.etag.as_deref()).await.unwrap();
    assert_eq!(emu.event(&cal, &created.id).unwrap()["status"], "cancelled");
    google.delete_event(&auth, "primary", &created.id, None).await.unwrap();
    google.delete_event(&auth, "primary", "neverexisted1", None).await.unwrap();

    // Creating it again (a re-booking with the same uid) restores it.
    google.create_event(&auth, "primary", &draft("Intro call")).await.unwrap();
    assert_eq!(emu.event(&cal, &created.id).unwrap()["status"], "confirmed");
}

#[tokio::test]
async fn watch_renew_and_stop_open_and_close_channels() {
    let (emu, google, auth) = setup().await;
    let expires: Timestamp = Timestamp::now().checked_add(jiff::SignedDuration::from_hours(24)).unwrap();
    let channel = google.watch(&auth, "primary", "http://127.0.0.1:9/hook", "tok-1", expires).await.unwrap().unwrap();
    let open = emu.channels();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, channel.id);
    assert_eq!(open[0].calendar, emu.account_email());
    assert_eq!((open[0].address.as_str(), open[0].token.as_deref()), ("http://127.0.0.1:9/hook", Some("tok-1")));
    assert_eq!(channel.resource_id.as_deref(), Some(open[0].resource_id.as_str()));
    assert_eq!(channel.expires_at.as_millisecond(), expires.as_millisecond());
    assert!(channel.id.len() <= 64);

    let later = expires.checked_add(jiff::SignedDuration::from_hours(24)).unwrap();
    let renewed = google.renew(&auth, &channel, later).await.unwrap();
    let open = emu.channels();
    assert_eq!(open.len(), 1, "the old channel was stopped");
    assert_eq!(open[0].id, renewed.id);
    assert_ne!(renewed.id, channel.id);
    assert_eq!(open[0].token.as_deref(), Some("tok-1"));

    google.stop(&auth, &renewed).await.unwrap();
    assert!(emu.channels().is_empty());
    google.stop(&auth, &renewed).await.unwrap();
}

#[tokio::test]
async fn free_busy_comes_from_googles_free_busy() {
    let (emu, google, auth) = setup().await;
    let cal = emu.account_email();
    emu.put_event(&cal, timed("busy", "2024-05-06T09:00:00Z", "2024-05-06T10:00:00Z"));
    let mut free = timed("free", "2024-05-06T11:00:00Z", "2024-05-06T12:00:00Z");
    free["transparency"] = json!("transparent");
    emu.put_event(&cal, free);
    emu.put_event(
        &cal,
        json!({
            "summary": "daily", "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
            "start": {"dateTime": "2024-05-05T09:30:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2024-05-05T10:30:00Z", "timeZone": "UTC"},
        }),
    );
    let busy = google
        .free_busy(&auth, std::slice::from_ref(&cal), window("2024-05-06T00:00:00Z", "2024-05-07T12:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        busy,
        [
            window("2024-05-06T09:00:00Z", "2024-05-06T10:30:00Z"),
            window("2024-05-07T09:30:00Z", "2024-05-07T10:30:00Z")
        ]
    );
    let missing = google.free_busy(&auth, &["nobody@example.com".to_string()], any_window()).await;
    assert!(matches!(missing, Err(ProviderError::NotFound(_))));
}
