//! The emulator's own behaviour over HTTP: the identity platform's grants and errors, and the
//! Graph answers the fidelity test does not reach (error bodies, headers, paging, zones,
//! free/busy, lifecycle notifications).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State as AxState};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::MicrosoftEmulator;

const REDIRECT: &str = "http://127.0.0.1/cb";
const VERIFIER: &str = "emulator-test-verifier-0123456789-0123456789-xyz";

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

async fn code(emu: &MicrosoftEmulator, scope: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let mut url =
        url::Url::parse(&format!("{}/contoso.onmicrosoft.com/oauth2/v2.0/authorize", emu.base_url())).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("client_id", MicrosoftEmulator::CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "xyz"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let r = http().get(url).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let to = url::Url::parse(r.headers()[header::LOCATION].to_str().unwrap()).unwrap();
    assert!(to.as_str().starts_with(REDIRECT));
    assert!(to.query_pairs().any(|(k, v)| k == "state" && v == "xyz"));
    to.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned()
}

async fn token(emu: &MicrosoftEmulator, pairs: &[(&str, &str)]) -> (u16, Value) {
    let mut all =
        vec![("client_id", MicrosoftEmulator::CLIENT_ID), ("client_secret", MicrosoftEmulator::CLIENT_SECRET)];
    all.extend_from_slice(pairs);
    let r = http()
        .post(format!("{}/common/oauth2/v2.0/token", emu.base_url()))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&all))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn signed_in(emu: &MicrosoftEmulator) -> Value {
    let code = code(emu, "offline_access Calendars.ReadWrite").await;
    let (status, body) = token(
        emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn graph(emu: &MicrosoftEmulator, token: &str, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = http().get(format!("{}/v1.0/{path}", emu.base_url())).bearer_auth(token);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

fn aadsts(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap()
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_used_one_is_refused() {
    let emu = MicrosoftEmulator::start().await.unwrap();
    let first = signed_in(&emu).await;
    for key in ["token_type", "scope", "expires_in", "ext_expires_in", "access_token", "refresh_token"] {
        assert!(first.get(key).is_some(), "{key} missing from {first}");
    }
    assert_eq!(first["expires_in"], 3599);
    let old = first["refresh_token"].as_str().unwrap();
    let (status, second) = token(&emu, &[("grant_type", "refresh_token"), ("refresh_token", old)]).await;
    assert_eq!(status, 200);
    assert_ne!(second["refresh_token"], first["refresh_token"], "the refresh token rotates");
    let (status, reused) = token(&emu, &[("grant_type", "refresh_token"), ("refresh_token", old)]).await;
    assert_eq!((status, reused["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(aadsts(&reused), 70008);
    assert!(reused["error_description"].as_str().unwrap().starts_with("AADSTS70008: "));
    for key in ["timestamp", "trace_id", "correlation_id"] {
        assert!(reused[key].is_string(), "{key}");
    }
    assert_eq!(emu.refresh_grants(), 1);
    emu.allow_refresh_token_reuse(true);
    assert_eq!(token(&emu, &[("grant_type", "refresh_token"), ("refresh_token", old)]).await.0, 200);
}

#[tokio::test]
async fn revoked_grants_and_expired_tokens() {
    let emu = MicrosoftEmulator::start().await.unwrap();
    let t = signed_in(&emu).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(graph(&emu, access, "me/calendars", &[]).await.status(), 200);
    emu.expire_access_tokens();
    let r = graph(&emu, access, "me/calendars", &[("client-request-id", "req-1")]).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().starts_with("Bearer "));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(body["error"]["innerError"]["client-request-id"], "req-1");
    assert!(body["error"]["innerError"]["date"].is_string() && body["error"]["innerError"]["request-id"].is_string());
    emu.revoke_all_grants();
    let (status, body) =
        token(&emu, &[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())]).await;
    assert_eq!((status, aadsts(&body)), (400, 50173));
    emu.set_access_token_lifetime(0);
    let short = signed_in(&emu).await;
    assert_eq!(short["expires_in"], 0);
    assert_eq!(graph(&emu, short["access_token"].as_str().unwrap(), "me", &[]).await.status(), 401);
}

#[tokio::test]
async fn codes_are_single_use_and_bound_to_pkce_and_the_client() {
    let emu = MicrosoftEmulator::start().await.unwrap();
    let c = code(&emu, "Calendars.Read").await;
    let (status, body) = token(
        &emu,
        &[("grant_type", "authorization_code"), ("code", &c), ("redirect_uri", REDIRECT), ("code_verifier", "wrong")],
    )
    .await;
    assert_eq!((status, aadsts(&body)), (400, 501481));
    let exchange =
        [("grant_type", "authorization_code"), ("code", &c), ("redirect_uri", REDIRECT), ("code_verifier", VERIFIER)];
    let (status, ok) = token(&emu, &exchange).await;
    assert_eq!(status, 200);
    assert!(ok.get("refresh_token").is_none(), "no offline_access, no refresh token");
    let (status, body) = token(&emu, &exchange).await;
    assert_eq!((status, aadsts(&body)), (400, 54005));
    let r = http()
        .post(format!("{}/common/oauth2/v2.0/token", emu.base_url()))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[
            ("client_id", MicrosoftEmulator::CLIENT_ID),
            ("client_secret", "nope"),
            ("grant_type", "refresh_token"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
}

#[tokio::test]
async fn errors_headers_paging_and_zones_look_like_graph() {
    let emu = MicrosoftEmulator::start().await.unwrap();
    let access = signed_in(&emu).await["access_token"].as_str().unwrap().to_string();
    let cal = emu.default_calendar_id();
    for d in 1..=3 {
        emu.put_event(
            &cal,
            json!({"subject": format!("E{d}"),
                   "start": {"dateTime": format!("2026-07-0{d}T09:00:00"), "timeZone": "Pacific Standard Time"},
                   "end": {"dateTime": format!("2026-07-0{d}T10:00:00"), "timeZone": "Pacific Standard Time"}}),
        );
    }
    emu.fail_next(1, 429, Some(3));
    let r = graph(&emu, &access, "me/calendars", &[]).await;
    assert_eq!((r.status().as_u16(), r.headers()[header::RETRY_AFTER].to_str().unwrap()), (429, "3"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["error"]["code"].as_str(), body["error"]["innerError"]["status"].as_str()),
        (Some("TooManyRequests"), Some("429"))
    );

    let view = "me/calendarView?startDateTime=2026-07-01T00:00:00Z&endDateTime=2026-07-31T00:00:00Z&$top=2";
    let prefer = [("Prefer", "outlook.timezone=\"Eastern Standard Time\"")];
    let r = graph(&emu, &access, view, &prefer).await;
    assert_eq!(r.headers()["preference-applied"], "outlook.timezone=\"Eastern Standard Time\"");
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
    assert_eq!(
        page["value"][0]["start"],
        json!({"dateTime": "2026-07-01T12:00:00.0000000", "timeZone": "Eastern Standard Time"})
    );
    assert_eq!(page["value"][0]["originalStartTimeZone"], "Pacific Standard Time");
    let next = page["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&format!("{}/v1.0/me/calendarView?", emu.base_url())) && next.contains("$skip=2"),
        "{next}"
    );
    let rest: Value = http().get(next).bearer_auth(&access).send().await.unwrap().json().await.unwrap();
    assert_eq!(rest["value"][0]["subject"], "E3");
    assert!(rest.get("@odata.nextLink").is_none());

    let missing = graph(&emu, &access, "me/calendarView", &[]).await;
    assert_eq!(missing.status(), 400);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"]["code"], "ErrorInvalidParameter");
    let r = graph(&emu, &access, "me/events/AAMkADnothing=", &[]).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "ErrorItemNotFound");
}

#[tokio::test]
async fn stale_if_match_is_412_and_get_schedule_reports_availability() {
    let emu = MicrosoftEmulator::start().await.unwrap();
    let access = signed_in(&emu).await["access_token"].as_str().unwrap().to_string();
    let cal = emu.default_calendar_id();
    let id = emu.put_event(
        &cal,
        json!({"subject": "Busy", "start": {"dateTime": "2026-03-15T09:00:00", "timeZone": "UTC"},
               "end": {"dateTime": "2026-03-15T10:00:00", "timeZone": "UTC"}}),
    );
    let mut tentative = json!({"subject": "Maybe", "showAs": "tentative",
                               "start": {"dateTime": "2026-03-15T10:00:00", "timeZone": "UTC"},
                               "end": {"dateTime": "2026-03-15T10:30:00", "timeZone": "UTC"}});
    emu.put_event(&cal, tentative.take());
    let etag = emu.event(&id).unwrap()["@odata.etag"].as_str().unwrap().to_string();
    let patch = |tag: &str| {
        http()
            .patch(format!("{}/v1.0/me/events/{id}", emu.base_url()))
            .bearer_auth(&access)
            .header(header::IF_MATCH, tag)
            .json(&json!({"subject": "Busy!"}))
            .send()
    };
    assert_eq!(patch(&etag).await.unwrap().status(), 200);
    let stale = patch(&etag).await.unwrap();
    assert_eq!(stale.status(), 412);
    assert_eq!(stale.json::<Value>().await.unwrap()["error"]["code"], "ErrorIrresolvableConflict");

    let body = json!({"schedules": [emu.account_email(), "nobody@contoso.com"],
                      "startTime": {"dateTime": "2026-03-15T08:00:00", "timeZone": "UTC"},
                      "endTime": {"dateTime": "2026-03-15T11:00:00", "timeZone": "UTC"},
                      "availabilityViewInterval": 30});
    let r: Value = http()
        .post(format!("{}/v1.0/me/calendar/getSchedule", emu.base_url()))
        .bearer_auth(&access)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["value"][0]["availabilityView"], "002210");
    assert_eq!(r["value"][0]["scheduleItems"].as_array().unwrap().len(), 2);
    assert_eq!(r["value"][1]["error"]["responseCode"], "ErrorMailRecipientNotFound");
}

#[tokio::test]
async fn delta_tokens_expire_and_changes_outside_the_window_come_as_removals() {
    let emu = MicrosoftEmulator::start().await.unwrap();
    let access = signed_in(&emu).await["access_token"].as_str().unwrap().to_string();
    let cal = emu.default_calendar_id();
    let first: Value = graph(
        &emu,
        &access,
        "me/calendarView/delta()?startDateTime=2026-03-01T00:00:00Z&endDateTime=2026-04-01T00:00:00Z",
        &[],
    )
    .await
    .json()
    .await
    .unwrap();
    let link = first["@odata.deltaLink"].as_str().unwrap().to_string();
    let outside = emu.put_event(
        &cal,
        json!({"subject": "June", "start": {"dateTime": "2026-06-01T09:00:00", "timeZone": "UTC"},
               "end": {"dateTime": "2026-06-01T10:00:00", "timeZone": "UTC"}}),
    );
    let round: Value = http().get(&link).bearer_auth(&access).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        round["value"],
        json!([{"@odata.type": "#microsoft.graph.event", "id": outside, "@removed": {"reason": "deleted"}}])
    );
    emu.expire_delta_tokens();
    let gone = http().get(round["@odata.deltaLink"].as_str().unwrap()).bearer_auth(&access).send().await.unwrap();
    assert_eq!(gone.status(), 410);
    let restart = gone.headers()[header::LOCATION].to_str().unwrap().to_string();
    assert!(restart.contains("startDateTime=2026-03-01T00:00:00Z"), "{restart}");
    assert_eq!(gone.json::<Value>().await.unwrap()["error"]["code"], "syncStateNotFound");
}

type Seen = Arc<Mutex<Vec<Value>>>;

async fn hook(
    AxState(seen): AxState<Seen>,
    Query(q): Query<Vec<(String, String)>>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    if let Some((_, token)) = q.iter().find(|(k, _)| k == "validationToken") {
        return ([(header::CONTENT_TYPE, "text/plain")], token.clone()).into_response();
    }
    seen.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
    axum::http::StatusCode::ACCEPTED.into_response()
}

#[tokio::test]
async fn subscriptions_validate_and_receive_lifecycle_notifications() {
    let emu = MicrosoftEmulator::start().await.unwrap();
    let access = signed_in(&emu).await["access_token"].as_str().unwrap().to_string();
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new().route("/hook", post(hook)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let expires = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(24)).unwrap();
    let create = |expiration: jiff::Timestamp| {
        http()
            .post(format!("{}/v1.0/subscriptions", emu.base_url()))
            .bearer_auth(&access)
            .json(&json!({"changeType": "created,updated,deleted", "notificationUrl": address,
                          "lifecycleNotificationUrl": address, "resource": "me/events",
                          "expirationDateTime": expiration.to_string(), "clientState": "s3cret"}))
            .send()
    };
    let too_long = expires.checked_add(jiff::SignedDuration::from_hours(24 * 5)).unwrap();
    assert_eq!(create(too_long).await.unwrap().status(), 400, "past 4,230 minutes");
    let r = create(expires).await.unwrap();
    assert_eq!(r.status(), 201);
    let sub: Value = r.json().await.unwrap();
    let id = sub["id"].as_str().unwrap();
    assert_eq!(sub["clientState"], "s3cret");
    emu.send_lifecycle(id, "reauthorizationRequired").await;
    let note = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(note["value"][0]["lifecycleEvent"], "reauthorizationRequired");
    assert_eq!(note["value"][0]["subscriptionId"], json!(id));
    emu.send_lifecycle(id, "subscriptionRemoved").await;
    assert!(emu.subscriptions().is_empty());
}
