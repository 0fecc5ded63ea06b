//! Stripe's webhook events and their `Stripe-Signature` header.
//!
//! The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=<hex>]`: each `v1` is the hex
//! HMAC-SHA256 of `"{t}.{raw body}"` keyed with the endpoint's whole `whsec_…` string as bytes
//! (not base64-decoded, unlike Standard Webhooks). Several `v1`s appear while a secret is being
//! rolled; any one matching is enough. `v0` is Stripe's test-mode scheme and is ignored. The
//! timestamp is signed too, so checking its age against a tolerance stops replays of captured
//! deliveries.

use hmac::{Hmac, KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use sha2::Sha256;

use super::{CheckoutSession, StripeError};

/// The tolerance Stripe's own libraries use.
pub const DEFAULT_TOLERANCE: SignedDuration = SignedDuration::from_secs(300);

/// The customer finished checkout; fulfil only when the session [`is_paid`](CheckoutSession::is_paid).
pub const CHECKOUT_SESSION_COMPLETED: &str = "checkout.session.completed";
/// The session closed unpaid (its `expires_at` passed, or it was expired through the API).
pub const CHECKOUT_SESSION_EXPIRED: &str = "checkout.session.expired";
/// A delayed payment method of a completed session settled.
pub const CHECKOUT_SESSION_ASYNC_PAYMENT_SUCCEEDED: &str = "checkout.session.async_payment_succeeded";
/// A delayed payment method of a completed session failed.
pub const CHECKOUT_SESSION_ASYNC_PAYMENT_FAILED: &str = "checkout.session.async_payment_failed";

/// Why a webhook delivery was not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The configured endpoint secret is empty: anyone could sign with it.
    #[error("no webhook secret is configured")]
    NoSecret,
    /// The header is not `t=…,v1=…`.
    #[error("the Stripe-Signature header is malformed: {0}")]
    Malformed(&'static str),
    /// The header carries no signature of the `v1` scheme.
    #[error("the Stripe-Signature header has no v1 signature")]
    NoV1Signature,
    /// No `v1` signature matches the payload and secret.
    #[error("no signature matches the payload")]
    Mismatch,
    /// Authentic, but signed longer ago than the tolerance: possibly a replay.
    #[error("the signature's timestamp {timestamp} is older than the tolerance")]
    Stale { timestamp: Timestamp },
    /// Authentic, but signed further in the future than the tolerance.
    #[error("the signature's timestamp {timestamp} is in the future")]
    Future { timestamp: Timestamp },
}

/// Checks a delivery's `Stripe-Signature` against its raw body (the bytes as received, before
/// any JSON parsing) and the endpoint's secret. Signatures are compared in constant time;
/// every `v1` is checked, so timing does not tell which one matched.
pub fn verify_signature(
    header: &str,
    payload: &[u8],
    secret: &str,
    now: Timestamp,
    tolerance: SignedDuration,
) -> Result<(), SignatureError> {
    if secret.trim().is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let (seconds, signatures) = parse_header(header)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoV1Signature);
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    let matched = signatures
        .iter()
        .filter_map(|s| hex::decode(s).ok())
        .fold(false, |found, signature| found | mac.clone().verify_slice(&signature).is_ok());
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    let timestamp = Timestamp::from_second(seconds).map_err(|_| SignatureError::Malformed("t is out of range"))?;
    let age = now.duration_since(timestamp);
    let tolerance = tolerance.abs();
    if age > tolerance {
        return Err(SignatureError::Stale { timestamp });
    }
    if age < -tolerance {
        return Err(SignatureError::Future { timestamp });
    }
    Ok(())
}

