//! Microsoft 365 end to end against the Graph emulator: OAuth with PKCE, the first delta
//! sync, change and lifecycle notifications through a validated subscription, refresh-token
//! rotation, and disconnection — all through Kairos's HTTP API.

use std::time::Duration;

use kairos::config::MicrosoftConfig;
use kairos_emulators::microsoft::MicrosoftEmulator;
use serde_json::{Value, json};

use crate::support::*;

const APP_PAGE: &str = "https://app.example.com/settings/calendars";

/// A Graph event in UTC wall time (`2026-11-24T10:00:00.0000000`).
fn event(subject: &str, day: jiff::civil::Date, from: i8, to: i8) -> Value {
    let wall = |h: i8| format!("{}T{h:02}:00:00.0000000", day);
    json!({"subject": subject, "start": {"dateTime": wall(from), "timeZone": "UTC"}, "end": {"dateTime": wall(to), "timeZone": "UTC"}})
}

async fn provider(app: &TestApp) -> Value {
    let r = app.get("/v1/calendars?user=alice@example.com").await;
    r.body["providers"].as_array().unwrap().iter().find(|p| p["name"] == "microsoft").cloned().unwrap()
}

#[tokio::test]
async fn microsoft_connects_syncs_by_delta_hears_graph_and_rotates_refresh_tokens() {
    let graph = MicrosoftEmulator::start().await.unwrap();
    let base = graph.base_url();
    let app = TestApp::start_live(move |config| {
        config.microsoft = Some(
            MicrosoftConfig::new(
                MicrosoftEmulator::CLIENT_ID.into(),
                MicrosoftEmulator::CLIENT_SECRET.into(),
                Some(&base),
            )
            .unwrap(),
        );
        config.calendars.every = Duration::from_secs(3600);
    })
    .await;
    app.user("alice@example.com", "UTC").await;
    let day = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC).date().tomorrow().unwrap();
    let calendar = graph.default_calendar_id();
    graph.put_event(&calendar, event("Planning", day, 10, 11));
    let morning = || async {
        let r = app
            .get(&format!(
                "/v1/availability/slots?participants=user:alice@example.com&from={}&to={}&duration=60",
                utc(day, 9),
                utc(day, 12)
            ))
            .await;
        r.body["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };

    // Consent through the real redirects.
    let r = app
        .post("/v1/calendars/microsoft/connect_url", json!({"user": "alice@example.com", "redirect_uri": APP_PAGE}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["url"].as_str().unwrap().contains("offline_access"));
    let browser = no_redirects();
    let at_provider = browser.get(r.body["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(at_provider.status(), 302);
    let back = browser.get(location(&at_provider)).send().await.unwrap();
    assert_eq!(back.status(), 302);
    assert!(location(&back).ends_with("microsoft_connected=true"), "{}", location(&back));

    eventually("the first sync", || async { !provider(&app).await["last_sync"].is_null() }).await;
    assert_eq!(morning().await, [utc(day, 9), utc(day, 11)]);

    // The subscription passed Graph's validation handshake against our endpoint.
    eventually("a subscription", || async { graph.subscriptions().len() == 1 }).await;
    let sub = graph.subscriptions().remove(0);
    assert!(sub.notification_url.ends_with("/v1/providers/microsoft/notifications"), "{}", sub.notification_url);
    assert!(sub.lifecycle_url.is_some());

    // A change notification (clientState checked) makes the next delta round run now.
    let id = graph.put_event(&calendar, event("Interview", day, 9, 10));
    eventually("the notified change", || async { morning().await == [utc(day, 11)] }).await;
    graph.delete_event(&id);
    eventually("the notified deletion", || async { morning().await.len() == 2 }).await;

    // Refresh tokens rotate: two refreshes in a row work only if the new one was stored
    // (the emulator refuses a used refresh token).
    for n in 0..2 {
        let grants = graph.refresh_grants();
        graph.expire_access_tokens();
        let id = graph.put_event(&calendar, event("Rotated", day, 11, 12));
        eventually("the sync after a refresh", || async { morning().await == [utc(day, 9)] }).await;
        assert_eq!(graph.refresh_grants(), grants + 1, "refresh {n}");
        graph.delete_event(&id);
        eventually("the deletion", || async { morning().await.len() == 2 }).await;
    }
    assert_eq!(provider(&app).await["status"], "active");

    // Lifecycle: reauthorizationRequired renews the subscription; subscriptionRemoved makes
    // the next sync open a new one.
    let before = graph.subscriptions().remove(0);
    // (Expirations are whole seconds: count the PATCH instead of comparing them.)
    let patched = || graph.requests(&format!("/v1.0/subscriptions/{}", before.id));
    assert_eq!(patched(), 0);
    graph.send_lifecycle(&before.id, "reauthorizationRequired").await;
    eventually("a renewal", || async { patched() == 1 }).await;
    assert!(graph.subscriptions()[0].expiration >= before.expiration);
    graph.send_lifecycle(&before.id, "subscriptionRemoved").await;
    eventually("a new subscription", || async { graph.subscriptions().first().is_some_and(|s| s.id != before.id) })
        .await;

    // A forged notification (wrong clientState) is ignored.
    let forged = app
        .client
        .post(format!("{}/v1/providers/microsoft/notifications", app.base))
        .json(&json!({"value": [{"subscriptionId": before.id, "clientState": "guess", "changeType": "updated"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 202);
    let echo = app
        .client
        .post(format!("{}/v1/providers/microsoft/notifications?validationToken=abc%20123", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(echo.status(), 200);
    assert_eq!(echo.headers()["content-type"], "text/plain");
    assert_eq!(echo.text().await.unwrap(), "abc 123");

    let r = app.delete("/v1/calendars/disconnect?provider=microsoft").await;
    assert_eq!(r.body["disconnected"], 1, "{}", r.body);
    assert!(graph.subscriptions().is_empty(), "the subscription is deleted: {:?}", graph.subscriptions());
    assert_eq!(morning().await.len(), 3);
    app.stop().await;
}
