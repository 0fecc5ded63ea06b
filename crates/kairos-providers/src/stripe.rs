//! Stripe Checkout for paid bookings: a small client for Checkout Sessions (create, retrieve,
//! expire) and Stripe's webhook events with their signatures ([`verify_signature`], [`StripeEvent`]).
//!
//! Hand-written over reqwest rather than async-stripe, which is stuck on hyper 0.14. Requests
//! are form-encoded with Stripe's bracket keys (`line_items[0][price_data][currency]`), carry
//! the secret key as a bearer token and pin [`API_VERSION`] in `Stripe-Version`, so the shape of
//! every answer is the one this module reads whatever the account's default version is. Every
//! POST sends an `Idempotency-Key`: a create retried after a lost answer gets the first answer
//! back instead of a second session.
//!
//! Errors are sorted the way a caller acts on them: [`StripeError::is_transient`] says whether
//! retrying the same request (with the same idempotency key) can succeed.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer};
use url::Url;

mod webhook;

pub use webhook::{
    CHECKOUT_SESSION_ASYNC_PAYMENT_FAILED, CHECKOUT_SESSION_ASYNC_PAYMENT_SUCCEEDED, CHECKOUT_SESSION_COMPLETED,
    CHECKOUT_SESSION_EXPIRED, DEFAULT_TOLERANCE, EventData, SignatureError, StripeEvent, verify_signature,
};

/// Where Stripe's API lives; tests point the client at an emulator instead.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// The API version every request pins (`Stripe-Version`). Changing it can change the shape of
/// answers and events: read Stripe's changelog for Checkout Sessions first. Webhook events are
/// rendered in the version configured on the webhook endpoint, which should be this one.
pub const API_VERSION: &str = "2026-08-26.dahlia";

/// A client for Stripe's Checkout Sessions API. Cheap to clone; one serves the whole process.
#[derive(Clone)]
pub struct StripeClient {
    secret_key: String,
    api_base: Url,
    http: reqwest::Client,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret key never reaches a log.
        f.debug_struct("StripeClient").field("api_base", &self.api_base.as_str()).finish_non_exhaustive()
    }
}

/// What Kairos asks Stripe to charge for one booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// Sent as `client_reference_id` and `metadata[booking_id]`, so the webhook finds the booking.
    pub booking_id: String,
    /// In the currency's minor unit (cents for `usd`, yen for `jpy`).
    pub amount: i64,
    /// Lowercase ISO 4217 code (`usd`).
    pub currency: String,
    /// What the customer sees on Stripe's page.
    pub product_name: String,
    /// May contain `{CHECKOUT_SESSION_ID}`, which Stripe replaces.
    pub success_url: String,
    pub cancel_url: String,
    /// Prefills Stripe's form.
    pub customer_email: Option<String>,
    /// When Stripe closes the session: 30 minutes to 24 hours after it is created (Stripe
    /// refuses anything else), normally when the booking's payment hold lapses.
    pub expires_at: Timestamp,
    /// The same key for every attempt at the same booking's session, so retries are safe.
    pub idempotency_key: String,
}

impl CheckoutRequest {
    /// The form Stripe's create endpoint reads.
    fn form(&self) -> Vec<(&'static str, String)> {
        let mut form = vec![
            ("mode", "payment".to_string()),
            ("success_url", self.success_url.clone()),
            ("cancel_url", self.cancel_url.clone()),
            ("line_items[0][price_data][currency]", self.currency.clone()),
            ("line_items[0][price_data][unit_amount]", self.amount.to_string()),
            ("line_items[0][price_data][product_data][name]", self.product_name.clone()),
            ("line_items[0][quantity]", "1".to_string()),
            ("metadata[booking_id]", self.booking_id.clone()),
            ("client_reference_id", self.booking_id.clone()),
            ("expires_at", self.expires_at.as_second().to_string()),
        ];
        if let Some(email) = &self.customer_email {
            form.push(("customer_email", email.clone()));
        }
        form
    }
}

