//! The API's plumbing and handlers: the gate every `/v1/` request passes (request log, key
//! check, injected failures), idempotency keys, and the Checkout Session endpoints.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::errors::ApiError;
use super::events::{API_VERSION, Cause};
use super::{Memory, Saved, StripeEmulator, StripeRequest, form, opaque, sessions};

/// Stripe refuses larger bodies long before this.
const MAX_BODY: usize = 1 << 20;

/// Stripe's limit on an idempotency key.
const MAX_KEY_CHARS: usize = 255;

/// What an endpoint did: its answer and the events it caused.
pub(crate) struct Done {
    body: Value,
    events: Vec<Value>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The secret key of `Authorization: Bearer sk_…` or of Basic auth (key as user name, as
/// `curl -u sk_…:` sends it).
fn api_key(headers: &HeaderMap) -> Option<String> {
    let value = header(headers, "authorization")?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_string());
    }
    let decoded = STANDARD.decode(value.strip_prefix("Basic ")?.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split(':').next().unwrap_or_default().to_string())
}

fn check_key(headers: &HeaderMap) -> Result<(), ApiError> {
    match api_key(headers) {
        None => Err(ApiError::no_api_key()),
        Some(key) if key.is_empty() => Err(ApiError::no_api_key()),
        Some(key) if key != StripeEmulator::SECRET_KEY => Err(ApiError::invalid_api_key(&key)),
        Some(_) => Ok(()),
    }
}

/// Records every `/v1/` request, then checks the key, then serves injected failures.
pub(crate) async fn gate(State(emu): State<StripeEmulator>, request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return respond(&ApiError::bad_request("The request body is too large.").into(), &parts.headers);
    };
    let mut pairs = form::pairs(parts.uri.query().unwrap_or_default().as_bytes());
    pairs.extend(form::pairs(&bytes));
    let recorded = StripeRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        form: pairs,
    };
    let verdict = emu.with_state(|s| {
        s.requests.push(recorded);
        check_key(&parts.headers)?;
        s.failures.pop_front().map_or(Ok(()), |status| Err(ApiError::injected(status)))
    });
    if let Err(e) = verdict {
        return respond(&e.into(), &parts.headers);
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// An answer about to be written.
struct Reply {
    status: u16,
    body: Value,
    request_id: String,
    /// The request whose saved answer this replays.
    original_request: Option<String>,
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Self { status: e.status, body: e.body(), request_id: opaque("req_", 14), original_request: None }
    }
}

fn respond(reply: &Reply, request_headers: &HeaderMap) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(&reply.body)).into_response();
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("request-id", &reply.request_id);
    set("stripe-version", header(request_headers, "stripe-version").unwrap_or(API_VERSION));
    if let Some(key) = header(request_headers, "idempotency-key") {
        set("idempotency-key", key);
    }
    if let Some(original) = &reply.original_request {
        set("idempotent-replayed", "true");
        set("original-request", original);
    }
    if reply.status == 401 {
        set("www-authenticate", "Basic realm=\"Stripe\"");
    }
    response
}

/// Runs one endpoint under Stripe's idempotency rules: a POST's `Idempotency-Key` saves the
/// answer of a request that got as far as the endpoint; the same key again replays it if the
/// endpoint and parameters are the same and is an `idempotency_error` otherwise.
fn call(
    emu: &StripeEmulator,
    endpoint: String,
    headers: &HeaderMap,
    body: &[u8],
    op: impl FnOnce(&mut Memory, &Map<String, Value>, &Cause) -> Result<Done, ApiError>,
) -> Response {
    let params = match form::parse(&form::pairs(body)) {
        Ok(params) => params,
        Err(key) => return respond(&ApiError::invalid(&key, format!("Invalid value for {key}.")).into(), headers),
    };
    let key = endpoint.starts_with("POST ").then(|| header(headers, "idempotency-key")).flatten().map(str::to_string);
    let request_id = opaque("req_", 14);
    let (reply, events) = emu.with_state(|s| {
        if let Some(key) = &key {
            if key.chars().count() > MAX_KEY_CHARS {
                let e = ApiError::bad_request(format!("Idempotency keys can be at most {MAX_KEY_CHARS} characters."));
                return (e.into(), vec![]);
            }
            if let Some(saved) = s.idempotency.get(key) {
                return (replay(saved, key, &endpoint, &params), vec![]);
            }
        }
        let mut events = s.expire_due();
        let cause = Cause { request_id: Some(request_id.clone()), idempotency_key: key.clone() };
        let (status, body, save) = match op(s, &params, &cause) {
            Ok(done) => {
                events.extend(done.events);
                (200, done.body, true)
            }
            Err(e) => (e.status, e.body(), e.saved),
        };
        if let (true, Some(key)) = (save, &key) {
            let saved = Saved { endpoint, params, status, body: body.clone(), request_id: request_id.clone() };
            s.idempotency.insert(key.clone(), saved);
        }
        (Reply { status, body, request_id, original_request: None }, events)
    });
    emu.send_later(events);
    respond(&reply, headers)
}

