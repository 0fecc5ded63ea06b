//! Events as Graph shows them: the stored form filled with Graph's defaults, series masters
//! expanded into `occurrence`s and `exception`s for a calendar view, and times rendered in the
//! zone the client asked for (`Prefer: outlook.timezone`, UTC by default).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde_json::{Map, Value, json};

use super::recurrence;
use super::state::StoredEvent;
use super::zones;

/// The zone times are rendered in, and the name to label them with.
#[derive(Debug, Clone)]
pub(crate) struct OutZone {
    pub tz: TimeZone,
    pub label: String,
}

impl OutZone {
    pub fn utc() -> Self {
        Self { tz: TimeZone::UTC, label: "UTC".to_string() }
    }

    /// From the `outlook.timezone` preference; an unknown name falls back to UTC, as Graph
    /// ignores a preference it cannot apply.
    pub fn named(name: &str) -> Self {
        match zones::resolve(name) {
            Some(tz) => Self { tz, label: name.trim().trim_matches('"').to_string() },
            None => Self::utc(),
        }
    }
}

/// A change key: opaque, new on every change (Graph's look like base64).
pub(crate) fn change_key(seq: u64) -> String {
    STANDARD.encode(format!("kairos-emu-ck-{seq:012}"))
}

pub(crate) fn etag(change_key: &str) -> String {
    format!("W/\"{change_key}\"")
}

/// An Outlook-looking item id (`AAMkAD…=`), URL-safe so it can sit in a path unescaped.
pub(crate) fn event_id(seq: u64) -> String {
    format!("AAMkAD{}", URL_SAFE.encode(format!("kairos-event-{seq:08}")))
}

/// The id of one occurrence of a series: derived from the master's id and the original start,
/// so the same occurrence keeps its id, and keeps it when it becomes an exception.
pub(crate) fn occurrence_id(master_id: &str, original_start: Timestamp) -> String {
    format!("AAMkAG{}", URL_SAFE.encode(format!("{master_id}|{}", original_start.as_second())))
}

/// The master id and original start an occurrence id stands for.
pub(crate) fn parse_occurrence_id(id: &str) -> Option<(String, Timestamp)> {
    let raw = URL_SAFE.decode(id.strip_prefix("AAMkAG")?).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (master, secs) = text.rsplit_once('|')?;
    Some((master.to_string(), Timestamp::from_second(secs.parse().ok()?).ok()?))
}

/// A per-item iCalendar UID in Outlook's hex form (a GlobalObjectId whose instance-date bytes
/// are zero for the series).
pub(crate) fn ical_uid(seq: u64) -> String {
    format!("040000008200E00074C5B7101A82E008{:016X}0000000000000000100000{seq:018X}", 0)
}

/// An occurrence's iCalUId: the series' with the occurrence's date in the instance bytes
/// (Graph: "different for each occurrence in a recurring series"), stable across changes.
fn occurrence_ical_uid(series_uid: &str, original: Timestamp) -> String {
    let stamp = format!("{:016X}", original.as_second());
    match (series_uid.get(..32), series_uid.get(48..)) {
        (Some(head), Some(tail)) => format!("{head}{stamp}{tail}"),
        _ => format!("{series_uid}{stamp}"),
    }
}

fn text_preview(body: &Value) -> String {
    let content = body.get("content").and_then(Value::as_str).unwrap_or("");
    let mut out = String::new();
    let mut in_tag = false;
    for c in content.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(255).collect()
}

