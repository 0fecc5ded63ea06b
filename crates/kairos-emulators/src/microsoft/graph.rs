//! The Graph front door: every `/v1.0/…` request is logged, may be failed on purpose
//! (`fail_next`), must carry a live bearer token, and is routed here. Paths are matched the way
//! Graph matches them: segment names case-insensitively, `delta()` and
//! `microsoft.graph.delta` as well as `delta` (the SDKs send the former), and `users/{id or
//! address}/…` as `me/…` for the mailbox owner.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::delta::{self, DeltaRequest};
use super::errors::GraphError;
use super::events::{self, Paging};
use super::state::{Query, State};
use super::subscriptions;
use super::view::OutZone;
use crate::microsoft::{GraphSubscription, Shared};

/// What the `Prefer` headers ask for.
#[derive(Debug, Default)]
struct Prefer {
    timezone: Option<String>,
    max_page_size: Option<usize>,
}

impl Prefer {
    fn parse(headers: &HeaderMap) -> Self {
        let mut out = Self::default();
        for value in headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()) {
            for part in value.split(',') {
                let Some((name, v)) = part.trim().split_once('=') else { continue };
                let v = v.trim().trim_matches('"');
                match name.trim().to_ascii_lowercase().as_str() {
                    "outlook.timezone" => out.timezone = Some(v.to_string()),
                    "odata.maxpagesize" => out.max_page_size = v.parse().ok(),
                    _ => {}
                }
            }
        }
        out
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request, with its path in Graph's normal form.
struct Req {
    method: Method,
    segs: Vec<String>,
    lower: Vec<String>,
    query: Query,
    headers: HeaderMap,
    body: Bytes,
    zone: OutZone,
    prefer: Prefer,
}

impl Req {
    fn new(st: &State, method: Method, uri: &Uri, headers: HeaderMap, body: Bytes) -> Self {
        let rest = uri.path().strip_prefix("/v1.0/").unwrap_or("");
        let mut segs: Vec<String> = rest.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
        if segs.first().is_some_and(|s| s.eq_ignore_ascii_case("users"))
            && segs.get(1).is_some_and(|u| *u == st.user_id || u.eq_ignore_ascii_case(&st.email))
        {
            segs.splice(0..2, ["me".to_string()]);
        }
        for s in &mut segs {
            let bare = s.strip_suffix("()").unwrap_or(s);
            let bare = bare.strip_prefix("microsoft.graph.").unwrap_or(bare);
            if matches!(bare.to_ascii_lowercase().as_str(), "delta" | "getschedule") {
                *s = bare.to_string();
            }
        }
        let lower = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
        let prefer = Prefer::parse(&headers);
        let zone = prefer.timezone.as_deref().map_or_else(OutZone::utc, OutZone::named);
        Self { method, segs, lower, query: Query::parse(uri.query()), headers, body, zone, prefer }
    }

