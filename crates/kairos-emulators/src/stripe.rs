//! The Stripe emulator: Checkout Sessions, their hosted payment page and signed webhook events.
//!
//! Paths mirror `api.stripe.com`, so a client only changes its base URL:
//! `POST /v1/checkout/sessions` (form-encoded, bracket keys, checked as Stripe checks them),
//! `GET /v1/checkout/sessions/{id}`, `GET /v1/checkout/sessions/{id}/line_items` and
//! `POST /v1/checkout/sessions/{id}/expire`. Requests need `Authorization: Bearer
//! {SECRET_KEY}` (or Basic with the key as user name); POSTs honour `Idempotency-Key` like
//! Stripe (the same key and parameters replay the saved answer, different parameters are an
//! `idempotency_error`). Errors are Stripe's `{"error": {…}}` bodies. A session's `url` is the
//! emulator's own page, `GET /c/pay/{id}`, whose Pay button completes the session and
//! redirects to `success_url`.
//!
//! Tests play the customer and Stripe's webhook sender through [`StripeEmulator::complete`],
//! [`StripeEmulator::expire`] and friends, which POST a signed Event to the endpoint set with
//! [`StripeEmulator::set_webhook`] and return the receiver's status; [`StripeEmulator::requests`]
//! shows what clients sent. Sessions whose `expires_at` passes are expired (with their event)
//! the next time the API is called, as Stripe does within minutes.
//!
//! Known differences from Stripe: only `mode=payment` and `mode=setup`, and only inline
//! prices (`price_data`): there is no product catalogue, no customers and no PaymentIntent
//! objects behind the ids; one API key; one webhook endpoint, without automatic retries
//! (tests redeliver with [`StripeEmulator::resend_last`]); `expand` is ignored.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use jiff::Timestamp;
use serde_json::{Map, Value};

mod api;
mod errors;
mod events;
mod form;
mod page;
mod sessions;

use events::{Cause, Endpoint};
use sessions::Session;

/// One API request as the emulator received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeRequest {
    pub method: String,
    pub path: String,
    /// Header names in lowercase.
    pub headers: BTreeMap<String, String>,
    /// The decoded form pairs of the body (and of the query string), in order.
    pub form: Vec<(String, String)>,
}

impl StripeRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// The value of a form key as sent (`line_items[0][price_data][currency]`).
    pub fn param(&self, key: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// One webhook delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeDelivery {
    pub event_id: String,
    pub event_type: String,
    /// The receiver's status, or why it could not be reached.
    pub outcome: Result<u16, String>,
}

/// Why a test control could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeEmulatorError {
    #[error("no checkout session {0}")]
    NoSuchSession(String),
    #[error("checkout session {id} is {status}, which does not allow this")]
    WrongStatus { id: String, status: String },
    /// The change was made and its event recorded, but there is no endpoint to send it to.
    #[error("no webhook endpoint is set")]
    NoWebhook,
    #[error("no event has been sent yet")]
    NoEvent,
    #[error("the webhook receiver could not be reached: {0}")]
    Unreachable(String),
}

/// An answer saved under an idempotency key.
#[derive(Debug, Clone)]
struct Saved {
    endpoint: String,
    params: Map<String, Value>,
    status: u16,
    body: Value,
    request_id: String,
}

#[derive(Debug, Default)]
struct Memory {
    sessions: Vec<Session>,
    idempotency: HashMap<String, Saved>,
    requests: Vec<StripeRequest>,
    failures: VecDeque<u16>,
    webhook: Option<Endpoint>,
    events: Vec<Value>,
    deliveries: Vec<StripeDelivery>,
    now: Option<Timestamp>,
}

impl Memory {
    fn now(&self) -> Timestamp {
        self.now.unwrap_or_else(Timestamp::now)
    }

    fn session(&mut self, id: &str) -> Option<&mut Session> {
        self.sessions.iter_mut().find(|s| s.id() == id)
    }

    /// Records an event about `session` and returns it.
    fn record(&mut self, kind: &str, session: Value, cause: &Cause) -> Value {
        let pending = u32::from(self.webhook.is_some());
        let event = events::event(kind, session, self.now(), cause, pending);
        self.events.push(event.clone());
        event
    }

