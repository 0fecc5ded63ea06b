//! The Microsoft Graph adapter against the Microsoft emulator (kairos-emulators), which speaks
//! Graph's wire format (checked against Microsoft's own SDK in kairos-emulators' tests).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation should fail the test loudly

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use kairos_core::Interval;
use kairos_core::calendar::Calendar;
use kairos_emulators::microsoft::MicrosoftEmulator;
use kairos_providers::microsoft::Microsoft;
use kairos_providers::{Change, Credentials, DraftAttendee, EventDraft, Provider, ProviderError, RemoteItem};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

const REDIRECT: &str = "http://127.0.0.1/callback";

/// An access token from the emulator's identity platform (authorization code + PKCE).
async fn access_token(emu: &MicrosoftEmulator) -> String {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let verifier = "kairos-test-verifier-0123456789-0123456789-abcdef";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let authorize = http
        .get(format!("{}/common/oauth2/v2.0/authorize", emu.base_url()))
        .query(&[
            ("client_id", MicrosoftEmulator::CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "offline_access Calendars.ReadWrite"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(authorize.status(), 302);
    let location = Url::parse(authorize.headers()[header::LOCATION].to_str().unwrap()).unwrap();
    let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let tokens: Value = http
        .post(format!("{}/common/oauth2/v2.0/token", emu.base_url()))
        .form(&[
            ("client_id", MicrosoftEmulator::CLIENT_ID),
            ("client_secret", MicrosoftEmulator::CLIENT_SECRET),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["access_token"].as_str().unwrap().to_string()
}

struct Setup {
    emu: MicrosoftEmulator,
    graph: Microsoft,
    auth: Credentials,
    cal: String,
}

async fn setup() -> Setup {
    let emu = MicrosoftEmulator::start().await.unwrap();
    let auth = Credentials::Bearer(access_token(&emu).await);
    let graph = Microsoft::new(reqwest::Client::new(), Url::parse(&emu.base_url()).unwrap()).with_page_size(5);
    let cal = emu.default_calendar_id();
    Setup { emu, graph, auth, cal }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn march() -> Interval {
    Interval::new(ts("2026-03-01T00:00:00Z"), ts("2026-04-01T00:00:00Z")).unwrap()
}

fn single(subject: &str, start: &str, end: &str) -> Value {
    json!({"subject": subject, "start": {"dateTime": start, "timeZone": "UTC"}, "end": {"dateTime": end, "timeZone": "UTC"}})
}

fn upserts(changes: &[Change]) -> Vec<&RemoteItem> {
    changes.iter().filter_map(|c| if let Change::Upsert(i) = c { Some(i) } else { None }).collect()
}

fn removed(changes: &[Change]) -> Vec<&str> {
    changes.iter().filter_map(|c| if let Change::Removed { id } = c { Some(id.as_str()) } else { None }).collect()
}

/// The items as one calendar, read back by kairos-core; every event must parse.
fn calendar(items: &[&RemoteItem]) -> Calendar {
    let body: String = items.iter().map(|i| i.ical.as_str()).collect();
    let cal = Calendar::parse(&format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{body}END:VCALENDAR\r\n")).unwrap();
    assert!(cal.skipped.is_empty(), "{:?}", cal.skipped);
    cal
}

/// (start, summary) of every instance, sorted.
fn instances(items: &[&RemoteItem]) -> Vec<(String, String)> {
    let cal = calendar(items);
    cal.instances(march(), &TimeZone::UTC)
        .iter()
        .map(|i| (i.start.instant(&TimeZone::UTC).to_string(), i.event.summary.clone().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn list_calendars_names_the_default_and_the_others() {
    let s = setup().await;
    s.emu.add_calendar("AAMkAD-team", "Team", false);
    let calendars = s.graph.list_calendars(&s.auth).await.unwrap();
    assert_eq!(calendars.len(), 2);
    let default = calendars.iter().find(|c| c.primary).unwrap();
    assert_eq!((default.id.as_str(), default.name.as_str(), default.writable), (s.cal.as_str(), "Calendar", true));
    assert!(calendars.iter().any(|c| c.id == "AAMkAD-team" && c.name == "Team" && !c.primary));
}

#[tokio::test]
async fn a_full_sync_pages_through_every_instance_to_a_delta_link() {
    let s = setup().await;
    let events: Vec<Value> = (1..=12)
        .map(|d| {
            single(&format!("Event {d}"), &format!("2026-03-{d:02}T10:00:00"), &format!("2026-03-{d:02}T11:00:00"))
        })
        .collect();
    s.emu.put_events(&s.cal, events);
    s.emu.put_event(&s.cal, single("April", "2026-04-02T10:00:00", "2026-04-02T11:00:00"));
    let result = s.graph.sync(&s.auth, &s.cal, None, march()).await.unwrap();
    assert!(result.full);
    assert!(result.cursor.as_deref().unwrap().contains("$deltatoken="));
    let items = upserts(&result.changes);
    assert_eq!(items.len(), 12, "the event outside the window is not synced");
    assert_eq!(s.emu.requests(&format!("/v1.0/me/calendars/{}/calendarView/delta", s.cal)), 3, "pages of 5, 5, 2");
    for item in &items {
        assert!(item.ical.contains(&format!("X-KAIROS-REMOTE-ID:{}\r\n", item.id)));
        assert!(item.etag.as_deref().unwrap().starts_with("W/\""));
    }
    let got = instances(&items);
    assert_eq!(got.len(), 12);
    assert_eq!(got[0], ("2026-03-01T10:00:00Z".to_string(), "Event 1".to_string()));
}

#[tokio::test]
async fn an_incremental_sync_reports_exactly_the_changes() {
    let s = setup().await;
    let ids = s.emu.put_events(
        &s.cal,
        vec![
            single("Keep", "2026-03-02T10:00:00", "2026-03-02T11:00:00"),
            single("Change me", "2026-03-03T10:00:00", "2026-03-03T11:00:00"),
            single("Delete me", "2026-03-04T10:00:00", "2026-03-04T11:00:00"),
        ],
    );
    let first = s.graph.sync(&s.auth, &s.cal, None, march()).await.unwrap();
    assert_eq!(upserts(&first.changes).len(), 3);

    let mut changed = single("Changed", "2026-03-03T12:00:00", "2026-03-03T13:00:00");
    changed["id"] = json!(ids[1]);
    s.emu.put_event(&s.cal, changed);
    s.emu.delete_event(&ids[2]);
    let added = s.emu.put_event(&s.cal, single("New", "2026-03-05T10:00:00", "2026-03-05T11:00:00"));

    let second = s.graph.sync(&s.auth, &s.cal, first.cursor.as_deref(), march()).await.unwrap();
    assert!(!second.full);
    let mut upserted: Vec<&str> = upserts(&second.changes).iter().map(|i| i.id.as_str()).collect();
    upserted.sort();
    let mut expected = vec![ids[1].as_str(), added.as_str()];
    expected.sort();
    assert_eq!(upserted, expected);
    assert_eq!(removed(&second.changes), [ids[2].as_str()]);
    let changed_item = upserts(&second.changes).into_iter().find(|i| i.id == ids[1]).unwrap();
    assert_eq!(instances(&[changed_item]), [("2026-03-03T12:00:00Z".to_string(), "Changed".to_string())]);

    let third = s.graph.sync(&s.auth, &s.cal, second.cursor.as_deref(), march()).await.unwrap();
    assert!(third.changes.is_empty(), "{:?}", third.changes);
}

#[tokio::test]
async fn an_expired_delta_token_means_a_full_sync() {
    let s = setup().await;
    s.emu.put_event(&s.cal, single("One", "2026-03-02T10:00:00", "2026-03-02T11:00:00"));
    let first = s.graph.sync(&s.auth, &s.cal, None, march()).await.unwrap();
    s.emu.expire_delta_tokens();
    let err = s.graph.sync(&s.auth, &s.cal, first.cursor.as_deref(), march()).await.unwrap_err();
    assert_eq!(err, ProviderError::CursorExpired);
    let again = s.graph.sync(&s.auth, &s.cal, None, march()).await.unwrap();
    assert!(again.full && upserts(&again.changes).len() == 1);
}

#[tokio::test]
async fn a_cursor_pointing_elsewhere_is_refused_before_any_request() {
    let s = setup().await;
    let before = s.emu.requests("/");
    let err = s
        .graph
        .sync(&s.auth, &s.cal, Some("https://attacker.example/v1.0/me/calendarView/delta?$deltatoken=x"), march())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Protocol(_)), "{err:?}");
    assert_eq!(s.emu.requests("/"), before);
}

#[tokio::test]
async fn throttling_is_rate_limited_with_retry_after() {
    let s = setup().await;
    s.emu.fail_next(1, 429, Some(7));
    let err = s.graph.list_calendars(&s.auth).await.unwrap_err();
    assert_eq!(err, ProviderError::RateLimited { retry_after: Some(Duration::from_secs(7)) });
    s.emu.fail_next(1, 503, None);
    let err = s.graph.sync(&s.auth, &s.cal, None, march()).await.unwrap_err();
    assert_eq!(err, ProviderError::RateLimited { retry_after: None });
    assert!(s.graph.list_calendars(&s.auth).await.is_ok(), "only the next requests fail");
}

#[tokio::test]
async fn expired_or_revoked_tokens_are_unauthorized() {
    let s = setup().await;
    s.emu.expire_access_tokens();
    let err = s.graph.list_calendars(&s.auth).await.unwrap_err();
    assert!(matches!(&err, ProviderError::Unauthorized(m) if m.contains("InvalidAuthenticationToken")), "{err:?}");
    let fresh = Credentials::Bearer(access_token(&s.emu).await);
    assert!(s.graph.list_calendars(&fresh).await.is_ok());
    s.emu.revoke_all_grants();
    assert!(matches!(s.graph.list_calendars(&fresh).await, Err(ProviderError::Unauthorized(_))));
}

#[tokio::test]
async fn a_series_with_an_exception_and_a_cancelled_occurrence() {
    let s = setup().await;
    let series = s.emu.put_event(
        &s.cal,
        json!({
            "subject": "Standup",
            "start": {"dateTime": "2026-03-02T09:00:00.0000000", "timeZone": "Pacific Standard Time"},
            "end": {"dateTime": "2026-03-02T09:15:00.0000000", "timeZone": "Pacific Standard Time"},
            "recurrence": {
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"},
                "range": {"type": "numbered", "startDate": "2026-03-02", "numberOfOccurrences": 5,
                          "recurrenceTimeZone": "Pacific Standard Time"}
            }
        }),
    );
    // 09:00 PST is 17:00Z; from 8 March 09:00 PDT is 16:00Z.
    s.emu.modify_occurrence(
        &series,
        "2026-03-09T16:00:00Z",
        json!({"subject": "Standup (late)",
               "start": {"dateTime": "2026-03-09T11:00:00", "timeZone": "Pacific Standard Time"},
               "end": {"dateTime": "2026-03-09T11:15:00", "timeZone": "Pacific Standard Time"}}),
    );
    s.emu.cancel_occurrence(&series, "2026-03-16T16:00:00Z");
    let cancelled_meeting = s.emu.put_event(
        &s.cal,
        json!({"subject": "Called off", "isCancelled": true,
               "start": {"dateTime": "2026-03-20T10:00:00", "timeZone": "UTC"},
               "end": {"dateTime": "2026-03-20T11:00:00", "timeZone": "UTC"}}),
    );

    let full = s.graph.sync(&s.auth, &s.cal, None, march()).await.unwrap();
    let items = upserts(&full.changes);
    assert_eq!(removed(&full.changes), [cancelled_meeting.as_str()], "a cancelled meeting is not busy time");
    assert!(items.iter().all(|i| i.ical.contains(&format!("X-KAIROS-SERIES-ID:{series}\r\n"))));
    assert_eq!(
        instances(&items),
        [
            ("2026-03-02T17:00:00Z".to_string(), "Standup".to_string()),
            ("2026-03-09T18:00:00Z".to_string(), "Standup (late)".to_string()),
            ("2026-03-23T16:00:00Z".to_string(), "Standup".to_string()),
            ("2026-03-30T16:00:00Z".to_string(), "Standup".to_string()),
        ]
    );
    // Each instance is its own object: cancelling one more removes exactly that one.
    let last = items.iter().find(|i| i.ical.contains("DTSTART:20260330T160000Z")).unwrap().id.clone();
    s.emu.cancel_occurrence(&series, "2026-03-30T16:00:00Z");
    let next = s.graph.sync(&s.auth, &s.cal, full.cursor.as_deref(), march()).await.unwrap();
    assert_eq!(removed(&next.changes), [last.as_str()]);
    assert!(upserts(&next.changes).is_empty());
}

fn draft(uid: &str, title: &str) -> EventDraft {
    EventDraft {
        uid: uid.to_string(),
        title: title.to_string(),
        description: Some("Booked with Kairos".to_string()),
        start: ts("2026-03-18T16:00:00Z"),
        end: ts("2026-03-18T16:30:00Z"),
        timezone: "Europe/Berlin".to_string(),
        attendees: vec![DraftAttendee { email: "bob@example.com".to_string(), name: Some("Bob".to_string()) }],
    }
}

#[tokio::test]
async fn writes_are_visible_in_the_mailbox_and_idempotent_on_retry() {
    let s = setup().await;
    let created = s.graph.create_event(&s.auth, &s.cal, &draft("bk_1", "Intro call")).await.unwrap();
    let stored = s.emu.event(&created.id).unwrap();
    assert_eq!(stored["subject"], "Intro call");
    assert_eq!(stored["transactionId"], "bk_1");
    assert_eq!(stored["start"], json!({"dateTime": "2026-03-18T17:00:00", "timeZone": "W. Europe Standard Time"}));
    assert_eq!(stored["attendees"][0]["emailAddress"]["address"], "bob@example.com");
    assert_eq!(instances(&[&created]), [("2026-03-18T16:00:00Z".to_string(), "Intro call".to_string())]);

    let retried = s.graph.create_event(&s.auth, &s.cal, &draft("bk_1", "Intro call")).await.unwrap();
    assert_eq!(retried.id, created.id, "the same transactionId does not make a second event");
    assert_eq!(s.emu.events(&s.cal).len(), 1);

    let updated = s
        .graph
        .update_event(&s.auth, &s.cal, &created.id, created.etag.as_deref(), &draft("bk_1", "Intro call (moved)"))
        .await
        .unwrap();
    assert_eq!(s.emu.event(&created.id).unwrap()["subject"], "Intro call (moved)");
    assert_ne!(updated.etag, created.etag);
    let stale = s.graph.update_event(&s.auth, &s.cal, &created.id, created.etag.as_deref(), &draft("bk_1", "x")).await;
    assert_eq!(stale.unwrap_err(), ProviderError::Conflict);

    assert_eq!(
        s.graph.delete_event(&s.auth, &s.cal, &created.id, created.etag.as_deref()).await.unwrap_err(),
        ProviderError::Conflict,
        "a stale etag does not delete"
    );
    s.graph.delete_event(&s.auth, &s.cal, &created.id, updated.etag.as_deref()).await.unwrap();
    assert!(s.emu.event(&created.id).is_none());
    s.graph.delete_event(&s.auth, &s.cal, &created.id, None).await.unwrap();
    let missing = s.graph.update_event(&s.auth, &s.cal, &created.id, None, &draft("bk_1", "x")).await;
    assert!(matches!(missing, Err(ProviderError::NotFound(_))));
}

/// A webhook receiver: answers Graph's validation handshake, records notifications.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Value>>>,
}

async fn receive(State(r): State<Receiver>, Query(q): Query<HashMap<String, String>>, body: Bytes) -> Response {
    if let Some(token) = q.get("validationToken") {
        return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token.clone()).into_response();
    }
    r.seen.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    StatusCode::ACCEPTED.into_response()
}

async fn receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graph/hook", listener.local_addr().unwrap());
    let app = Router::new().route("/graph/hook", post(receive)).with_state(r.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, url)
}

#[tokio::test]
async fn watch_renew_and_stop_manage_a_graph_subscription() {
    let s = setup().await;
    let (receiver, address) = receiver().await;
    let far = Timestamp::now().checked_add(SignedDuration::from_hours(24 * 7)).unwrap();
    let channel = s.graph.watch(&s.auth, &s.cal, &address, "channel-token-1", far).await.unwrap().unwrap();
    let subs = s.emu.subscriptions();
    assert_eq!(subs.len(), 1);
    let sub = &subs[0];
    assert_eq!(sub.id, channel.id);
    assert_eq!(sub.resource, format!("me/calendars/{}/events", s.cal));
    assert_eq!(sub.client_state.as_deref(), Some("channel-token-1"));
    assert_eq!(
        (sub.notification_url.as_str(), sub.lifecycle_url.as_deref()),
        (address.as_str(), Some(address.as_str()))
    );
    let limit = Timestamp::now().checked_add(SignedDuration::from_mins(4230)).unwrap();
    assert!(channel.expires_at <= limit && channel.expires_at == sub.expiration, "capped at Graph's 4,230 minutes");

    s.emu.put_event(&s.cal, single("Ping", "2026-03-10T10:00:00", "2026-03-10T11:00:00"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let note = loop {
        if let Some(n) = receiver.seen.lock().unwrap().first().cloned() {
            break n;
        }
        assert!(tokio::time::Instant::now() < deadline, "no change notification arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(note["value"][0]["clientState"], "channel-token-1");
    assert_eq!(note["value"][0]["subscriptionId"], json!(channel.id));

    let soon = Timestamp::now().checked_add(SignedDuration::from_hours(2)).unwrap();
    let renewed = s.graph.renew(&s.auth, &channel, soon).await.unwrap();
    assert_eq!(renewed.id, channel.id);
    assert_eq!(s.emu.subscriptions()[0].expiration, renewed.expires_at);
    assert!(renewed.expires_at.duration_since(soon).abs() < SignedDuration::from_secs(1));

    s.graph.stop(&s.auth, &renewed).await.unwrap();
    assert!(s.emu.subscriptions().is_empty());
    s.graph.stop(&s.auth, &renewed).await.unwrap();
    assert!(matches!(s.graph.renew(&s.auth, &renewed, soon).await, Err(ProviderError::NotFound(_))));

    let refused = s.graph.watch(&s.auth, &s.cal, "http://127.0.0.1:9/nobody", "t", far).await.unwrap_err();
    assert!(matches!(&refused, ProviderError::Http { status: 400, .. }), "{refused:?}");
}

#[tokio::test]
async fn free_busy_merges_the_busy_time_of_several_calendars() {
    let s = setup().await;
    s.emu.add_calendar("AAMkAD-team", "Team", false);
    let mut free = single("Focus (free)", "2026-03-10T12:00:00", "2026-03-10T13:00:00");
    free["showAs"] = json!("free");
    let mut tentative = single("Maybe", "2026-03-10T14:00:00", "2026-03-10T15:00:00");
    tentative["showAs"] = json!("tentative");
    let mut cancelled = single("Off", "2026-03-10T16:00:00", "2026-03-10T17:00:00");
    cancelled["isCancelled"] = json!(true);
    s.emu.put_events(
        &s.cal,
        vec![single("Busy", "2026-03-10T10:00:00", "2026-03-10T11:00:00"), free, tentative, cancelled],
    );
    s.emu.put_event("AAMkAD-team", single("Team", "2026-03-10T10:30:00", "2026-03-10T11:30:00"));
    s.emu.put_event("AAMkAD-team", single("Late", "2026-03-10T23:30:00", "2026-03-11T01:00:00"));
    let window = Interval::new(ts("2026-03-10T00:00:00Z"), ts("2026-03-11T00:00:00Z")).unwrap();
    let busy = s.graph.free_busy(&s.auth, &[s.cal.clone(), "AAMkAD-team".to_string()], window).await.unwrap();
    let got: Vec<(String, String)> = busy.iter().map(|i| (i.start().to_string(), i.end().to_string())).collect();
    assert_eq!(
        got,
        [
            ("2026-03-10T10:00:00Z".to_string(), "2026-03-10T11:30:00Z".to_string()),
            ("2026-03-10T14:00:00Z".to_string(), "2026-03-10T15:00:00Z".to_string()),
            ("2026-03-10T23:30:00Z".to_string(), "2026-03-11T00:00:00Z".to_string()),
        ]
    );
}
