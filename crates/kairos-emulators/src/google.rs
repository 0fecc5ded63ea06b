//! The Google emulator (OAuth 2.0 + Calendar API v3 + push).
//!
//! Paths mirror Google's hosts, so a client only changes its base URL: OAuth at
//! `/o/oauth2/v2/auth`, `/token` and `/revoke`; the Calendar API under `/calendar/v3/`.
//! One account (`alice@example.com`) consents to everything; its primary calendar's id is
//! its email. Tests play the user through [`GoogleEmulator::put_event`] and friends, and
//! make Google misbehave with [`GoogleEmulator::fail_next`],
//! [`GoogleEmulator::expire_sync_tokens`], [`GoogleEmulator::revoke_all_grants`] and
//! [`GoogleEmulator::expire_access_tokens`].
//!
//! Known differences from Google: `http` webhook addresses are accepted (tests listen on
//! 127.0.0.1); failed push deliveries are not retried; `singleEvents=true` expands at most
//! 2,500 instances per series and incremental listings ignore it; the recurrence rules
//! freeBusy and time filters understand are listed in `google/recurrence.rs`.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

mod api_error;
mod events;
mod freebusy;
mod listing;
mod oauth;
mod push;
mod recurrence;
mod resource;
mod state;

use api_error::ApiError;
use state::{CalendarState, State as Memory, opaque};

/// An active push channel, as the emulator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleChannel {
    pub id: String,
    pub resource_id: String,
    /// The watched calendar's id.
    pub calendar: String,
    pub address: String,
    pub token: Option<String>,
    pub expiration_ms: i64,
}

/// A running emulator; clones share it.
#[derive(Clone)]
pub struct GoogleEmulator {
    state: Arc<Mutex<Memory>>,
    client: reqwest::Client,
    base_url: String,
}

impl std::fmt::Debug for GoogleEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleEmulator").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

const ACCOUNT: &str = "alice@example.com";

impl GoogleEmulator {
    pub const CLIENT_ID: &'static str = "kairos-test.apps.googleusercontent.com";
    pub const CLIENT_SECRET: &'static str = "GOCSPX-kairos-test";

