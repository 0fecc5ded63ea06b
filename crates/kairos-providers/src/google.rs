//! Google Calendar API v3 behind the [`Provider`] trait.
//!
//! Sync lists a calendar's events (`maxResults=2500`, following `nextPageToken`); the last
//! page's `nextSyncToken` is the cursor, and an incremental sync sends it back as `syncToken`
//! to get everything changed since, deletions as `status: "cancelled"`. A 410 then means the
//! token expired ([`ProviderError::CursorExpired`]). Events become iCalendar in
//! [`vevent`]; the wire types are in [`wire`], the error mapping in [`errors`].
//!
//! Writes use a client-chosen event id derived from the draft's uid, so a create retried
//! after a lost answer meets a 409 and becomes an update instead of a duplicate.
//!
//! Push: Google cannot extend a watch channel, so [`Provider::renew`] opens a new channel and
//! stops the old one. The trait's `Channel` does not carry the calendar, address and token a
//! new channel needs, so this adapter remembers them for the live channels it opened (expired
//! ones are forgotten, and at most [`MAX_WATCHES`] are kept); renewing a channel it does not
//! remember — opened by another process, lapsed, or forgotten — answers
//! [`ProviderError::NotFound`] (watch again). Kairos itself never relies on this: it renews a
//! Google channel by watching again from what it stored (`kairos-jobs`' push renewal), so on
//! several nodes any node renews any channel.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use kairos_core::Interval;
use rand::Rng;
use reqwest::RequestBuilder;
use serde::de::DeserializeOwned;
use url::Url;

use crate::{
    Change, Channel, Credentials, EventDraft, Provider, ProviderError, ProviderResult, RemoteCalendar, RemoteItem,
    SyncResult,
};

mod errors;
mod vevent;
mod wire;

/// Where Google's APIs live; tests point the adapter at an emulator instead.
pub const DEFAULT_API_BASE: &str = "https://www.googleapis.com";

/// The largest page `events.list` serves.
const PAGE_SIZE: &str = "2500";

/// Calendars one `freeBusy` request may name.
const FREE_BUSY_CALENDARS: usize = 50;

/// Channels remembered for [`Provider::renew`] at most; past it, the ones lapsing soonest are
/// forgotten first.
pub const MAX_WATCHES: usize = 1024;

/// What a new channel needs to replace an old one.
#[derive(Debug, Clone)]
struct WatchTarget {
    calendar: String,
    address: String,
    token: String,
    /// When the channel lapses: remembering it past then is of no use.
    expires_at: Timestamp,
}

/// The Google Calendar adapter. One value serves every connection.
#[derive(Debug, Clone)]
pub struct Google {
    client: reqwest::Client,
    api_base: Url,
    watches: Arc<Mutex<HashMap<String, WatchTarget>>>,
}

impl Google {
    /// `api_base` is [`DEFAULT_API_BASE`] in production.
    pub fn new(client: reqwest::Client, api_base: Url) -> Self {
        Self { client, api_base, watches: Arc::default() }
    }

    /// `api_base` + the path segments, each percent-encoded (calendar ids are emails).
    fn url(&self, segments: &[&str]) -> ProviderResult<Url> {
        let mut url = self.api_base.clone();
        url.path_segments_mut()
            .map_err(|()| ProviderError::Protocol(format!("{} cannot be a base URL", self.api_base)))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn events_url(&self, calendar: &str) -> ProviderResult<Url> {
        self.url(&["calendar", "v3", "calendars", calendar, "events"])
    }

    fn event_url(&self, calendar: &str, id: &str) -> ProviderResult<Url> {
        self.url(&["calendar", "v3", "calendars", calendar, "events", id])
    }

    /// Sends an authorised request; an unsuccessful answer becomes its [`ProviderError`].
    async fn call(&self, auth: &Credentials, request: RequestBuilder) -> ProviderResult<reqwest::Response> {
        let Credentials::Bearer(token) = auth else {
            return Err(ProviderError::Unauthorized("Google needs an OAuth access token".into()));
        };
        let response = request
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| ProviderError::Transport(e.without_url().to_string()))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let retry_after =
            response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = response.text().await.unwrap_or_default();
        let error = errors::from_response(status, retry_after.as_deref(), &body, Timestamp::now());
        tracing::debug!(status, error = %error, "Google answered with an error");
        Err(error)
    }

