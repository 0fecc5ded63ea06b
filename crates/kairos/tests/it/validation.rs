//! Bad input: every case is a 4xx naming the field, and changes nothing; tenancy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kairos_store::{Mode, OutboxEvent, PageRequest, Tenant, keys};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------------------------

/// A small world in account `acme` (test mode): two users, a business hosted by Alice that is
/// open all week, and one confirmed booking of that business.
struct World {
    alice: String,
    bob: String,
    biz: String,
    booking: String,
}

async fn world(app: &TestApp) -> World {
    let alice = app.user("alice@example.com", "UTC").await;
    let bob = app.user("bob@example.com", "Europe/Berlin").await;
    let biz =
        app.business(json!({"name": "Clinic", "timezone": "UTC", "working_hours": all_week(), "hosts": [alice]})).await;
    let r = app
        .post(
            "/v1/bookings",
            json!({
                "business_id": biz, "customer_email": "jane@example.com", "customer_name": "Jane Doe",
                "start_time": "2030-01-02T10:00:00Z", "end_time": "2030-01-02T10:30:00Z",
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let booking = r.body["id"].as_str().unwrap().to_string();
    World { alice, bob, biz, booking }
}

/// The tenant a key belongs to.
async fn tenant_of(app: &TestApp, key: &str) -> Tenant {
    app.store.tenant_for_key(&keys::hash(key)).await.unwrap().unwrap()
}

/// Everything a rejected request could have written, as one key sees it: the three lists, the
/// store's outbox, and any objects being watched (GET bodies, so `updated_at` counts too).
#[derive(Debug, PartialEq)]
struct Snapshot {
    users: Value,
    businesses: Value,
    bookings: Value,
    outbox: Vec<OutboxEvent>,
    watched: Vec<Value>,
}

async fn snapshot_as(app: &TestApp, key: &str, watch: &[String]) -> Snapshot {
    let list = |path: &'static str| async move {
        let r = app.send(Method::GET, path, Some(key), None, &[]).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.body
    };
    let tenant = tenant_of(app, key).await;
    let outbox = app.store.outbox_events(&tenant, &PageRequest { limit: 100, cursor: None }).await.unwrap().data;
    let mut watched = Vec::new();
    for path in watch {
        let mut r = app.send(Method::GET, path, Some(key), None, &[]).await;
        // A booking's emails move on in the background (sent, or skipped without SMTP); what a
        // request must not change is the booking and its queued rows, which the outbox shows.
        if let Some(emails) = r.body.as_object_mut().and_then(|b| b.get_mut("emails")).and_then(|e| e.as_array_mut()) {
            for email in emails {
                if let Some(email) = email.as_object_mut() {
                    for moving in ["status", "last_error", "next_attempt_at", "updated_at", "attempts", "sent_at"] {
                        email.remove(moving);
                    }
                }
            }
        }
        watched.push(json!({"status": r.status.as_u16(), "body": r.body}));
    }
    Snapshot {
        users: list("/v1/users?limit=100").await,
        businesses: list("/v1/businesses?limit=100").await,
        bookings: list("/v1/bookings?limit=100").await,
        outbox,
        watched,
    }
}

/// One bad request and the error it must get.
struct Case {
    method: Method,
    path: String,
    body: Option<String>,
    status: u16,
    code: &'static str,
    param: Option<&'static str>,
    /// A piece of the message that tells the caller how to fix the request.
    hint: Option<&'static str>,
}

/// A request still waiting for its expected error.
struct Req {
    method: Method,
    path: String,
    body: Option<String>,
}

fn req(method: Method, path: impl Into<String>, body: Option<Value>) -> Req {
    Req { method, path: path.into(), body: body.map(|b| b.to_string()) }
}

fn post(path: impl Into<String>, body: Value) -> Req {
    req(Method::POST, path, Some(body))
}

fn patch(path: impl Into<String>, body: Value) -> Req {
    req(Method::PATCH, path, Some(body))
}

fn get(path: impl Into<String>) -> Req {
    req(Method::GET, path, None)
}

/// A request whose body is sent byte for byte (not necessarily JSON).
fn raw(method: Method, path: impl Into<String>, body: &str) -> Req {
    Req { method, path: path.into(), body: Some(body.to_string()) }
}

impl Req {
    fn is(self, status: u16, code: &'static str, param: Option<&'static str>) -> Case {
        Case { method: self.method, path: self.path, body: self.body, status, code, param, hint: None }
    }
    /// 422 `parameter_invalid` naming `param`.
    fn invalid(self, param: &'static str) -> Case {
        self.is(422, "parameter_invalid", Some(param))
    }
    /// 422 `parameter_missing` naming `param`.
    fn missing(self, param: &'static str) -> Case {
        self.is(422, "parameter_missing", Some(param))
    }
    /// 404 `resource_missing`, naming `param` when it is a reference inside the request.
    fn not_found(self, param: Option<&'static str>) -> Case {
        self.is(404, "resource_missing", param)
    }
    /// 400 `malformed_request`.
    fn malformed(self) -> Case {
        self.is(400, "malformed_request", None)
    }
}

impl Case {
    fn hint(mut self, hint: &'static str) -> Case {
        self.hint = Some(hint);
        self
    }
}

/// Sends one case with `key` and checks the error it gets.
async fn check_as(app: &TestApp, key: &str, case: &Case) -> Reply {
    let r = app.send(case.method.clone(), &case.path, Some(key), case.body.as_deref(), &[]).await;
    let shown: String = case.body.as_deref().unwrap_or_default().chars().take(300).collect();
    let what = format!("{} {} {shown}", case.method, case.path);
    assert_eq!(
        (r.status.as_u16(), r.body["error"]["code"].as_str(), r.body["error"]["param"].as_str()),
        (case.status, Some(case.code), case.param),
        "{what}\n  → {}",
        r.body
    );
    assert_error(&r, case.status, case.code, case.param);
    if let Some(hint) = case.hint {
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(hint), "{what}\n  the message should say `{hint}`: {message}");
    }
    assert_ne!(r.body["error"]["type"], "api_error", "{what}: {}", r.body);
    r
}

/// Sends every case with `key`, checking each error, and after each one that nothing changed:
/// not the lists, not the outbox, not the watched objects.
async fn reject_all_as(app: &TestApp, key: &str, watch: &[String], cases: &[Case]) {
    let before = snapshot_as(app, key, watch).await;
    for case in cases {
        check_as(app, key, case).await;
        let after = snapshot_as(app, key, watch).await;
        assert_eq!(after, before, "{} {} changed something", case.method, case.path);
    }
}

async fn reject_all(app: &TestApp, watch: &[String], cases: &[Case]) {
    reject_all_as(app, &app.key, watch, cases).await;
}

/// A param computed at run time, for the `&'static str` of a [`Case`].
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn long(n: usize) -> String {
    "x".repeat(n)
}

const T10: &str = "2030-01-02T10:00:00Z";
const T1030: &str = "2030-01-02T10:30:00Z";

/// A valid business-shape booking body with `changes` applied (`null` removes a field).
fn business_booking(biz: &str, changes: Value) -> Value {
    let mut body = json!({
        "business_id": biz, "customer_email": "jane@example.com", "customer_name": "Jane Doe",
        "start_time": "2030-01-03T10:00:00Z", "end_time": "2030-01-03T10:30:00Z",
    });
    merge(&mut body, changes);
    body
}

/// A valid participants-shape booking body with `changes` applied (`null` removes a field).
fn people_booking(changes: Value) -> Value {
    let mut body = json!({
        "participants": ["user:alice@example.com"], "title": "Sync",
        "start": "2030-01-03T11:00:00Z", "end": "2030-01-03T11:30:00Z",
    });
    merge(&mut body, changes);
    body
}

fn merge(body: &mut Value, changes: Value) {
    let (Value::Object(body), Value::Object(changes)) = (body, changes) else { panic!("objects only") };
    for (k, v) in changes {
        if v.is_null() {
            body.remove(&k);
        } else {
            body.insert(k, v);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_request_without_an_authorization_header_is_401() {
    let app = TestApp::start().await;
    for path in ["/v1/users", "/v1/businesses", "/v1/bookings", "/v1/availability/slots", "/v1/users/usr_x"] {
        let r = app.send(Method::GET, path, None, None, &[]).await;
        assert_error(&r, 401, "unauthorized", None);
        assert_eq!(r.body["error"]["type"], "authentication_error");
    }
}

#[tokio::test]
async fn a_key_under_a_scheme_other_than_bearer_is_401() {
    let app = TestApp::start().await;
    let key = app.key.clone();
    for header in
        [format!("Basic {key}"), format!("Token {key}"), key.clone(), format!("Bearer{key}"), "Bearer ".into()]
    {
        let r = app.send(Method::GET, "/v1/users", None, None, &[("authorization", &header)]).await;
        assert_error(&r, 401, "unauthorized", None);
    }
    // The right scheme with the same key works, so it was the scheme that was refused.
    let r = app.send(Method::GET, "/v1/users", None, None, &[("authorization", &format!("Bearer {key}"))]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn a_well_formed_but_unknown_key_is_401() {
    let app = TestApp::start().await;
    for mode in [Mode::Test, Mode::Live] {
        // Generated exactly like a real key, but never stored.
        let (unknown, _) = keys::generate(mode);
        let r = app.send(Method::GET, "/v1/users", Some(&unknown), None, &[]).await;
        assert_error(&r, 401, "unauthorized", None);
    }
    // The real key with one character changed.
    let mut typo = app.key.clone();
    let last = if typo.ends_with('a') { 'b' } else { 'a' };
    typo.pop();
    typo.push(last);
    let r = app.send(Method::GET, "/v1/users", Some(&typo), None, &[]).await;
    assert_error(&r, 401, "unauthorized", None);
}

#[tokio::test]
async fn a_garbage_key_is_401() {
    let app = TestApp::start().await;
    let huge = format!("sk_test_{}", long(5000));
    for key in ["garbage", "sk_test_", "sk_prod_abcdefghijklmnopqrstuvwxyz012345", "pk_test_abc", "%%%", huge.as_str()]
    {
        let r = app.send(Method::GET, "/v1/users", Some(key), None, &[]).await;
        assert_error(&r, 401, "unauthorized", None);
        assert!(!r.body["error"]["message"].as_str().unwrap().contains(&app.key), "{}", r.body);
    }
}

#[tokio::test]
async fn a_write_with_a_bad_key_is_401_and_writes_nothing() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let before = snapshot_as(&app, &app.key, &[format!("/v1/bookings/{}", w.booking)]).await;
    let (unknown, _) = keys::generate(Mode::Test);
    let user = json!({"email": "carol@example.com", "timezone": "UTC"}).to_string();
    let booking = business_booking(&w.biz, json!({})).to_string();
    let writes: [(Method, String, Option<&str>); 5] = [
        (Method::POST, "/v1/users".into(), Some(&user)),
        (Method::POST, "/v1/bookings".into(), Some(&booking)),
        (Method::POST, format!("/v1/bookings/{}/cancel", w.booking), None),
        (Method::DELETE, format!("/v1/users/{}", w.bob), None),
        (Method::PATCH, format!("/v1/businesses/{}", w.biz), Some(r#"{"name":"Hacked"}"#)),
    ];
    for (method, path, body) in writes {
        for key in [None, Some(unknown.as_str()), Some("garbage")] {
            let r = app.send(method.clone(), &path, key, body, &[]).await;
            assert_error(&r, 401, "unauthorized", None);
        }
    }
    assert_eq!(snapshot_as(&app, &app.key, &[format!("/v1/bookings/{}", w.booking)]).await, before);
}

#[tokio::test]
async fn healthz_and_the_openapi_document_need_no_key() {
    let app = TestApp::start().await;
    let r = app.send(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "ok");
    let r = app.send(Method::GET, "/v1/openapi.json", None, None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", r.body["openapi"]);
    // A bad key on them is ignored rather than refused.
    let r = app.send(Method::GET, "/healthz", Some("garbage"), None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

// ---------------------------------------------------------------------------------------------
// Malformed bodies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_bodies_are_400_malformed_request_and_write_nothing() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let user = json!({"email": "carol@example.com", "timezone": "UTC"}).to_string();
    let business = json!({"name": "Spa", "timezone": "UTC"}).to_string();
    let booking = business_booking(&w.biz, json!({})).to_string();
    let reschedule = json!({"start_time": "2030-01-04T10:00:00Z", "end_time": "2030-01-04T10:30:00Z"}).to_string();
    let free_busy =
        json!({"time_min": T10, "time_max": T1030, "attendees": [{"email": "alice@example.com"}]}).to_string();
    let targets = [
        (Method::POST, "/v1/users".to_string(), user.clone()),
        (Method::POST, "/v1/businesses".to_string(), business.clone()),
        (Method::POST, "/v1/bookings".to_string(), booking),
        (Method::POST, format!("/v1/bookings/{}/reschedule", w.booking), reschedule),
        (Method::POST, format!("/v1/bookings/{}/cancel", w.booking), r#"{"reason":"ill"}"#.to_string()),
        (Method::POST, "/v1/availability".to_string(), free_busy),
        (Method::PATCH, format!("/v1/users/{}", w.bob), r#"{"name":"Robert"}"#.to_string()),
        (Method::PATCH, format!("/v1/businesses/{}", w.biz), r#"{"name":"Clinic 2"}"#.to_string()),
    ];
    let mut cases = Vec::new();
    for (method, path, good) in targets {
        let truncated = &good[..good.len() - 5];
        for body in [
            truncated.to_string(),
            format!("{good} trailing"),
            format!("{good}{good}"),
            "not json at all".to_string(),
            "null".to_string(),
            "42".to_string(),
            r#""a string""#.to_string(),
            "{'single': 'quotes'}".to_string(),
            format!("{},}}", &good[..good.len() - 1]),
            "{,}".to_string(),
        ] {
            cases.push(raw(method.clone(), path.clone(), &body).malformed().hint("JSON"));
        }
    }
    let watch =
        [format!("/v1/users/{}", w.bob), format!("/v1/businesses/{}", w.biz), format!("/v1/bookings/{}", w.booking)];
    reject_all(&app, &watch, &cases).await;
}

#[tokio::test]
async fn an_empty_body_reads_as_an_empty_object() {
    let app = TestApp::start().await;
    reject_all(
        &app,
        &[],
        &[
            raw(Method::POST, "/v1/users", "").missing("email"),
            raw(Method::POST, "/v1/users", "  \n").missing("email"),
            raw(Method::POST, "/v1/businesses", "").missing("name"),
            raw(Method::POST, "/v1/bookings", "").missing("start_time"),
        ],
    )
    .await;
}

/// A JSON array is not an object, whatever it holds. serde's derived structs also accept a
/// sequence of the fields in declaration order, and `ApiJson` does not refuse it: today
/// `["carol@example.com", null, "UTC", null, null]` on POST /v1/users is a 201 that creates the
/// user, `[]` on a PATCH is a 200, and `[{…}]` is a 422 naming `[0]`.
#[tokio::test]
async fn a_json_array_body_is_400_malformed_request_and_writes_nothing() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let watch =
        [format!("/v1/users/{}", w.bob), format!("/v1/businesses/{}", w.biz), format!("/v1/bookings/{}", w.booking)];
    reject_all(
        &app,
        &watch,
        &[
            // Positional: email, name, timezone, working_hours, date_overrides.
            raw(Method::POST, "/v1/users", r#"["carol@example.com", null, "UTC", null, null]"#).malformed(),
            raw(Method::POST, "/v1/users", r#"[{"email":"carol@example.com","timezone":"UTC"}]"#).malformed(),
            raw(Method::POST, "/v1/businesses", r#"[{"name":"Spa","timezone":"UTC"}]"#).malformed(),
            raw(Method::POST, format!("/v1/bookings/{}/cancel", w.booking), r#"["changed my mind"]"#).malformed(),
            raw(Method::PATCH, format!("/v1/users/{}", w.bob), r#"[null, "Robert", null, null, null]"#).malformed(),
            raw(Method::PATCH, format!("/v1/users/{}", w.bob), "[]").malformed(),
            raw(Method::PATCH, format!("/v1/businesses/{}", w.biz), "[]").malformed(),
        ],
    )
    .await;
}

/// A field that no request of this kind has, on every endpoint, with the param that names it.
fn unknown_field_cases(w: &World) -> Vec<Case> {
    let times = |extra: Value| {
        let mut body = json!({"start_time": "2030-01-04T10:00:00Z", "end_time": "2030-01-04T10:30:00Z"});
        merge(&mut body, extra);
        body
    };
    let day = json!([{"start": "09:00", "end": "17:00", "tz": "UTC"}]);
    vec![
        post("/v1/users", json!({"email": "carol@example.com", "timezone": "UTC", "nmae": "Carol"})).invalid("nmae"),
        post("/v1/users", json!({"email": "carol@example.com", "timezone": "UTC", "working_hours": {"monday": day}}))
            .invalid("working_hours.monday[0].tz"),
        patch(format!("/v1/users/{}", w.bob), json!({"nickname": "Rob"})).invalid("nickname"),
        post("/v1/businesses", json!({"name": "Spa", "timezone": "UTC", "colour": "blue"})).invalid("colour"),
        patch(format!("/v1/businesses/{}", w.biz), json!({"colour": "blue"})).invalid("colour"),
        post("/v1/bookings", business_booking(&w.biz, json!({"customer_phone": "555"}))).invalid("customer_phone"),
        post("/v1/bookings", people_booking(json!({"agenda": "x"}))).invalid("agenda"),
        post(format!("/v1/bookings/{}/reschedule", w.booking), times(json!({"reason": "x"}))).invalid("reason"),
        post(format!("/v1/bookings/{}/cancel", w.booking), json!({"why": "ill"})).invalid("why"),
        post(
            "/v1/availability",
            json!({"time_min": T10, "time_max": T1030, "attendees": [{"email": "alice@example.com"}], "calendars": []}),
        )
        .invalid("calendars"),
        post(
            "/v1/availability",
            json!({"time_min": T10, "time_max": T1030, "attendees": [{"email": "alice@example.com", "name": "A"}]}),
        )
        .invalid("attendees[0].name"),
        get(format!("/v1/availability/slots?business_id={}&colour=red", w.biz)).invalid("colour"),
        get("/v1/bookings?state=confirmed").invalid("state"),
    ]
}

/// Unknown fields are refused with a 422 whose message names the field and the valid ones,
/// and nothing is written. (The exact `param` is checked by the ignored test below.)
#[tokio::test]
async fn an_unknown_field_is_422_parameter_invalid_and_writes_nothing() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let watch =
        [format!("/v1/users/{}", w.bob), format!("/v1/businesses/{}", w.biz), format!("/v1/bookings/{}", w.booking)];
    let before = snapshot_as(&app, &app.key, &watch).await;
    for case in unknown_field_cases(&w) {
        let r = app.send(case.method.clone(), &case.path, Some(&app.key), case.body.as_deref(), &[]).await;
        let field = case.param.unwrap();
        let what = format!("{} {} {}", case.method, case.path, case.body.as_deref().unwrap_or_default());
        assert_eq!(r.status, 422, "{what}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "parameter_invalid", "{what}: {}", r.body);
        let param = r.body["error"]["param"].as_str().unwrap_or_default();
        assert!(param.starts_with(field), "{what}: param `{param}` should name `{field}`");
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("not a field") && message.contains("expected"), "{what}: {message}");
        assert_eq!(snapshot_as(&app, &app.key, &watch).await, before, "{what} changed something");
    }
}

/// `param` for an unknown field repeats its last segment: `{"nmae": …}` gives
/// `"param": "nmae.nmae"`, because serde_path_to_error's path already ends at the unknown key
/// and `field_error` joins the key onto it again.
#[tokio::test]
async fn an_unknown_field_is_422_naming_exactly_that_field() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    reject_all(&app, &[], &unknown_field_cases(&w)).await;
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn user_create_rejects_each_bad_field_by_name_and_writes_nothing() {
    let app = TestApp::start().await;
    let _w = world(&app).await;
    let user = |changes: Value| {
        let mut body = json!({"email": "carol@example.com", "timezone": "UTC"});
        merge(&mut body, changes);
        post("/v1/users", body)
    };
    let day = |ranges: Value| json!({"working_hours": {"monday": ranges}});
    reject_all(
        &app,
        &[],
        &[
            user(json!({"email": null})).missing("email").hint("required"),
            user(json!({"timezone": null})).missing("timezone"),
            post("/v1/users", json!({})).missing("email"),
            user(json!({"email": "carol"})).invalid("email").hint("alice@example.com"),
            user(json!({"email": "carol@example"})).invalid("email"),
            user(json!({"email": "@example.com"})).invalid("email"),
            user(json!({"email": "carol smith@example.com"})).invalid("email"),
            user(json!({"email": ""})).invalid("email"),
            user(json!({"email": 42})).invalid("email"),
            user(json!({"timezone": "Mars/Olympus_Mons"})).invalid("timezone").hint("IANA"),
            user(json!({"timezone": "EST5EDTX"})).invalid("timezone"),
            user(json!({"timezone": ""})).invalid("timezone"),
            user(json!({"timezone": 5})).invalid("timezone"),
            user(json!({"name": long(201)})).invalid("name").hint("200"),
            user(json!({"working_hours": {"mon": [{"start": "09:00", "end": "17:00"}]}}))
                .invalid("working_hours")
                .hint("monday to sunday"),
            user(json!({"working_hours": {"Monday": [{"start": "09:00", "end": "17:00"}]}})).invalid("working_hours"),
            user(json!({"working_hours": "9-5"})).invalid("working_hours"),
            user(day(json!([{"start": "9:00", "end": "17:00"}]))).invalid("working_hours.monday[0]").hint("HH:MM"),
            user(day(json!([{"start": "09:00", "end": "09:00"}]))).invalid("working_hours.monday[0]").hint("empty"),
            user(day(json!([{"start": "09:00", "end": "25:00"}]))).invalid("working_hours.monday[0]"),
            user(day(json!([{"start": "24:00", "end": "02:00"}]))).invalid("working_hours.monday[0]"),
            user(day(json!([{"start": "09:60", "end": "17:00"}]))).invalid("working_hours.monday[0]"),
            user(day(json!([{"start": "09:00", "end": "17:00"}, {"start": "9am", "end": "5pm"}])))
                .invalid("working_hours.monday[1]"),
            user(day(json!([{"start": "09:00"}]))).missing("working_hours.monday[0].end"),
            user(day(json!({"start": "09:00", "end": "17:00"}))).invalid("working_hours.monday"),
            user(json!({"date_overrides": {"12/24/2030": []}})).invalid("date_overrides").hint("YYYY-MM-DD"),
            user(json!({"date_overrides": {"2030-02-30": []}})).invalid("date_overrides"),
            user(json!({"date_overrides": {"2030-1-5": []}})).invalid("date_overrides"),
            user(json!({"date_overrides": {"2030-12-24": [{"start": "9:00", "end": "12:00"}]}}))
                .invalid("date_overrides.2030-12-24[0]"),
            user(json!({"date_overrides": ["2030-12-24"]})).invalid("date_overrides"),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_taken_email_is_409_on_create_and_on_update_and_writes_nothing() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let watch = [format!("/v1/users/{}", w.bob), format!("/v1/users/{}", w.alice)];
    reject_all(
        &app,
        &watch,
        &[
            post("/v1/users", json!({"email": "alice@example.com", "timezone": "UTC"})).is(
                409,
                "already_exists",
                Some("email"),
            ),
            // Emails are compared without case or surrounding space.
            post("/v1/users", json!({"email": "  Alice@Example.COM ", "timezone": "UTC"})).is(
                409,
                "already_exists",
                Some("email"),
            ),
            patch(format!("/v1/users/{}", w.bob), json!({"email": "alice@example.com"})).is(
                409,
                "already_exists",
                Some("email"),
            ),
            patch(format!("/v1/users/{}", w.bob), json!({"email": "ALICE@example.com", "name": "Bob"})).is(
                409,
                "already_exists",
                Some("email"),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn user_patch_rejects_each_bad_field_by_name_and_leaves_the_user_exactly_as_it_was() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let path = format!("/v1/users/{}", w.bob);
    let p = |body: Value| patch(path.clone(), body);
    reject_all(
        &app,
        std::slice::from_ref(&path),
        &[
            p(json!({"timezone": null})).invalid("timezone").hint("omit it"),
            p(json!({"email": null})).invalid("email"),
            p(json!({"working_hours": null})).invalid("working_hours"),
            p(json!({"timezone": "Mars/Olympus_Mons"})).invalid("timezone"),
            p(json!({"email": "robert"})).invalid("email"),
            p(json!({"name": long(201)})).invalid("name"),
            p(json!({"working_hours": {"mon": []}})).invalid("working_hours"),
            p(json!({"working_hours": {"monday": [{"start": "9:00", "end": "17:00"}]}}))
                .invalid("working_hours.monday[0]"),
            p(json!({"date_overrides": {"tomorrow": []}})).invalid("date_overrides"),
            // A good field beside a bad one is not applied either.
            p(json!({"name": "Robert", "timezone": "Nowhere/Land"})).invalid("timezone"),
            p(json!({"name": "Robert", "email": "not-an-email"})).invalid("email"),
            patch("/v1/users/usr_doesnotexist", json!({"name": "Ghost"})).not_found(None),
            req(Method::DELETE, "/v1/users/usr_doesnotexist", None).not_found(None),
            get("/v1/users/usr_doesnotexist").not_found(None),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Businesses
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn business_create_rejects_each_bad_field_by_name_and_writes_nothing() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let biz = |changes: Value| {
        let mut body = json!({"name": "Spa", "timezone": "America/New_York"});
        merge(&mut body, changes);
        post("/v1/businesses", body)
    };
    reject_all(
        &app,
        &[],
        &[
            biz(json!({"name": null})).missing("name"),
            biz(json!({"timezone": null})).missing("timezone"),
            biz(json!({"name": ""})).invalid("name"),
            biz(json!({"name": "   "})).invalid("name"),
            biz(json!({"name": long(201)})).invalid("name"),
            biz(json!({"timezone": "Europe/Atlantis"})).invalid("timezone").hint("IANA"),
            biz(json!({"working_hours": {"mon": [{"start": "09:00", "end": "17:00"}]}}))
                .invalid("working_hours")
                .hint("monday to sunday"),
            biz(json!({"working_hours": {"monday": [{"start": "9:00", "end": "17:00"}]}}))
                .invalid("working_hours.monday[0]"),
            biz(json!({"working_hours": {"friday": [{"start": "12:00", "end": "12:00"}]}}))
                .invalid("working_hours.friday[0]"),
            biz(json!({"date_overrides": {"24-12-2030": []}})).invalid("date_overrides"),
            biz(json!({"buffer_before_minutes": -5})).invalid("buffer_before_minutes"),
            biz(json!({"buffer_before_minutes": 1.5})).invalid("buffer_before_minutes"),
            biz(json!({"buffer_before_minutes": "10"})).invalid("buffer_before_minutes"),
            biz(json!({"buffer_before_minutes": 4_294_967_296_u64})).invalid("buffer_before_minutes"),
            biz(json!({"buffer_before_minutes": 1441})).invalid("buffer_before_minutes").hint("1440"),
            biz(json!({"buffer_after_minutes": -1})).invalid("buffer_after_minutes"),
            biz(json!({"buffer_after_minutes": 100_000})).invalid("buffer_after_minutes"),
            biz(json!({"minimum_notice_minutes": -30})).invalid("minimum_notice_minutes"),
            biz(json!({"minimum_notice_minutes": 525_601})).invalid("minimum_notice_minutes"),
            biz(json!({"max_bookings_per_day": 0})).invalid("max_bookings_per_day"),
            biz(json!({"max_bookings_per_day": -3})).invalid("max_bookings_per_day"),
            biz(json!({"max_bookings_per_day": 10_001})).invalid("max_bookings_per_day"),
            biz(json!({"slot_step_minutes": 0})).invalid("slot_step_minutes"),
            biz(json!({"slot_step_minutes": 1441})).invalid("slot_step_minutes"),
            biz(json!({"price_amount": 2500})).missing("price_currency").hint("usd"),
            biz(json!({"price_currency": "usd"})).missing("price_amount"),
            biz(json!({"price_amount": 0, "price_currency": "usd"})).invalid("price_amount"),
            biz(json!({"price_amount": -100, "price_currency": "usd"})).invalid("price_amount"),
            biz(json!({"price_amount": 100_000_000, "price_currency": "usd"})).invalid("price_amount"),
            biz(json!({"price_amount": 25.5, "price_currency": "usd"})).invalid("price_amount"),
            biz(json!({"price_amount": 2500, "price_currency": "dollars"})).invalid("price_currency").hint("ISO 4217"),
            biz(json!({"price_amount": 2500, "price_currency": "u$d"})).invalid("price_currency"),
            biz(json!({"hosts": ["alice"]})).invalid("hosts[0]").hint("usr_"),
            biz(json!({"hosts": [w.alice, "user:not-an-email"]})).invalid("hosts[1]"),
            biz(json!({"hosts": "alice@example.com"})).invalid("hosts"),
            biz(json!({"hosts": [w.alice, 7]})).invalid("hosts[1]"),
            biz(json!({"hosts": ["user:nobody@example.com"]})).not_found(Some("hosts[0]")),
            biz(json!({"hosts": [w.alice, "usr_doesnotexist"]})).not_found(Some("hosts[1]")),
            biz(json!({"hosts": ["bob@example.com", "alice@example.com", "zed@example.com"]}))
                .not_found(Some("hosts[2]")),
        ],
    )
    .await;
}

#[tokio::test]
async fn business_patch_rejects_each_bad_field_by_name_and_leaves_the_business_exactly_as_it_was() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let paid =
        app.business(json!({"name": "Paid", "timezone": "UTC", "price_amount": 5000, "price_currency": "eur"})).await;
    let path = format!("/v1/businesses/{}", w.biz);
    let paid_path = format!("/v1/businesses/{paid}");
    let p = |body: Value| patch(path.clone(), body);
    reject_all(
        &app,
        &[path.clone(), paid_path.clone()],
        &[
            p(json!({"timezone": null})).invalid("timezone").hint("omit it"),
            p(json!({"working_hours": null})).invalid("working_hours"),
            p(json!({"name": null})).invalid("name"),
            p(json!({"name": ""})).invalid("name"),
            p(json!({"timezone": "Europe/Atlantis"})).invalid("timezone"),
            p(json!({"working_hours": {"mon": []}})).invalid("working_hours"),
            p(json!({"working_hours": {"sunday": [{"start": "10:00", "end": "10:00"}]}}))
                .invalid("working_hours.sunday[0]"),
            p(json!({"date_overrides": {"2030-13-01": []}})).invalid("date_overrides"),
            p(json!({"buffer_before_minutes": 2000})).invalid("buffer_before_minutes"),
            p(json!({"buffer_after_minutes": -1})).invalid("buffer_after_minutes"),
            p(json!({"minimum_notice_minutes": 600_000})).invalid("minimum_notice_minutes"),
            p(json!({"max_bookings_per_day": 0})).invalid("max_bookings_per_day"),
            p(json!({"slot_step_minutes": 0})).invalid("slot_step_minutes"),
            p(json!({"price_amount": 500})).missing("price_currency"),
            p(json!({"price_currency": "usd"})).missing("price_amount"),
            p(json!({"price_amount": 500, "price_currency": "us"})).invalid("price_currency"),
            patch(paid_path.clone(), json!({"price_amount": 0})).invalid("price_amount"),
            patch(paid_path.clone(), json!({"price_amount": null})).missing("price_amount"),
            patch(paid_path.clone(), json!({"price_currency": "euro"})).invalid("price_currency"),
            p(json!({"hosts": ["alice"]})).invalid("hosts[0]"),
            p(json!({"hosts": ["nobody@example.com"]})).not_found(Some("hosts[0]")),
            p(json!({"hosts": [w.bob, "usr_doesnotexist"]})).not_found(Some("hosts[1]")),
            // A good field beside a bad one is not applied either.
            p(json!({"name": "Renamed", "buffer_before_minutes": 5000})).invalid("buffer_before_minutes"),
            p(json!({"name": "Renamed", "hosts": [w.bob, "ghost@example.com"]})).not_found(Some("hosts[1]")),
            patch("/v1/businesses/biz_doesnotexist", json!({"name": "Ghost"})).not_found(None),
            req(Method::DELETE, "/v1/businesses/biz_doesnotexist", None).not_found(None),
            get("/v1/businesses/biz_doesnotexist").not_found(None),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Bookings
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn booking_with_end_before_start_is_422_naming_end_time() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let body =
        business_booking(&w.biz, json!({"start_time": "2030-01-03T11:00:00Z", "end_time": "2030-01-03T10:00:00Z"}));
    let r = check_as(&app, &app.key, &post("/v1/bookings", body).invalid("end_time").hint("after")).await;
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn booking_create_in_the_business_shape_rejects_each_bad_field_by_name_and_writes_nothing() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let b = |changes: Value| post("/v1/bookings", business_booking(&w.biz, changes));
    let many_keys: serde_json::Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    reject_all(
        &app,
        &[format!("/v1/bookings/{}", w.booking)],
        &[
            b(json!({"start_time": null})).missing("start_time").hint("RFC 3339"),
            b(json!({"end_time": null})).missing("end_time"),
            b(json!({"customer_email": null})).missing("customer_email"),
            b(json!({"customer_name": null})).missing("customer_name"),
            b(json!({"customer_name": "  "})).missing("customer_name"),
            b(json!({"customer_email": "jane"})).invalid("customer_email"),
            b(json!({"customer_email": "jane@"})).invalid("customer_email"),
            b(json!({"customer_name": long(201)})).invalid("customer_name"),
            b(json!({"end_time": "2030-01-03T09:30:00Z"})).invalid("end_time").hint("after"),
            b(json!({"end_time": "2030-01-03T10:00:00Z"})).invalid("end_time"),
            // The same instant written in another offset is still before the start.
            b(json!({"end_time": "2030-01-03T05:00:00-04:00"})).invalid("end_time"),
            b(json!({"start_time": "2030-01-03T10:00:00"})).invalid("start_time").hint("offset"),
            b(json!({"end_time": "2030-01-03T10:30:00"})).invalid("end_time").hint("offset"),
            b(json!({"start_time": "2030-01-03"})).invalid("start_time"),
            b(json!({"start_time": "tomorrow"})).invalid("start_time"),
            b(json!({"start_time": 1_893_664_800})).invalid("start_time"),
            b(json!({"start_time": "2029-12-31T10:00:00Z", "end_time": "2029-12-31T10:30:00Z"}))
                .invalid("start_time")
                .hint("future"),
            // Just before now.
            b(json!({"start_time": "2030-01-01T07:59:00Z", "end_time": "2030-01-01T08:29:00Z"})).invalid("start_time"),
            b(json!({"end_time": "2030-01-04T10:00:01Z"})).invalid("end_time").hint("24 hours"),
            b(json!({"mode": "sometimes"})).invalid("mode"),
            b(json!({"customer_timezone": "Mars/Olympus_Mons"})).invalid("customer_timezone").hint("IANA"),
            b(json!({"customer_timezone": 5})).invalid("customer_timezone"),
            b(json!({"metadata": {"k": 5}})).invalid("metadata.k"),
            b(json!({"metadata": {"k": long(501)}})).invalid("metadata.k"),
            b(json!({"metadata": {long(41): "v"}})).invalid(leak(format!("metadata.{}", long(41)))).hint("40"),
            b(json!({"metadata": Value::Object(many_keys)})).invalid("metadata"),
            b(json!({"metadata": "text"})).invalid("metadata"),
            b(json!({"notes": long(5001)})).invalid("notes"),
            b(json!({"business_id": "biz_doesnotexist"})).not_found(Some("business_id")).hint("business"),
            b(json!({"business_id": null})).missing("business_id"),
            b(json!({"business_id": ""})).missing("business_id"),
        ],
    )
    .await;
}

#[tokio::test]
async fn booking_create_in_the_participants_shape_rejects_each_bad_field_by_name_and_writes_nothing() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let b = |changes: Value| post("/v1/bookings", people_booking(changes));
    let crowd: Vec<String> = (0..51).map(|i| format!("user:p{i}@example.com")).collect();
    reject_all(
        &app,
        &[format!("/v1/bookings/{}", w.booking)],
        &[
            b(json!({"participants": ["alice"]})).invalid("participants[0]").hint("user:alice@example.com"),
            b(json!({"participants": ["user:alice@example.com", "user:nope"]})).invalid("participants[1]"),
            b(json!({"participants": [w.alice, ""]})).invalid("participants[1]"),
            b(json!({"participants": "user:alice@example.com"})).invalid("participants"),
            b(json!({"participants": [w.alice, 3]})).invalid("participants[1]"),
            b(json!({"participants": crowd})).invalid("participants"),
            b(json!({"participants": [w.alice, "user:nobody@example.com"]}))
                .not_found(Some("participants[1]"))
                .hint("POST /v1/users"),
            b(json!({"participants": ["usr_doesnotexist"]})).not_found(Some("participants[0]")),
            b(json!({"participants": []})).missing("business_id"),
            b(json!({"participants": null})).missing("business_id"),
            b(json!({"end": null})).missing("end_time"),
            b(json!({"start": null})).missing("start_time"),
            b(json!({"title": long(201)})).invalid("title"),
            b(json!({"description": long(5001)})).invalid("description"),
            b(json!({"start_time": "2030-01-03T11:00:00Z"})).invalid("start_time").hint("twice"),
            // Checks after parsing name the fields as they were sent, too.
            b(json!({"start": "2030-01-03T12:00:00Z", "end": "2030-01-03T11:00:00Z"})).invalid("end"),
            b(json!({"start": "2030-01-03T11:00:00Z", "end": "2030-01-05T11:00:00Z"})).invalid("end"),
            b(json!({"start": "2029-06-01T11:00:00Z", "end": "2029-06-01T11:30:00Z"})).invalid("start"),
            // Deserialization errors name the key as it was sent.
            b(json!({"start": "2030-01-03T11:00:00"})).invalid("start").hint("offset"),
            b(json!({"end": "half past eleven"})).invalid("end"),
        ],
    )
    .await;
}

/// Fields sent under their alias (`start`/`end` of the participants shape and of reschedule,
/// `duration` on slots): an unparsable value is reported under the name that was sent, but the
/// handlers' own checks (end before start, longer than 24 h, duration out of range) always name
/// the canonical field (`end_time`, `duration_minutes`), which this request did not send.
#[tokio::test]
async fn a_field_sent_under_its_alias_is_named_as_sent() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    reject_all(
        &app,
        &[format!("/v1/bookings/{}", w.booking)],
        &[
            post(
                "/v1/bookings",
                people_booking(json!({"start": "2030-01-03T12:00:00Z", "end": "2030-01-03T11:00:00Z"})),
            )
            .invalid("end"),
            post("/v1/bookings", people_booking(json!({"end": "2030-01-05T11:00:00Z"}))).invalid("end"),
            post(
                format!("/v1/bookings/{}/reschedule", w.booking),
                json!({"start": "2030-01-04T11:00:00Z", "end": "2030-01-04T10:00:00Z"}),
            )
            .invalid("end"),
            get(format!("/v1/availability/slots?business_id={}&duration=0", w.biz)).invalid("duration"),
        ],
    )
    .await;
}

#[tokio::test]
async fn reschedule_rejects_bad_times_by_name_and_leaves_the_booking_as_it_was() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let path = format!("/v1/bookings/{}/reschedule", w.booking);
    let r = |body: Value| post(path.clone(), body);
    let t = |start: &str, end: &str| json!({"start_time": start, "end_time": end});
    reject_all(
        &app,
        &[format!("/v1/bookings/{}", w.booking)],
        &[
            r(t("2030-01-04T11:00:00Z", "2030-01-04T10:00:00Z")).invalid("end_time").hint("after"),
            r(t("2030-01-04T10:00:00Z", "2030-01-04T10:00:00Z")).invalid("end_time"),
            r(t("2030-01-04T10:00:00Z", "2030-01-05T10:30:00Z")).invalid("end_time").hint("24 hours"),
            r(t("2029-12-31T10:00:00Z", "2029-12-31T10:30:00Z")).invalid("start_time").hint("future"),
            r(t("2030-01-04T10:00:00", "2030-01-04T10:30:00Z")).invalid("start_time").hint("offset"),
            r(json!({"end_time": "2030-01-04T10:30:00Z"})).missing("start_time"),
            r(json!({"start_time": "2030-01-04T10:00:00Z"})).missing("end_time"),
            r(json!({})).missing("start_time"),
            post(format!("/v1/bookings/{}/cancel", w.booking), json!({"reason": long(1001)})).invalid("reason"),
        ],
    )
    .await;
}

#[tokio::test]
async fn unknown_booking_ids_are_404_on_get_reschedule_and_cancel() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let good = json!({"start_time": "2030-01-04T10:00:00Z", "end_time": "2030-01-04T10:30:00Z"});
    let mut cases = Vec::new();
    for id in ["bkg_doesnotexist", "usr_not_a_booking", w.alice.as_str(), w.biz.as_str(), "%20"] {
        cases.push(get(format!("/v1/bookings/{id}")).not_found(None));
        cases.push(post(format!("/v1/bookings/{id}/reschedule"), good.clone()).not_found(None));
        cases.push(post(format!("/v1/bookings/{id}/cancel"), json!({})).not_found(None));
        cases.push(raw(Method::POST, format!("/v1/bookings/{id}/cancel"), "").not_found(None));
    }
    reject_all(&app, &[format!("/v1/bookings/{}", w.booking)], &cases).await;
    // The message names the id that was not found, and nothing else.
    let r = app.get("/v1/bookings/bkg_doesnotexist").await;
    assert!(r.body["error"]["message"].as_str().unwrap().contains("bkg_doesnotexist"), "{}", r.body);
}

#[tokio::test]
async fn bookings_list_rejects_each_bad_filter_by_name() {
    let app = TestApp::start().await;
    let _w = world(&app).await;
    reject_all(
        &app,
        &[],
        &[
            get("/v1/bookings?limit=0").invalid("limit").hint("between 1 and 100"),
            get("/v1/bookings?limit=101").invalid("limit"),
            get("/v1/bookings?limit=-1").invalid("limit"),
            get("/v1/bookings?limit=ten").invalid("limit"),
            get("/v1/bookings?status=done").invalid("status").hint("confirmed"),
            get("/v1/bookings?from=2030-01-02T10:00:00").invalid("from").hint("offset"),
            get("/v1/bookings?to=tomorrow").invalid("to"),
            get("/v1/bookings?customer_email=jane").invalid("customer_email"),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Availability
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn slots_query_rejects_each_bad_parameter_by_name() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let base = format!("/v1/availability/slots?business_id={}", w.biz);
    let q = |extra: &str| get(format!("{base}&{extra}"));
    reject_all(
        &app,
        &[],
        &[
            q("from=2030-01-02T00:00:00Z&to=2030-03-05T00:00:01Z").invalid("to").hint("62 days"),
            q("to=2030-03-05T00:00:00Z").invalid("to"),
            q("from=2030-01-03T00:00:00Z&to=2030-01-02T00:00:00Z").invalid("to").hint("after"),
            q("from=2030-01-03T00:00:00Z&to=2030-01-03T00:00:00Z").invalid("to"),
            q("from=2030-01-02T10:00:00").invalid("from").hint("offset"),
            q("to=next%20week").invalid("to"),
            q("mode=sometimes").invalid("mode").hint("collective"),
            q("limit=0").invalid("limit"),
            q("limit=5001").invalid("limit"),
            q("limit=many").invalid("limit"),
            q("duration_minutes=0").invalid("duration_minutes"),
            q("duration_minutes=1441").invalid("duration_minutes"),
            q("duration_minutes=-30").invalid("duration_minutes"),
            q("duration_minutes=30&duration=60").invalid("duration"),
            q("timezone=Mars/Olympus_Mons").invalid("timezone").hint("IANA"),
            q("participants=alice").invalid("participants[0]"),
            q("participants=user:alice@example.com,user:bad").invalid("participants[1]"),
            q("participants=user:nobody@example.com").not_found(Some("participants[0]")),
            q("participants=user:alice@example.com,usr_doesnotexist").not_found(Some("participants[1]")),
            get("/v1/availability/slots?business_id=biz_doesnotexist").not_found(Some("business_id")),
            get("/v1/availability/slots").missing("business_id"),
            get("/v1/availability/slots?business_id=").missing("business_id"),
        ],
    )
    .await;
    // The boundaries themselves are accepted.
    let r = app.get(&format!("{base}&from=2030-01-02T00:00:00Z&to=2030-03-05T00:00:00Z&limit=5000")).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn free_busy_rejects_each_bad_field_by_name() {
    let app = TestApp::start().await;
    let _w = world(&app).await;
    let fb = |changes: Value| {
        let mut body =
            json!({"time_min": T10, "time_max": "2030-01-03T10:00:00Z", "attendees": [{"email": "alice@example.com"}]});
        merge(&mut body, changes);
        post("/v1/availability", body)
    };
    reject_all(
        &app,
        &[],
        &[
            fb(json!({"time_min": null})).missing("time_min"),
            fb(json!({"time_max": null})).missing("time_max"),
            fb(json!({"attendees": null})).missing("attendees"),
            fb(json!({"time_max": "2030-01-01T10:00:00Z"})).invalid("time_max"),
            fb(json!({"time_max": "2030-03-05T10:00:01Z"})).invalid("time_max").hint("62 days"),
            fb(json!({"time_min": "2030-01-02T10:00:00"})).invalid("time_min").hint("offset"),
            fb(json!({"attendees": []})).invalid("attendees"),
            fb(json!({"attendees": [{"email": "nope"}]})).invalid("attendees[0].email"),
            fb(json!({"attendees": ["alice@example.com"]})).invalid("attendees[0]"),
            fb(json!({"attendees": [{"email": "alice@example.com"}, {"email": "nobody@example.com"}]}))
                .not_found(Some("attendees[1]")),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn list_limits_outside_1_to_100_are_422_naming_limit() {
    let app = TestApp::start().await;
    let _w = world(&app).await;
    let mut cases = Vec::new();
    for list in ["/v1/users", "/v1/businesses", "/v1/bookings"] {
        for limit in ["0", "101", "-1", "1000000000000", "abc", "1.5"] {
            cases.push(get(format!("{list}?limit={limit}")).invalid("limit"));
        }
    }
    reject_all(&app, &[], &cases).await;
    for list in ["/v1/users", "/v1/businesses", "/v1/bookings"] {
        for limit in ["1", "100"] {
            let r = app.get(&format!("{list}?limit={limit}")).await;
            assert_eq!(r.status, 200, "{list}?limit={limit}: {}", r.body);
        }
    }
}

/// `GET /v1/bookings` and the slots query refuse unknown parameters (422 naming them), but the
/// user and business lists silently ignore them, so `?limt=5` returns 20 rows without a word.
#[tokio::test]
async fn an_unknown_query_parameter_on_the_user_and_business_lists_is_422_naming_it() {
    let app = TestApp::start().await;
    reject_all(&app, &[], &[get("/v1/users?limt=5").invalid("limt"), get("/v1/businesses?limt=5").invalid("limt")])
        .await;
}

// ---------------------------------------------------------------------------------------------
// Tenancy
// ---------------------------------------------------------------------------------------------

/// Everything `key` must not be able to see or touch in `w`, each a 404 like an id that never
/// existed, with lists empty and nothing changed on either side.
async fn assert_sealed_off(app: &TestApp, key: &str, w: &World) {
    let watch =
        [format!("/v1/users/{}", w.alice), format!("/v1/businesses/{}", w.biz), format!("/v1/bookings/{}", w.booking)];
    let owner_before = snapshot_as(app, &app.key, &watch).await;
    let times = json!({"start_time": "2030-01-04T10:00:00Z", "end_time": "2030-01-04T10:30:00Z"});
    let cases = [
        get(format!("/v1/users/{}", w.alice)).not_found(None),
        get(format!("/v1/businesses/{}", w.biz)).not_found(None),
        get(format!("/v1/bookings/{}", w.booking)).not_found(None),
        patch(format!("/v1/users/{}", w.alice), json!({"name": "Mallory"})).not_found(None),
        patch(format!("/v1/businesses/{}", w.biz), json!({"name": "Mallory Inc"})).not_found(None),
        req(Method::DELETE, format!("/v1/users/{}", w.bob), None).not_found(None),
        req(Method::DELETE, format!("/v1/businesses/{}", w.biz), None).not_found(None),
        post(format!("/v1/bookings/{}/reschedule", w.booking), times).not_found(None),
        post(format!("/v1/bookings/{}/cancel", w.booking), json!({"reason": "mine now"})).not_found(None),
        post("/v1/bookings", business_booking(&w.biz, json!({}))).not_found(Some("business_id")),
        post("/v1/bookings", people_booking(json!({"participants": [w.alice]}))).not_found(Some("participants[0]")),
        post("/v1/bookings", people_booking(json!({}))).not_found(Some("participants[0]")),
        post("/v1/businesses", json!({"name": "Mine", "timezone": "UTC", "hosts": [w.alice]}))
            .not_found(Some("hosts[0]")),
        post("/v1/businesses", json!({"name": "Mine", "timezone": "UTC", "hosts": ["alice@example.com"]}))
            .not_found(Some("hosts[0]")),
        get(format!("/v1/availability/slots?business_id={}", w.biz)).not_found(Some("business_id")),
        get(format!("/v1/availability/slots?participants={}", w.alice)).not_found(Some("participants[0]")),
        post(
            "/v1/availability",
            json!({"time_min": T10, "time_max": T1030, "attendees": [{"email": "alice@example.com"}]}),
        )
        .not_found(Some("attendees[0]")),
    ];
    reject_all_as(app, key, &watch, &cases).await;
    assert_eq!(snapshot_as(app, &app.key, &watch).await, owner_before, "the owner's data changed");

    // Their lists are empty.
    let seen = snapshot_as(app, key, &[]).await;
    for list in [&seen.users, &seen.businesses, &seen.bookings] {
        assert_eq!(list["data"], json!([]), "{list}");
        assert_eq!(list["next_cursor"], Value::Null, "{list}");
    }
    assert!(seen.outbox.is_empty());
    let r = app.send(Method::GET, &format!("/v1/bookings?business_id={}", w.biz), Some(key), None, &[]).await;
    assert_eq!((r.status.as_u16(), &r.body["data"]), (200, &json!([])), "{}", r.body);

    // A 404 for someone else's object reads exactly like one for an id that never existed.
    for (real, kind) in [(&w.alice, "users"), (&w.biz, "businesses"), (&w.booking, "bookings")] {
        let fake = format!("{}_gone", &real[..real.len() - 5]);
        let a = app.send(Method::GET, &format!("/v1/{kind}/{real}"), Some(key), None, &[]).await;
        let b = app.send(Method::GET, &format!("/v1/{kind}/{fake}"), Some(key), None, &[]).await;
        assert_eq!(a.status, b.status);
        assert_eq!(a.body.to_string().replace(real.as_str(), "ID"), b.body.to_string().replace(&fake, "ID"));
    }
}

#[tokio::test]
async fn another_accounts_objects_are_404_through_its_key_and_its_lists_are_empty() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let globex = app.new_key("globex", Mode::Test).await;
    assert_sealed_off(&app, &globex, &w).await;
}

#[tokio::test]
async fn the_same_accounts_live_key_cannot_see_test_objects() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let live = app.new_key("acme", Mode::Live).await;
    assert_ne!(tenant_of(&app, &live).await, tenant_of(&app, &app.key).await);
    assert_sealed_off(&app, &live, &w).await;
}

#[tokio::test]
async fn cancelling_another_tenants_booking_is_404_and_changes_nothing() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let watch = [format!("/v1/bookings/{}", w.booking)];
    let before = snapshot_as(&app, &app.key, &watch).await;
    let outsiders = [app.new_key("globex", Mode::Test).await, app.new_key("acme", Mode::Live).await];
    for key in &outsiders {
        let r = app.send(Method::POST, &format!("/v1/bookings/{}/cancel", w.booking), Some(key), Some("{}"), &[]).await;
        assert_error(&r, 404, "resource_missing", None);
        // Twice, with a reason and with an idempotency key, still nothing.
        let r = app
            .send(
                Method::POST,
                &format!("/v1/bookings/{}/cancel", w.booking),
                Some(key),
                Some(r#"{"reason":"no"}"#),
                &[("idempotency-key", "cancel-1")],
            )
            .await;
        assert_error(&r, 404, "resource_missing", None);
        assert!(
            app.store
                .outbox_events(&tenant_of(&app, key).await, &PageRequest::default())
                .await
                .unwrap()
                .data
                .is_empty()
        );
    }
    let after = snapshot_as(&app, &app.key, &watch).await;
    assert_eq!(after, before);
    assert_eq!(after.watched[0]["body"]["status"], "confirmed");
    // The owner can still cancel it.
    let r = app.post(&format!("/v1/bookings/{}/cancel", w.booking), json!({})).await;
    assert_eq!((r.status.as_u16(), r.body["status"].as_str()), (200, Some("cancelled")), "{}", r.body);
}

#[tokio::test]
async fn an_email_taken_in_another_account_or_mode_is_free() {
    let app = TestApp::start().await;
    let _w = world(&app).await;
    for key in [app.new_key("globex", Mode::Test).await, app.new_key("acme", Mode::Live).await] {
        let r = app
            .send(Method::POST, "/v1/users", Some(&key), Some(r#"{"email":"alice@example.com","timezone":"UTC"}"#), &[])
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

// ---------------------------------------------------------------------------------------------
// Body size
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_body_over_1_mib_is_413_request_too_large_and_writes_nothing() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let watch = [format!("/v1/users/{}", w.bob), format!("/v1/bookings/{}", w.booking)];
    let before = snapshot_as(&app, &app.key, &watch).await;
    let huge_user = json!({"email": "carol@example.com", "timezone": "UTC", "name": long(1024 * 1024)}).to_string();
    let huge_notes = business_booking(&w.biz, json!({"notes": long(1024 * 1024 + 10)})).to_string();
    let huge_patch = json!({"name": long(2 * 1024 * 1024)}).to_string();
    let requests = [
        (Method::POST, "/v1/users".to_string(), &huge_user),
        (Method::POST, "/v1/bookings".to_string(), &huge_notes),
        (Method::PATCH, format!("/v1/users/{}", w.bob), &huge_patch),
        (Method::POST, format!("/v1/bookings/{}/cancel", w.booking), &huge_patch),
    ];
    for (method, path, body) in requests {
        assert!(body.len() > 1024 * 1024);
        let r = app.send(method.clone(), &path, Some(&app.key), Some(body), &[]).await;
        assert_error(&r, 413, "request_too_large", None);
        // Through the idempotency layer too, and the key stays free for a corrected retry.
        let r = app.send(method.clone(), &path, Some(&app.key), Some(body), &[("idempotency-key", "big-1")]).await;
        assert_error(&r, 413, "request_too_large", None);
        assert_eq!(snapshot_as(&app, &app.key, &watch).await, before, "{method} {path} wrote something");
    }
    // Exactly at the limit is not refused for its size.
    let mut at_limit = json!({"email": "carol@example.com", "timezone": "UTC", "name": ""}).to_string();
    let pad = 1024 * 1024 - at_limit.len();
    at_limit = at_limit.replacen(r#""name":"""#, &format!(r#""name":"{}""#, long(pad)), 1);
    assert_eq!(at_limit.len(), 1024 * 1024);
    let r = app.send(Method::POST, "/v1/users", Some(&app.key), Some(&at_limit), &[]).await;
    assert_error(&r, 422, "parameter_invalid", Some("name"));
}
