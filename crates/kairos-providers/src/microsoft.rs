//! Microsoft 365 / Outlook.com calendars through Microsoft Graph v1.0, behind the
//! [`Provider`] trait.
//!
//! - **Sync** is a calendar view delta query (`/me/calendars/{id}/calendarView/delta`): the
//!   first request names the window, then `@odata.nextLink`s are followed to the
//!   `@odata.deltaLink`, which is the cursor. Later syncs start from it and get only changes;
//!   deletions (and events that left the window) come as `@removed`. An expired delta token
//!   (`410 Gone`, `syncStateNotFound`, `resyncRequired`) is [`ProviderError::CursorExpired`].
//!   Links are followed only when they point at the configured Graph origin, so a hostile or
//!   spoofed answer cannot make Kairos fetch arbitrary URLs with the user's token.
//! - A calendar view holds **instances**: single events, occurrences and exceptions of series
//!   — each becomes its own VEVENT ([`vevent`]). The pure mapping of a series master's
//!   `patternedRecurrence` to an RRULE is in [`recurrence`], for readers of series masters.
//! - **Free/busy** reads the calendar view of each calendar rather than `getSchedule`:
//!   `getSchedule` answers per mailbox (the default calendar only, not for personal Microsoft
//!   accounts), while Kairos asks about particular calendars.
//! - **Writes** send `transactionId` = the draft's uid on create, so a retried create returns
//!   the event made the first time; updates and deletes send `If-Match` with the etag (412 →
//!   [`ProviderError::Conflict`]).
//! - **Push** is a Graph subscription on `me/calendars/{id}/events` with `clientState` = the
//!   token and lifecycle notifications to the same address, kept under Graph's 4,230-minute
//!   limit for Outlook resources; renewing PATCHes its expiration.

use std::time::Duration;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use kairos_core::Interval;
use kairos_core::calendar::ical::{escape_text, fold};
use kairos_core::calendar::timezone::iana_to_windows;
use reqwest::RequestBuilder;
use serde_json::{Value, json};
use url::Url;

use crate::{
    Change, Channel, Credentials, EventDraft, Provider, ProviderError, ProviderResult, RemoteCalendar, RemoteItem,
    SyncResult,
};

mod http;
pub mod recurrence;
pub mod vevent;
mod wire;

pub use vevent::MappingError;

/// Where Graph lives; tests point the adapter at an emulator instead.
pub const DEFAULT_GRAPH_BASE: &str = "https://graph.microsoft.com";

/// The longest Graph lets an Outlook event subscription live (learn.microsoft.com/graph/api/
/// resources/subscription, "Maximum length of subscription per resource type").
pub const SUBSCRIPTION_MAX_MINUTES: i64 = 4230;

/// Kept off the limit so a clock running ahead of Graph's cannot make a request too long.
const SUBSCRIPTION_MARGIN_MINUTES: i64 = 5;

/// The most pages one sync follows before deciding the server is looping.
const MAX_PAGES: usize = 10_000;

/// The Microsoft Graph adapter. One value serves every connection.
#[derive(Debug, Clone)]
pub struct Microsoft {
    client: reqwest::Client,
    graph_base: Url,
    page_size: usize,
}

