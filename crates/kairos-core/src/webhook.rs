//! Webhooks as the domain sees them: the event names one can subscribe to, a subscription and
//! its signing secrets (with the rotation overlap), the two signatures every delivery carries,
//! the retry schedule, and the delivery record with its attempts.
//!
//! Signing is written here rather than taken from a crate: the Standard Webhooks scheme is an
//! HMAC over `"{id}.{timestamp}.{body}"` (about twenty lines over `hmac` + `sha2`), and the
//! one Rust crate for it pulls in an HTTP stack this pure crate must not have.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Every event type a subscription may name, in the contract's order.
pub const EVENT_TYPES: [&str; 18] = [
    "booking.created",
    "booking.updated",
    "booking.confirmed",
    "booking.cancelled",
    "consent.granted",
    "consent.revoked",
    "proposal.created",
    "proposal.countered",
    "proposal.accepted",
    "proposal.rejected",
    "proposal.cancelled",
    "proposal.expired",
    "proposal.resolved",
    "calendar_event.created",
    "calendar_event.updated",
    "calendar_event.deleted",
    "connection.needs_reauth",
    "connection.reactivated",
];

/// Subscribes to every event type, present and future.
pub const ALL_EVENTS: &str = "*";

/// The type of the event `POST /v1/webhooks/{id}/test` sends. Never fanned out: it goes to
/// the one subscription tested, whatever its `events`.
pub const PING: &str = "ping";

/// How long the secret replaced by a rotation keeps signing beside the new one.
pub const ROTATION_OVERLAP: SignedDuration = SignedDuration::from_hours(24);

/// The most bytes of a receiver's response body kept with an attempt.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;

/// Why a list of event names was refused; the message says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    #[error("`events` must name at least one event type, or \"*\" for all of them.")]
    Empty,
    #[error("`{0}` is not an event type. Valid: \"*\" (all), {list}.", list = quoted_event_types())]
    Unknown(String),
}

fn quoted_event_types() -> String {
    EVENT_TYPES.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(", ")
}

/// Checks a subscription's event names: known types or `"*"`, at least one; duplicates are
/// dropped, order kept.
pub fn parse_events(names: &[String]) -> Result<Vec<String>, EventsError> {
    let mut events: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if name != ALL_EVENTS && !EVENT_TYPES.contains(&name.as_str()) {
            return Err(EventsError::Unknown(name.clone()));
        }
        if !events.contains(name) {
            events.push(name.clone());
        }
    }
    if events.is_empty() {
        return Err(EventsError::Empty);
    }
    Ok(events)
}

/// Whether a subscription to `events` receives an event of `event_type`.
pub fn subscribes(events: &[String], event_type: &str) -> bool {
    events.iter().any(|e| e == ALL_EVENTS || e == event_type)
}

/// The endpoint a URL reaches: `scheme://host:port`, lowercased, with the default port made
/// explicit. Concurrency is limited per endpoint, however many subscriptions point there.
/// (URLs reach this function normalised by the API's URL parser.)
pub fn endpoint_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h).to_ascii_lowercase();
    let scheme = scheme.to_ascii_lowercase();
    // A port follows the last colon, unless that colon is inside an IPv6 literal's brackets.
    let has_port = host_port.rsplit_once(':').is_some_and(|(_, port)| !port.contains(']'));
    if has_port {
        return format!("{scheme}://{host_port}");
    }
    let port = match scheme.as_str() {
        "http" => 80,
        _ => 443,
    };
    format!("{scheme}://{host_port}:{port}")
}