fn replay(saved: &Saved, key: &str, endpoint: &str, params: &Map<String, Value>) -> Reply {
    let mismatch = if saved.endpoint != endpoint {
        Some(format!(
            "Keys for idempotent requests can only be used for the same endpoint they were first used for \
             ('{}' vs '{endpoint}'). Try using a key other than '{key}' if you meant to execute a different request.",
            saved.endpoint
        ))
    } else if &saved.params != params {
        Some(format!(
            "Keys for idempotent requests can only be used with the same parameters they were first used with. Try \
             using a key other than '{key}' if you meant to execute a different request."
        ))
    } else {
        None
    };
    match mismatch {
        Some(message) => ApiError::idempotency(message).into(),
        None => Reply {
            status: saved.status,
            body: saved.body.clone(),
            request_id: opaque("req_", 14),
            original_request: Some(saved.request_id.clone()),
        },
    }
}

fn no_such_session(id: &str) -> ApiError {
    ApiError::no_such("checkout.session", id, "session")
}

/// `POST /v1/checkout/sessions`.
pub(crate) async fn create(State(emu): State<StripeEmulator>, headers: HeaderMap, body: Bytes) -> Response {
    call(&emu, "POST /v1/checkout/sessions".into(), &headers, &body, |s, params, _| {
        let session = sessions::create(params, s.now(), &emu.base_url)?;
        let body = Value::Object(session.object.clone());
        s.sessions.push(session);
        Ok(Done { body, events: vec![] })
    })
}

/// `GET /v1/checkout/sessions/{id}`.
pub(crate) async fn retrieve(
    State(emu): State<StripeEmulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    call(&emu, format!("GET /v1/checkout/sessions/{id}"), &headers, b"", |s, _, _| {
        let session = s.session(&id).ok_or_else(|| no_such_session(&id))?;
        Ok(Done { body: Value::Object(session.object.clone()), events: vec![] })
    })
}

/// `GET /v1/checkout/sessions/{id}/line_items`: one page holds them all.
pub(crate) async fn line_items(
    State(emu): State<StripeEmulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    call(&emu, format!("GET /v1/checkout/sessions/{id}/line_items"), &headers, b"", |s, _, _| {
        let session = s.session(&id).ok_or_else(|| no_such_session(&id))?;
        let body = json!({
            "object": "list", "data": session.line_items, "has_more": false,
            "url": format!("/v1/checkout/sessions/{id}/line_items")
        });
        Ok(Done { body, events: vec![] })
    })
}

/// `POST /v1/checkout/sessions/{id}/expire`: only an open session; `checkout.session.expired`
/// follows.
pub(crate) async fn expire(
    State(emu): State<StripeEmulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call(&emu, format!("POST /v1/checkout/sessions/{id}/expire"), &headers, &body, |s, params, cause| {
        if let Some(unknown) = params.keys().find(|k| *k != "expand") {
            return Err(ApiError::unknown_param(unknown));
        }
        let session = s.session(&id).ok_or_else(|| no_such_session(&id))?;
        if session.status() != "open" {
            return Err(ApiError::state(format!(
                "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a \
                 status of `{}`.",
                session.status()
            )));
        }
        session.expire();
        let body = Value::Object(session.object.clone());
        let event = s.record("checkout.session.expired", body.clone(), cause);
        Ok(Done { body, events: vec![event] })
    })
}

/// Any other path or method.
pub(crate) async fn unrecognized(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    respond(&ApiError::unrecognized_url(method.as_str(), uri.path()).into(), &headers)
}
