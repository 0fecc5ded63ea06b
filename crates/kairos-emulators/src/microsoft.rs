//! The Microsoft emulator: the identity platform (OAuth 2.0 authorization code with PKCE,
//! rotating refresh tokens) and Microsoft Graph's calendar API (calendars, events, recurring
//! series, `calendarView` and its delta query, `getSchedule`, change-notification
//! subscriptions), in memory, on 127.0.0.1.
//!
//! Paths mirror the real hosts (`login.microsoftonline.com/{tenant}/oauth2/v2.0/…`,
//! `graph.microsoft.com/v1.0/…`), so a client only swaps its base URL. Tests act as the user in
//! Outlook through the methods here (`put_event`, `modify_occurrence`, …) and make the service
//! misbehave (`expire_delta_tokens`, `revoke_all_grants`, `fail_next`, …).
//!
//! Deliberate differences from Graph: `http://` notification URLs are accepted; ids and tokens
//! are opaque but not Exchange's; the mailbox has one user (`alice@contoso.com`).

mod delta;
mod errors;
mod events;
mod graph;
mod identity;
mod recurrence;
mod state;
mod subscriptions;
#[cfg(test)]
mod tests;
mod view;
mod zones;

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::routing::{get, post};
use jiff::Timestamp;
use serde_json::Value;

use state::{Calendar, State};

/// A change-notification subscription, as the emulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSubscription {
    pub id: String,
    /// As the client gave it (`me/calendars/{id}/events`, …).
    pub resource: String,
    /// `created,updated,deleted` or a part of it.
    pub change_type: String,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub client_state: Option<String>,
    pub expiration: Timestamp,
}

/// What the handlers share.
pub(crate) struct Shared {
    state: Mutex<State>,
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends the change notifications that changes since the last call owe, from spawned tasks.
    fn flush_notifications(&self) {
        let due = {
            let mut st = self.lock();
            let changes = std::mem::take(&mut st.pending);
            if changes.is_empty() {
                return;
            }
            let due = subscriptions::notifications_for(&st, &changes);
            st.notifications.extend(due.iter().map(|(_, body)| body.clone()));
            due
        };
        for (url, body) in due {
            let http = self.http.clone();
            self.runtime.spawn(async move { subscriptions::deliver(&http, &url, &body).await });
        }
    }
}

/// A running emulator. Clones share one mailbox; it stops when the test's runtime ends.
#[derive(Clone)]
pub struct MicrosoftEmulator {
    shared: Arc<Shared>,
    base_url: String,
}

fn parse_utc(value: &str) -> Timestamp {
    match zones::parse_instant(value) {
        Some(t) => t,
        None => panic!("`{value}` is not an RFC 3339 instant (e.g. 2026-03-17T12:00:00Z)"),
    }
}

impl MicrosoftEmulator {
    /// The registered application's client id.
    pub const CLIENT_ID: &'static str = "00000000-0000-0000-0000-00000000k410";
    pub const CLIENT_SECRET: &'static str = "kairos~test~secret";