/// A signing secret: `whsec_` and the base64 of 32 random bytes. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub const PREFIX: &'static str = "whsec_";

    /// A secret from 32 random bytes (the caller draws them: this crate does no IO).
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(format!("{}{}", Self::PREFIX, BASE64.encode(bytes)))
    }

    /// A secret as stored or given (e.g. a spec's test vector).
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key of the Standard Webhooks signature: the bytes the base64 after `whsec_`
    /// decodes to (or, for a secret that is not base64, its UTF-8 bytes).
    fn standard_key(&self) -> Vec<u8> {
        let encoded = self.0.strip_prefix(Self::PREFIX).unwrap_or(&self.0);
        BASE64.decode(encoded).unwrap_or_else(|_| encoded.as_bytes().to_vec())
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `X-Webhook-Signature`: lowercase hex HMAC-SHA256 of the raw body, keyed with the whole
/// secret string (`whsec_…` as UTF-8), which is what the reference documents' verifiers do.
pub fn body_signature(secret: &WebhookSecret, body: &[u8]) -> String {
    hex_lower(&hmac_sha256(secret.0.as_bytes(), &[body]))
}

/// One Standard Webhooks signature: `v1,` and the base64 HMAC-SHA256 of
/// `"{id}.{timestamp}.{body}"`, keyed with the decoded secret.
pub fn standard_signature(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let mac = hmac_sha256(&secret.standard_key(), &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", BASE64.encode(mac))
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The signature headers of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `webhook-id`: the event id, the same on every attempt and redelivery.
    pub webhook_id: String,
    /// `webhook-timestamp`: Unix seconds of this attempt.
    pub webhook_timestamp: String,
    /// `webhook-signature`: one `v1,…` per signing secret, newest first, space-separated.
    pub webhook_signature: String,
    /// `X-Webhook-Signature`: hex HMAC of the body with the newest secret.
    pub x_webhook_signature: String,
}

/// Signs `body` with `secrets` (newest first; at least one).
pub fn sign(secrets: &[&WebhookSecret], event_id: &str, at: Timestamp, body: &[u8]) -> SignatureHeaders {
    let timestamp = at.as_second();
    SignatureHeaders {
        webhook_id: event_id.to_string(),
        webhook_timestamp: timestamp.to_string(),
        webhook_signature: secrets
            .iter()
            .map(|s| standard_signature(s, event_id, timestamp, body))
            .collect::<Vec<_>>()
            .join(" "),
        x_webhook_signature: secrets.first().map(|s| body_signature(s, body)).unwrap_or_default(),
    }
}

/// A webhook subscription. Its secrets never serialize: the API shows the secret once, on
/// creation and rotation, by adding it beside this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    #[cfg_attr(feature = "openapi", schema(example = "wh_01jd3k5v7w8x9y0z1a2b3c4d5e"))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(example = "https://example.com/webhooks/kairos"))]
    pub url: String,
    /// Event types, or `["*"]` for all.
    #[cfg_attr(feature = "openapi", schema(example = json!(["booking.created", "booking.cancelled"])))]
    pub events: Vec<String>,
    pub description: Option<String>,
    /// A disabled subscription receives nothing; what was pending for it is marked failed.
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(skip)]
    pub secret: Option<WebhookSecret>,
    /// The secret a rotation replaced, and when it stops signing.
    #[serde(skip)]
    pub previous_secret: Option<(WebhookSecret, Timestamp)>,
}

impl Webhook {
    /// Whether an event of `event_type` goes to this subscription.
    pub fn wants(&self, event_type: &str) -> bool {
        self.enabled && subscribes(&self.events, event_type)
    }

    /// Replaces the secret; the old one keeps signing for [`ROTATION_OVERLAP`]. Rotating
    /// again within the overlap retires the oldest secret at once.
    pub fn rotate(&mut self, new: WebhookSecret, now: Timestamp) {
        self.previous_secret = self.secret.replace(new).map(|old| (old, now + ROTATION_OVERLAP));
        self.updated_at = now;
    }

    /// The secrets that sign a delivery at `now`, newest first.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&WebhookSecret> {
        let previous = self.previous_secret.as_ref().filter(|(_, until)| *until > now).map(|(s, _)| s);
        self.secret.iter().chain(previous).collect()
    }
}

/// When failed attempts are retried: the delay before each retry. `[1m, 5m, 30m]` means four
/// attempts in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<SignedDuration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        Self(vec![SignedDuration::from_mins(1), SignedDuration::from_mins(5), SignedDuration::from_mins(30)])
    }
}

impl RetrySchedule {
    /// A schedule of non-negative delays (an empty one means a single attempt).
    pub fn new(delays: Vec<SignedDuration>) -> Option<Self> {
        delays.iter().all(|d| !d.is_negative()).then_some(Self(delays))
    }

