//! The emulator's memory: the account's calendars and events (cancelled ones kept as
//! Google keeps them), OAuth grants, sync and page cursors, injected failures and push
//! channels. Every change to an event takes the next sequence number; a sync token is the
//! sequence number it was issued at.

use std::collections::{HashMap, VecDeque};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value, json};

use super::api_error::ApiError;
use super::oauth::Grants;
use super::push::ChannelState;
use super::recurrence::{self, When};
use super::resource::{self, Stamp};

/// One stored event (a single event, a series master or an instance exception).
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    /// Insertion order: Google's "unspecified, stable order".
    pub order: u64,
    /// The sequence number of its last change.
    pub seq: u64,
    pub resource: Value,
}

impl StoredEvent {
    pub fn cancelled(&self) -> bool {
        self.resource.get("status").and_then(Value::as_str) == Some("cancelled")
    }

    pub fn recurring_event_id(&self) -> Option<&str> {
        self.resource.get("recurringEventId").and_then(Value::as_str)
    }

    pub fn is_master(&self) -> bool {
        self.resource.get("recurrence").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CalendarState {
    pub id: String,
    pub summary: String,
    pub time_zone: String,
    pub primary: bool,
    /// Google's opaque id of this calendar's events collection (a channel's `resourceId`).
    pub resource_id: String,
    pub events: HashMap<String, StoredEvent>,
}

impl CalendarState {
    pub fn zone(&self) -> TimeZone {
        TimeZone::get(&self.time_zone).unwrap_or(TimeZone::UTC)
    }

    /// The events in their stable order.
    pub fn ordered(&self) -> Vec<&StoredEvent> {
        let mut all: Vec<&StoredEvent> = self.events.values().collect();
        all.sort_by_key(|e| e.order);
        all
    }

    /// The stored exception of `master_id` for the instance at `original`, if any.
    pub fn exception(&self, master_id: &str, original: When) -> Option<&StoredEvent> {
        let zone = self.zone();
        self.events.values().find(|e| {
            e.recurring_event_id() == Some(master_id)
                && e.resource.get("originalStartTime").and_then(|o| recurrence::read_time(o, &zone)).is_some_and(|w| {
                    w == original || recurrence::instant(w, &zone) == recurrence::instant(original, &zone)
                })
        })
    }
}

/// Where an incremental sync starts.
#[derive(Debug, Clone)]
pub(crate) struct SyncPoint {
    pub calendar: String,
    pub seq: u64,
}

/// The rest of a listing, served page by page.
#[derive(Debug, Clone)]
pub(crate) struct PageCursor {
    pub calendar: String,
    pub items: VecDeque<Value>,
    pub page_size: usize,
    /// The token the last page carries.
    pub next_sync_token: Option<String>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub account: String,
    pub base_url: String,
    pub calendars: Vec<CalendarState>,
    /// The last change's time in microseconds (strictly increasing: it makes the etags).
    pub clock_us: i64,
    pub seq: u64,
    pub next_order: u64,
    pub grants: Grants,
    pub sync_tokens: HashMap<String, SyncPoint>,
    pub pages: HashMap<String, PageCursor>,
    /// Status, Retry-After, and whether only event writes (not reads, syncs or watches) take it.
    pub failures: VecDeque<(u16, Option<u64>, bool)>,
    pub request_counts: HashMap<String, usize>,
    pub channels: Vec<ChannelState>,
}

/// A random opaque token of `len` URL-safe characters.
pub(crate) fn opaque(prefix: &str, len: usize) -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    let tail: String = rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect();
    format!("{prefix}{tail}")
}

impl State {
    pub fn new(account: &str, base_url: String) -> Self {
        let primary = CalendarState {
            id: account.to_string(),
            summary: account.to_string(),
            time_zone: "UTC".into(),
            primary: true,
            resource_id: opaque("", 27),
            events: HashMap::new(),
        };
        Self {
            account: account.to_string(),
            base_url,
            calendars: vec![primary],
            clock_us: 0,
            seq: 0,
            next_order: 0,
            grants: Grants::default(),
            sync_tokens: HashMap::new(),
            pages: HashMap::new(),
            failures: VecDeque::new(),
            request_counts: HashMap::new(),
            channels: Vec::new(),
        }
    }

    /// The calendar a path names (`primary` is the account's own).
    pub fn calendar_index(&self, id: &str) -> Option<usize> {
        if id == "primary" {
            return self.calendars.iter().position(|c| c.primary);
        }
        self.calendars.iter().position(|c| c.id == id)
    }

