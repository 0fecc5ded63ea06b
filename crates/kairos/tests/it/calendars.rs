//! ICS feed calendars over HTTP: connecting a feed served locally, its busy time in slot
//! searches, conditional GETs on sync, selection, the unified events API and disconnecting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

/// A feed server: serves `body` with an ETag, answers 304 to a matching If-None-Match, and
/// counts requests and conditional ones.
#[derive(Clone, Default)]
struct Feed {
    body: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
    not_modified: Arc<AtomicUsize>,
}

impl Feed {
    async fn start(body: &str) -> (Self, String) {
        let feed = Feed { body: Arc::new(Mutex::new(body.to_string())), ..Feed::default() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/alice.ics", listener.local_addr().unwrap());
        let f = feed.clone();
        let app = axum::Router::new()
            .route(
                "/alice.ics",
                axum::routing::get(move |headers: HeaderMap| {
                    let f = f.clone();
                    async move {
                        f.requests.fetch_add(1, Ordering::SeqCst);
                        let body = f.body.lock().unwrap().clone();
                        let etag = format!("\"{}\"", body.len());
                        if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
                            f.not_modified.fetch_add(1, Ordering::SeqCst);
                            return (StatusCode::NOT_MODIFIED, [("etag", etag)], String::new());
                        }
                        (StatusCode::OK, [("etag", etag)], body)
                    }
                }),
            )
            .route("/not-a-calendar", axum::routing::get(|| async { "<html>hello</html>" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (feed, url)
    }

    fn set(&self, body: &str) {
        *self.body.lock().unwrap() = body.to_string();
    }
}

/// Alice's feed: a weekly stand-up (Tuesdays 10:00 New York, one moved, one cancelled), an
/// all-day event, a transparent event and one she declined.
const FEED: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-CALNAME:Alice at work\r\n\
BEGIN:VEVENT\r\nUID:standup\r\nSUMMARY:Stand-up\r\nDTSTART;TZID=America/New_York:20300101T100000\r\nDTEND;TZID=America/New_York:20300101T103000\r\nRRULE:FREQ=WEEKLY;BYDAY=TU\r\nEXDATE;TZID=America/New_York:20300115T100000\r\nLOCATION:https://meet.google.com/abc-defg-hij\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:standup\r\nRECURRENCE-ID;TZID=America/New_York:20300108T100000\r\nSUMMARY:Stand-up (moved)\r\nDTSTART;TZID=America/New_York:20300108T140000\r\nDTEND;TZID=America/New_York:20300108T143000\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:offsite\r\nSUMMARY:Offsite\r\nDTSTART;VALUE=DATE:20300103\r\nDTEND;VALUE=DATE:20300104\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:free\r\nSUMMARY:Reminder\r\nDTSTART:20300102T150000Z\r\nDTEND:20300102T160000Z\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:declined\r\nSUMMARY:Optional talk\r\nDTSTART:20300102T170000Z\r\nDTEND:20300102T180000Z\r\nATTENDEE;PARTSTAT=DECLINED:mailto:alice@example.com\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nSUMMARY:No UID, so skipped\r\nDTSTART:20300102T190000Z\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

async fn slots(app: &TestApp, from: &str, to: &str) -> Vec<String> {
    let r = app
        .get(&format!("/v1/availability/slots?participants=user:alice@example.com&from={from}&to={to}&duration=30"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap().to_string()).collect()
}

async fn connect(app: &TestApp, url: &str) -> Value {
    let r = app.post("/v1/calendars/ics", json!({"user": "alice@example.com", "url": url})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

#[tokio::test]
async fn a_connected_feed_holds_busy_time_and_lists_expanded_events() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "America/New_York").await;
    let (_feed, url) = Feed::start(FEED).await;
    let connected = connect(&app, &url).await;
    assert_eq!(connected["connection"]["provider"], "ics");
    assert_eq!(connected["calendars"][0]["name"], "Alice at work");
    assert_eq!(connected["calendars"][0]["selected"], true);
    let skipped = &connected["skipped_events"];
    assert_eq!(skipped.as_array().unwrap().len(), 1, "{skipped}");
    assert!(skipped[0]["reason"].as_str().unwrap().contains("UID"), "the event without a UID is reported: {skipped}");

    // Tuesday 2030-01-01 10:00–10:30 New York (15:00Z) is the stand-up.
    let open = slots(&app, "2030-01-01T14:00:00Z", "2030-01-01T16:00:00Z").await;
    assert_eq!(open, ["2030-01-01T14:00:00Z", "2030-01-01T14:30:00Z", "2030-01-01T15:30:00Z"]);
    // The transparent event and the declined one hold nothing; the all-day event holds
    // Alice's whole 3 January in New York (05:00Z to 05:00Z).
    assert_eq!(slots(&app, "2030-01-02T15:00:00Z", "2030-01-02T18:00:00Z").await.len(), 6);
    assert!(slots(&app, "2030-01-03T05:00:00Z", "2030-01-04T05:00:00Z").await.is_empty());
    assert_eq!(slots(&app, "2030-01-04T05:00:00Z", "2030-01-04T06:00:00Z").await.len(), 2);

    let r = app.get("/v1/events?user=alice@example.com&start=2030-01-01T00:00:00Z&end=2030-01-23T00:00:00Z").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let events = r.body["result"].as_array().unwrap();
    let shown: Vec<(String, String, bool)> = events
        .iter()
        .map(|e| {
            (
                e["title"].as_str().unwrap().to_string(),
                e["start_time"].as_str().unwrap().to_string(),
                e["busy"].as_bool().unwrap(),
            )
        })
        .collect();
    let own = |t: &str, s: &str, b: bool| (t.to_string(), s.to_string(), b);
    assert_eq!(
        shown,
        [
            own("Stand-up", "2030-01-01T15:00:00Z", true),
            own("Reminder", "2030-01-02T15:00:00Z", false),
            own("Optional talk", "2030-01-02T17:00:00Z", false),
            own("Offsite", "2030-01-03", true),
            own("Stand-up (moved)", "2030-01-08T19:00:00Z", true),
            own("Stand-up", "2030-01-22T15:00:00Z", true),
        ],
        "the 15th is excluded, the 8th moved"
    );
    let first = &events[0];
    assert_eq!(first["timezone"], "America/New_York");
    assert_eq!(first["is_recurring"], true);
    assert_eq!(first["meeting_link"], "https://meet.google.com/abc-defg-hij");
    assert_eq!(events[3]["all_day"], true);
    assert_eq!(events[3]["end_time"], "2030-01-04");

    // Cursor pagination walks the same list.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = app
            .get(&format!(
                "/v1/events?user=alice@example.com&start=2030-01-01T00:00:00Z&end=2030-01-23T00:00:00Z&limit=4{cursor}"
            ))
            .await;
        seen.extend(r.body["result"].as_array().unwrap().iter().map(|e| e["id"].clone()));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, events.iter().map(|e| e["id"].clone()).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_events_window_is_at_most_62_days_and_bad_input_names_the_field() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "UTC").await;
    let wide = app.get("/v1/events?user=alice@example.com&start=2030-01-01T00:00:00Z&end=2030-03-05T00:00:00Z").await;
    assert_error(&wide, 422, "parameter_invalid", Some("end"));
    assert!(wide.body["error"]["message"].as_str().unwrap().contains("62 days"));
    let backwards =
        app.get("/v1/events?user=alice@example.com&start=2030-01-02T00:00:00Z&end=2030-01-01T00:00:00Z").await;
    assert_error(&backwards, 422, "parameter_invalid", Some("end"));
    let nobody = app.get("/v1/events?user=bob@example.com&start=2030-01-01T00:00:00Z&end=2030-01-02T00:00:00Z").await;
    assert_eq!(nobody.status, 404, "{}", nobody.body);
    assert_eq!(nobody.body["error"]["param"], "user");
}

#[tokio::test]
async fn unusable_feeds_are_refused_and_nothing_is_stored() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "UTC").await;
    let (_feed, url) = Feed::start(FEED).await;
    let html = url.replace("/alice.ics", "/not-a-calendar");
    let r = app.post("/v1/calendars/ics", json!({"user": "alice@example.com", "url": html})).await;
    assert_error(&r, 422, "parameter_invalid", Some("url"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("not iCalendar"), "{}", r.body);
    let missing = url.replace("/alice.ics", "/gone.ics");
    let r = app.post("/v1/calendars/ics", json!({"user": "alice@example.com", "url": missing})).await;
    assert!(r.body["error"]["message"].as_str().unwrap().contains("404"), "{}", r.body);
    let unreachable =
        app.post("/v1/calendars/ics", json!({"user": "alice@example.com", "url": "http://127.0.0.1:9/x.ics"})).await;
    assert_error(&unreachable, 422, "parameter_invalid", Some("url"));
    let listed = app.get("/v1/calendars").await;
    assert_eq!(listed.body["calendars"], json!([]));
    assert_eq!(listed.body["providers"][3]["connected"], false);
    connect(&app, &url).await;
    let twice = app.post("/v1/calendars/ics", json!({"user": "alice@example.com", "url": url})).await;
    assert_eq!(twice.status, 409, "{}", twice.body);
}

#[tokio::test]
async fn sync_uses_conditional_gets_is_throttled_and_picks_up_changes() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "America/New_York").await;
    let (feed, url) = Feed::start(FEED).await;
    connect(&app, &url).await;
    assert_eq!(feed.requests.load(Ordering::SeqCst), 1);