    fn if_match(&self) -> Option<&str> {
        self.headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
    }
}

/// Every `/v1.0` request.
pub(crate) async fn handle(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = {
        let Ok(mut st) = shared.state.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        st.request_log.push(uri.path().to_string());
        if !uri.path().starts_with("/v1.0/") {
            return GraphError::bad_request("BadRequest", "Invalid version.").with_request(&headers).into_response();
        }
        if let Some((status, retry_after)) = st.fail_queue.pop_front() {
            return GraphError::throttled(status, retry_after).with_request(&headers).into_response();
        }
        if let Err(e) = st.identity.check_bearer(&headers) {
            return e.with_request(&headers).into_response();
        }
        Req::new(&st, method, &uri, headers, body)
    };
    let result = route(&shared, &req).await;
    shared.flush_notifications();
    let mut response = match result {
        Ok(r) => r,
        Err(e) => e.with_request(&req.headers).into_response(),
    };
    if let Some(tz) = &req.prefer.timezone
        && let Ok(v) = HeaderValue::from_str(&format!("outlook.timezone=\"{tz}\""))
    {
        response.headers_mut().insert("preference-applied", v);
    }
    response
}

fn json_ok(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn not_routed(req: &Req) -> GraphError {
    let seg = req.segs.last().cloned().unwrap_or_default();
    GraphError::bad_request("BadRequest", format!("Resource not found for the segment '{seg}'."))
}

async fn route(shared: &Shared, req: &Req) -> Result<Response, GraphError> {
    if req.lower.first().map(String::as_str) == Some("subscriptions") {
        return subscription_route(shared, req).await;
    }
    let mut st = shared.state.lock().map_err(|_| GraphError::new(500, "generalException", "state poisoned"))?;
    let st = &mut *st;
    let l: Vec<&str> = req.lower.iter().map(String::as_str).collect();
    let m = &req.method;
    if l.first() != Some(&"me") {
        return Err(if l.first() == Some(&"users") { GraphError::item_not_found() } else { not_routed(req) });
    }
    match (m, &l[1..]) {
        (&Method::GET, []) => {
            return Ok(json_ok(
                StatusCode::OK,
                json!({"@odata.context": format!("{}/v1.0/$metadata#users/$entity", st.base_url),
                       "id": st.user_id, "displayName": st.display_name, "mail": st.email,
                       "userPrincipalName": st.email, "givenName": "Alice", "surname": "Contoso"}),
            ));
        }
        (&Method::GET, ["calendars"]) => {
            let items = st.calendars.iter().map(|c| st.calendar_json(c)).collect();
            let paging = Paging { query: &req.query, link_path: "me/calendars", default_top: 10 };
            let context = format!("users('{}')/calendars", st.user_id);
            return Ok(json_ok(StatusCode::OK, events::page(st, &paging, &context, items)));
        }
        (&Method::GET, ["calendar"]) | (&Method::GET, ["calendars", _]) => {
            let id = if l.len() == 2 { st.default_calendar().to_string() } else { req.segs[2].clone() };
            let cal = st.calendar(&id).ok_or_else(GraphError::item_not_found)?;
            let mut body = st.calendar_json(cal);
            body["@odata.context"] =
                json!(format!("{}/v1.0/$metadata#users('{}')/calendars/$entity", st.base_url, st.user_id));
            return Ok(json_ok(StatusCode::OK, body));
        }
        _ => {}
    }
    // The calendar a request is about: `me/calendar/…`, `me/calendars/{id}/…` or `me/…`.
    let (calendar, at, prefix) = match l.get(1) {
        Some(&"calendar") => (st.default_calendar().to_string(), 2, "me/calendar".to_string()),
        Some(&"calendars") if l.len() > 3 => (req.segs[2].clone(), 3, format!("me/calendars/{}", req.segs[2])),
        _ => (st.default_calendar().to_string(), 1, "me".to_string()),
    };
    if st.calendar(&calendar).is_none() {
        return Err(GraphError::item_not_found());
    }
    let rest = &l[at..];
    let zone = &req.zone;
    match (m, rest) {
        (&Method::GET, ["calendarview"]) => {
            let link = format!("{prefix}/calendarView");
            let paging = Paging { query: &req.query, link_path: &link, default_top: 10 };
            Ok(json_ok(StatusCode::OK, events::calendar_view(st, &calendar, &paging, zone)?))
        }
        (&Method::GET, ["calendarview", "delta"]) => {
            let link = format!("{prefix}/calendarView/delta");
            let q = &req.query;
            let d = DeltaRequest {
                calendar: &calendar,
                link_path: &link,
                start: q.get("startDateTime"),
                end: q.get("endDateTime"),
                delta_token: q.get("$deltatoken"),
                skip_token: q.get("$skiptoken"),
                page_size: req.prefer.max_page_size.unwrap_or(10),
                zone,
            };
            Ok(json_ok(StatusCode::OK, delta::delta(st, &d)?))
        }
        (&Method::GET, ["events"]) => {
            let link = format!("{prefix}/events");
            let paging = Paging { query: &req.query, link_path: &link, default_top: 10 };
            Ok(json_ok(StatusCode::OK, events::list_events(st, &calendar, &paging, zone)))
        }
        (&Method::POST, ["events"]) => {
            Ok(json_ok(StatusCode::CREATED, events::create_event(st, &calendar, &req.body, zone)?))
        }
        (&Method::GET, ["events", _]) => {
            Ok(json_ok(StatusCode::OK, events::get_event(st, &req.segs[at + 1], zone, &req.query)?))
        }
        (&Method::PATCH, ["events", _]) => {
            let body = events::patch_event(st, &req.segs[at + 1], req.if_match(), &req.body, zone)?;
            Ok(json_ok(StatusCode::OK, body))
        }
        (&Method::DELETE, ["events", _]) => {
            events::delete_event(st, &req.segs[at + 1], req.if_match())?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (&Method::GET, ["events", _, "instances"]) => {
            let id = req.segs[at + 1].clone();
            let link = format!("{prefix}/events/{id}/instances");
            let paging = Paging { query: &req.query, link_path: &link, default_top: 10 };
            Ok(json_ok(StatusCode::OK, events::instances(st, &id, &paging, zone)?))
        }
        (&Method::POST, ["getschedule"]) => Ok(json_ok(StatusCode::OK, events::get_schedule(st, &req.body, zone)?)),
        (_, ["calendarview" | "events" | "getschedule", ..]) => Err(GraphError::new(
            405,
            "BadRequest",
            "The OData request is not supported: the HTTP method is not allowed on this resource.",
        )),
        _ => Err(not_routed(req)),
    }
}

async fn subscription_route(shared: &Shared, req: &Req) -> Result<Response, GraphError> {
    let poisoned = || GraphError::new(500, "generalException", "state poisoned");
    let not_found = || GraphError::new(404, "ResourceNotFound", "The object was not found.");
    match (&req.method, req.segs.get(1)) {
        (&Method::POST, None) => {
            let body: Value = serde_json::from_slice(&req.body)
                .map_err(|_| GraphError::bad_request("BadRequest", "Unable to read JSON request payload."))?;
            let new = subscriptions::read_create(&body)?;
            // The handshakes run without the lock: the receiver may call Graph meanwhile.
            subscriptions::validate(&shared.http, &new.notification_url).await?;
            if let Some(lifecycle) = &new.lifecycle_url {
                subscriptions::validate(&shared.http, lifecycle).await?;
            }
            let mut st = shared.state.lock().map_err(|_| poisoned())?;
            let sub = GraphSubscription {
                id: super::errors::guid(),
                resource: new.resource,
                change_type: new.change_type,
                notification_url: new.notification_url,
                lifecycle_url: new.lifecycle_url,
                client_state: new.client_state,
                expiration: new.expiration,
            };
            let body = subscriptions::to_json(&st, &sub);
            st.subscriptions.insert(sub.id.clone(), sub);
            Ok(json_ok(StatusCode::CREATED, body))
        }
        (&Method::GET, None) => {
            let st = shared.state.lock().map_err(|_| poisoned())?;
            let value: Vec<Value> = st.subscriptions.values().map(|s| subscriptions::to_json(&st, s)).collect();
            Ok(json_ok(
                StatusCode::OK,
                json!({"@odata.context": format!("{}/v1.0/$metadata#subscriptions", st.base_url), "value": value}),
            ))
        }
        (&Method::GET, Some(id)) => {
            let st = shared.state.lock().map_err(|_| poisoned())?;
            let s = st.subscriptions.get(id).ok_or_else(not_found)?;
            Ok(json_ok(StatusCode::OK, subscriptions::to_json(&st, s)))
        }
        (&Method::PATCH, Some(id)) => {
            let body: Value = serde_json::from_slice(&req.body)
                .map_err(|_| GraphError::bad_request("BadRequest", "Unable to read JSON request payload."))?;
            let at = subscriptions::check_expiration(body.get("expirationDateTime").and_then(Value::as_str))?;
            let mut st = shared.state.lock().map_err(|_| poisoned())?;
            let s = st.subscriptions.get_mut(id).ok_or_else(not_found)?;
            s.expiration = at;
            let s = s.clone();
            Ok(json_ok(StatusCode::OK, subscriptions::to_json(&st, &s)))
        }
        (&Method::DELETE, Some(id)) => {
            let mut st = shared.state.lock().map_err(|_| poisoned())?;
            st.subscriptions.remove(id).ok_or_else(not_found)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(not_routed(req)),
    }
}