    async fn read<T: DeserializeOwned>(response: reqwest::Response) -> ProviderResult<T> {
        let bytes = response.bytes().await.map_err(|e| ProviderError::Transport(e.without_url().to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| ProviderError::Protocol(format!("unexpected Google answer: {e}")))
    }

    /// The item an insert or update answered with.
    async fn item(response: reqwest::Response) -> ProviderResult<RemoteItem> {
        let event: wire::Event = Self::read(response).await?;
        vevent::to_item(&event, None).map_err(|e| ProviderError::Protocol(e.to_string()))
    }

    fn remember(&self, channel: &str, target: Option<WatchTarget>) {
        let mut watches = self.watches.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(target) = target else {
            watches.remove(channel);
            return;
        };
        // Channels lapse without being stopped (a node that re-watched elsewhere, a process
        // that stopped caring): forget those, so the map stays the size of what is live.
        let now = Timestamp::now();
        watches.retain(|_, t| t.expires_at > now);
        while watches.len() >= MAX_WATCHES {
            let Some(soonest) = watches.iter().min_by_key(|(_, t)| t.expires_at).map(|(id, _)| id.clone()) else {
                break;
            };
            watches.remove(&soonest);
        }
        watches.insert(channel.to_string(), target);
    }
}

/// The body Kairos writes for a draft: times in the draft's zone, with the zone named.
fn event_body(draft: &EventDraft, id: Option<String>) -> wire::EventWrite {
    let zone = match TimeZone::get(&draft.timezone) {
        Ok(z) => (z, draft.timezone.clone()),
        Err(_) => {
            tracing::warn!(zone = %draft.timezone, "unknown time zone in an event draft; writing UTC");
            (TimeZone::UTC, "UTC".to_string())
        }
    };
    let time = |t: Timestamp| wire::EventDateTime {
        date: None,
        date_time: Some(t.to_zoned(zone.0.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()),
        time_zone: Some(zone.1.clone()),
    };
    wire::EventWrite {
        id,
        summary: draft.title.clone(),
        description: draft.description.clone(),
        start: time(draft.start),
        end: time(draft.end),
        attendees: draft
            .attendees
            .iter()
            .map(|a| wire::AttendeeWrite { email: a.email.clone(), display_name: a.name.clone() })
            .collect(),
        status: "confirmed",
    }
}

/// The changes one listing means. In an incremental sync a cancelled event is gone, except
/// a cancelled instance of a live series, which is a CANCELLED override of it.
fn changes(items: &[wire::Event], incremental: bool, calendar_zone: Option<&str>) -> Vec<Change> {
    let removed_series: HashSet<&str> =
        items.iter().filter(|e| e.cancelled() && e.recurring_event_id.is_none()).map(|e| e.id.as_str()).collect();
    let mut out = Vec::with_capacity(items.len());
    for e in items {
        let series_gone = e.recurring_event_id.as_deref().is_some_and(|s| removed_series.contains(s));
        if e.cancelled() && (e.recurring_event_id.is_none() || series_gone) {
            if incremental {
                out.push(Change::Removed { id: e.id.clone() });
            }
            continue;
        }
        match vevent::to_item(e, calendar_zone) {
            Ok(item) => out.push(Change::Upsert(item)),
            Err(error) => tracing::warn!(%error, "skipping a Google event Kairos cannot read"),
        }
    }
    out
}

#[async_trait]
impl Provider for Google {
    fn name(&self) -> &'static str {
        "google"
    }

    #[tracing::instrument(skip_all)]
    async fn list_calendars(&self, auth: &Credentials) -> ProviderResult<Vec<RemoteCalendar>> {
        let url = self.url(&["calendar", "v3", "users", "me", "calendarList"])?;
        let mut out = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut request = self.client.get(url.clone()).query(&[("maxResults", "250")]);
            if let Some(token) = &page_token {
                request = request.query(&[("pageToken", token)]);
            }
            let page: wire::CalendarList = Self::read(self.call(auth, request).await?).await?;
            out.extend(page.items.into_iter().map(|c| RemoteCalendar {
                name: c.summary_override.or(c.summary).unwrap_or_else(|| c.id.clone()),
                primary: c.primary,
                writable: matches!(c.access_role.as_deref(), Some("owner" | "writer")),
                timezone: c.time_zone,
                id: c.id,
            }));
            match page.next_page_token {
                Some(next) => page_token = Some(next),
                None => return Ok(out),
            }
        }
    }

