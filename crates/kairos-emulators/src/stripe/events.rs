//! Webhook events: Event objects (docs.stripe.com/api/events/object) and their delivery with a
//! `Stripe-Signature` header.
//!
//! The signing is written here on purpose rather than borrowed from `kairos-providers`: the
//! emulator's signer and Kairos's verifier are two implementations of Stripe's scheme that check
//! each other (and the Python SDK checks this one).

use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::Sha256;

use super::opaque;

/// The API version events are rendered in (the webhook endpoint's version at Stripe).
pub(crate) const API_VERSION: &str = "2026-08-26.dahlia";

/// Stripe adds a `v0` signature to test-mode deliveries (its legacy scheme, keyed with another
/// secret); receivers must ignore it. This key stands in for that other secret.
const V0_KEY: &[u8] = b"whsec_v0_legacy_test_mode";

/// A configured webhook endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub url: String,
    pub secret: String,
}

/// The API request that caused an event, when there was one (`request` of the Event object).
#[derive(Debug, Clone, Default)]
pub(crate) struct Cause {
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
}

/// An Event object about `object`.
pub(crate) fn event(kind: &str, object: Value, created: Timestamp, cause: &Cause, pending_webhooks: u32) -> Value {
    json!({
        "id": opaque("evt_", 24),
        "object": "event",
        "api_version": API_VERSION,
        "created": created.as_second(),
        "data": {"object": object},
        "livemode": false,
        "pending_webhooks": pending_webhooks,
        "request": {"id": cause.request_id, "idempotency_key": cause.idempotency_key},
        "type": kind
    })
}

fn hex_hmac(key: &[u8], timestamp: i64, payload: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(format!("{timestamp}.{payload}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// `t=<unix>,v1=<hex HMAC-SHA256 keyed with the whole whsec_ string>,v0=<…>`.
pub(crate) fn signature_header(secret: &str, timestamp: Timestamp, payload: &str) -> String {
    let t = timestamp.as_second();
    format!("t={t},v1={},v0={}", hex_hmac(secret.as_bytes(), t, payload), hex_hmac(V0_KEY, t, payload))
}

/// The body Stripe sends: the event as pretty-printed JSON.
pub(crate) fn payload(event: &Value) -> String {
    serde_json::to_string_pretty(event).unwrap_or_default()
}

/// POSTs one delivery as Stripe does; the receiver's status, or why it could not be reached.
pub(crate) async fn deliver(
    client: &reqwest::Client,
    url: &str,
    payload: String,
    signature: &str,
) -> Result<u16, String> {
    let response = client
        .post(url)
        .header("Content-Type", "application/json; charset=utf-8")
        .header("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
        .header("Cache-Control", "no-cache")
        .header("Stripe-Signature", signature)
        .body(payload)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_stripes_libraries() {
        // stripe.WebhookSignature.generate_signature_header(PAYLOAD, SECRET, 1767225600) in
        // stripe-python 16 gives t=1767225600,v1=400541ca….
        let payload = r#"{"id":"evt_test_1","object":"event","type":"checkout.session.completed"}"#;
        let header = signature_header(
            "whsec_test_kairos_0123456789abcdef",
            Timestamp::from_second(1_767_225_600).unwrap(),
            payload,
        );
        assert!(
            header.starts_with("t=1767225600,v1=400541ca99c4bad3fa0cce116d15fc84c1fb1f42b5ca8312caa36bb525fba8b3,v0="),
            "{header}"
        );
    }

    #[test]
    fn events_have_stripes_shape() {
        let cause = Cause { request_id: Some("req_1".into()), idempotency_key: Some("k".into()) };
        let e = event("checkout.session.expired", json!({"id": "cs_1"}), Timestamp::UNIX_EPOCH, &cause, 1);
        assert!(e["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(e["object"], "event");
        assert_eq!(e["data"]["object"]["id"], "cs_1");
        assert_eq!(e["request"], json!({"id": "req_1", "idempotency_key": "k"}));
        assert_eq!(e["type"], "checkout.session.expired");
    }
}