/// The timestamp and the `v1` signatures of a header.
fn parse_header(header: &str) -> Result<(i64, Vec<&str>), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for element in header.split(',') {
        let (key, value) =
            element.trim().split_once('=').ok_or(SignatureError::Malformed("an element is not key=value"))?;
        match key {
            "t" => {
                let seconds = value.parse::<i64>().map_err(|_| SignatureError::Malformed("t is not a number"))?;
                if timestamp.replace(seconds).is_some() {
                    return Err(SignatureError::Malformed("t appears twice"));
                }
            }
            "v1" => signatures.push(value),
            // v0 (test mode's legacy scheme) and schemes Stripe may add later.
            _ => {}
        }
    }
    let seconds = timestamp.ok_or(SignatureError::Malformed("no t= timestamp"))?;
    Ok((seconds, signatures))
}

/// A webhook event (an Event object). Other fields (`api_version`, `request`,
/// `pending_webhooks`, …) are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StripeEvent {
    /// `evt_…`; the same for every delivery of one event, so it is the deduplication key.
    pub id: String,
    /// `checkout.session.completed`, …
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(with = "jiff::fmt::serde::timestamp::second::required")]
    pub created: Timestamp,
    pub data: EventData,
    #[serde(default)]
    pub livemode: bool,
}

/// The object the event is about, as it was when the event happened.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

