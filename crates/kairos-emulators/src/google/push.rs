//! Push notifications: `events.watch` opens a channel, `channels.stop` closes it, and each
//! channel gets a `sync` message first and an `exists` message after every change to its
//! calendar — POSTs with an empty body and the `X-Goog-*` headers
//! (developers.google.com/workspace/calendar/api/guides/push). Messages of one channel are
//! delivered in order by one task; a failed delivery is logged, not retried.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::api_error::ApiError;
use super::state::State as Memory;
use super::{GoogleChannel, GoogleEmulator};

/// How long a channel lives when the client asks for more or for nothing: one week.
const MAX_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Debug)]
pub(crate) struct ChannelState {
    pub channel: GoogleChannel,
    sender: mpsc::UnboundedSender<&'static str>,
}

/// Queues an `exists` message on every live channel of the calendar.
pub(crate) fn notify(state: &Memory, calendar_id: &str) {
    let now = Timestamp::now().as_millisecond();
    for c in state.channels.iter().filter(|c| c.channel.calendar == calendar_id && c.channel.expiration_ms > now) {
        // A closed receiver means the channel's task ended; nothing to tell.
        let _ = c.sender.send("exists");
    }
}

fn int64(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// `POST /calendar/v3/calendars/{calendarId}/events/watch`.
pub(crate) async fn watch(
    State(emu): State<GoogleEmulator>,
    Path(calendar): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let id = text("id").ok_or_else(|| ApiError::required("Required"))?;
    let id_ok = id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_+/=".contains(&b));
    if !id_ok {
        return Err(ApiError::invalid(format!("Invalid channel id {id}")));
    }
    if !matches!(text("type"), Some("web_hook" | "webhook")) {
        return Err(ApiError::invalid("Invalid value for: type"));
    }
    let address = text("address").ok_or_else(|| ApiError::required("Required"))?;
    // Google requires https; the emulator serves tests on 127.0.0.1 and takes http too.
    if url::Url::parse(address).is_err() {
        return Err(ApiError::bad_request(format!("Invalid webhook address: {address}")));
    }
    let now = Timestamp::now().as_millisecond();
    let expiration = int64(body.get("expiration"))
        .filter(|e| *e > now && *e - now < MAX_LIFETIME_MS)
        .unwrap_or(now + MAX_LIFETIME_MS);
    let token = text("token").map(str::to_string);
    let (channel, resource_uri, receiver) = emu.with_state(|s| {
        let cal = s.calendar(&calendar)?;
        if s.channels.iter().any(|c| c.channel.id == id) {
            return Err(ApiError::bad_request(format!("Channel id {id} not unique")));
        }
        let channel = GoogleChannel {
            id: id.to_string(),
            resource_id: cal.resource_id.clone(),
            calendar: cal.id.clone(),
            address: address.to_string(),
            token: token.clone(),
            expiration_ms: expiration,
        };
        let resource_uri = format!(
            "{}/calendar/v3/calendars/{}/events?alt=json",
            s.base_url,
            url::form_urlencoded::byte_serialize(cal.id.as_bytes()).collect::<String>()
        );
        let (sender, receiver) = mpsc::unbounded_channel();
        let _ = sender.send("sync");
        s.channels.push(ChannelState { channel: channel.clone(), sender });
        Ok((channel, resource_uri, receiver))
    })?;
    tokio::spawn(deliver(emu.client.clone(), channel.clone(), resource_uri.clone(), receiver));
    let mut answer = json!({
        "kind": "api#channel",
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": resource_uri,
        "expiration": channel.expiration_ms.to_string(),
    });
    if let (Some(t), Some(map)) = (token, answer.as_object_mut()) {
        map.insert("token".into(), json!(t));
    }
    Ok(Json(answer).into_response())
}

/// `POST /calendar/v3/channels/stop` `{id, resourceId}` → 204.
pub(crate) async fn stop(State(emu): State<GoogleEmulator>, Json(body): Json<Value>) -> Result<StatusCode, ApiError> {
    let id = body.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    let resource_id = body.get("resourceId").and_then(Value::as_str).unwrap_or_default();
    emu.with_state(|s| {
        let index = s
            .channels
            .iter()
            .position(|c| c.channel.id == id && c.channel.resource_id == resource_id)
            .ok_or_else(|| ApiError::channel_not_found(&id))?;
        // Dropping the sender ends the channel's delivery task.
        s.channels.remove(index);
        Ok(StatusCode::NO_CONTENT)
    })
}

/// Delivers one channel's messages in order.
async fn deliver(
    client: reqwest::Client,
    channel: GoogleChannel,
    resource_uri: String,
    mut receiver: mpsc::UnboundedReceiver<&'static str>,
) {
    let expiration = Timestamp::from_millisecond(channel.expiration_ms)
        .ok()
        .and_then(|t| jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&t).ok());
    let mut number: u64 = 0;
    while let Some(state) = receiver.recv().await {
        number += 1;
        let mut request = client
            .post(&channel.address)
            .header("Content-Type", "application/json; utf-8")
            .header("X-Goog-Channel-ID", &channel.id)
            .header("X-Goog-Message-Number", number.to_string())
            .header("X-Goog-Resource-ID", &channel.resource_id)
            .header("X-Goog-Resource-State", state)
            .header("X-Goog-Resource-URI", &resource_uri)
            .body(Vec::new());
        if let Some(token) = &channel.token {
            request = request.header("X-Goog-Channel-Token", token);
        }
        if let Some(expiration) = &expiration {
            request = request.header("X-Goog-Channel-Expiration", expiration);
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::debug!(channel = %channel.id, status = %r.status(), "push notification refused"),
            Err(e) => tracing::debug!(channel = %channel.id, error = %e, "push notification failed"),
        }
    }
}