    /// Expires the open sessions whose `expires_at` has passed; their events.
    fn expire_due(&mut self) -> Vec<Value> {
        let now = self.now().as_second();
        let mut due = vec![];
        for session in self.sessions.iter_mut().filter(|s| s.status() == "open" && s.expires_at() <= now) {
            session.expire();
            due.push(Value::Object(session.object.clone()));
        }
        due.into_iter().map(|s| self.record("checkout.session.expired", s, &Cause::default())).collect()
    }
}

/// Random alphanumerics after a prefix, like Stripe's ids.
fn opaque(prefix: &str, len: usize) -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    let tail: String = rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect();
    format!("{prefix}{tail}")
}

/// A running emulator; clones share it.
#[derive(Clone)]
pub struct StripeEmulator {
    state: Arc<Mutex<Memory>>,
    client: reqwest::Client,
    base_url: String,
}

impl std::fmt::Debug for StripeEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeEmulator").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl StripeEmulator {
    /// The one secret key the emulator accepts.
    pub const SECRET_KEY: &'static str = "sk_test_51KairosEmulatorSecretKey0000";

    /// The API version events are rendered in.
    pub const API_VERSION: &'static str = events::API_VERSION;

    /// Starts an emulator on 127.0.0.1 on a free port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let emu = Self { state: Arc::default(), client, base_url };
        let app = router(emu.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the Stripe emulator stopped");
            }
        });
        Ok(emu)
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash: the API base and the page host.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Where events go, and the endpoint's signing secret (`whsec_…`).
    pub fn set_webhook(&self, url: &str, secret: &str) {
        self.with_state(|s| s.webhook = Some(Endpoint { url: url.to_string(), secret: secret.to_string() }))
    }

    /// The emulator's clock (creation times, the `expires_at` window, event and signature
    /// timestamps); `None` returns to the system clock. Tests with a fixed clock set the same one.
    pub fn set_now(&self, now: Option<Timestamp>) {
        self.with_state(|s| s.now = now)
    }

    /// The next `n` API requests fail with Stripe's body for `status` (429 rate_limit, 409
    /// idempotency_key_in_use, 5xx api_error), after the key check.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.with_state(|s| s.failures.extend(std::iter::repeat_n(status, n)))
    }

    /// A session as the API would return it.
    pub fn session(&self, id: &str) -> Option<Value> {
        self.with_state(|s| s.session(id).map(|x| Value::Object(x.object.clone())))
    }

    /// Every session, oldest first.
    pub fn sessions(&self) -> Vec<Value> {
        self.with_state(|s| s.sessions.iter().map(|x| Value::Object(x.object.clone())).collect())
    }

    /// Every API request received, oldest first.
    pub fn requests(&self) -> Vec<StripeRequest> {
        self.with_state(|s| s.requests.clone())
    }

    /// Every event created, oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.with_state(|s| s.events.clone())
    }

    pub fn last_event(&self) -> Option<Value> {
        self.with_state(|s| s.events.last().cloned())
    }

    /// Every webhook delivery attempt, oldest first.
    pub fn deliveries(&self) -> Vec<StripeDelivery> {
        self.with_state(|s| s.deliveries.clone())
    }

    /// The customer pays: the session becomes `complete`/`paid` and `checkout.session.completed`
    /// is delivered. The receiver's status.
    pub async fn complete(&self, session_id: &str) -> Result<u16, StripeEmulatorError> {
        self.change(session_id, "open", "checkout.session.completed", |s| s.complete(true)).await
    }

    /// The customer submits a delayed payment method: `complete` but `unpaid`, with
    /// `checkout.session.completed`; [`Self::settle_async_payment`] settles it later.
    pub async fn complete_unpaid(&self, session_id: &str) -> Result<u16, StripeEmulatorError> {
        self.change(session_id, "open", "checkout.session.completed", |s| s.complete(false)).await
    }

    /// The delayed payment of a completed session settles (`paid`,
    /// `checkout.session.async_payment_succeeded`) or fails (`async_payment_failed`).
    pub async fn settle_async_payment(&self, session_id: &str, succeeded: bool) -> Result<u16, StripeEmulatorError> {
        let kind = if succeeded {
            "checkout.session.async_payment_succeeded"
        } else {
            "checkout.session.async_payment_failed"
        };
        self.change(session_id, "complete", kind, |s| s.settle(succeeded)).await
    }

    /// The session's time runs out: `expired`, and `checkout.session.expired` is delivered.
    pub async fn expire(&self, session_id: &str) -> Result<u16, StripeEmulatorError> {
        self.change(session_id, "open", "checkout.session.expired", Session::expire).await
    }

    async fn change(
        &self,
        session_id: &str,
        from: &str,
        kind: &str,
        change: impl FnOnce(&mut Session),
    ) -> Result<u16, StripeEmulatorError> {
        let (event, endpoint) = self.with_state(|s| {
            let session = s.session(session_id).ok_or_else(|| StripeEmulatorError::NoSuchSession(session_id.into()))?;
            let unpaid = session.object.get("payment_status").and_then(Value::as_str) == Some("unpaid");
            let unsettled = kind.contains("async_payment") && !unpaid;
            if session.status() != from || unsettled {
                let status = session.status().to_string();
                return Err(StripeEmulatorError::WrongStatus { id: session_id.into(), status });
            }
            change(session);
            let object = Value::Object(session.object.clone());
            Ok((s.record(kind, object, &Cause::default()), s.webhook.clone()))
        })?;
        self.send(&event, endpoint).await
    }

    /// Delivers the last event again (same id, same body, a fresh signature), as Stripe does
    /// when it retries.
    pub async fn resend_last(&self) -> Result<u16, StripeEmulatorError> {
        let (event, endpoint) = self.with_state(|s| (s.events.last().cloned(), s.webhook.clone()));
        self.send(&event.ok_or(StripeEmulatorError::NoEvent)?, endpoint).await
    }

    /// The `Stripe-Signature` header the emulator would send for `payload` at `timestamp`
    /// (`None` without a webhook endpoint), for tests that send old or altered deliveries.
    pub fn signature_header(&self, payload: &str, timestamp: Timestamp) -> Option<String> {
        self.with_state(|s| s.webhook.as_ref().map(|w| events::signature_header(&w.secret, timestamp, payload)))
    }

    /// The body the emulator sends for an event.
    pub fn payload(event: &Value) -> String {
        events::payload(event)
    }

    /// POSTs `payload` to the webhook endpoint with `signature` as the `Stripe-Signature`
    /// header, verbatim: a bad signature, a stale timestamp, a tampered body.
    pub async fn send_with_signature(&self, payload: &str, signature: &str) -> Result<u16, StripeEmulatorError> {
        let endpoint = self.with_state(|s| s.webhook.clone()).ok_or(StripeEmulatorError::NoWebhook)?;
        events::deliver(&self.client, &endpoint.url, payload.to_string(), signature)
            .await
            .map_err(StripeEmulatorError::Unreachable)
    }

    /// Signs and delivers one event; records the attempt.
    async fn send(&self, event: &Value, endpoint: Option<Endpoint>) -> Result<u16, StripeEmulatorError> {
        let endpoint = endpoint.ok_or(StripeEmulatorError::NoWebhook)?;
        let payload = events::payload(event);
        let signature = events::signature_header(&endpoint.secret, self.with_state(|s| s.now()), &payload);
        let outcome = events::deliver(&self.client, &endpoint.url, payload, &signature).await;
        let text = |k: &str| event.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let delivery = StripeDelivery { event_id: text("id"), event_type: text("type"), outcome: outcome.clone() };
        self.with_state(|s| s.deliveries.push(delivery));
        outcome.map_err(StripeEmulatorError::Unreachable)
    }

    /// Delivers events in the background, in order, as Stripe does after an API call.
    fn send_later(&self, events: Vec<Value>) {
        if events.is_empty() {
            return;
        }
        let emu = self.clone();
        tokio::spawn(async move {
            for event in events {
                let endpoint = emu.with_state(|s| s.webhook.clone());
                if let Err(e) = emu.send(&event, endpoint).await {
                    tracing::debug!(error = %e, "a Stripe emulator event was not delivered");
                }
            }
        });
    }
}

fn router(emu: StripeEmulator) -> Router {
    Router::new()
        .route("/v1/checkout/sessions", post(api::create))
        .route("/v1/checkout/sessions/{id}", get(api::retrieve))
        .route("/v1/checkout/sessions/{id}/line_items", get(api::line_items))
        .route("/v1/checkout/sessions/{id}/expire", post(api::expire))
        .route("/c/pay/{id}", get(page::show).post(page::pay))
        .fallback(api::unrecognized)
        .method_not_allowed_fallback(api::unrecognized)
        .layer(middleware::from_fn_with_state(emu.clone(), api::gate))
        .with_state(emu)
}