    /// Starts listening on 127.0.0.1 on a free port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(base_url.clone())),
            http,
            runtime: tokio::runtime::Handle::current(),
        });
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/authorize", get(identity::authorize))
            .route("/{tenant}/oauth2/v2.0/token", post(identity::token))
            .fallback(graph::handle)
            .with_state(shared.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the Microsoft emulator stopped");
            }
        });
        Ok(Self { shared, base_url })
    }

    /// `http://127.0.0.1:PORT`: the identity platform is at `{base}/{tenant}/oauth2/v2.0/…` and
    /// Graph at `{base}/v1.0/…`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The mailbox owner's address.
    pub fn account_email(&self) -> String {
        self.shared.lock().email.clone()
    }

    /// The id of the calendar that exists from the start (`isDefaultCalendar`).
    pub fn default_calendar_id(&self) -> String {
        self.shared.lock().default_calendar().to_string()
    }

    /// Adds a calendar (or renames one). `default` makes it the default calendar.
    pub fn add_calendar(&self, id: &str, name: &str, default: bool) {
        let mut st = self.shared.lock();
        let seq = st.next_seq();
        if default {
            st.calendars.iter_mut().for_each(|c| c.is_default = false);
        }
        match st.calendars.iter_mut().find(|c| c.id == id) {
            Some(c) => {
                c.name = name.to_string();
                c.is_default |= default;
                c.change_seq = seq;
            }
            None => st.calendars.push(Calendar {
                id: id.to_string(),
                name: name.to_string(),
                is_default: default,
                change_seq: seq,
            }),
        }
    }

    /// Saves an event as if the user edited it in Outlook: Graph event JSON (a single instance,
    /// or a series master with `recurrence`), times in Windows or IANA zones. The server fills
    /// id, changeKey, @odata.etag, created/lastModifiedDateTime, iCalUId and the defaults; an
    /// `id` that exists updates that event. Notifies subscriptions. Returns the id.
    ///
    /// Panics on a calendar that does not exist or times Graph would refuse (test misuse).
    pub fn put_event(&self, calendar: &str, event: Value) -> String {
        let id = {
            let mut st = self.shared.lock();
            if st.calendar(calendar).is_none() {
                panic!("the emulator has no calendar `{calendar}`");
            }
            if let Err(why) = State::validate_times(&event) {
                panic!("put_event: {why}");
            }
            st.put(calendar, &event)
        };
        self.shared.flush_notifications();
        id
    }

    /// `put_event` for many events.
    pub fn put_events(&self, calendar: &str, events: Vec<Value>) -> Vec<String> {
        events.into_iter().map(|e| self.put_event(calendar, e)).collect()
    }

    /// Changes one occurrence of a series (making it an `exception`); `original_start_utc` is
    /// the occurrence's start as the series gives it (`2026-03-17T12:00:00Z`). `patch` replaces
    /// top-level properties (`subject`, `start`, `end`, …). Returns the exception's id.
    ///
    /// Panics when the series has no occurrence at that instant.
    pub fn modify_occurrence(&self, series_id: &str, original_start_utc: &str, patch: Value) -> String {
        let original = parse_utc(original_start_utc);
        let id = self.shared.lock().modify_occurrence(series_id, original, &patch);
        self.shared.flush_notifications();
        match id {
            Some(id) => id,
            None => panic!("series `{series_id}` has no occurrence starting at {original_start_utc}"),
        }
    }

    /// Cancels (deletes) one occurrence of a series. Panics when there is none at that instant.
    pub fn cancel_occurrence(&self, series_id: &str, original_start_utc: &str) {
        let original = parse_utc(original_start_utc);
        let done = self.shared.lock().cancel_occurrence(series_id, original);
        self.shared.flush_notifications();
        if !done {
            panic!("series `{series_id}` has no occurrence starting at {original_start_utc}");
        }
    }

    /// Deletes an event or a whole series (an occurrence id cancels that occurrence); unknown
    /// ids are ignored.
    pub fn delete_event(&self, id: &str) {
        {
            let mut st = self.shared.lock();
            if !st.delete(id)
                && let Some((master, original)) = view::parse_occurrence_id(id)
            {
                st.cancel_occurrence(&master, original);
            }
        }
        self.shared.flush_notifications();
    }

    /// An event, master, occurrence or exception as stored (times in their own zones).
    pub fn event(&self, id: &str) -> Option<Value> {
        self.shared.lock().find(id).map(|(_, v)| v)
    }

    /// The single events and series masters of a calendar (not expanded).
    pub fn events(&self, calendar: &str) -> Vec<Value> {
        self.shared.lock().events.values().filter(|e| e.calendar == calendar).map(|e| e.json.clone()).collect()
    }

    /// Makes every delta and skip token issued so far fail with `410 Gone` / `syncStateNotFound`.
    pub fn expire_delta_tokens(&self) {
        self.shared.lock().delta.expire_all();
    }

    /// Revokes every grant: refresh tokens get `invalid_grant` (AADSTS50173), access tokens 401.
    pub fn revoke_all_grants(&self) {
        self.shared.lock().identity.revoke_all();
    }

    /// Expires every access token issued so far (Graph answers 401).
    pub fn expire_access_tokens(&self) {
        self.shared.lock().identity.expire_access_tokens();
    }

    /// The lifetime of access tokens issued from now on (`expires_in`); 3599 by default.
    pub fn set_access_token_lifetime(&self, secs: u64) {
        self.shared.lock().identity.access_lifetime = secs;
    }

    /// Whether a refresh token already exchanged may be used again (the real service allows it
    /// for a while; the emulator refuses by default).
    pub fn allow_refresh_token_reuse(&self, allow: bool) {
        self.shared.lock().identity.allow_refresh_reuse = allow;
    }

    /// Fails the next `n` Graph requests with `status` (429 `TooManyRequests`, 503
    /// `serviceNotAvailable`, …) and `Retry-After` when given.
    pub fn fail_next(&self, n: usize, status: u16, retry_after_secs: Option<u64>) {
        let mut st = self.shared.lock();
        st.fail_queue.extend(std::iter::repeat_n((status, retry_after_secs), n));
    }

    /// How many requests had a path starting with `path_prefix` (token endpoint included).
    pub fn requests(&self, path_prefix: &str) -> usize {
        self.shared.lock().request_log.iter().filter(|p| p.starts_with(path_prefix)).count()
    }

    /// How many refresh-token grants succeeded.
    pub fn refresh_grants(&self) -> usize {
        self.shared.lock().identity.refresh_grants
    }

    /// The live subscriptions.
    pub fn subscriptions(&self) -> Vec<GraphSubscription> {
        self.shared.lock().subscriptions.values().cloned().collect()
    }

    /// The change notifications sent so far (each a `{"value": […]}` body).
    pub fn notifications(&self) -> Vec<Value> {
        self.shared.lock().notifications.clone()
    }

    /// POSTs a lifecycle notification (`reauthorizationRequired`, `subscriptionRemoved`,
    /// `missed`) to a subscription's lifecycle URL and waits for the answer.
    /// `subscriptionRemoved` also removes the subscription. Unknown subscriptions, or ones
    /// without a lifecycle URL, are logged and skipped.
    pub async fn send_lifecycle(&self, subscription_id: &str, event: &str) {
        let due = {
            let mut st = self.shared.lock();
            let Some(sub) = st.subscriptions.get(subscription_id).cloned() else {
                tracing::warn!(subscription_id, "send_lifecycle: no such subscription");
                return;
            };
            if event == "subscriptionRemoved" {
                st.subscriptions.remove(subscription_id);
            }
            sub.lifecycle_url.clone().map(|url| (url, subscriptions::lifecycle_body(&st, &sub, event)))
        };
        match due {
            Some((url, body)) => subscriptions::deliver(&self.shared.http, &url, &body).await,
            None => tracing::warn!(subscription_id, "send_lifecycle: the subscription has no lifecycle URL"),
        }
    }
}