/// A Checkout Session as Stripe returns it (and as it appears in `checkout.session.*` events).
/// Only the fields Kairos reads; any other field is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckoutSession {
    /// `cs_test_…` or `cs_live_…`.
    pub id: String,
    /// Stripe's hosted payment page; `None` once the session is complete or expired.
    #[serde(default)]
    pub url: Option<String>,
    pub status: SessionStatus,
    pub payment_status: PaymentStatus,
    #[serde(default)]
    pub amount_total: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub client_reference_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: HashMap<String, String>,
    #[serde(with = "jiff::fmt::serde::timestamp::second::required")]
    pub expires_at: Timestamp,
}

impl CheckoutSession {
    /// Whether the booking may be confirmed: the customer finished checkout and the money is
    /// there. A completed session can still be `unpaid` (delayed payment methods settle later,
    /// announced by `checkout.session.async_payment_succeeded`).
    pub fn is_paid(&self) -> bool {
        self.status == SessionStatus::Complete && self.payment_status == PaymentStatus::Paid
    }

    /// The booking this session pays for, as Kairos tagged it at creation.
    pub fn booking_id(&self) -> Option<&str> {
        self.metadata.get("booking_id").map(String::as_str).or(self.client_reference_id.as_deref())
    }
}

/// Whether the customer can still pay through the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Open,
    Complete,
    Expired,
    /// A value newer than [`API_VERSION`] knows; treated as not payable.
    #[serde(other)]
    Unknown,
}

/// Whether the money arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Paid,
    Unpaid,
    NoPaymentRequired,
    /// A value newer than [`API_VERSION`] knows; treated as unpaid.
    #[serde(other)]
    Unknown,
}

/// Why a Stripe call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// Stripe refused the request and retrying it unchanged will not help (400 bad parameters,
    /// 401 wrong key, 402, 403, 404 no such session, a reused idempotency key). The fields are
    /// Stripe's `{"error": {"type", "code", "message", "param"}}`.
    #[error("Stripe refused the request ({status} {type_}{}): {message}", param.as_deref().map(|p| format!(", param {p}")).unwrap_or_default())]
    Api { status: u16, type_: String, code: Option<String>, message: String, param: Option<String> },
    /// Worth retrying with the same idempotency key: Stripe could not be reached, answered
    /// 409 (the same key is in flight), 429 or 5xx, or said `Stripe-Should-Retry: true`.
    #[error("Stripe is unavailable{}: {message}", status.map(|s| format!(" ({s})")).unwrap_or_default())]
    Transient { status: Option<u16>, message: String },
    /// Stripe answered something this client cannot read.
    #[error("Stripe's answer could not be read: {0}")]
    Protocol(String),
}

impl StripeError {
    /// Whether the same request may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

/// Stripe's error body.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type", default)]
    type_: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    param: Option<String>,
}

impl StripeClient {
    /// `api_base` is [`DEFAULT_API_BASE`] in production. `http` should not follow redirects.
    pub fn new(secret_key: String, api_base: Url, http: reqwest::Client) -> Self {
        Self { secret_key, api_base, http }
    }

    /// Creates a hosted Checkout Session for one booking (`mode=payment`, one line item).
    #[tracing::instrument(skip_all, fields(booking_id = %request.booking_id))]
    pub async fn create_checkout_session(&self, request: &CheckoutRequest) -> Result<CheckoutSession, StripeError> {
        let url = self.url(&["v1", "checkout", "sessions"])?;
        self.send(self.http.post(url).form(&request.form()), Some(&request.idempotency_key)).await
    }

    #[tracing::instrument(skip(self))]
    pub async fn retrieve_checkout_session(&self, id: &str) -> Result<CheckoutSession, StripeError> {
        let url = self.url(&["v1", "checkout", "sessions", id])?;
        self.send(self.http.get(url), None).await
    }