    pub fn calendar(&self, id: &str) -> Result<&CalendarState, ApiError> {
        self.calendar_index(id).map(|i| &self.calendars[i]).ok_or_else(ApiError::not_found)
    }

    /// The next change: a sequence number and a strictly later time.
    pub fn tick(&mut self) -> (u64, i64, Timestamp) {
        self.seq += 1;
        let now = Timestamp::now();
        self.clock_us = now.as_microsecond().max(self.clock_us + 1);
        let at = Timestamp::from_microsecond(self.clock_us).unwrap_or(now);
        (self.seq, self.clock_us, at)
    }

    /// Stores a new version of an event (insert, update, or the user's own edit), filling
    /// what Google fills. `body` must carry the final id.
    pub fn write_event(&mut self, cal: usize, id: &str, body: Map<String, Value>) -> Value {
        let (seq, micros, now) = self.tick();
        let calendar = &self.calendars[cal];
        let organizer = if calendar.primary {
            json!({"email": self.account, "self": true})
        } else {
            json!({"email": calendar.id, "displayName": calendar.summary, "self": true})
        };
        let series_ical_uid = body
            .get("recurringEventId")
            .and_then(Value::as_str)
            .and_then(|m| calendar.events.get(m))
            .and_then(|m| m.resource.get("iCalUID").cloned())
            .and_then(|v| v.as_str().map(str::to_string));
        let previous = calendar.events.get(id);
        let stamp = Stamp { id, calendar_id: &calendar.id, organizer, micros, now, series_ical_uid };
        let resource = resource::stamp(body, previous.map(|p| &p.resource), stamp);
        let order = match previous {
            Some(p) => p.order,
            None => {
                self.next_order += 1;
                self.next_order
            }
        };
        self.calendars[cal].events.insert(id.to_string(), StoredEvent { order, seq, resource: resource.clone() });
        resource
    }

    /// Marks an event cancelled, as a delete does (Google keeps the tombstone). Deleting a
    /// series cancels its exceptions too.
    pub fn cancel_event(&mut self, cal: usize, id: &str) -> bool {
        let Some(event) = self.calendars[cal].events.get(id) else { return false };
        let mut ids = vec![id.to_string()];
        if event.is_master() {
            ids.extend(
                self.calendars[cal]
                    .events
                    .values()
                    .filter(|e| e.recurring_event_id() == Some(id) && !e.cancelled())
                    .filter_map(|e| e.resource.get("id").and_then(Value::as_str).map(str::to_string)),
            );
        }
        for target in ids {
            let Some(Value::Object(mut body)) = self.calendars[cal].events.get(&target).map(|e| e.resource.clone())
            else {
                continue;
            };
            body.insert("status".into(), json!("cancelled"));
            self.write_event(cal, &target, body);
        }
        true
    }

    /// A stored event, or an unmodified instance of a series named by its instance id
    /// (`<series>_<start>`), materialised as Google does when one is read or written.
    pub fn resolve_event(&self, cal: usize, id: &str) -> Option<Value> {
        let calendar = &self.calendars[cal];
        if let Some(e) = calendar.events.get(id) {
            return Some(e.resource.clone());
        }
        let (master_id, suffix) = id.rsplit_once('_')?;
        let master = calendar.events.get(master_id).filter(|m| m.is_master() && !m.cancelled())?;
        let original = resource::parse_instance_suffix(suffix)?;
        let zone = calendar.zone();
        let series_zone = master
            .resource
            .pointer("/start/timeZone")
            .and_then(Value::as_str)
            .and_then(|z| TimeZone::get(z).ok())
            .unwrap_or_else(|| zone.clone());
        let stop = recurrence::instant(original, &series_zone).checked_add(jiff::SignedDuration::from_secs(1)).ok()?;
        let occurrence = recurrence::expand(&master.resource, &zone, stop, usize::MAX)
            .into_iter()
            .find(|o| o.original.id_suffix() == original.id_suffix())?;
        Some(resource::instance_of(
            &master.resource,
            occurrence.original,
            occurrence.start,
            occurrence.end,
            &series_zone,
        ))
    }

    /// Counts a request served on `path`.
    pub fn count_request(&mut self, path: &str) {
        *self.request_counts.entry(path.to_string()).or_default() += 1;
    }
}