fn graph_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Microsoft {
    /// `graph_base` is [`DEFAULT_GRAPH_BASE`] in production (without `/v1.0`).
    pub fn new(client: reqwest::Client, graph_base: Url) -> Self {
        Self { client, graph_base, page_size: 100 }
    }

    /// The page size asked for with `Prefer: odata.maxpagesize` (100 by default).
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// `{graph_base}/v1.0/` + the segments, each percent-encoded.
    fn url(&self, segments: &[&str]) -> ProviderResult<Url> {
        let mut url = self.graph_base.clone();
        url.path_segments_mut()
            .map_err(|()| ProviderError::Protocol(format!("{} cannot be a base URL", self.graph_base)))?
            .pop_if_empty()
            .push("v1.0")
            .extend(segments);
        Ok(url)
    }

    /// A link Graph handed out (`@odata.nextLink`, `@odata.deltaLink`, a stored cursor), if it
    /// points at the configured Graph origin. Anything else is refused: following it would
    /// send the user's token elsewhere.
    fn link(&self, link: &str) -> ProviderResult<Url> {
        let url = Url::parse(link).map_err(|e| ProviderError::Protocol(format!("a Graph link is not a URL: {e}")))?;
        let base_path = self.graph_base.path().trim_end_matches('/');
        if url.origin() != self.graph_base.origin() || !url.path().starts_with(&format!("{base_path}/v1.0/")) {
            return Err(ProviderError::Protocol(format!(
                "refusing to follow a link outside {}: {}",
                self.graph_base.origin().ascii_serialization(),
                url.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    /// A request with UTC times and our page size.
    fn request(&self, method: reqwest::Method, url: Url, auth: &Credentials) -> ProviderResult<RequestBuilder> {
        let prefer = format!("outlook.timezone=\"UTC\", odata.maxpagesize={}", self.page_size);
        http::authorise(self.client.request(method, url).header("Prefer", prefer), auth)
    }

    /// Every item of a paged collection.
    async fn all<T: serde::de::DeserializeOwned>(&self, first: Url, auth: &Credentials) -> ProviderResult<Vec<T>> {
        let mut url = first;
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: wire::Page<T> = http::call(self.request(reqwest::Method::GET, url, auth)?).await?;
            out.extend(page.value);
            match page.next_link {
                Some(next) => url = self.link(&next)?,
                None => return Ok(out),
            }
        }
        Err(ProviderError::Protocol(format!("Graph kept paging past {MAX_PAGES} pages")))
    }

    /// An event Graph answered a write with, as an item.
    fn item(event: &wire::Event) -> ProviderResult<RemoteItem> {
        let ical = vevent::instance(event).map_err(|e| ProviderError::Protocol(e.to_string()))?;
        Ok(RemoteItem { id: event.id.clone(), etag: event.etag.clone(), ical })
    }

    fn expiration(expires_at: Timestamp) -> Timestamp {
        let cap = Timestamp::now()
            .checked_add(SignedDuration::from_mins(SUBSCRIPTION_MAX_MINUTES - SUBSCRIPTION_MARGIN_MINUTES))
            .unwrap_or(expires_at);
        expires_at.min(cap)
    }

    fn channel(sub: wire::Subscription) -> ProviderResult<Channel> {
        let expires_at = wire::offset_instant(&sub.expiration_date_time).ok_or_else(|| {
            ProviderError::Protocol(format!("unreadable expirationDateTime `{}`", sub.expiration_date_time))
        })?;
        Ok(Channel { id: sub.id, resource_id: None, expires_at })
    }
}

/// One calendar-view item as a change: `@removed` stubs and cancelled instances are removals.
/// An instance that cannot be mapped still arrives, marked unparseable, so kairos-core reports
/// it instead of it silently vanishing.
fn change(event: wire::Event) -> Change {
    if event.removed.is_some() || event.is_cancelled.unwrap_or(false) {
        return Change::Removed { id: event.id };
    }
    let ical = vevent::instance(&event).unwrap_or_else(|e| {
        tracing::warn!(id = %event.id, error = %e, "a Graph event could not be mapped to iCalendar");
        let mut out = String::from("BEGIN:VEVENT\r\n");
        out.push_str(&fold(&format!("UID:{}", escape_text(&event.id))));
        out.push_str(&fold(&format!("X-KAIROS-REMOTE-ID:{}", escape_text(&event.id))));
        out.push_str(&fold(&format!("X-KAIROS-UNPARSEABLE:{}", escape_text(&e.to_string()))));
        out.push_str("END:VEVENT\r\n");
        out
    });
    Change::Upsert(RemoteItem { id: event.id, etag: event.etag, ical })
}

/// The Graph event body for a draft. Times are local to the draft's zone, named the Windows way
/// when CLDR knows it (what Outlook shows), else by the IANA name (Graph accepts those too).
fn draft_body(draft: &EventDraft, create: bool) -> Value {
    let (tz, name) = match kairos_core::Zone::parse(&draft.timezone) {
        Ok(z) => (z.tz().clone(), iana_to_windows(z.name()).map_or_else(|| z.name().to_string(), str::to_string)),
        Err(_) => (jiff::tz::TimeZone::UTC, "UTC".to_string()),
    };
    let local = |t: Timestamp| t.to_zoned(tz.clone()).datetime().strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let attendees: Vec<Value> = draft
        .attendees
        .iter()
        .map(|a| {
            let mut address = json!({"address": a.email});
            if let Some(n) = &a.name {
                address["name"] = json!(n);
            }
            json!({"type": "required", "emailAddress": address})
        })
        .collect();
    let mut body = json!({
        "subject": draft.title,
        "body": {"contentType": "text", "content": draft.description.clone().unwrap_or_default()},
        "start": {"dateTime": local(draft.start), "timeZone": name},
        "end": {"dateTime": local(draft.end), "timeZone": name},
        "attendees": attendees,
        "showAs": "busy",
    });
    if create {
        body["transactionId"] = json!(draft.uid);
    }
    body
}

fn if_match(request: RequestBuilder, etag: Option<&str>) -> RequestBuilder {
    match etag {
        Some(etag) => request.header(reqwest::header::IF_MATCH, etag),
        None => request,
    }
}

#[async_trait]
impl Provider for Microsoft {
    fn name(&self) -> &'static str {
        "microsoft"
    }

    #[tracing::instrument(skip_all)]
    async fn list_calendars(&self, auth: &Credentials) -> ProviderResult<Vec<RemoteCalendar>> {
        let mut url = self.url(&["me", "calendars"])?;
        url.query_pairs_mut().append_pair("$top", &self.page_size.to_string());
        let calendars: Vec<wire::Calendar> = self.all(url, auth).await?;
        Ok(calendars
            .into_iter()
            .map(|c| RemoteCalendar {
                name: c.name.unwrap_or_else(|| c.id.clone()),
                id: c.id,
                primary: c.is_default_calendar.unwrap_or(false),
                writable: c.can_edit.unwrap_or(false),
                timezone: None,
            })
            .collect())
    }

    #[tracing::instrument(skip(self, auth, cursor), fields(incremental = cursor.is_some()))]
    async fn sync(
        &self,
        auth: &Credentials,
        calendar: &str,
        cursor: Option<&str>,
        window: Interval,
    ) -> ProviderResult<SyncResult> {
        let mut url = match cursor {
            Some(link) => self.link(link)?,
            None => {
                let mut u = self.url(&["me", "calendars", calendar, "calendarView", "delta"])?;
                u.query_pairs_mut()
                    .append_pair("startDateTime", &graph_time(window.start()))
                    .append_pair("endDateTime", &graph_time(window.end()));
                u
            }
        };
        let mut changes = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: wire::Page<wire::Event> = match http::send(self.request(reqwest::Method::GET, url, auth)?).await?
            {
                Ok(response) => http::json(response).await?,
                Err(failure) if failure.cursor_expired() => return Err(ProviderError::CursorExpired),
                Err(failure) => return Err(failure.into_error()),
            };
            changes.extend(page.value.into_iter().map(change));
            match (page.next_link, page.delta_link) {
                (Some(next), _) => url = self.link(&next)?,
                (None, Some(delta)) => {
                    self.link(&delta)?;
                    return Ok(SyncResult { full: cursor.is_none(), changes, cursor: Some(delta) });
                }
                (None, None) => {
                    return Err(ProviderError::Protocol("a delta page with neither nextLink nor deltaLink".into()));
                }
            }
        }
        Err(ProviderError::Protocol(format!("the delta query kept paging past {MAX_PAGES} pages")))
    }

    #[tracing::instrument(skip(self, auth))]
    async fn free_busy(
        &self,
        auth: &Credentials,
        calendars: &[String],
        window: Interval,
    ) -> ProviderResult<Vec<Interval>> {
        let mut busy = Vec::new();
        for calendar in calendars {
            let mut url = self.url(&["me", "calendars", calendar, "calendarView"])?;
            url.query_pairs_mut()
                .append_pair("startDateTime", &graph_time(window.start()))
                .append_pair("endDateTime", &graph_time(window.end()))
                .append_pair("$select", "start,end,showAs,isCancelled,isAllDay,originalStartTimeZone")
                .append_pair("$top", &self.page_size.to_string());
            let events: Vec<wire::Event> = self.all(url, auth).await?;
            for e in events {
                // free and workingElsewhere leave the person available; cancelled ones are gone.
                let show_as = e.show_as.as_deref().unwrap_or("busy");
                if e.is_cancelled.unwrap_or(false) || matches!(show_as, "free" | "workingElsewhere") {
                    continue;
                }
                let (Some(start), Some(end)) = (e.start.as_ref(), e.end.as_ref()) else { continue };
                let span = if e.all_day() {
                    // Whole days in the zone the event was made in (Graph shows all-day events
                    // as midnight to midnight in whatever zone is asked for).
                    let zone =
                        e.original_start_time_zone.as_deref().and_then(wire::zone).unwrap_or(jiff::tz::TimeZone::UTC);
                    let at = |t: &wire::DateTimeTimeZone| {
                        wire::local(&t.date_time)
                            .and_then(|dt| zone.to_ambiguous_zoned(dt).compatible().ok())
                            .map(|z| z.timestamp())
                    };
                    at(start).zip(at(end))
                } else {
                    wire::instant(start).zip(wire::instant(end))
                };
                let Some((s, t)) = span else {
                    tracing::warn!(id = %e.id, "free/busy: an event with unreadable times was left out");
                    continue;
                };
                if let Some(i) = Interval::new(s, t).ok().and_then(|i| i.intersection(&window)) {
                    busy.push(i);
                }
            }
        }
        Ok(kairos_core::interval::merge(busy))
    }

    #[tracing::instrument(skip(self, auth, draft), fields(uid = %draft.uid))]
    async fn create_event(&self, auth: &Credentials, calendar: &str, draft: &EventDraft) -> ProviderResult<RemoteItem> {
        let url = self.url(&["me", "calendars", calendar, "events"])?;
        let request = self.request(reqwest::Method::POST, url, auth)?.json(&draft_body(draft, true));
        Self::item(&http::call::<wire::Event>(request).await?)
    }

    #[tracing::instrument(skip(self, auth, draft, etag))]
    async fn update_event(
        &self,
        auth: &Credentials,
        _calendar: &str,
        id: &str,
        etag: Option<&str>,
        draft: &EventDraft,
    ) -> ProviderResult<RemoteItem> {
        let url = self.url(&["me", "events", id])?;
        let request = if_match(self.request(reqwest::Method::PATCH, url, auth)?, etag).json(&draft_body(draft, false));
        Self::item(&http::call::<wire::Event>(request).await?)
    }

    #[tracing::instrument(skip(self, auth, etag))]
    async fn delete_event(
        &self,
        auth: &Credentials,
        _calendar: &str,
        id: &str,
        etag: Option<&str>,
    ) -> ProviderResult<()> {
        let url = self.url(&["me", "events", id])?;
        let existed = http::call_empty(if_match(self.request(reqwest::Method::DELETE, url, auth)?, etag)).await?;
        if !existed {
            tracing::debug!("the event was already gone");
        }
        Ok(())
    }

    #[tracing::instrument(skip(self, auth, token))]
    async fn watch(
        &self,
        auth: &Credentials,
        calendar: &str,
        address: &str,
        token: &str,
        expires_at: Timestamp,
    ) -> ProviderResult<Option<Channel>> {
        let body = json!({
            "changeType": "created,updated,deleted",
            "notificationUrl": address,
            "lifecycleNotificationUrl": address,
            "resource": format!("me/calendars/{calendar}/events"),
            "expirationDateTime": graph_time(Self::expiration(expires_at)),
            "clientState": token,
        });
        let url = self.url(&["subscriptions"])?;
        let request = self.request(reqwest::Method::POST, url, auth)?.json(&body).timeout(Duration::from_secs(30));
        Self::channel(http::call(request).await?).map(Some)
    }

    #[tracing::instrument(skip(self, auth))]
    async fn renew(&self, auth: &Credentials, channel: &Channel, expires_at: Timestamp) -> ProviderResult<Channel> {
        let url = self.url(&["subscriptions", &channel.id])?;
        let body = json!({"expirationDateTime": graph_time(Self::expiration(expires_at))});
        Self::channel(http::call(self.request(reqwest::Method::PATCH, url, auth)?.json(&body)).await?)
    }

    #[tracing::instrument(skip(self, auth))]
    async fn stop(&self, auth: &Credentials, channel: &Channel) -> ProviderResult<()> {
        let url = self.url(&["subscriptions", &channel.id])?;
        http::call_empty(self.request(reqwest::Method::DELETE, url, auth)?).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(base: &str) -> Microsoft {
        Microsoft::new(reqwest::Client::new(), Url::parse(base).unwrap())
    }

    #[test]
    fn links_outside_the_graph_origin_are_refused() {
        let m = adapter("https://graph.microsoft.com");
        assert!(m.link("https://graph.microsoft.com/v1.0/me/calendarView/delta?$deltatoken=x").is_ok());
        for bad in [
            "https://evil.example/v1.0/me/calendarView/delta?$deltatoken=x",
            "http://graph.microsoft.com/v1.0/me/calendarView/delta",
            "https://graph.microsoft.com:8443/v1.0/me",
            "https://graph.microsoft.com.evil.example/v1.0/me",
            "https://graph.microsoft.com/beta/me/calendarView/delta",
            "not a url",
        ] {
            assert!(matches!(m.link(bad), Err(ProviderError::Protocol(_))), "{bad}");
        }
        let local = adapter("http://127.0.0.1:4000/graph/");
        assert!(local.link("http://127.0.0.1:4000/graph/v1.0/me").is_ok());
        assert!(local.link("http://127.0.0.1:4000/v1.0/me").is_err());
        assert_eq!(
            local.url(&["me", "calendars", "a/b=", "events"]).unwrap().as_str(),
            "http://127.0.0.1:4000/graph/v1.0/me/calendars/a%2Fb=/events"
        );
    }

    #[test]
    fn drafts_name_windows_zones_and_carry_the_transaction_id() {
        let draft = EventDraft {
            uid: "bk_01".into(),
            title: "Intro call".into(),
            description: Some("Agenda".into()),
            start: "2026-07-01T16:00:00Z".parse().unwrap(),
            end: "2026-07-01T16:30:00Z".parse().unwrap(),
            timezone: "America/Los_Angeles".into(),
            attendees: vec![crate::DraftAttendee { email: "bob@example.com".into(), name: Some("Bob".into()) }],
        };
        let body = draft_body(&draft, true);
        assert_eq!(body["start"], json!({"dateTime": "2026-07-01T09:00:00", "timeZone": "Pacific Standard Time"}));
        assert_eq!(body["transactionId"], "bk_01");
        assert_eq!(body["attendees"][0]["emailAddress"]["name"], "Bob");
        assert!(draft_body(&draft, false).get("transactionId").is_none());
    }

    #[test]
    fn subscriptions_stay_under_graphs_limit() {
        let far = Timestamp::now().checked_add(SignedDuration::from_hours(24 * 30)).unwrap();
        let capped = Microsoft::expiration(far);
        assert!(capped <= Timestamp::now().checked_add(SignedDuration::from_mins(SUBSCRIPTION_MAX_MINUTES)).unwrap());
        let near = Timestamp::now().checked_add(SignedDuration::from_hours(1)).unwrap();
        assert_eq!(Microsoft::expiration(near), near);
    }
}
