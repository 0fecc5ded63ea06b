//! The emulator's memory: one mailbox (calendars, events, series exceptions), the identity
//! platform's grants and tokens, delta rounds, subscriptions, and the misbehaviour queued by
//! tests. Every change bumps one sequence number, which delta rounds and notifications follow.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::delta::DeltaStore;
use super::identity::Identity;
use super::view;
use super::zones;
use crate::microsoft::GraphSubscription;

/// One calendar of the mailbox.
#[derive(Debug, Clone)]
pub(crate) struct Calendar {
    pub id: String,
    pub name: String,
    pub is_default: bool,
    pub change_seq: u64,
}

/// A single event or a series master, with the series' exceptions and cancelled occurrences
/// (keyed by the occurrence's original start).
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    pub calendar: String,
    /// The Graph event as stored: times in their own zones, Graph's defaults filled in.
    pub json: Value,
    /// The change sequence of its last change (its own or one of its occurrences').
    pub seq: u64,
    pub exceptions: BTreeMap<Timestamp, Value>,
    pub cancelled: BTreeSet<Timestamp>,
}

/// A change to report to subscriptions once the lock is released.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub calendar: String,
    pub id: String,
    pub change_type: &'static str,
    pub etag: Option<String>,
}

pub(crate) struct State {
    pub base_url: String,
    pub user_id: String,
    pub tenant_id: String,
    pub email: String,
    pub display_name: String,
    pub calendars: Vec<Calendar>,
    pub events: BTreeMap<String, StoredEvent>,
    /// Deleted singles and masters: (id, calendar, seq of the deletion).
    pub tombstones: Vec<(String, String, u64)>,
    pub seq: u64,
    pub identity: Identity,
    pub delta: DeltaStore,
    pub subscriptions: BTreeMap<String, GraphSubscription>,
    pub fail_queue: VecDeque<(u16, Option<u64>)>,
    pub request_log: Vec<String>,
    pub notifications: Vec<Value>,
    pub pending: Vec<Change>,
}

pub(crate) const DEFAULT_CALENDAR: &str = "AAMkAD-default";