/// Fills an event with what Graph always returns, keeping what it has. `server` holds the
/// properties the server owns (id, change key, timestamps…), which always win.
pub(crate) fn normalise(input: &Value, server: Map<String, Value>, organizer: (&str, &str)) -> Value {
    let mut e = match input {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let defaults = json!({
        "subject": "",
        "body": {"contentType": "html", "content": ""},
        "importance": "normal",
        "sensitivity": "normal",
        "isAllDay": false,
        "isCancelled": false,
        "isOrganizer": true,
        "isDraft": false,
        "isReminderOn": true,
        "reminderMinutesBeforeStart": 15,
        "responseRequested": true,
        "hasAttachments": false,
        "hideAttendees": false,
        "allowNewTimeProposals": true,
        "isOnlineMeeting": false,
        "onlineMeetingProvider": "unknown",
        "onlineMeeting": null,
        "onlineMeetingUrl": null,
        "showAs": "busy",
        "categories": [],
        "attendees": [],
        "location": {"displayName": "", "locationType": "default", "uniqueIdType": "unknown",
                     "address": {}, "coordinates": {}},
        "locations": [],
        "organizer": {"emailAddress": {"name": organizer.0, "address": organizer.1}},
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "seriesMasterId": null,
        "recurrence": null,
        "transactionId": null,
        "webLink": "",
    });
    if let Value::Object(d) = defaults {
        for (k, v) in d {
            e.entry(k).or_insert(v);
        }
    }
    for (k, v) in server {
        e.insert(k, v);
    }
    let preview = text_preview(e.get("body").unwrap_or(&Value::Null));
    e.insert("bodyPreview".into(), json!(preview));
    for (time, zone_key) in [("start", "originalStartTimeZone"), ("end", "originalEndTimeZone")] {
        let zone = e.get(time).and_then(|t| t.get("timeZone")).and_then(Value::as_str).unwrap_or("UTC").to_string();
        e.insert(zone_key.into(), json!(zone));
    }
    let series = e.get("recurrence").is_some_and(|r| !r.is_null());
    let kind = if series { "seriesMaster" } else { e.get("type").and_then(Value::as_str).unwrap_or("singleInstance") };
    let kind = if kind == "seriesMaster" && !series { "singleInstance" } else { kind };
    e.insert("type".into(), json!(kind));
    Value::Object(e)
}

/// The instant a Graph `{dateTime, timeZone}` stands for.
pub(crate) fn instant_of(time: &Value) -> Option<Timestamp> {
    let zone = zones::resolve(time.get("timeZone").and_then(Value::as_str).unwrap_or("UTC"))?;
    let local = zones::parse_local(time.get("dateTime").and_then(Value::as_str)?)?;
    zones::to_zoned(local, &zone).map(|z| z.timestamp())
}

/// An event's span as instants.
pub(crate) fn span_of(event: &Value) -> Option<(Timestamp, Timestamp)> {
    let start = instant_of(event.get("start")?)?;
    let end = instant_of(event.get("end")?)?.max(start);
    Some((start, end))
}

fn overlaps(event: &Value, window: (Timestamp, Timestamp)) -> bool {
    span_of(event).is_some_and(|(s, e)| s < window.1 && (e > window.0 || (s == e && s >= window.0)))
}

fn with_zone_time(zoned: &jiff::Zoned, zone_name: &str) -> Value {
    json!({"dateTime": zones::format_local(zoned.datetime()), "timeZone": zone_name})
}

/// The occurrence of `master` that starts at `original` (not taking exceptions into account).
pub(crate) fn occurrence(master: &Value, original: &jiff::Zoned) -> Value {
    let mut occ = master.clone();
    let master_id = master.get("id").and_then(Value::as_str).unwrap_or("").to_string();
    let (start, end) = span_of(master).unwrap_or((original.timestamp(), original.timestamp()));
    let length = end.duration_since(start);
    let start_zone_name = master.pointer("/start/timeZone").and_then(Value::as_str).unwrap_or("UTC").to_string();
    let end_zone_name = master.pointer("/end/timeZone").and_then(Value::as_str).unwrap_or("UTC").to_string();
    let start_zone = zones::resolve(&start_zone_name).unwrap_or(TimeZone::UTC);
    let end_zone = zones::resolve(&end_zone_name).unwrap_or(TimeZone::UTC);
    let occ_start = original.with_time_zone(start_zone.clone());
    let all_day = master.get("isAllDay").and_then(Value::as_bool).unwrap_or(false);
    let occ_end = if all_day {
        // All-day events are whole days of wall-clock time, whatever DST does.
        let days = (length.as_secs() + 43_200) / 86_400;
        original.with_time_zone(end_zone).checked_add(days.days()).unwrap_or_else(|_| original.clone())
    } else {
        original.timestamp().checked_add(length).unwrap_or(original.timestamp()).to_zoned(end_zone)
    };
    let id = occurrence_id(&master_id, original.timestamp());
    if let Some(m) = occ.as_object_mut() {
        m.insert("id".into(), json!(id));
        m.insert("type".into(), json!("occurrence"));
        m.insert("seriesMasterId".into(), json!(master_id));
        m.insert("recurrence".into(), Value::Null);
        m.insert("start".into(), with_zone_time(&occ_start, &start_zone_name));
        m.insert("end".into(), with_zone_time(&occ_end, &end_zone_name));
        m.insert("originalStart".into(), json!(zones::format_utc(original.timestamp())));
        let series_uid = master.get("iCalUId").and_then(Value::as_str).unwrap_or_default();
        m.insert("iCalUId".into(), json!(occurrence_ical_uid(series_uid, original.timestamp())));
        m.remove("transactionId");
    }
    occ
}

/// The expansion of a series up to `last_date`, as `(original start, occurrence)`.
fn expand(stored: &StoredEvent, last_date: Date) -> Vec<(Timestamp, jiff::Zoned)> {
    match recurrence::occurrences(&stored.json, last_date) {
        Ok(list) => list.into_iter().map(|o| (o.start.timestamp(), o.start)).collect(),
        Err(why) => {
            tracing::warn!(id = ?stored.json.get("id"), %why, "the emulator cannot expand this series");
            Vec::new()
        }
    }
}

/// The instances of one stored event that overlap `window`: itself when single; else its
/// occurrences and exceptions, without the cancelled ones. In the stored zones.
pub(crate) fn instances(stored: &StoredEvent, window: (Timestamp, Timestamp)) -> Vec<Value> {
    if stored.json.get("type").and_then(Value::as_str) != Some("seriesMaster") {
        return if overlaps(&stored.json, window) { vec![stored.json.clone()] } else { Vec::new() };
    }
    // Two days of slack: a long occurrence starting before the window still overlaps it, and
    // dates are in the series' zone.
    let last = window.1.to_zoned(TimeZone::UTC).date().saturating_add(2.days());
    let mut out: Vec<Value> = expand(stored, last)
        .into_iter()
        .filter(|(t, _)| !stored.cancelled.contains(t) && !stored.exceptions.contains_key(t))
        .map(|(_, z)| occurrence(&stored.json, &z))
        .filter(|o| overlaps(o, window))
        .collect();
    out.extend(
        stored
            .exceptions
            .iter()
            .filter(|(t, e)| !stored.cancelled.contains(t) && overlaps(e, window))
            .map(|(_, e)| e.clone()),
    );
    out.sort_by_key(|e| span_of(e).map(|s| s.0));
    out
}

/// The occurrence (or exception) of a stored series starting at `original`, if the series has
/// one there and it is not cancelled.
pub(crate) fn instance_at(stored: &StoredEvent, original: Timestamp) -> Option<Value> {
    if stored.cancelled.contains(&original) {
        return None;
    }
    if let Some(e) = stored.exceptions.get(&original) {
        return Some(e.clone());
    }
    let last = original.to_zoned(TimeZone::UTC).date().saturating_add(2.days());
    expand(stored, last).into_iter().find(|(t, _)| *t == original).map(|(_, z)| occurrence(&stored.json, &z))
}

/// An event with its times in `out` (all-day events keep their dates: Graph shows them as
/// midnight to midnight in whatever zone is asked for).
pub(crate) fn render(event: &Value, out: &OutZone) -> Value {
    let mut e = event.clone();
    let all_day = event.get("isAllDay").and_then(Value::as_bool).unwrap_or(false);
    for key in ["start", "end"] {
        let Some(time) = event.get(key) else { continue };
        let rendered = if all_day {
            let date = time.get("dateTime").and_then(Value::as_str).and_then(zones::parse_local);
            date.map(|d| {
                json!({"dateTime": zones::format_local(d.date().to_datetime(jiff::civil::Time::midnight())),
                                 "timeZone": out.label})
            })
        } else {
            instant_of(time).map(|t| with_zone_time(&t.to_zoned(out.tz.clone()), &out.label))
        };
        if let (Some(r), Some(m)) = (rendered, e.as_object_mut()) {
            m.insert(key.into(), r);
        }
    }
    if let Some(m) = e.as_object_mut() {
        m.insert("@odata.type".into(), json!("#microsoft.graph.event"));
        // transactionId is "only returned in a response payload if an app has set it".
        if m.get("transactionId").is_some_and(Value::is_null) {
            m.remove("transactionId");
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurrence_ids_round_trip() {
        let t: Timestamp = "2026-03-15T12:00:00Z".parse().unwrap();
        let id = occurrence_id("AAMkADa2Fpcm9z=", t);
        assert_eq!(parse_occurrence_id(&id), Some(("AAMkADa2Fpcm9z=".to_string(), t)));
        assert_eq!(parse_occurrence_id(&event_id(7)), None);
    }

    #[test]
    fn rendering_converts_times_but_not_all_day_dates() {
        let e = json!({"start": {"dateTime": "2026-03-15T12:00:00.0000000", "timeZone": "Pacific Standard Time"},
                       "end": {"dateTime": "2026-03-15T13:00:00.0000000", "timeZone": "Pacific Standard Time"}});
        let r = render(&e, &OutZone::utc());
        assert_eq!(r["start"], json!({"dateTime": "2026-03-15T19:00:00.0000000", "timeZone": "UTC"}));
        let all_day = json!({"isAllDay": true,
                             "start": {"dateTime": "2026-03-15T00:00:00.0000000", "timeZone": "Tokyo Standard Time"},
                             "end": {"dateTime": "2026-03-16T00:00:00.0000000", "timeZone": "Tokyo Standard Time"}});
        let r = render(&all_day, &OutZone::named("Eastern Standard Time"));
        assert_eq!(r["start"]["dateTime"], "2026-03-15T00:00:00.0000000");
        assert_eq!(r["end"]["timeZone"], "Eastern Standard Time");
    }
}
