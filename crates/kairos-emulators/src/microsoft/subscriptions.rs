//! Change-notification subscriptions (learn.microsoft.com/graph/change-notifications-delivery-webhooks,
//! …/api/resources/subscription, …/change-notifications-lifecycle-events):
//!
//! - `POST /subscriptions` validates `notificationUrl` and `lifecycleNotificationUrl` first:
//!   Graph POSTs `?validationToken=<opaque text>` and needs `200`, `text/plain` and the decoded
//!   token back within 10 s; otherwise `400 InvalidRequest` and no subscription. An event
//!   subscription lives at most 4,230 minutes.
//! - `PATCH` renews (200), `DELETE` ends (204).
//! - A change to a subscribed calendar POSTs `{"value":[{subscriptionId,
//!   subscriptionExpirationDateTime, changeType, resource, clientState, tenantId,
//!   resourceData:{@odata.type, @odata.id, @odata.etag, id}}]}` from a spawned task.
//! - Lifecycle notifications (`reauthorizationRequired`, `subscriptionRemoved`, `missed`) go to
//!   the lifecycle URL with `lifecycleEvent` instead of `changeType`.
//!
//! Unlike Graph, plain `http://` URLs are accepted: tests listen on 127.0.0.1.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::errors::{GraphError, guid};
use super::state::{Change, State};
use super::zones;
use crate::microsoft::GraphSubscription;

/// The longest an Outlook event subscription may live.
pub(crate) const MAX_MINUTES: i64 = 4230;

/// Which calendars a subscription's resource covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Covers {
    All,
    Default,
    Calendar(String),
}

fn covers(resource: &str) -> Option<Covers> {
    let trimmed = resource.trim().trim_start_matches('/');
    let segs: Vec<&str> = trimmed.split('/').collect();
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let rest_at = match lower.first().map(String::as_str) {
        Some("me") => 1,
        Some("users") => 2,
        _ => return None,
    };
    let rest: Vec<&str> = segs.get(rest_at..)?.to_vec();
    let rest_lower: Vec<&str> = lower.get(rest_at..)?.iter().map(String::as_str).collect();
    match rest_lower.as_slice() {
        ["events"] => Some(Covers::All),
        ["calendar", "events"] => Some(Covers::Default),
        ["calendars", _, "events"] => Some(Covers::Calendar(rest.get(1)?.to_string())),
        [one, "events"] if one.starts_with("calendars('") => {
            let id = rest.first()?.strip_prefix("calendars('")?.strip_suffix("')")?;
            Some(Covers::Calendar(id.to_string()))
        }
        _ => None,
    }
}

fn covers_calendar(resource: &str, calendar: &str, default: &str) -> bool {
    match covers(resource) {
        Some(Covers::All) => true,
        Some(Covers::Default) => calendar == default,
        Some(Covers::Calendar(id)) => id == calendar,
        None => false,
    }
}

/// The subscription as Graph returns it.
pub(crate) fn to_json(st: &State, s: &GraphSubscription) -> Value {
    json!({
        "@odata.context": format!("{}/v1.0/$metadata#subscriptions/$entity", st.base_url),
        "id": s.id,
        "resource": s.resource,
        "applicationId": crate::microsoft::MicrosoftEmulator::CLIENT_ID,
        "changeType": s.change_type,
        "clientState": s.client_state,
        "notificationUrl": s.notification_url,
        "notificationQueryOptions": null,
        "lifecycleNotificationUrl": s.lifecycle_url,
        "expirationDateTime": zones::format_utc(s.expiration),
        "creatorId": st.user_id,
        "includeResourceData": null,
        "latestSupportedTlsVersion": "v1_2",
        "encryptionCertificate": null,
        "encryptionCertificateId": null,
        "notificationUrlAppId": null,
    })
}

/// Checks an expiration against Graph's limits.
pub(crate) fn check_expiration(value: Option<&str>) -> Result<Timestamp, GraphError> {
    let at = value.and_then(zones::parse_instant).ok_or_else(|| {
        GraphError::bad_request(
            "InvalidRequest",
            "expirationDateTime is a required property for subscription creation.",
        )
    })?;
    let now = Timestamp::now();
    if at <= now {
        return Err(GraphError::bad_request(
            "InvalidRequest",
            "Subscription expiration date time cannot be in the past.",
        ));
    }
    let max = now.checked_add(SignedDuration::from_mins(MAX_MINUTES)).unwrap_or(Timestamp::MAX);
    if at > max {
        return Err(GraphError::bad_request(
            "InvalidRequest",
            format!("Subscription expiration can only be {MAX_MINUTES} minutes in the future."),
        ));
    }
    Ok(at)
}

/// What a create request asks for, checked.
pub(crate) struct NewSubscription {
    pub resource: String,
    pub change_type: String,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub client_state: Option<String>,
    pub expiration: Timestamp,
}

