//! Google Calendar end to end against the emulator: OAuth with PKCE through the real
//! redirects, the first sync, push notifications, token refresh and its refusal, reconnection
//! and disconnection — all through Kairos's HTTP API.

use std::time::Duration;

use kairos::config::GoogleConfig;
use kairos_emulators::google::GoogleEmulator;
use serde_json::{Value, json};

use crate::support::*;

const APP_PAGE: &str = "https://app.example.com/settings/calendars";

async fn start() -> (TestApp, GoogleEmulator) {
    let google = GoogleEmulator::start().await.unwrap();
    let base = google.base_url();
    let app = TestApp::start_live(move |config| {
        config.google = Some(
            GoogleConfig::new(GoogleEmulator::CLIENT_ID.into(), GoogleEmulator::CLIENT_SECRET.into(), Some(&base))
                .unwrap(),
        );
        config.calendars.every = Duration::from_secs(3600);
    })
    .await;
    app.user("alice@example.com", "UTC").await;
    (app, google)
}

/// Runs the browser's part of the OAuth dance: our connect URL → the provider's consent
/// (which approves at once) → our callback → the app's page. Returns where it ended and the
/// callback URL that was used.
async fn consent(app: &TestApp, state: &str) -> (url::Url, String) {
    let r = app
        .post(
            "/v1/calendars/google/connect_url",
            json!({"user": "alice@example.com", "redirect_uri": APP_PAGE, "state": state}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let browser = no_redirects();
    let at_provider = browser.get(r.body["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(at_provider.status(), 302, "the emulator consents and sends the browser back");
    let callback = location(&at_provider);
    assert!(callback.starts_with(&format!("{}/v1/calendars/google/callback?", app.base)), "{callback}");
    let back = browser.get(&callback).send().await.unwrap();
    assert_eq!(back.status(), 302, "{}", back.text().await.unwrap());
    (url::Url::parse(&location(&back)).unwrap(), callback)
}

async fn google_provider(app: &TestApp) -> Value {
    let r = app.get("/v1/calendars?user=alice@example.com").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["providers"].as_array().unwrap().iter().find(|p| p["name"] == "google").cloned().unwrap()
}

async fn slots(app: &TestApp, from: &str, to: &str) -> Vec<String> {
    let r = app
        .get(&format!("/v1/availability/slots?participants=user:alice@example.com&from={from}&to={to}&duration=60"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap().to_string()).collect()
}

fn event(summary: &str, start: &str, end: &str) -> Value {
    json!({"summary": summary, "start": {"dateTime": start}, "end": {"dateTime": end}})
}

#[tokio::test]
async fn google_connects_syncs_pushes_refreshes_and_disconnects() {
    let (app, google) = start().await;
    // The emulator keeps real time (token and channel expiry), so this test does too: its
    // events are tomorrow and in the weeks after.
    let day = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC).date().tomorrow().unwrap();
    let morning = || async { slots(&app, &utc(day, 9), &utc(day, 12)).await };
    let primary = google.account_email();
    google.put_event(&primary, event("Planning", &utc(day, 10), &utc(day, 11)));
    // A weekly 1:1 at 09:00 New York time, from the day after: its UTC hour follows DST.
    let first = day.tomorrow().unwrap();
    let ny = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let local = |d: jiff::civil::Date, minute: i8| d.at(9, minute, 0, 0).to_zoned(ny.clone()).unwrap();
    let weekly = json!({
        "summary": "Weekly 1:1",
        "start": {"dateTime": local(first, 0).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(), "timeZone": "America/New_York"},
        "end": {"dateTime": local(first, 30).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(), "timeZone": "America/New_York"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
    });
    google.put_event(&primary, weekly);

    let (back, callback) = consent(&app, "s-1").await;
    assert_eq!(back.as_str().split('?').next(), Some(APP_PAGE));
    let q: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!((q["google_connected"].as_str(), q["state"].as_str()), ("true", "s-1"));

    // The state works once.
    let replay = no_redirects().get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    let forged = callback.replace("state=", "state=0000");
    assert_eq!(no_redirects().get(&forged).send().await.unwrap().status(), 400);

    // The first sync runs in the background, then the busy time holds.
    eventually("the first sync", || async { !google_provider(&app).await["last_sync"].is_null() }).await;
    let p = google_provider(&app).await;
    assert_eq!((p["connected"].as_bool(), p["status"].as_str()), (Some(true), Some("active")), "{p}");
    assert_eq!(morning().await, [utc(day, 9), utc(day, 11)], "10:00–11:00 is taken");
    // The series' third instance, two weeks on, at 09:00 in New York.
    let third = local(first.checked_add(jiff::Span::new().days(14)).unwrap(), 0).timestamp();
    let r = app
        .get(&format!(
            "/v1/availability/slots?participants=user:alice@example.com&from={}&to={}&duration=30",
            third - jiff::SignedDuration::from_mins(30),
            third + jiff::SignedDuration::from_mins(60)
        ))
        .await;
    let around: Vec<&str> = r.body["slots"].as_array().unwrap().iter().filter_map(|s| s["start"].as_str()).collect();
    assert!(!around.contains(&third.to_string().as_str()), "{third} is taken: {around:?}");
    assert_eq!(around.len(), 2, "{around:?}");
    let events = app
        .get(&format!(
            "/v1/events?user=alice@example.com&start={}&end={}",
            utc(day, 0),
            utc(day.checked_add(jiff::Span::new().days(40)).unwrap(), 0)
        ))
        .await;
    assert_eq!(events.status, 200, "{}", events.body);
    let titles: Vec<&str> =
        events.body["result"].as_array().unwrap().iter().filter_map(|e| e["title"].as_str()).collect();
    assert_eq!(titles.iter().filter(|t| **t == "Weekly 1:1").count(), 4, "{titles:?}");
    assert!(titles.contains(&"Planning"));

    // A push channel was opened; a change in Google arrives by push, without waiting for the
    // 1-hour interval.
    eventually("a watch channel", || async { google.channels().len() == 1 }).await;
    let id = google.put_event(&primary, event("Interview", &utc(day, 9), &utc(day, 10)));
    eventually("the pushed change", || async { morning().await == [utc(day, 11)] }).await;
    google.delete_event(&primary, &id);
    eventually("the pushed deletion", || async { morning().await.len() == 2 }).await;

    // An expired access token is refreshed (once) and the sync goes on.
    let grants = google.refresh_grants();
    google.expire_access_tokens();
    google.put_event(&primary, event("Review", &utc(day, 11), &utc(day, 12)));
    eventually("the sync after a refresh", || async { morning().await == [utc(day, 9)] }).await;
    assert_eq!(google.refresh_grants(), grants + 1);

    // The grant is revoked in Google: needs_reauth, and what was synced stays.
    google.revoke_all_grants();
    google.put_event(&primary, event("Unseen", &utc(day, 9), &utc(day, 10)));
    eventually("needs_reauth", || async { google_provider(&app).await["status"] == "needs_reauth" }).await;
    let listed = app.get("/v1/calendars?user=alice@example.com").await;
    assert_eq!(listed.body["connections"][0]["status"], "needs_reauth", "{}", listed.body);
    assert!(listed.body["connections"][0]["last_error"].as_str().unwrap().contains("revoked"), "{}", listed.body);
    assert_eq!(morning().await, [utc(day, 9)]);

    // Connecting again reactivates the same connection and catches up.
    let (back, _) = consent(&app, "s-2").await;
    assert!(back.as_str().contains("google_connected=true"), "{back}");
    eventually("the catch-up sync", || async { morning().await.is_empty() }).await;
    assert_eq!(google_provider(&app).await["status"], "active");
    let conns = app.store.calendar_connections(&tenant(&app).await, None).await.unwrap();
    assert_eq!(conns.len(), 1, "one connection, reactivated");

    // Disconnecting stops push, revokes the grant and frees the time.
    let r = app.delete("/v1/calendars/disconnect?provider=google&user=alice@example.com").await;
    assert_eq!((r.status.as_u16(), r.body["disconnected"].as_u64()), (200, Some(1)), "{}", r.body);
    assert!(google.channels().is_empty(), "the watch channel is stopped: {:?}", google.channels());
    assert!(!google.revoked().is_empty(), "the grant is revoked");
    assert_eq!(morning().await.len(), 3);
    assert_eq!(google_provider(&app).await["connected"], false);
    app.stop().await;
}

#[tokio::test]
async fn bad_connect_requests_are_refused_clearly() {
    let (app, _google) = start().await;
    let r = app
        .post("/v1/calendars/yahoo/connect_url", json!({"user": "alice@example.com", "redirect_uri": APP_PAGE}))
        .await;
    assert_error(&r, 422, "parameter_invalid", Some("provider"));
    let r = app
        .post("/v1/calendars/microsoft/connect_url", json!({"user": "alice@example.com", "redirect_uri": APP_PAGE}))
        .await;
    assert_error(&r, 422, "parameter_invalid", Some("provider"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("KAIROS_MICROSOFT_CLIENT_ID"));
    let r = app
        .post("/v1/calendars/google/connect_url", json!({"user": "alice@example.com", "redirect_uri": "/relative"}))
        .await;
    assert_error(&r, 422, "parameter_invalid", Some("redirect_uri"));
    let r = app
        .post("/v1/calendars/google/connect_url", json!({"user": "nobody@example.com", "redirect_uri": APP_PAGE}))
        .await;
    assert_error(&r, 404, "resource_missing", Some("user"));
    // The GET form redirects straight to the consent page, the user named by `state`.
    let r = no_redirects()
        .get(format!("{}/v1/calendars/google/connect?redirect_uri={APP_PAGE}&state=alice@example.com", app.base))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(location(&r).contains("code_challenge_method=S256"));
    // A declined consent goes back to the app with the provider's error.
    let r = app
        .post("/v1/calendars/google/connect_url", json!({"user": "alice@example.com", "redirect_uri": APP_PAGE}))
        .await;
    let consent = url::Url::parse(r.body["url"].as_str().unwrap()).unwrap();
    let state = consent.query_pairs().find(|(k, _)| k == "state").unwrap().1.to_string();
    let declined = no_redirects()
        .get(format!("{}/v1/calendars/google/callback?error=access_denied&state={state}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(declined.status(), 302);
    assert!(location(&declined).ends_with("google_connected=false&error=access_denied"), "{}", location(&declined));
    app.stop().await;
}

async fn tenant(app: &TestApp) -> kairos_store::Tenant {
    let hash = kairos_store::keys::hash(&app.key);
    app.store.tenant_for_key(&hash).await.unwrap().unwrap()
}

/// The booking's write-back state for its one participant.
async fn written(app: &TestApp, id: &str) -> Value {
    let r = app.get(&format!("/v1/bookings/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["calendar_events"][0].clone()
}

#[tokio::test]
async fn bookings_are_written_to_the_hosts_google_calendar() {
    let (app, google) = start().await;
    let primary = google.account_email();
    let (back, _) = consent(&app, "s").await;
    assert!(back.as_str().contains("google_connected=true"));
    let day = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC).date().tomorrow().unwrap();
    let biz = app
        .business(json!({"name": "Intro call", "timezone": "UTC", "hosts": ["alice@example.com"], "working_hours": all_week()}))
        .await;
    let booked = app
        .post(
            "/v1/bookings",
            json!({"business_id": biz, "customer_email": "jane@example.com", "customer_name": "Jane Doe",
                   "start_time": utc(day, 14), "end_time": utc(day, 15)}),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    let id = booked.body["id"].as_str().unwrap().to_string();

    // The event appears on Alice's primary calendar, with the customer invited.
    eventually("the event is written", || async { written(&app, &id).await["status"] == "synced" }).await;
    let state = written(&app, &id).await;
    let event_id = state["event_id"].as_str().unwrap().to_string();
    let event = google.event(&primary, &event_id).expect("the event is in Google");
    assert_eq!(
        event["start"]["dateTime"].as_str().map(|t| t.parse::<jiff::Timestamp>().unwrap().to_string()),
        Some(utc(day, 14))
    );
    let attendees: Vec<&str> =
        event["attendees"].as_array().unwrap().iter().filter_map(|a| a["email"].as_str()).collect();
    assert_eq!(attendees, ["jane@example.com"]);
    assert_eq!(google.events(&primary).len(), 1, "written once");

    // Rescheduled: the same event moves.
    let moved = app
        .post(&format!("/v1/bookings/{id}/reschedule"), json!({"start_time": utc(day, 16), "end_time": utc(day, 17)}))
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    eventually("the event moves", || async {
        google
            .event(&primary, &event_id)
            .and_then(|e| e["start"]["dateTime"].as_str().map(str::to_string))
            .is_some_and(|t| t.parse::<jiff::Timestamp>().unwrap().to_string() == utc(day, 16))
    })
    .await;
    assert_eq!(google.events(&primary).len(), 1);

    // A failing provider is visible on the booking while the write waits to retry (only the
    // write fails: a background sync meanwhile must not take the failure instead).
    google.fail_next_writes(1, 503, None);
    let moved = app
        .post(&format!("/v1/bookings/{id}/reschedule"), json!({"start_time": utc(day, 18), "end_time": utc(day, 19)}))
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    eventually("the failure is recorded", || async { written(&app, &id).await["attempts"] == 1 }).await;
    let state = written(&app, &id).await;
    assert_eq!(state["status"], "pending", "{state}");
    assert!(state["last_error"].as_str().unwrap().contains("rate limiting or unavailable"), "{state}");
    assert!(state["next_attempt_at"].is_string());

    // Cancelled: the event is deleted (the failed move is superseded).
    let cancelled = app.post(&format!("/v1/bookings/{id}/cancel"), json!({})).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    for _ in 0..100 {
        if google.events(&primary).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(google.events(&primary).is_empty(), "the event is deleted: {}", written(&app, &id).await);
    assert_eq!(written(&app, &id).await["status"], "synced");
    app.stop().await;
}

#[tokio::test]
async fn events_are_created_changed_and_deleted_through_the_provider() {
    let (app, google) = start().await;
    let primary = google.account_email();
    consent(&app, "s").await;
    eventually("the first sync", || async { !google_provider(&app).await["last_sync"].is_null() }).await;
    let day = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC).date().tomorrow().unwrap();
    let morning = || async { slots(&app, &utc(day, 9), &utc(day, 12)).await };

    let r = app
        .post(
            "/v1/events",
            json!({"user": "alice@example.com", "title": "Design review", "description": "Room 4",
                   "start_time": utc(day, 10), "end_time": utc(day, 11),
                   "attendees": ["bob@example.com", {"email": "carol@example.com", "name": "Carol"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        (r.body["title"].as_str(), r.body["start_time"].as_str()),
        (Some("Design review"), Some(utc(day, 10).as_str()))
    );
    let id = r.body["id"].as_str().unwrap().to_string();
    let in_google = google.events(&primary);
    assert_eq!(in_google.len(), 1);
    let emails: Vec<&str> =
        in_google[0]["attendees"].as_array().unwrap().iter().filter_map(|a| a["email"].as_str()).collect();
    assert_eq!(emails, ["bob@example.com", "carol@example.com"]);
    // Read back by the sync that the write made due.
    eventually("the event holds time", || async { morning().await == [utc(day, 9), utc(day, 11)] }).await;

    let r = app
        .patch(
            &format!("/v1/events/{id}"),
            json!({"title": "Design review (moved)", "start_time": utc(day, 11), "end_time": utc(day, 12)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["title"], "Design review (moved)");
    assert_eq!(google.events(&primary)[0]["summary"], "Design review (moved)");
    eventually("the moved event holds time", || async { morning().await == [utc(day, 9), utc(day, 10)] }).await;

    let r = app.delete(&format!("/v1/events/{id}")).await;
    assert_eq!((r.status.as_u16(), r.body["deleted"].as_bool()), (200, Some(true)), "{}", r.body);
    assert!(google.events(&primary).is_empty());
    eventually("the time is free", || async { morning().await.len() == 3 }).await;

    // Bad requests say what to fix and change nothing.
    let bad = |body: Value| {
        let app = &app;
        async move { app.post("/v1/events", body).await }
    };
    let base = json!({"user": "alice@example.com", "title": "x", "start_time": utc(day, 10), "end_time": utc(day, 11)});
    let mut backwards = base.clone();
    backwards["end_time"] = json!(utc(day, 9));
    assert_error(&bad(backwards).await, 422, "parameter_invalid", Some("end_time"));
    let mut link = base.clone();
    link["generate_meeting_link"] = json!(true);
    assert_error(&bad(link).await, 422, "parameter_invalid", Some("generate_meeting_link"));
    let mut elsewhere = base.clone();
    elsewhere["calendar_id"] = json!("cal_nope");
    assert_error(&bad(elsewhere).await, 404, "resource_missing", Some("calendar_id"));
    let mut guest = base.clone();
    guest["attendees"] = json!(["not-an-email"]);
    assert_eq!(bad(guest).await.status, 422);
    assert!(google.events(&primary).is_empty(), "nothing was written");
    assert_eq!(app.delete(&format!("/v1/events/{id}")).await.status, 404, "gone once synced");
    app.stop().await;
}

#[tokio::test]
async fn an_expired_sync_token_resyncs_in_full_and_a_429_waits_for_retry_after() {
    let (app, google) = start().await;
    let primary = google.account_email();
    consent(&app, "s").await;
    eventually("the first sync", || async { !google_provider(&app).await["last_sync"].is_null() }).await;
    eventually("a watch channel", || async { google.channels().len() == 1 }).await;
    let day = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC).date().tomorrow().unwrap();
    let morning = || async { slots(&app, &utc(day, 9), &utc(day, 12)).await };

    // Google forgets the sync token (410 fullSyncRequired): the next sync reads everything.
    google.expire_sync_tokens();
    let full_before = google.requests("/calendar/v3/calendars/");
    google.put_event(&primary, event("After the reset", &utc(day, 10), &utc(day, 11)));
    eventually("the full resync", || async { morning().await == [utc(day, 9), utc(day, 11)] }).await;
    assert!(google.requests("/calendar/v3/calendars/") >= full_before + 2, "a 410, then a full listing");
    assert_eq!(google_provider(&app).await["status"], "active");

    // Rate limited: the connection says so and waits for Retry-After (plus jitter).
    google.fail_next(1, 429, Some(120));
    let pushed_at = jiff::Timestamp::now();
    google.put_event(&primary, event("Throttled", &utc(day, 9), &utc(day, 10)));
    eventually("the throttled sync", || async { google_provider(&app).await["status"] == "error" }).await;
    let p = google_provider(&app).await;
    assert!(p["last_error"].as_str().unwrap().contains("rate limiting"), "{p}");
    let conn = app.store.calendar_connections(&tenant(&app).await, None).await.unwrap().remove(0);
    let wait = conn.next_sync_at.duration_since(pushed_at);
    assert!(wait >= jiff::SignedDuration::from_secs(119) && wait <= jiff::SignedDuration::from_secs(150), "{wait:?}");
    assert_eq!(morning().await, [utc(day, 9), utc(day, 11)], "not synced yet");
    app.stop().await;
}