    /// Closes an open session so the customer can no longer pay (Stripe answers 400 for one
    /// that is already complete or expired). The idempotency key is derived from the id: a
    /// retry after a lost answer replays the first answer instead of meeting that 400.
    #[tracing::instrument(skip(self))]
    pub async fn expire_checkout_session(&self, id: &str) -> Result<CheckoutSession, StripeError> {
        let url = self.url(&["v1", "checkout", "sessions", id, "expire"])?;
        self.send(self.http.post(url).form(&[] as &[(&str, &str)]), Some(&format!("kairos-expire-{id}"))).await
    }

    /// `api_base` + the path segments, each percent-encoded (an id is caller input).
    fn url(&self, segments: &[&str]) -> Result<Url, StripeError> {
        let mut url = self.api_base.clone();
        url.path_segments_mut()
            .map_err(|()| StripeError::Protocol(format!("{} cannot be a base URL", self.api_base)))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        idempotency_key: Option<&str>,
    ) -> Result<CheckoutSession, StripeError> {
        let mut request = request.bearer_auth(&self.secret_key).header("Stripe-Version", API_VERSION);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let should_retry = header("stripe-should-retry").map(|v| v == "true");
        let request_id = header("request-id");
        let body = response.bytes().await.map_err(transport)?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body)
                .map_err(|e| StripeError::Protocol(format!("a Checkout Session: {e}")));
        }
        let error = error_from(status, should_retry, &body);
        tracing::warn!(status, request_id = request_id.as_deref().unwrap_or(""), error = %error, "Stripe refused a request");
        Err(error)
    }
}

fn transport(e: reqwest::Error) -> StripeError {
    StripeError::Transient { status: None, message: e.to_string() }
}

/// Sorts an error answer. Stripe's `Stripe-Should-Retry` header, when present, decides; else
/// 409 (a concurrent request holds the idempotency key), 429 and 5xx are transient.
fn error_from(status: u16, should_retry: Option<bool>, body: &[u8]) -> StripeError {
    let transient = should_retry.unwrap_or(status == 409 || status == 429 || status >= 500);
    let detail = serde_json::from_slice::<ErrorBody>(body).ok().map(|b| b.error);
    match (transient, detail) {
        (true, detail) => StripeError::Transient {
            status: Some(status),
            message: detail.and_then(|d| d.message).unwrap_or_else(|| snippet(body)),
        },
        (false, Some(d)) => StripeError::Api {
            status,
            type_: d.type_.unwrap_or_default(),
            code: d.code,
            message: d.message.unwrap_or_default(),
            param: d.param,
        },
        (false, None) => StripeError::Protocol(format!("{status} with a body that is not Stripe's: {}", snippet(body))),
    }
}

/// The start of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(200).collect()
}