    #[tracing::instrument(skip_all, fields(calendar, incremental = cursor.is_some()))]
    async fn sync(
        &self,
        auth: &Credentials,
        calendar: &str,
        cursor: Option<&str>,
        _window: Interval,
    ) -> ProviderResult<SyncResult> {
        // Google syncs whole calendars: the sync token covers everything, so no window.
        let url = self.events_url(calendar)?;
        let mut items = Vec::new();
        let mut zone: Option<String> = None;
        let mut page_token: Option<String> = None;
        let next_cursor = loop {
            let mut request = self.client.get(url.clone()).query(&[("maxResults", PAGE_SIZE)]);
            if let Some(token) = cursor {
                request = request.query(&[("syncToken", token)]);
            }
            if let Some(token) = &page_token {
                request = request.query(&[("pageToken", token)]);
            }
            let page: wire::Events = Self::read(self.call(auth, request).await?).await?;
            zone = zone.or(page.time_zone);
            items.extend(page.items);
            match (page.next_page_token, page.next_sync_token) {
                (Some(next), _) => page_token = Some(next),
                (None, sync_token) => break sync_token,
            }
        };
        tracing::debug!(events = items.len(), "Google sync listed");
        Ok(SyncResult {
            full: cursor.is_none(),
            changes: changes(&items, cursor.is_some(), zone.as_deref()),
            cursor: next_cursor,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn free_busy(
        &self,
        auth: &Credentials,
        calendars: &[String],
        window: Interval,
    ) -> ProviderResult<Vec<Interval>> {
        let url = self.url(&["calendar", "v3", "freeBusy"])?;
        let mut busy = Vec::new();
        for chunk in calendars.chunks(FREE_BUSY_CALENDARS) {
            let body = wire::FreeBusyRequest {
                time_min: window.start().to_string(),
                time_max: window.end().to_string(),
                items: chunk.iter().map(|id| wire::FreeBusyItem { id: id.clone() }).collect(),
            };
            let answer: wire::FreeBusyResponse =
                Self::read(self.call(auth, self.client.post(url.clone()).json(&body)).await?).await?;
            for (id, cal) in answer.calendars {
                // A calendar whose busy time is unknown must not look free.
                if let Some(error) = cal.errors.first() {
                    let reason = error.reason.clone().unwrap_or_default();
                    return Err(match reason.as_str() {
                        "notFound" => ProviderError::NotFound(format!("calendar {id}")),
                        _ => {
                            ProviderError::Protocol(format!("freeBusy failed for {id}: {reason} ({:?})", error.domain))
                        }
                    });
                }
                for period in cal.busy {
                    let (Ok(start), Ok(end)) = (period.start.parse::<Timestamp>(), period.end.parse::<Timestamp>())
                    else {
                        return Err(ProviderError::Protocol(format!("unreadable busy period {period:?}")));
                    };
                    if let Ok(interval) = Interval::new(start, end) {
                        busy.push(interval);
                    }
                }
            }
        }
        Ok(kairos_core::interval::merge(busy))
    }

    #[tracing::instrument(skip_all, fields(calendar))]
    async fn create_event(&self, auth: &Credentials, calendar: &str, draft: &EventDraft) -> ProviderResult<RemoteItem> {
        let id = wire::event_id_for(&draft.uid);
        let request = self.client.post(self.events_url(calendar)?).json(&event_body(draft, Some(id.clone())));
        match self.call(auth, request).await {
            Ok(response) => Self::item(response).await,
            // The id exists: an earlier attempt got there (or the event was deleted since,
            // and an update with status confirmed restores it). Write the draft over it.
            Err(ProviderError::Http { status: 409, .. }) => {
                tracing::debug!(id, "event exists on Google; updating it instead");
                let request = self.client.put(self.event_url(calendar, &id)?).json(&event_body(draft, None));
                Self::item(self.call(auth, request).await?).await
            }
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(skip_all, fields(calendar, id))]
    async fn update_event(
        &self,
        auth: &Credentials,
        calendar: &str,
        id: &str,
        etag: Option<&str>,
        draft: &EventDraft,
    ) -> ProviderResult<RemoteItem> {
        // PATCH keeps what Kairos does not own (reminders, conference data, colours).
        let mut request = self.client.patch(self.event_url(calendar, id)?).json(&event_body(draft, None));
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_MATCH, etag);
        }
        Self::item(self.call(auth, request).await?).await
    }

    #[tracing::instrument(skip_all, fields(calendar, id))]
    async fn delete_event(
        &self,
        auth: &Credentials,
        calendar: &str,
        id: &str,
        etag: Option<&str>,
    ) -> ProviderResult<()> {
        let mut request = self.client.delete(self.event_url(calendar, id)?);
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_MATCH, etag);
        }
        match self.call(auth, request).await {
            // 404 never existed, 410 already deleted: gone either way.
            Ok(_) | Err(ProviderError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(skip_all, fields(calendar))]
    async fn watch(
        &self,
        auth: &Credentials,
        calendar: &str,
        address: &str,
        token: &str,
        expires_at: Timestamp,
    ) -> ProviderResult<Option<Channel>> {
        let id = format!("kairos-{:032x}", rand::rng().random::<u128>());
        let body = wire::WatchRequest {
            id: id.clone(),
            kind: "web_hook",
            address: address.to_string(),
            token: token.to_string(),
            expiration: expires_at.as_millisecond().to_string(),
        };
        let url = self.url(&["calendar", "v3", "calendars", calendar, "events", "watch"])?;
        let answer: wire::ChannelResource =
            Self::read(self.call(auth, self.client.post(url).json(&body)).await?).await?;
        // Google may shorten the lifetime it was asked for: its answer is the truth.
        let expires = answer.expiration.and_then(|ms| Timestamp::from_millisecond(ms.0).ok()).unwrap_or(expires_at);
        let target = WatchTarget {
            calendar: calendar.to_string(),
            address: address.to_string(),
            token: token.to_string(),
            expires_at: expires,
        };
        self.remember(&answer.id, Some(target));
        Ok(Some(Channel { id: answer.id, resource_id: answer.resource_id, expires_at: expires }))
    }

    #[tracing::instrument(skip_all, fields(channel = %channel.id))]
    async fn renew(&self, auth: &Credentials, channel: &Channel, expires_at: Timestamp) -> ProviderResult<Channel> {
        let target = self.watches.lock().unwrap_or_else(PoisonError::into_inner).get(&channel.id).cloned();
        let Some(target) = target else {
            return Err(ProviderError::NotFound(format!("channel {} was not opened here; watch again", channel.id)));
        };
        let fresh = self
            .watch(auth, &target.calendar, &target.address, &target.token, expires_at)
            .await?
            .ok_or_else(|| ProviderError::Protocol("Google opened no channel".into()))?;
        // The old channel would expire on its own; stopping it saves duplicate pushes.
        if let Err(error) = self.stop(auth, channel).await {
            tracing::warn!(%error, "could not stop the replaced Google channel");
        }
        Ok(fresh)
    }

    #[tracing::instrument(skip_all, fields(channel = %channel.id))]
    async fn stop(&self, auth: &Credentials, channel: &Channel) -> ProviderResult<()> {
        let resource_id = channel
            .resource_id
            .clone()
            .ok_or_else(|| ProviderError::Protocol("a Google channel needs its resourceId".into()))?;
        let body = wire::StopRequest { id: channel.id.clone(), resource_id };
        let url = self.url(&["calendar", "v3", "channels", "stop"])?;
        let result = self.call(auth, self.client.post(url).json(&body)).await;
        match result {
            Ok(_) | Err(ProviderError::NotFound(_)) => {
                self.remember(&channel.id, None);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use jiff::SignedDuration;

    use super::*;

    fn target(expires_at: Timestamp) -> WatchTarget {
        WatchTarget { calendar: "primary".into(), address: "https://k.example/n".into(), token: "t".into(), expires_at }
    }

    fn remembered(google: &Google) -> usize {
        google.watches.lock().unwrap().len()
    }

    #[test]
    fn the_channels_remembered_for_renewal_stay_bounded() {
        let google = Google::new(reqwest::Client::new(), Url::parse(DEFAULT_API_BASE).unwrap());
        let now = Timestamp::now();
        // Lapsed channels are forgotten as new ones are opened.
        google.remember("lapsed", Some(target(now - SignedDuration::from_mins(1))));
        google.remember("live", Some(target(now + SignedDuration::from_hours(1))));
        assert_eq!(remembered(&google), 1);
        // However many live ones are opened (and never stopped here), the map is capped; the
        // ones lapsing soonest go first.
        for i in 0..MAX_WATCHES + 10 {
            let minutes = i64::try_from(i).unwrap() + 120;
            google.remember(&format!("ch{i}"), Some(target(now + SignedDuration::from_mins(minutes))));
        }
        assert_eq!(remembered(&google), MAX_WATCHES);
        let watches = google.watches.lock().unwrap();
        assert!(!watches.contains_key("live") && !watches.contains_key("ch0"), "the soonest to lapse were forgotten");
        assert!(watches.contains_key(&format!("ch{}", MAX_WATCHES + 9)));
        drop(watches);
        // Stopping forgets at once.
        google.remember(&format!("ch{}", MAX_WATCHES + 9), None);
        assert_eq!(remembered(&google), MAX_WATCHES - 1);
    }
}