    /// Starts an emulator on 127.0.0.1 on a free port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let emu = Self { state: Arc::new(Mutex::new(Memory::new(ACCOUNT, base_url.clone()))), client, base_url };
        let app = router(emu.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the Google emulator stopped");
            }
        });
        Ok(emu)
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// An access token from the emulator's own endpoints, as an app gets one: consent (a
    /// redirect carrying a code), then the code exchanged at the token endpoint.
    pub async fn access_token_by_consent(&self) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let redirect = "http://127.0.0.1:9/cb";
        let consent = client
            .get(format!("{}/o/oauth2/v2/auth", self.base_url))
            .query(&[
                ("client_id", Self::CLIENT_ID),
                ("redirect_uri", redirect),
                ("response_type", "code"),
                ("scope", "https://www.googleapis.com/auth/calendar"),
                ("access_type", "offline"),
            ])
            .send()
            .await?;
        if consent.status().as_u16() != 302 {
            return Err(format!("consent answered {}, not a redirect", consent.status()).into());
        }
        let location = consent.headers().get("location").ok_or("consent redirected nowhere")?.to_str()?;
        let code = url::Url::parse(location)?
            .query_pairs()
            .find(|(k, _)| k == "code")
            .ok_or("the consent redirect carries no code")?
            .1
            .into_owned();
        let tokens: Value = client
            .post(format!("{}/token", self.base_url))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("client_id", Self::CLIENT_ID),
                ("client_secret", Self::CLIENT_SECRET),
            ])
            .send()
            .await?
            .json()
            .await?;
        Ok(tokens["access_token"].as_str().ok_or("the token endpoint gave no access_token")?.to_string())
    }

    /// The account that consents; its primary calendar's id.
    pub fn account_email(&self) -> String {
        ACCOUNT.to_string()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Adds a calendar to the account (or changes it, when the id exists).
    pub fn add_calendar(&self, id: &str, summary: &str, primary: bool, time_zone: &str) {
        self.with_state(|s| {
            if primary {
                s.calendars.iter_mut().for_each(|c| c.primary = false);
            }
            match s.calendars.iter_mut().find(|c| c.id == id) {
                Some(c) => {
                    c.summary = summary.to_string();
                    c.primary = primary;
                    c.time_zone = time_zone.to_string();
                }
                None => s.calendars.push(CalendarState {
                    id: id.to_string(),
                    summary: summary.to_string(),
                    time_zone: time_zone.to_string(),
                    primary,
                    resource_id: opaque("", 27),
                    events: Default::default(),
                }),
            }
        })
    }

    /// Writes an event as the user would in Google Calendar; returns its id. The same id
    /// again updates it.
    pub fn put_event(&self, calendar: &str, event: Value) -> String {
        self.put_events(calendar, vec![event]).pop().unwrap_or_default()
    }

    /// Writes many events at once, with one push notification.
    pub fn put_events(&self, calendar: &str, events: Vec<Value>) -> Vec<String> {
        self.with_state(|s| {
            let Some(cal) = s.calendar_index(calendar) else {
                tracing::warn!(calendar, "put_events on an unknown calendar");
                return vec![];
            };
            let mut ids = Vec::with_capacity(events.len());
            for event in events {
                let Value::Object(mut body) = event else { continue };
                let id = match body.get("id").and_then(Value::as_str) {
                    Some(id) => id.to_string(),
                    None => instance_id(s, cal, &body).unwrap_or_else(resource::new_event_id),
                };
                body.insert("id".into(), json!(id));
                s.write_event(cal, &id, body);
                ids.push(id);
            }
            push::notify(s, &s.calendars[cal].id);
            ids
        })
    }

    /// Deletes an event as the user would: it becomes a cancelled tombstone.
    pub fn delete_event(&self, calendar: &str, id: &str) {
        self.with_state(|s| {
            if let Some(cal) = s.calendar_index(calendar)
                && s.cancel_event(cal, id)
            {
                push::notify(s, &s.calendars[cal].id);
            }
        })
    }

    /// An event as stored (cancelled ones too).
    pub fn event(&self, calendar: &str, id: &str) -> Option<Value> {
        self.with_state(|s| {
            s.calendar_index(calendar).and_then(|c| s.calendars[c].events.get(id)).map(|e| e.resource.clone())
        })
    }

    /// The calendar's live (not cancelled) events, in their stable order.
    pub fn events(&self, calendar: &str) -> Vec<Value> {
        self.with_state(|s| {
            s.calendar_index(calendar)
                .map(|c| {
                    s.calendars[c]
                        .ordered()
                        .into_iter()
                        .filter(|e| !e.cancelled())
                        .map(|e| e.resource.clone())
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// Every sync token issued so far now answers 410 fullSyncRequired.
    pub fn expire_sync_tokens(&self) {
        self.with_state(|s| s.sync_tokens.clear())
    }

    /// Refresh tokens now get 400 invalid_grant, access tokens 401.
    pub fn revoke_all_grants(&self) {
        self.with_state(|s| s.grants.revoke_all())
    }

    /// Every access token issued so far has expired.
    pub fn expire_access_tokens(&self) {
        self.with_state(|s| s.grants.expire_access())
    }

    /// `expires_in` of tokens issued from now on (default 3599).
    pub fn set_access_token_lifetime(&self, secs: u64) {
        self.with_state(|s| s.grants.lifetime_secs = secs)
    }

    /// The next `n` Calendar API requests fail with Google's body for `status` (429
    /// rateLimitExceeded, 403 userRateLimitExceeded, 500/503 backendError), with
    /// `Retry-After` when given.
    pub fn fail_next(&self, n: usize, status: u16, retry_after_secs: Option<u64>) {
        self.with_state(|s| s.failures.extend(std::iter::repeat_n((status, retry_after_secs, false), n)))
    }

    /// Like [`Self::fail_next`], but only event writes (insert, update, patch, delete) take
    /// these failures: a background sync's reads pass, so a test can aim at the write.
    pub fn fail_next_writes(&self, n: usize, status: u16, retry_after_secs: Option<u64>) {
        self.with_state(|s| s.failures.extend(std::iter::repeat_n((status, retry_after_secs, true), n)))
    }

    /// Requests served whose path starts with `path_prefix`.
    pub fn requests(&self, path_prefix: &str) -> usize {
        self.with_state(|s| s.request_counts.iter().filter(|(p, _)| p.starts_with(path_prefix)).map(|(_, n)| n).sum())
    }

    /// `refresh_token` grants served.
    pub fn refresh_grants(&self) -> usize {
        self.with_state(|s| s.grants.refresh_grants)
    }

    /// Channels opened and not stopped or expired.
    pub fn channels(&self) -> Vec<GoogleChannel> {
        let now = Timestamp::now().as_millisecond();
        self.with_state(|s| s.channels.iter().map(|c| c.channel.clone()).filter(|c| c.expiration_ms > now).collect())
    }

    /// Tokens revoked through `/revoke`.
    pub fn revoked(&self) -> Vec<String> {
        self.with_state(|s| s.grants.revoked.clone())
    }
}

/// Google's id for an instance exception written without one: `<series>_<original start>`.
fn instance_id(s: &Memory, cal: usize, body: &Map<String, Value>) -> Option<String> {
    let master = body.get("recurringEventId")?.as_str()?;
    let zone = s.calendars[cal].zone();
    let original = recurrence::read_time(body.get("originalStartTime")?, &zone)?;
    Some(format!("{master}_{}", original.id_suffix()))
}

fn bearer(request: &Request) -> Option<&str> {
    request.headers().get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

/// Counts every request; on the Calendar API checks the bearer token, then serves injected
/// failures.
async fn gate(State(emu): State<GoogleEmulator>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    emu.with_state(|s| s.count_request(&path));
    if path.starts_with("/calendar/v3/") {
        let token = bearer(&request).map(str::to_string);
        let now = Timestamp::now();
        let is_write =
            request.method() != axum::http::Method::GET && path.contains("/events") && !path.ends_with("/watch");
        let verdict = emu.with_state(|s| {
            if !token.is_some_and(|t| s.grants.access_valid(&t, now)) {
                return Err(ApiError::unauthenticated());
            }
            match s.failures.front() {
                Some(&(status, retry_after, writes_only)) if is_write || !writes_only => {
                    s.failures.pop_front();
                    Err(ApiError::injected(status, retry_after))
                }
                _ => Ok(()),
            }
        });
        if let Err(e) = verdict {
            return e.into_response();
        }
    }
    next.run(request).await
}

fn router(emu: GoogleEmulator) -> Router {
    Router::new()
        .route("/o/oauth2/v2/auth", get(oauth::authorize))
        .route("/token", post(oauth::token))
        .route("/revoke", post(oauth::revoke))
        .route("/calendar/v3/users/me/calendarList", get(events::calendar_list))
        .route("/calendar/v3/calendars/{calendar}/events", get(listing::list).post(events::insert))
        .route("/calendar/v3/calendars/{calendar}/events/watch", post(push::watch))
        .route(
            "/calendar/v3/calendars/{calendar}/events/{event}",
            get(events::get).put(events::update).patch(events::patch).delete(events::delete),
        )
        .route("/calendar/v3/freeBusy", post(freebusy::query))
        .route("/calendar/v3/channels/stop", post(push::stop))
        .layer(middleware::from_fn_with_state(emu.clone(), gate))
        .with_state(emu)
}