    // Within 60 s of the last sync: the cached time, no request.
    let r = app.post("/v1/calendars/sync?user=alice@example.com", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["events_synced"], 0);
    assert_eq!(feed.requests.load(Ordering::SeqCst), 1);

    app.clock.advance(jiff::SignedDuration::from_secs(61));
    let r = app.post("/v1/calendars/sync?user=alice@example.com", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (feed.requests.load(Ordering::SeqCst), feed.not_modified.load(Ordering::SeqCst)),
        (2, 1),
        "If-None-Match → 304"
    );

    // The feed changes: the stand-up is gone, Alice's Tuesday morning is free.
    feed.set(
        &FEED.replace("UID:standup\r\nSUMMARY:Stand-up\r\n", "UID:standup\r\nSUMMARY:Stand-up\r\nSTATUS:CANCELLED\r\n"),
    );
    app.clock.advance(jiff::SignedDuration::from_secs(61));
    let r = app.post("/v1/calendars/sync", json!({})).await;
    assert!(r.body["events_synced"].as_u64().unwrap() > 0, "{}", r.body);
    assert_eq!(slots(&app, "2030-01-01T14:00:00Z", "2030-01-01T16:00:00Z").await.len(), 4);
    let listed = app.get("/v1/calendars?user=alice@example.com").await;
    assert_eq!(listed.body["providers"][3]["name"], "ics", "google, microsoft, caldav, ics");
    assert_eq!(listed.body["providers"][3]["status"], "active");
    assert!(listed.body["providers"][3]["last_sync"].is_string());
}