impl State {
    pub fn new(base_url: String) -> Self {
        Self {
            base_url,
            user_id: "4a3b2c1d-0000-4000-8000-00000000a11c".to_string(),
            tenant_id: "72f988bf-0000-4000-8000-0000c0475050".to_string(),
            email: "alice@contoso.com".to_string(),
            display_name: "Alice Contoso".to_string(),
            calendars: vec![Calendar {
                id: DEFAULT_CALENDAR.to_string(),
                name: "Calendar".to_string(),
                is_default: true,
                change_seq: 0,
            }],
            events: BTreeMap::new(),
            tombstones: Vec::new(),
            seq: 0,
            identity: Identity::default(),
            delta: DeltaStore::default(),
            subscriptions: BTreeMap::new(),
            fail_queue: VecDeque::new(),
            request_log: Vec::new(),
            notifications: Vec::new(),
            pending: Vec::new(),
        }
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn default_calendar(&self) -> &str {
        self.calendars.iter().find(|c| c.is_default).map_or(DEFAULT_CALENDAR, |c| c.id.as_str())
    }

    pub fn calendar(&self, id: &str) -> Option<&Calendar> {
        self.calendars.iter().find(|c| c.id == id)
    }

    pub fn calendar_json(&self, c: &Calendar) -> Value {
        json!({
            "id": c.id,
            "name": c.name,
            "color": if c.is_default { "auto" } else { "lightBlue" },
            "hexColor": "",
            "isDefaultCalendar": c.is_default,
            "changeKey": view::change_key(c.change_seq),
            "canShare": true,
            "canViewPrivateItems": true,
            "canEdit": true,
            "isRemovable": !c.is_default,
            "isTallyingResponses": true,
            "allowedOnlineMeetingProviders": ["teamsForBusiness"],
            "defaultOnlineMeetingProvider": "teamsForBusiness",
            "owner": {"name": self.display_name, "address": self.email},
        })
    }

    fn server_fields(&self, id: &str, seq: u64, created: &str, now: Timestamp) -> Map<String, Value> {
        let ck = view::change_key(seq);
        let mut m = Map::new();
        m.insert("id".into(), json!(id));
        m.insert("@odata.etag".into(), json!(view::etag(&ck)));
        m.insert("changeKey".into(), json!(ck));
        m.insert("createdDateTime".into(), json!(created));
        m.insert("lastModifiedDateTime".into(), json!(zones::format_utc(now)));
        m
    }

    /// Checks that a written event names times Graph can read; the message is Graph's.
    pub fn validate_times(event: &Value) -> Result<(), String> {
        for key in ["start", "end"] {
            let time = event.get(key).ok_or_else(|| format!("the event needs `{key}`"))?;
            // An absent zone is UTC, as Graph reads it; an empty or unknown one is refused.
            let zone = time.get("timeZone").and_then(Value::as_str).unwrap_or("UTC");
            if zones::resolve(zone).is_none() {
                return Err(format!(
                    "A valid TimeZone value must be specified. The following TimeZone value is not supported: '{zone}'."
                ));
            }
            time.get("dateTime").and_then(Value::as_str).and_then(zones::parse_local).ok_or_else(|| {
                format!("Cannot convert the literal '{}' to the expected type 'Edm.DateTime'.", time["dateTime"])
            })?;
        }
        Ok(())
    }

    /// Stores a single event or a series master in `calendar` (replacing the one with the same
    /// id), as if the user had saved it in Outlook. Returns its id.
    pub fn put(&mut self, calendar: &str, input: &Value) -> String {
        let seq = self.next_seq();
        let now = Timestamp::now();
        let given = input.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let existing = given.as_ref().and_then(|id| self.events.get(id)).cloned();
        let id = given.unwrap_or_else(|| view::event_id(seq));
        let created = existing
            .as_ref()
            .and_then(|e| e.json.get("createdDateTime").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| zones::format_utc(now));
        let mut server = self.server_fields(&id, seq, &created, now);
        let uid = existing
            .as_ref()
            .and_then(|e| e.json.get("iCalUId").cloned())
            .unwrap_or_else(|| json!(view::ical_uid(seq)));
        server.insert("iCalUId".into(), uid);
        let organizer = (self.display_name.clone(), self.email.clone());
        let json = view::normalise(input, server, (&organizer.0, &organizer.1));
        let (exceptions, cancelled) = existing.map(|e| (e.exceptions, e.cancelled)).unwrap_or_default();
        let change_type = if self.events.contains_key(&id) { "updated" } else { "created" };
        let etag = json.get("@odata.etag").and_then(Value::as_str).map(str::to_string);
        self.events
            .insert(id.clone(), StoredEvent { calendar: calendar.to_string(), json, seq, exceptions, cancelled });
        self.pending.push(Change { calendar: calendar.to_string(), id: id.clone(), change_type, etag });
        id
    }

    /// Applies a PATCH to a stored single event or master (top-level properties replace).
    pub fn patch(&mut self, id: &str, patch: &Value) -> Option<Value> {
        let mut merged = self.events.get(id)?.json.clone();
        let calendar = self.events.get(id)?.calendar.clone();
        if let (Some(m), Some(p)) = (merged.as_object_mut(), patch.as_object()) {
            for (k, v) in p {
                // transactionId cannot change after creation (Graph ignores a new one).
                if k != "transactionId" && k != "id" && k != "@odata.etag" && k != "changeKey" {
                    m.insert(k.clone(), v.clone());
                }
            }
            if p.contains_key("recurrence") && !p["recurrence"].is_null() {
                m.insert("type".into(), json!("seriesMaster"));
            }
        }
        self.put(&calendar, &merged);
        self.events.get(id).map(|e| e.json.clone())
    }

    /// Turns one occurrence into an exception carrying `patch`. `None` when the series has no
    /// occurrence there.
    pub fn modify_occurrence(&mut self, series_id: &str, original: Timestamp, patch: &Value) -> Option<String> {
        let stored = self.events.get(series_id)?;
        let base = view::instance_at(stored, original)?;
        let calendar = stored.calendar.clone();
        let seq = self.next_seq();
        let now = Timestamp::now();
        let mut exception = base;
        let id = exception.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        if let (Some(m), Some(p)) = (exception.as_object_mut(), patch.as_object()) {
            for (k, v) in p {
                m.insert(k.clone(), v.clone());
            }
            let ck = view::change_key(seq);
            m.insert("type".into(), json!("exception"));
            m.insert("id".into(), json!(id));
            m.insert("seriesMasterId".into(), json!(series_id));
            m.insert("recurrence".into(), Value::Null);
            m.insert("originalStart".into(), json!(zones::format_utc(original)));
            m.insert("@odata.etag".into(), json!(view::etag(&ck)));
            m.insert("changeKey".into(), json!(ck));
            m.insert("lastModifiedDateTime".into(), json!(zones::format_utc(now)));
        }
        let etag = exception.get("@odata.etag").and_then(Value::as_str).map(str::to_string);
        let stored = self.events.get_mut(series_id)?;
        stored.exceptions.insert(original, exception);
        stored.seq = seq;
        self.pending.push(Change { calendar, id: id.clone(), change_type: "updated", etag });
        Some(id)
    }

    /// Cancels one occurrence of a series. `false` when the series has no occurrence there.
    pub fn cancel_occurrence(&mut self, series_id: &str, original: Timestamp) -> bool {
        let Some(stored) = self.events.get(series_id) else { return false };
        if view::instance_at(stored, original).is_none() {
            return false;
        }
        let seq = self.next_seq();
        let Some(stored) = self.events.get_mut(series_id) else { return false };
        stored.exceptions.remove(&original);
        stored.cancelled.insert(original);
        stored.seq = seq;
        let calendar = stored.calendar.clone();
        let id = view::occurrence_id(series_id, original);
        self.pending.push(Change { calendar, id, change_type: "deleted", etag: None });
        true
    }

    /// Deletes a single event or a whole series; `false` when there is none.
    pub fn delete(&mut self, id: &str) -> bool {
        let Some(stored) = self.events.remove(id) else { return false };
        let seq = self.next_seq();
        self.tombstones.push((id.to_string(), stored.calendar.clone(), seq));
        self.pending.push(Change { calendar: stored.calendar, id: id.to_string(), change_type: "deleted", etag: None });
        true
    }

    /// A single event, master, occurrence or exception by id, in its stored zones.
    pub fn find(&self, id: &str) -> Option<(String, Value)> {
        if let Some(e) = self.events.get(id) {
            return Some((e.calendar.clone(), e.json.clone()));
        }
        let (master, original) = view::parse_occurrence_id(id)?;
        let stored = self.events.get(&master)?;
        view::instance_at(stored, original).map(|v| (stored.calendar.clone(), v))
    }

    /// Every instance of a calendar overlapping the window, sorted by start (stored zones).
    pub fn instances(&self, calendar: &str, window: (Timestamp, Timestamp)) -> Vec<Value> {
        let mut out: Vec<Value> =
            self.events.values().filter(|e| e.calendar == calendar).flat_map(|e| view::instances(e, window)).collect();
        out.sort_by_key(|e| view::span_of(e).map(|s| s.0));
        out
    }

    /// Events of a calendar changed after `seq` (ids of singles and masters) and deleted after it.
    pub fn changed_since(&self, calendar: &str, seq: u64) -> Vec<String> {
        let mut ids: Vec<String> = self
            .events
            .iter()
            .filter(|(_, e)| e.calendar == calendar && e.seq > seq)
            .map(|(id, _)| id.clone())
            .collect();
        ids.extend(self.tombstones.iter().filter(|(_, c, s)| c == calendar && *s > seq).map(|(id, _, _)| id.clone()));
        ids
    }

    /// The transactionId-idempotent create: an event already created with this transactionId.
    pub fn by_transaction(&self, transaction_id: &str) -> Option<String> {
        self.events
            .iter()
            .find(|(_, e)| e.json.get("transactionId").and_then(Value::as_str) == Some(transaction_id))
            .map(|(id, _)| id.clone())
    }
}

/// Query parameters with case-insensitive names (Graph accepts `startdatetime` as well).
#[derive(Debug, Clone, Default)]
pub(crate) struct Query(pub HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.map(|q| {
                form_urlencoded(q).into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect::<HashMap<_, _>>()
            })
            .unwrap_or_default(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

fn form_urlencoded(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}
