//! Event resources as the Calendar API returns them: the defaults Google fills in on every
//! write, the stubs it sends for cancelled events, and instances of a series.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rand::Rng;
use serde_json::{Map, Value, json};

use super::recurrence::When;

/// RFC 3339 in UTC with milliseconds, as Google writes `created` and `updated`.
pub(crate) fn rfc3339_millis(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A fresh event id: 26 base32hex characters, as Google generates.
pub(crate) fn new_event_id() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuv";
    let mut rng = rand::rng();
    (0..26).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

/// Client-chosen ids: base32hex characters (`0-9`, `a-v`), 5 to 1024 of them. Instance ids
/// (`<series>_<suffix>`) are Google's own and accepted too.
pub(crate) fn valid_client_id(id: &str) -> bool {
    (5..=1024).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
}

/// What a write says about the event it produces, besides its body.
pub(crate) struct Stamp<'a> {
    pub id: &'a str,
    pub calendar_id: &'a str,
    pub organizer: Value,
    pub micros: i64,
    pub now: Timestamp,
    /// The iCalUID of the series, for an instance of one.
    pub series_ical_uid: Option<String>,
}

/// Fills the fields Google sets on every write, keeping what the previous version had
/// (`created`, `iCalUID`, `sequence`) and bumping `sequence` when the timing changes.
pub(crate) fn stamp(mut body: Map<String, Value>, previous: Option<&Value>, s: Stamp<'_>) -> Value {
    let prev = |key: &str| previous.and_then(|p| p.get(key)).cloned();
    body.insert("kind".into(), json!("calendar#event"));
    body.insert("id".into(), json!(s.id));
    body.insert("etag".into(), json!(format!("\"{}\"", s.micros)));
    body.entry("status").or_insert_with(|| json!("confirmed"));
    let eid = URL_SAFE_NO_PAD.encode(format!("{} {}", s.id, s.calendar_id));
    body.insert("htmlLink".into(), json!(format!("https://www.google.com/calendar/event?eid={eid}")));
    let created = prev("created").unwrap_or_else(|| json!(rfc3339_millis(s.now)));
    body.insert("created".into(), created);
    body.insert("updated".into(), json!(rfc3339_millis(s.now)));
    body.entry("creator").or_insert_with(|| prev("creator").unwrap_or_else(|| s.organizer.clone()));
    body.entry("organizer").or_insert_with(|| prev("organizer").unwrap_or_else(|| s.organizer.clone()));
    let ical_uid =
        prev("iCalUID").or(s.series_ical_uid.map(Value::from)).unwrap_or_else(|| json!(format!("{}@google.com", s.id)));
    body.entry("iCalUID").or_insert(ical_uid);
    let timing_changed =
        previous.is_some_and(|p| ["start", "end", "recurrence"].iter().any(|k| p.get(*k) != body.get(*k)));
    let sequence = prev("sequence").and_then(|v| v.as_i64()).unwrap_or(0) + i64::from(timing_changed);
    body.entry("sequence").or_insert(json!(sequence));
    body.entry("reminders").or_insert_with(|| json!({"useDefault": true}));
    body.entry("eventType").or_insert_with(|| json!("default"));
    Value::Object(body)
}

/// What an incremental sync (or `showDeleted=false`) shows of a cancelled event: a deleted
/// event is only guaranteed its id; a cancelled instance its id, `recurringEventId` and
/// `originalStartTime` (Event.status in the API reference).
pub(crate) fn cancelled_stub(event: &Value) -> Value {
    let mut stub = Map::new();
    for key in ["kind", "etag", "id", "status", "recurringEventId", "originalStartTime"] {
        if let Some(v) = event.get(key) {
            stub.insert(key.into(), v.clone());
        }
    }
    Value::Object(stub)
}

/// An `EventDateTime` for an instance start in the series' zone.
pub(crate) fn event_time(when: When, zone: &TimeZone, zone_name: Option<&str>) -> Value {
    match when {
        When::AllDay(d) => json!({"date": d.to_string()}),
        When::Timed(t) => {
            let local = t.to_zoned(zone.clone());
            let mut v = json!({"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()});
            if let (Some(name), Some(map)) = (zone_name, v.as_object_mut()) {
                map.insert("timeZone".into(), json!(name));
            }
            v
        }
    }
}

/// The instance of `master` that the rule puts at `original`, as Google serves an
/// unmodified instance (`singleEvents=true`, or `events.get` on an instance id).
pub(crate) fn instance_of(master: &Value, original: When, start: Timestamp, end: Timestamp, zone: &TimeZone) -> Value {
    let mut v = master.clone();
    let zone_name = master.pointer("/start/timeZone").and_then(Value::as_str).map(str::to_string);
    let master_id = master.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(map) = v.as_object_mut() {
        map.remove("recurrence");
        map.insert("id".into(), json!(format!("{master_id}_{}", original.id_suffix())));
        map.insert("recurringEventId".into(), json!(master_id));
        map.insert("originalStartTime".into(), event_time(original, zone, zone_name.as_deref()));
        let (s, e) = match original {
            When::AllDay(_) => {
                let day = |t: Timestamp| When::AllDay(t.to_zoned(zone.clone()).date());
                (day(start), day(end))
            }
            When::Timed(_) => (When::Timed(start), When::Timed(end)),
        };
        map.insert("start".into(), event_time(s, zone, zone_name.as_deref()));
        map.insert("end".into(), event_time(e, zone, zone_name.as_deref()));
    }
    v
}

/// Reads the suffix of an instance id back into the start it names.
pub(crate) fn parse_instance_suffix(suffix: &str) -> Option<When> {
    if let Some(utc) = suffix.strip_suffix('Z') {
        let dt = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S", utc).ok()?;
        return dt.to_zoned(TimeZone::UTC).ok().map(|z| When::Timed(z.timestamp()));
    }
    jiff::civil::Date::strptime("%Y%m%d", suffix).ok().map(When::AllDay)
}

/// RFC 7396 merge for PATCH, except that times are replaced whole (a `{date}` must not
/// keep the old `dateTime`).
pub(crate) fn merge_patch(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(&key);
            }
            Value::Object(inner) if !matches!(key.as_str(), "start" | "end" | "originalStartTime") => {
                match target.get_mut(&key) {
                    Some(Value::Object(existing)) => merge_patch(existing, inner),
                    _ => {
                        target.insert(key, Value::Object(inner));
                    }
                }
            }
            other => {
                target.insert(key, other);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_base32hex() {
        assert!(valid_client_id("abcv0123"));
        assert!(!valid_client_id("abcw0123"));
        assert!(!valid_client_id("ab12"));
        assert!(!valid_client_id("ABCDEF"));
        assert!(new_event_id().len() == 26 && valid_client_id(&new_event_id()));
    }

    #[test]
    fn patch_replaces_times_whole() {
        let mut target =
            json!({"start": {"dateTime": "x", "timeZone": "UTC"}, "a": {"b": 1, "c": 2}}).as_object().cloned().unwrap();
        let patch = json!({"start": {"date": "2024-01-01"}, "a": {"c": null, "d": 3}}).as_object().cloned().unwrap();
        merge_patch(&mut target, patch);
        assert_eq!(Value::Object(target), json!({"start": {"date": "2024-01-01"}, "a": {"b": 1, "d": 3}}));
    }

    #[test]
    fn instance_suffixes_round_trip() {
        let when = parse_instance_suffix("20240304T080000Z").unwrap();
        assert_eq!(when.id_suffix(), "20240304T080000Z");
        assert_eq!(parse_instance_suffix("20240304").unwrap().id_suffix(), "20240304");
    }
}
