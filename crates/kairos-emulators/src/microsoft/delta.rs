//! `calendarView/delta` (learn.microsoft.com/graph/delta-query-events, …/api/event-delta):
//!
//! - The first request names the window (`startDateTime`, `endDateTime`); the state tokens
//!   carry it afterwards. Every response page has `@odata.nextLink` (`$skiptoken`) or, on the
//!   last page of a round, `@odata.deltaLink` (`$deltatoken`). `Prefer: odata.maxpagesize=N`
//!   sizes pages.
//! - A round's content is fixed when it starts: the first round lists every instance in the
//!   window; later rounds list instances added or changed since the previous round ended, and
//!   `{"@odata.type", "id", "@removed": {"reason": "deleted"}}` for instances deleted or moved
//!   out of the window. As documented, events changed *outside* the window also come back as
//!   `@removed` (clients must tolerate removals of ids they never saw).
//! - Expired tokens answer `410 Gone` with `syncStateNotFound` and a `Location` to restart from.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::errors::GraphError;
use super::state::State;
use super::view::{self, OutZone};
use super::zones;

/// One entry of a round.
#[derive(Debug, Clone)]
enum Item {
    Instance(Value),
    Removed(String),
}

/// What a delta token remembers: the window, and what the client has seen.
#[derive(Debug, Clone)]
struct Round {
    calendar: String,
    window: (Timestamp, Timestamp),
    /// Instance id → its serialised stored form, at the end of the round.
    snapshot: HashMap<String, String>,
    seq: u64,
    restart: String,
    expired: bool,
}

/// The rest of a round being paged through.
#[derive(Debug, Clone)]
struct Pages {
    items: Arc<Vec<Item>>,
    offset: usize,
    next: Round,
    expired: bool,
}

/// Every delta and skip token issued.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeltaStore {
    rounds: HashMap<String, Round>,
    pages: HashMap<String, Pages>,
}

impl DeltaStore {
    /// Makes every token issued so far fail, as when Exchange drops old sync state.
    pub fn expire_all(&mut self) {
        self.rounds.values_mut().for_each(|r| r.expired = true);
        self.pages.values_mut().for_each(|p| p.expired = true);
    }
}

fn new_token() -> String {
    let raw: [u8; 24] = rand::random();
    URL_SAFE_NO_PAD.encode(raw)
}

/// The request being answered.
pub(crate) struct DeltaRequest<'a> {
    pub calendar: &'a str,
    /// The path after `/v1.0/` the links repeat (`me/calendarView/delta`, …).
    pub link_path: &'a str,
    pub start: Option<&'a str>,
    pub end: Option<&'a str>,
    pub delta_token: Option<&'a str>,
    pub skip_token: Option<&'a str>,
    pub page_size: usize,
    pub zone: &'a OutZone,
}

fn snapshot(instances: &[Value]) -> HashMap<String, String> {
    instances
        .iter()
        .filter_map(|i| i.get("id").and_then(Value::as_str).map(|id| (id.to_string(), i.to_string())))
        .collect()
}

/// Answers one delta request.
pub(crate) fn delta(st: &mut State, req: &DeltaRequest<'_>) -> Result<Value, GraphError> {
    let base = format!("{}/v1.0/{}", st.base_url, req.link_path);
    let (items, offset, next) = if let Some(token) = req.skip_token {
        let Some(p) = st.delta.pages.get(token) else {
            return Err(GraphError::sync_state_not_found(base));
        };
        if p.expired {
            return Err(GraphError::sync_state_not_found(p.next.restart.clone()));
        }
        (p.items.clone(), p.offset, p.next.clone())
    } else if let Some(token) = req.delta_token {
        let Some(round) = st.delta.rounds.get(token).cloned() else {
            return Err(GraphError::sync_state_not_found(base));
        };
        if round.expired {
            return Err(GraphError::sync_state_not_found(round.restart));
        }
        let current = st.instances(&round.calendar, round.window);
        let now = snapshot(&current);
        let mut items: Vec<Item> = current
            .into_iter()
            .filter(|i| {
                let id = i.get("id").and_then(Value::as_str).unwrap_or("");
                round.snapshot.get(id) != now.get(id)
            })
            .map(Item::Instance)
            .collect();
        let mut removed: BTreeSet<String> =
            round.snapshot.keys().filter(|id| !now.contains_key(id.as_str())).cloned().collect();
        // Changes to events that have no instance in the window still show up, as removals.
        // (Events seen in the window before or now are reported through their instances.)
        let in_window: BTreeSet<String> = now
            .keys()
            .chain(round.snapshot.keys())
            .map(|id| view::parse_occurrence_id(id).map_or_else(|| id.clone(), |(master, _)| master))
            .collect();
        removed.extend(st.changed_since(&round.calendar, round.seq).into_iter().filter(|id| !in_window.contains(id)));
        items.extend(removed.into_iter().map(Item::Removed));
        let next = Round { snapshot: now, seq: st.seq, ..round };
        (Arc::new(items), 0, next)
    } else {
        let invalid = || {
            GraphError::bad_request(
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters StartDateTime and \
                 EndDateTime.",
            )
        };
        let start = req.start.and_then(zones::parse_instant).ok_or_else(invalid)?;
        let end = req.end.and_then(zones::parse_instant).ok_or_else(invalid)?;
        if end <= start {
            return Err(GraphError::bad_request(
                "ErrorInvalidParameter",
                "The parameter 'EndDateTime' must be later than 'StartDateTime'.",
            ));
        }
        let current = st.instances(req.calendar, (start, end));
        let restart =
            format!("{base}?startDateTime={}&endDateTime={}", zones::format_utc(start), zones::format_utc(end));
        let next = Round {
            calendar: req.calendar.to_string(),
            window: (start, end),
            snapshot: snapshot(&current),
            seq: st.seq,
            restart,
            expired: false,
        };
        (Arc::new(current.into_iter().map(Item::Instance).collect()), 0, next)
    };
    let size = req.page_size.max(1);
    let page: Vec<Value> = items
        .iter()
        .skip(offset)
        .take(size)
        .map(|item| match item {
            Item::Instance(v) => view::render(v, req.zone),
            Item::Removed(id) => {
                json!({"@odata.type": "#microsoft.graph.event", "id": id, "@removed": {"reason": "deleted"}})
            }
        })
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#Collection(event)", st.base_url),
        "value": page,
    });
    let token = new_token();
    if offset + size < items.len() {
        body["@odata.nextLink"] = json!(format!("{base}?$skiptoken={token}"));
        st.delta.pages.insert(token, Pages { items, offset: offset + size, next, expired: false });
    } else {
        body["@odata.deltaLink"] = json!(format!("{base}?$deltatoken={token}"));
        st.delta.rounds.insert(token, next);
    }
    Ok(body)
}