impl StripeEvent {
    /// The event's object read as a Checkout Session (`checkout.session.*` events).
    pub fn checkout_session(&self) -> Result<CheckoutSession, StripeError> {
        let kind = self.data.object.get("object").and_then(serde_json::Value::as_str);
        if kind != Some("checkout.session") {
            return Err(StripeError::Protocol(format!(
                "event {} is about a {}, not a checkout.session",
                self.id,
                kind.unwrap_or("object of no type")
            )));
        }
        CheckoutSession::deserialize(&self.data.object)
            .map_err(|e| StripeError::Protocol(format!("the session in event {}: {e}", self.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::{PaymentStatus, SessionStatus};

    // Vectors computed independently with Python's `hmac` module:
    // hmac.new(SECRET.encode(), f"{T}.{PAYLOAD}".encode(), hashlib.sha256).hexdigest()
    const SECRET: &str = "whsec_test_kairos_0123456789abcdef";
    const PAYLOAD: &str = r#"{"id":"evt_test_1","object":"event","type":"checkout.session.completed"}"#;
    const T: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    const V1: &str = "400541ca99c4bad3fa0cce116d15fc84c1fb1f42b5ca8312caa36bb525fba8b3";
    /// The same content signed with `whsec_other`.
    const V1_OTHER_SECRET: &str = "63e51cddb7ed45f16d4e034aeb790fc9656e311514bf891b2f1e38bb02505700";

    fn at(offset_secs: i64) -> Timestamp {
        Timestamp::from_second(T + offset_secs).unwrap()
    }

    fn verify(header: &str, payload: &str, now: Timestamp) -> Result<(), SignatureError> {
        verify_signature(header, payload.as_bytes(), SECRET, now, DEFAULT_TOLERANCE)
    }

    #[test]
    fn accepts_the_independently_computed_vector() {
        assert_eq!(verify(&format!("t={T},v1={V1}"), PAYLOAD, at(10)), Ok(()));
    }

    #[test]
    fn any_matching_v1_is_enough_and_v0_is_ignored() {
        let rolled = format!(
            "t={T},v1={V1_OTHER_SECRET},v1={V1},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
        );
        assert_eq!(verify(&rolled, PAYLOAD, at(0)), Ok(()));
        let reversed = format!("v1={V1}, t={T}, v1=not-hex");
        assert_eq!(verify(&reversed, PAYLOAD, at(0)), Ok(()));
    }

    #[test]
    fn the_key_is_the_whole_whsec_string_not_its_decoding() {
        // The other secret's signature does not verify under ours, and ours not under it.
        assert_eq!(verify(&format!("t={T},v1={V1_OTHER_SECRET}"), PAYLOAD, at(0)), Err(SignatureError::Mismatch));
        assert_eq!(
            verify_signature(&format!("t={T},v1={V1}"), PAYLOAD.as_bytes(), "whsec_other", at(0), DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(
                &format!("t={T},v1={V1_OTHER_SECRET}"),
                PAYLOAD.as_bytes(),
                "whsec_other",
                at(0),
                DEFAULT_TOLERANCE
            ),
            Ok(())
        );
    }

    #[test]
    fn a_tampered_body_or_timestamp_fails() {
        let tampered = PAYLOAD.replace("evt_test_1", "evt_test_2");
        assert_eq!(verify(&format!("t={T},v1={V1}"), &tampered, at(0)), Err(SignatureError::Mismatch));
        assert_eq!(verify(&format!("t={},v1={V1}", T + 1), PAYLOAD, at(0)), Err(SignatureError::Mismatch));
        let flipped = format!("{}0", &V1[..V1.len() - 1]);
        assert_eq!(verify(&format!("t={T},v1={flipped}"), PAYLOAD, at(0)), Err(SignatureError::Mismatch));
        assert_eq!(verify(&format!("t={T},v1={}", V1.to_uppercase()), PAYLOAD, at(0)), Ok(()), "hex is hex");
    }

    #[test]
    fn old_and_future_timestamps_are_refused_beyond_the_tolerance() {
        let header = format!("t={T},v1={V1}");
        assert_eq!(verify(&header, PAYLOAD, at(300)), Ok(()));
        assert_eq!(verify(&header, PAYLOAD, at(301)), Err(SignatureError::Stale { timestamp: at(0) }));
        assert_eq!(verify(&header, PAYLOAD, at(-300)), Ok(()));
        assert_eq!(verify(&header, PAYLOAD, at(-301)), Err(SignatureError::Future { timestamp: at(0) }));
        let loose = verify_signature(&header, PAYLOAD.as_bytes(), SECRET, at(3600), SignedDuration::from_hours(2));
        assert_eq!(loose, Ok(()));
    }

    #[test]
    fn malformed_headers_have_their_own_errors() {
        for header in ["", "garbage", &format!("v1={V1}"), &format!("t=soon,v1={V1}"), &format!("t={T},t={T},v1={V1}")]
        {
            assert!(matches!(verify(header, PAYLOAD, at(0)), Err(SignatureError::Malformed(_))), "{header:?}");
        }
        assert_eq!(verify(&format!("t={T}"), PAYLOAD, at(0)), Err(SignatureError::NoV1Signature));
        assert_eq!(verify(&format!("t={T},v0={V1}"), PAYLOAD, at(0)), Err(SignatureError::NoV1Signature));
    }

    #[test]
    fn an_empty_secret_is_refused() {
        let e = verify_signature(&format!("t={T},v1={V1}"), PAYLOAD.as_bytes(), " ", at(0), DEFAULT_TOLERANCE);
        assert_eq!(e, Err(SignatureError::NoSecret));
    }

    #[test]
    fn an_event_reads_its_checkout_session() {
        let event: StripeEvent = serde_json::from_str(
            r#"{"id":"evt_1","object":"event","api_version":"2026-08-26.dahlia","created":1767225600,
                "data":{"object":{"id":"cs_test_1","object":"checkout.session","status":"complete",
                "payment_status":"paid","amount_total":4500,"currency":"eur","client_reference_id":"bkg_01",
                "metadata":{"booking_id":"bkg_01"},"expires_at":1767229200,"url":null}},
                "livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},
                "type":"checkout.session.completed"}"#,
        )
        .unwrap();
        assert_eq!(event.type_, CHECKOUT_SESSION_COMPLETED);
        assert_eq!(event.created, at(0));
        let session = event.checkout_session().unwrap();
        assert_eq!((session.status, session.payment_status), (SessionStatus::Complete, PaymentStatus::Paid));
        assert_eq!(session.booking_id(), Some("bkg_01"));

        let other: StripeEvent = serde_json::from_str(
            r#"{"id":"evt_2","created":1767225600,"type":"payment_intent.succeeded",
                "data":{"object":{"id":"pi_1","object":"payment_intent"}}}"#,
        )
        .unwrap();
        assert!(matches!(other.checkout_session(), Err(StripeError::Protocol(_))));
    }
}