#[tokio::test]
async fn deselecting_or_disconnecting_frees_the_time() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "America/New_York").await;
    let (_feed, url) = Feed::start(FEED).await;
    let connected = connect(&app, &url).await;
    let calendar = connected["calendars"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(slots(&app, "2030-01-01T15:00:00Z", "2030-01-01T15:30:00Z").await.len(), 0);

    let r = app.patch(&format!("/v1/calendars/{calendar}"), json!({"selected": false})).await;
    assert_eq!((r.status.as_u16(), r.body["selected"].clone()), (200, json!(false)), "{}", r.body);
    assert_eq!(slots(&app, "2030-01-01T15:00:00Z", "2030-01-01T15:30:00Z").await.len(), 1, "deselected: free");

    let r = app.patch(&format!("/v1/calendars/{calendar}"), json!({"selected": true})).await;
    assert_eq!(r.status, 200);
    app.clock.advance(jiff::SignedDuration::from_secs(61));
    app.post("/v1/calendars/sync", json!({})).await;
    assert_eq!(slots(&app, "2030-01-01T15:00:00Z", "2030-01-01T15:30:00Z").await.len(), 0, "selected again: busy");

    let bad = app.delete("/v1/calendars/disconnect?provider=gmail").await;
    assert_error(&bad, 422, "parameter_invalid", Some("provider"));
    let r = app.delete("/v1/calendars/disconnect?provider=ics&user=alice@example.com").await;
    assert_eq!(r.body["disconnected"], 1, "{}", r.body);
    assert_eq!(slots(&app, "2030-01-01T15:00:00Z", "2030-01-01T15:30:00Z").await.len(), 1);
    assert_eq!(app.get("/v1/calendars").await.body["calendars"], json!([]));
    let other = app.new_key("globex", kairos_store::Mode::Test).await;
    let r = app
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/calendars/{calendar}"),
            Some(&other),
            Some("{\"selected\":true}"),
            &[],
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn event_pages_resume_after_their_cursor_and_refuse_a_forged_one() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "UTC").await;
    // The same UID exported once per occurrence, and a floating event.
    let feed = "BEGIN:VCALENDAR\r\n\
BEGIN:VEVENT\r\nUID:dup\r\nSUMMARY:A\r\nDTSTART:20300102T090000Z\r\nDURATION:PT1H\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:dup\r\nSUMMARY:B\r\nDTSTART:20300103T090000Z\r\nDURATION:PT1H\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:floating\r\nSUMMARY:C\r\nDTSTART:20300104T090000\r\nDURATION:PT1H\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
    let (_feed, url) = Feed::start(feed).await;
    connect(&app, &url).await;
    let path = "/v1/events?user=alice@example.com&start=2030-01-01T00:00:00Z&end=2030-01-10T00:00:00Z";
    let all = app.get(path).await;
    let titles: Vec<&str> =
        all.body["result"].as_array().unwrap().iter().map(|e| e["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["A", "B", "C"], "both events of one UID count: {}", all.body);
    assert_eq!(
        all.body["result"][2]["start_time"], "2030-01-04T09:00:00Z",
        "floating times in the user's zone, as UTC"
    );
    let first = app.get(&format!("{path}&limit=1")).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    let second = app.get(&format!("{path}&limit=1&cursor={cursor}")).await;
    assert_eq!(second.body["result"][0]["title"], "B");
    let forged = app.get(&format!("{path}&cursor=nonsense")).await;
    assert_error(&forged, 422, "parameter_invalid", Some("cursor"));
}
