//! The Google emulator against Google's own Python SDK (fidelity), plus its OAuth and push
//! behaviour checked over plain HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation should fail the test loudly

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kairos_emulators::google::GoogleEmulator;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const SCOPE: &str = "https://www.googleapis.com/auth/calendar";

/// Whether tests that need optional peers must fail rather than skip (set by `.ci/run`).
fn peers_required() -> bool {
    std::env::var("KAIROS_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

async fn post_form(url: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    let response = client()
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(pairs))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs the consent step with PKCE (S256) and returns the code from the redirect.
async fn authorize(emu: &GoogleEmulator, verifier: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let query = form(&[
        ("client_id", GoogleEmulator::CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", SCOPE),
        ("state", "st-1"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("access_type", "offline"),
        ("prompt", "consent"),
    ]);
    let response = client().get(format!("{}/o/oauth2/v2/auth?{query}", emu.base_url())).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 302);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    let params: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["scope"], SCOPE);
    params["code"].clone()
}

async fn exchange(emu: &GoogleEmulator, code: &str, verifier: &str) -> (u16, Value) {
    post_form(
        &format!("{}/token", emu.base_url()),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", GoogleEmulator::CLIENT_ID),
            ("client_secret", GoogleEmulator::CLIENT_SECRET),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn refresh(emu: &GoogleEmulator, token: &str) -> (u16, Value) {
    post_form(
        &format!("{}/token", emu.base_url()),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", GoogleEmulator::CLIENT_ID),
            ("client_secret", GoogleEmulator::CLIENT_SECRET),
        ],
    )
    .await
}

/// A webhook receiver on 127.0.0.1 that records each POST's headers.
#[derive(Clone, Default)]
struct Hook(Arc<Mutex<Vec<HashMap<String, String>>>>);

impl Hook {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notifications", listener.local_addr().unwrap());
        let seen = self.0.clone();
        let app = axum::Router::new().route(
            "/notifications",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let seen = seen.clone();
                async move {
                    let mut h: HashMap<String, String> = headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect();
                    h.insert("body".into(), body);
                    seen.lock().unwrap().push(h);
                    axum::http::StatusCode::OK
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    /// Waits (up to 10 s) until `n` messages arrived.
    async fn wait_for(&self, n: usize) -> Vec<HashMap<String, String>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self.0.lock().unwrap().clone();
            if seen.len() >= n || tokio::time::Instant::now() > deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn googles_python_sdk_reads_the_emulator() {
    let has_sdk = Command::new("python3")
        .args(["-c", "import googleapiclient.discovery, google.oauth2.credentials, google_auth_httplib2"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_sdk {
        assert!(!peers_required(), "KAIROS_REQUIRE_PEERS=1 but google-api-python-client is missing");
        eprintln!(
            "SKIPPED: the Google SDK check needs `pip install google-api-python-client google-auth` (CI installs them)"
        );
        return;
    }
    let emu = GoogleEmulator::start().await.unwrap();
    let hook = Hook::default();
    let webhook = hook.start().await;
    let code = authorize(&emu, "a-verifier-of-at-least-43-characters-0123456789").await;
    let (status, tokens) = exchange(&emu, &code, "a-verifier-of-at-least-43-characters-0123456789").await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/google_sdk_check.py");
    let args = [
        script.to_string(),
        emu.base_url(),
        refresh_token,
        GoogleEmulator::CLIENT_ID.into(),
        GoogleEmulator::CLIENT_SECRET.into(),
        webhook,
    ];
    // The emulator runs on this test's runtime: the script must not block it.
    let out = tokio::task::spawn_blocking(move || Command::new("python3").args(&args).output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stdout.trim_end().ends_with("ALL OK"), "stdout:\n{stdout}\nstderr:\n{stderr}");

    assert_eq!(emu.refresh_grants(), 1, "the SDK refreshed its token once");
    assert!(emu.channels().is_empty(), "the SDK stopped its channel");
    let messages = hook.wait_for(1).await;
    let sync = messages.first().expect("the channel's sync message");
    assert_eq!(sync["x-goog-resource-state"], "sync");
    assert_eq!(sync["x-goog-channel-id"], "sdk-channel-1");
    assert_eq!(sync["x-goog-channel-token"], "sdk-token");
    assert_eq!(sync["x-goog-message-number"], "1");
    assert!(sync["x-goog-channel-expiration"].ends_with(" GMT"), "{sync:?}");
    assert_eq!(sync["body"], "");
}

#[tokio::test]
async fn the_code_exchange_checks_pkce_and_is_single_use() {
    let emu = GoogleEmulator::start().await.unwrap();
    let code = authorize(&emu, "verifier-one-verifier-one-verifier-one-12345").await;
    let (status, body) = exchange(&emu, &code, "another-verifier-another-verifier-another-12").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    // A failed exchange used the code up, as Google's codes are single-use.
    let (status, _) = exchange(&emu, &code, "verifier-one-verifier-one-verifier-one-12345").await;
    assert_eq!(status, 400);

    let code = authorize(&emu, "verifier-two-verifier-two-verifier-two-12345").await;
    let (status, tokens) = exchange(&emu, &code, "verifier-two-verifier-two-verifier-two-12345").await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3599);
    assert_eq!(tokens["scope"], SCOPE);
    let (status, again) = exchange(&emu, &code, "verifier-two-verifier-two-verifier-two-12345").await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")));

    let (status, bad_client) = post_form(
        &format!("{}/token", emu.base_url()),
        &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", "nobody"), ("client_secret", "x")],
    )
    .await;
    assert_eq!((status, bad_client["error"].as_str()), (401, Some("invalid_client")));
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused_as_google_does() {
    let emu = GoogleEmulator::start().await.unwrap();
    let code = authorize(&emu, "verifier-three-verifier-three-verifier-three-1").await;
    let (_, tokens) = exchange(&emu, &code, "verifier-three-verifier-three-verifier-three-1").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();
    let list = format!("{}/calendar/v3/users/me/calendarList", emu.base_url());

    let (status, fresh) = refresh(&emu, &refresh_token).await;
    assert_eq!(status, 200);
    assert!(fresh.get("refresh_token").is_none(), "a refresh grant returns no new refresh token");
    let access = fresh["access_token"].as_str().unwrap().to_string();
    let ok = client().get(&list).bearer_auth(&access).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);

    emu.expire_access_tokens();
    let expired = client().get(&list).bearer_auth(&access).send().await.unwrap();
    assert_eq!(expired.status().as_u16(), 401);
    assert!(expired.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let body: Value = expired.json().await.unwrap();
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["errors"][0]["reason"], "authError");

    // Revoking the refresh token ends its grant; a second revoke is refused.
    let revoke = format!("{}/revoke", emu.base_url());
    assert_eq!(post_form(&revoke, &[("token", &refresh_token)]).await.0, 200);
    let (status, body) = post_form(&revoke, &[("token", &refresh_token)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_token")));
    let (status, body) = refresh(&emu, &refresh_token).await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}));
    assert_eq!(emu.revoked(), vec![refresh_token]);
}

#[tokio::test]
async fn a_change_by_the_user_pushes_exists_after_sync() {
    let emu = GoogleEmulator::start().await.unwrap();
    let code = authorize(&emu, "verifier-four-verifier-four-verifier-four-123").await;
    let (_, tokens) = exchange(&emu, &code, "verifier-four-verifier-four-verifier-four-123").await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let hook = Hook::default();
    let address = hook.start().await;
    let watch = client()
        .post(format!("{}/calendar/v3/calendars/primary/events/watch", emu.base_url()))
        .bearer_auth(&access)
        .json(&json!({"id": "ch-1", "type": "web_hook", "address": address, "expiration": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(watch.status().as_u16(), 200);
    let channel: Value = watch.json().await.unwrap();
    assert!(channel["expiration"].as_str().unwrap().parse::<i64>().unwrap() > 1, "a past expiration gets the default");
    assert_eq!(emu.channels().len(), 1);
    emu.put_event(
        &emu.account_email(),
        json!({"summary": "x", "start": {"dateTime": "2030-01-01T10:00:00Z"}, "end": {"dateTime": "2030-01-01T11:00:00Z"}}),
    );
    let messages = hook.wait_for(2).await;
    let states: Vec<(&str, &str)> =
        messages.iter().map(|m| (m["x-goog-resource-state"].as_str(), m["x-goog-message-number"].as_str())).collect();
    assert_eq!(states, [("sync", "1"), ("exists", "2")]);
    assert_eq!(messages[1]["x-goog-resource-id"], channel["resourceId"].as_str().unwrap());
    assert!(messages[1]["x-goog-resource-uri"].contains("/calendar/v3/calendars/alice%40example.com/events"));
}

/// A bearer token for plain-HTTP calls.
async fn token(emu: &GoogleEmulator) -> String {
    let code = authorize(emu, "verifier-five-verifier-five-verifier-five-1234").await;
    let (_, tokens) = exchange(emu, &code, "verifier-five-verifier-five-verifier-five-1234").await;
    tokens["access_token"].as_str().unwrap().to_string()
}

async fn get(emu: &GoogleEmulator, token: &str, path_and_query: &str) -> (u16, Value) {
    let response = client().get(format!("{}{path_and_query}", emu.base_url())).bearer_auth(token).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn ids(list: &Value) -> Vec<String> {
    list["items"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn listing_follows_googles_filters_and_sync_rules() {
    let emu = GoogleEmulator::start().await.unwrap();
    let token = token(&emu).await;
    let cal = emu.account_email();
    let timed = |id: &str, start: &str, end: &str| json!({"id": id, "summary": id, "start": {"dateTime": start}, "end": {"dateTime": end}});
    emu.put_event(&cal, timed("single0a", "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z"));
    emu.put_event(&cal, timed("single0b", "2030-01-01T12:00:00Z", "2030-01-01T13:00:00Z"));
    emu.put_event(
        &cal,
        json!({"id": "series0", "summary": "daily", "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
        "start": {"dateTime": "2030-01-01T09:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-01T09:30:00Z", "timeZone": "UTC"}}),
    );
    emu.put_event(
        &cal,
        json!({"recurringEventId": "series0", "status": "cancelled",
        "originalStartTime": {"dateTime": "2030-01-02T09:00:00Z", "timeZone": "UTC"}}),
    );
    let base = "/calendar/v3/calendars/primary/events";

    // timeMin bounds the end, timeMax the start, both exclusive.
    let (_, after) = get(&emu, &token, &format!("{base}?timeMin=2030-01-01T11:00:00Z")).await;
    assert!(!ids(&after).contains(&"single0a".to_string()) && ids(&after).contains(&"single0b".to_string()));
    let (_, before) = get(&emu, &token, &format!("{base}?timeMax=2030-01-01T10:00:00Z")).await;
    assert_eq!(ids(&before), ["series0"]);

    // Without showDeleted the cancelled instance still comes, as a stub.
    let (status, all) = get(&emu, &token, base).await;
    assert_eq!(status, 200);
    assert_eq!(all["kind"], "calendar#events");
    let stub = all["items"].as_array().unwrap().iter().find(|e| e["status"] == "cancelled").unwrap();
    assert_eq!(stub["id"], "series0_20300102T090000Z");
    assert_eq!(stub["recurringEventId"], "series0");
    assert!(stub.get("summary").is_none(), "{stub}");

    let (_, single) = get(&emu, &token, &format!("{base}?singleEvents=true&orderBy=startTime")).await;
    assert_eq!(ids(&single), ["series0_20300101T090000Z", "single0a", "single0b", "series0_20300103T090000Z"]);
    let (status, bad) = get(&emu, &token, &format!("{base}?orderBy=startTime")).await;
    assert_eq!(status, 400, "{bad}");
    let sync_token = all["nextSyncToken"].as_str().unwrap().to_string();
    let (status, _) = get(&emu, &token, &format!("{base}?syncToken={sync_token}&timeMin=2030-01-01T00:00:00Z")).await;
    assert_eq!(status, 400);

    // A deletion reaches the next incremental sync; its details only with showDeleted.
    let deleted =
        client().delete(format!("{}{base}/single0a", emu.base_url())).bearer_auth(&token).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let (_, delta) = get(&emu, &token, &format!("{base}?syncToken={sync_token}")).await;
    assert_eq!(
        delta["items"],
        json!([{"kind": "calendar#event", "etag": delta["items"][0]["etag"], "id": "single0a",
                                       "status": "cancelled"}])
    );
    let (_, detailed) = get(&emu, &token, &format!("{base}?syncToken={sync_token}&showDeleted=true")).await;
    assert_eq!(detailed["items"][0]["summary"], "single0a");

    // Conditional writes and client-chosen ids.
    let patch = client()
        .patch(format!("{}{base}/single0b", emu.base_url()))
        .bearer_auth(&token)
        .header("If-Match", "\"1\"")
        .json(&json!({"summary": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status().as_u16(), 412);
    let body: Value = patch.json().await.unwrap();
    assert_eq!(body["error"]["errors"][0]["reason"], "conditionNotMet");
    let insert = client()
        .post(format!("{}{base}", emu.base_url()))
        .bearer_auth(&token)
        .json(&timed("NOT-BASE32", "2030-01-05T10:00:00Z", "2030-01-05T11:00:00Z"))
        .send()
        .await
        .unwrap();
    assert_eq!(insert.status().as_u16(), 400);
}