/// `null` reads as the type's default (Stripe writes `null` for some empty fields).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_form_has_every_field_stripe_needs_for_one_booking() {
        let request = CheckoutRequest {
            booking_id: "bkg_01".into(),
            amount: 4500,
            currency: "eur".into(),
            product_name: "Consultation".into(),
            success_url: "https://example.com/ok?s={CHECKOUT_SESSION_ID}".into(),
            cancel_url: "https://example.com/cancel".into(),
            customer_email: Some("ann@example.com".into()),
            expires_at: Timestamp::from_second(1_767_229_200).unwrap(),
            idempotency_key: "k".into(),
        };
        let form: HashMap<_, _> = request.form().into_iter().collect();
        assert_eq!(form["mode"], "payment");
        assert_eq!(form["line_items[0][price_data][unit_amount]"], "4500");
        assert_eq!(form["line_items[0][price_data][currency]"], "eur");
        assert_eq!(form["line_items[0][price_data][product_data][name]"], "Consultation");
        assert_eq!(form["line_items[0][quantity]"], "1");
        assert_eq!(form["metadata[booking_id]"], "bkg_01");
        assert_eq!(form["client_reference_id"], "bkg_01");
        assert_eq!(form["customer_email"], "ann@example.com");
        assert_eq!(form["expires_at"], "1767229200");
        let without = CheckoutRequest { customer_email: None, ..request };
        assert!(without.form().iter().all(|(k, _)| *k != "customer_email"));
    }

    #[test]
    fn a_session_reads_leniently() {
        let session: CheckoutSession = serde_json::from_value(json!({
            "id": "cs_test_1", "object": "checkout.session", "url": null, "status": "complete",
            "payment_status": "paid", "amount_total": 4500, "currency": "eur",
            "client_reference_id": null, "metadata": {"booking_id": "bkg_01"},
            "expires_at": 1767229200, "something_new": {"nested": true}
        }))
        .unwrap();
        assert!(session.is_paid());
        assert_eq!(session.booking_id(), Some("bkg_01"));
        assert_eq!(session.expires_at, Timestamp::from_second(1_767_229_200).unwrap());
        let odd: CheckoutSession = serde_json::from_value(json!({
            "id": "cs_test_2", "status": "processing", "payment_status": "pending",
            "metadata": null, "expires_at": 1767229200
        }))
        .unwrap();
        assert_eq!((odd.status, odd.payment_status), (SessionStatus::Unknown, PaymentStatus::Unknown));
        assert!(!odd.is_paid());
        assert!(odd.metadata.is_empty());
    }

    #[test]
    fn completed_but_unpaid_is_not_paid() {
        let session: CheckoutSession = serde_json::from_value(json!({
            "id": "cs_test_3", "status": "complete", "payment_status": "unpaid",
            "client_reference_id": "bkg_02", "metadata": {}, "expires_at": 1767229200
        }))
        .unwrap();
        assert!(!session.is_paid());
        assert_eq!(session.booking_id(), Some("bkg_02"), "client_reference_id when metadata lacks it");
    }

    #[test]
    fn errors_are_sorted_by_what_a_retry_can_do() {
        let body = br#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such checkout.session: 'cs_x'","param":"session"}}"#;
        let e = error_from(404, None, body);
        assert_eq!(
            e,
            StripeError::Api {
                status: 404,
                type_: "invalid_request_error".into(),
                code: Some("resource_missing".into()),
                message: "No such checkout.session: 'cs_x'".into(),
                param: Some("session".into()),
            }
        );
        assert!(!e.is_transient());
        for status in [400, 401, 402, 403] {
            assert!(
                !error_from(status, None, br#"{"error":{"type":"invalid_request_error","message":"m"}}"#)
                    .is_transient()
            );
        }
        for status in [409, 429, 500, 502, 503] {
            assert!(error_from(status, None, br#"{"error":{"type":"api_error","message":"m"}}"#).is_transient());
        }
        assert!(error_from(400, Some(true), br#"{"error":{"type":"invalid_request_error"}}"#).is_transient());
        assert!(!error_from(500, Some(false), br#"{"error":{"type":"api_error"}}"#).is_transient());
        assert!(error_from(502, None, b"<html>bad gateway</html>").is_transient());
        assert!(matches!(error_from(404, None, b"<html>nope</html>"), StripeError::Protocol(_)));
    }

    #[test]
    fn the_secret_key_stays_out_of_debug_output() {
        let client =
            StripeClient::new("sk_test_secret".into(), Url::parse(DEFAULT_API_BASE).unwrap(), reqwest::Client::new());
        assert!(!format!("{client:?}").contains("sk_test_secret"));
    }

    #[test]
    fn ids_are_percent_encoded_into_the_path() {
        let client = StripeClient::new("k".into(), Url::parse("http://127.0.0.1:1/").unwrap(), reqwest::Client::new());
        let url = client.url(&["v1", "checkout", "sessions", "cs_1/../x?y", "expire"]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:1/v1/checkout/sessions/cs_1%2F..%2Fx%3Fy/expire");
    }
}