    /// Attempts in all: the first and one per retry.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.0.len()).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// What follows attempt number `attempt` (1-based) that `succeeded` or not. `jitter` in
    /// [0, 1) spreads retries by ±10% so that receivers recovering from an outage are not
    /// hit by every retry at once.
    pub fn after(&self, attempt: u32, succeeded: bool, now: Timestamp, jitter: f64) -> Next {
        if succeeded {
            return Next::Done(DeliveryStatus::Succeeded);
        }
        let index = usize::try_from(attempt.max(1) - 1).unwrap_or(usize::MAX);
        match self.0.get(index) {
            Some(delay) => {
                let factor = 0.9 + 0.2 * jitter.clamp(0.0, 1.0);
                let spread = SignedDuration::from_secs_f64(delay.as_secs_f64() * factor);
                Next::RetryAt(now.saturating_add(spread).unwrap_or(now))
            }
            None => Next::Done(DeliveryStatus::Failed),
        }
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    RetryAt(Timestamp),
    Done(DeliveryStatus),
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// A receiver answered 2xx.
    Succeeded,
    /// Every attempt failed (or the subscription was disabled first).
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 3] = [Self::Pending, Self::Succeeded, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attempt {
    pub attempted_at: Timestamp,
    /// The receiver's status code; null when there was no answer.
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    /// Why the attempt failed when there was no answer (timeout, refused, reset…) or the
    /// answer was not 2xx.
    pub error: Option<String>,
    /// The first 1 KiB of the response body.
    pub response_body: Option<String>,
}

/// One event on its way to one subscription, with every attempt made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    #[cfg_attr(feature = "openapi", schema(example = "whd_01jd3k5v7w8x9y0z1a2b3c4d5e"))]
    pub id: String,
    pub webhook_id: String,
    /// The event's id: the same on every attempt and redelivery (receivers dedupe by it).
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// When the next attempt is due; null once the delivery is finished.
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Oldest first.
    pub attempts: Vec<Attempt>,
}

/// The first [`RESPONSE_EXCERPT_BYTES`] of a response body as text, cut at a character
/// boundary.
pub fn response_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(RESPONSE_EXCERPT_BYTES + 3)]);
    let mut end = text.len().min(RESPONSE_EXCERPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_test_vector() {
        // From the Standard Webhooks specification.
        let secret = WebhookSecret::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            standard_signature(&secret, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1_649_367_553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn body_signature_is_hex_hmac_keyed_with_the_whole_secret() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let secret = WebhookSecret::new("Jefe");
        assert_eq!(
            body_signature(&secret, b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_rotation_signs_with_both_secrets_for_a_day_new_first() {
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let (old, new) = (WebhookSecret::from_random([1; 32]), WebhookSecret::from_random([2; 32]));
        let mut hook = Webhook {
            id: "wh_1".into(),
            url: "https://example.com".into(),
            events: vec!["*".into()],
            description: None,
            enabled: true,
            created_at: now,
            updated_at: now,
            secret: Some(old.clone()),
            previous_secret: None,
        };
        hook.rotate(new.clone(), now);
        assert_eq!(hook.signing_secrets(now), vec![&new, &old]);
        let headers = sign(&hook.signing_secrets(now), "evt_1", now, b"{}");
        let sigs: Vec<&str> = headers.webhook_signature.split(' ').collect();
        assert_eq!(
            sigs,
            [
                standard_signature(&new, "evt_1", now.as_second(), b"{}"),
                standard_signature(&old, "evt_1", now.as_second(), b"{}")
            ]
        );
        assert_eq!(headers.x_webhook_signature, body_signature(&new, b"{}"));
        let later = now + ROTATION_OVERLAP;
        assert_eq!(hook.signing_secrets(later), vec![&new]);
    }

    #[test]
    fn secrets_are_whsec_and_32_bytes_of_base64_and_hidden_from_debug() {
        let s = WebhookSecret::from_random([7; 32]);
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(BASE64.decode(&s.expose()[6..]).unwrap().len(), 32);
        assert_eq!(format!("{s:?}"), "WebhookSecret(…)");
    }

    #[test]
    fn events_are_checked_and_deduplicated() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_events(&names(&["booking.created", "booking.created", "*"])).unwrap(),
            names(&["booking.created", "*"])
        );
        assert_eq!(parse_events(&[]), Err(EventsError::Empty));
        let err = parse_events(&names(&["booking.made"])).unwrap_err();
        assert!(err.to_string().contains("\"booking.cancelled\""), "{err}");
        assert!(parse_events(&names(&["ping"])).is_err(), "ping is sent by the test endpoint only");
    }

    #[test]
    fn the_default_schedule_is_four_attempts_then_failed() {
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 4);
        assert_eq!(s.after(1, false, now, 0.5), Next::RetryAt(now + SignedDuration::from_mins(1)));
        assert_eq!(s.after(2, false, now, 0.5), Next::RetryAt(now + SignedDuration::from_mins(5)));
        assert_eq!(s.after(3, false, now, 0.5), Next::RetryAt(now + SignedDuration::from_mins(30)));
        assert_eq!(s.after(4, false, now, 0.5), Next::Done(DeliveryStatus::Failed));
        assert_eq!(s.after(2, true, now, 0.5), Next::Done(DeliveryStatus::Succeeded));
        // Jitter stays within ±10%.
        let Next::RetryAt(early) = s.after(1, false, now, 0.0) else { panic!() };
        let Next::RetryAt(late) = s.after(1, false, now, 0.999) else { panic!() };
        assert_eq!(early, now + SignedDuration::from_secs(54));
        assert!(late < now + SignedDuration::from_secs(66) && late > now + SignedDuration::from_secs(65));
    }

    #[test]
    fn endpoints_are_scheme_host_and_port() {
        assert_eq!(endpoint_of("https://Example.com/a?b#c"), "https://example.com:443");
        assert_eq!(endpoint_of("https://example.com:8443/x"), "https://example.com:8443");
        assert_eq!(endpoint_of("http://127.0.0.1/hook"), "http://127.0.0.1:80");
        assert_eq!(endpoint_of("https://[2001:db8::1]/x"), "https://[2001:db8::1]:443");
        assert_eq!(endpoint_of("https://[2001:db8::1]:9/x"), "https://[2001:db8::1]:9");
        assert_eq!(endpoint_of("https://u:p@example.com/x"), "https://example.com:443");
    }

    #[test]
    fn excerpts_keep_1_kib_and_whole_characters() {
        assert_eq!(response_excerpt(b"ok"), "ok");
        let long = "é".repeat(1000);
        let cut = response_excerpt(long.as_bytes());
        assert_eq!(cut.len(), 1024);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(response_excerpt(&[b'a'; 5000]).len(), 1024);
    }
}