pub(crate) fn read_create(body: &Value) -> Result<NewSubscription, GraphError> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string).filter(|s| !s.is_empty());
    let missing = |k: &str| {
        GraphError::bad_request("InvalidRequest", format!("{k} is a required property for subscription creation."))
    };
    let resource = text("resource").ok_or_else(|| missing("resource"))?;
    if covers(&resource).is_none() {
        return Err(GraphError::bad_request(
            "InvalidRequest",
            format!(
                "Resource '{resource}' is not supported by the emulator (use me/events or me/calendars/{{id}}/events)."
            ),
        ));
    }
    let change_type = text("changeType").ok_or_else(|| missing("changeType"))?;
    if change_type.split(',').any(|c| !matches!(c.trim(), "created" | "updated" | "deleted")) {
        return Err(GraphError::bad_request("InvalidRequest", format!("Invalid changeType '{change_type}'.")));
    }
    let notification_url = text("notificationUrl").ok_or_else(|| missing("notificationUrl"))?;
    let lifecycle_url = text("lifecycleNotificationUrl");
    for u in std::iter::once(&notification_url).chain(lifecycle_url.iter()) {
        if url::Url::parse(u).map(|p| !matches!(p.scheme(), "http" | "https")).unwrap_or(true) {
            return Err(GraphError::bad_request("InvalidRequest", format!("Invalid notification url '{u}'.")));
        }
    }
    let client_state = text("clientState");
    if client_state.as_ref().is_some_and(|c| c.chars().count() > 128) {
        return Err(GraphError::bad_request("InvalidRequest", "clientState cannot be longer than 128 characters."));
    }
    let expiration = check_expiration(body.get("expirationDateTime").and_then(Value::as_str))?;
    Ok(NewSubscription { resource, change_type, notification_url, lifecycle_url, client_state, expiration })
}

/// Graph's validation handshake against one URL.
pub(crate) async fn validate(http: &reqwest::Client, target: &str) -> Result<(), GraphError> {
    let token = format!("Validation: Testing client application reachability for subscription Request-Id: {}", guid());
    let failed =
        |why: &str| GraphError::bad_request("InvalidRequest", format!("Subscription validation request failed. {why}"));
    let mut url = url::Url::parse(target).map_err(|_| failed("Invalid notification url."))?;
    url.query_pairs_mut().append_pair("validationToken", &token);
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| failed(&format!("Notification endpoint must respond with 200 OK to validation request. ({e})")))?;
    if response.status().as_u16() != 200 {
        return Err(failed(&format!(
            "Notification endpoint must respond with 200 OK to validation request. HTTP status code: {}",
            response.status().as_u16()
        )));
    }
    let plain = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/plain"));
    if !plain {
        return Err(failed("Must respond with 200 OK to this request with Content-Type text/plain."));
    }
    let body = response.text().await.unwrap_or_default();
    if body != token {
        return Err(failed("Response must exactly match validationToken query parameter."));
    }
    Ok(())
}

/// The change notifications due for `changes`: (notification URL, body).
pub(crate) fn notifications_for(st: &State, changes: &[Change]) -> Vec<(String, Value)> {
    let now = Timestamp::now();
    let default = st.default_calendar().to_string();
    let mut out = Vec::new();
    for s in st.subscriptions.values().filter(|s| s.expiration > now) {
        let items: Vec<Value> = changes
            .iter()
            .filter(|c| covers_calendar(&s.resource, &c.calendar, &default))
            .filter(|c| s.change_type.split(',').any(|t| t.trim() == c.change_type))
            .map(|c| {
                let path = format!("Users/{}/Events/{}", st.user_id, c.id);
                let mut data = json!({"@odata.type": "#Microsoft.Graph.Event", "@odata.id": path, "id": c.id});
                if let Some(etag) = &c.etag {
                    data["@odata.etag"] = json!(etag);
                }
                json!({
                    "subscriptionId": s.id,
                    "subscriptionExpirationDateTime": zones::format_utc(s.expiration),
                    "changeType": c.change_type,
                    "resource": path,
                    "clientState": s.client_state,
                    "tenantId": st.tenant_id,
                    "resourceData": data,
                })
            })
            .collect();
        if !items.is_empty() {
            out.push((s.notification_url.clone(), json!({"value": items})));
        }
    }
    out
}

/// A lifecycle notification for one subscription.
pub(crate) fn lifecycle_body(st: &State, s: &GraphSubscription, event: &str) -> Value {
    json!({"value": [{
        "subscriptionId": s.id,
        "subscriptionExpirationDateTime": zones::format_utc(s.expiration),
        "tenantId": st.tenant_id,
        "clientState": s.client_state,
        "lifecycleEvent": event,
    }]})
}

/// POSTs one notification; Graph gives the receiver 3 seconds.
pub(crate) async fn deliver(http: &reqwest::Client, url: &str, body: &Value) {
    let result = http.post(url).json(body).timeout(Duration::from_secs(3)).send().await;
    match result {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            tracing::debug!(%url, status = r.status().as_u16(), "the notification receiver refused a notification")
        }
        Err(e) => tracing::debug!(%url, error = %e, "a notification could not be delivered"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_name_calendars() {
        assert_eq!(covers("me/events"), Some(Covers::All));
        assert_eq!(covers("/me/calendar/events"), Some(Covers::Default));
        assert_eq!(covers("me/calendars/AAMkAD-x=/events"), Some(Covers::Calendar("AAMkAD-x=".into())));
        assert_eq!(covers("users/alice@contoso.com/calendars/abc/events"), Some(Covers::Calendar("abc".into())));
        assert_eq!(covers("me/calendars('abc')/events"), Some(Covers::Calendar("abc".into())));
        assert_eq!(covers("me/messages"), None);
    }
}
