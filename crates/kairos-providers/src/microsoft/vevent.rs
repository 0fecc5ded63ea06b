//! Graph events as iCalendar VEVENTs.
//!
//! Sync reads a calendar view, whose items are already instances (single events, and the
//! occurrences and exceptions of series): each becomes its own VEVENT, `UID` = its Graph id,
//! times in UTC (or `VALUE=DATE` for all-day events, end exclusive), with
//! `X-KAIROS-SERIES-ID:<seriesMasterId>` when it belongs to a series. Graph's `showAs` decides
//! busy-ness: `free` (and `workingElsewhere`: the person works, elsewhere) → `TRANSP:TRANSPARENT`,
//! `tentative` → `STATUS:TENTATIVE`. A cancelled instance is a removal, not a VEVENT.

use jiff::Timestamp;
use kairos_core::calendar::ical::{escape_text, fold};

use super::wire::{self, Event};

/// Why an event could not be written as iCalendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {id}: {why}")]
pub struct MappingError {
    pub id: String,
    pub why: String,
}

impl MappingError {
    pub(crate) fn new(id: &str, why: impl Into<String>) -> Self {
        Self { id: id.to_string(), why: why.into() }
    }
}

pub(crate) fn utc_basic(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

pub(crate) fn date_basic(d: jiff::civil::Date) -> String {
    d.strftime("%Y%m%d").to_string()
}

pub(crate) fn local_basic(dt: jiff::civil::DateTime) -> String {
    dt.strftime("%Y%m%dT%H%M%S").to_string()
}

/// A parameter value, quoted when it holds `:`, `;` or `,` (RFC 5545 §3.2; DQUOTE cannot
/// appear inside, so it is dropped).
pub(crate) fn param(value: &str) -> String {
    let clean: String = value.chars().filter(|c| *c != '"' && !c.is_control()).collect();
    if clean.contains([':', ';', ',']) { format!("\"{clean}\"") } else { clean }
}

/// Appends one content line, folded.
pub(crate) fn push(out: &mut String, line: &str) {
    out.push_str(&fold(line));
}

fn text(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
        push(out, &format!("{name}:{}", escape_text(v)));
    }
}

fn partstat(response: Option<&str>) -> &'static str {
    match response {
        Some("accepted" | "organizer") => "ACCEPTED",
        Some("declined") => "DECLINED",
        Some("tentativelyAccepted") => "TENTATIVE",
        _ => "NEEDS-ACTION",
    }
}

/// The plain-text description: the body when it is text, else Graph's text preview.
fn description(e: &Event) -> Option<String> {
    let body = e.body.as_ref();
    let is_text = body.and_then(|b| b.content_type.as_deref()).is_some_and(|t| t.eq_ignore_ascii_case("text"));
    match body.and_then(|b| b.content.clone()) {
        Some(content) if is_text => Some(content),
        _ => e.body_preview.clone(),
    }
}

/// The properties every VEVENT of an event carries besides its times and identity.
pub(crate) fn details(out: &mut String, e: &Event) {
    text(out, "SUMMARY", e.subject.as_deref());
    text(out, "DESCRIPTION", description(e).as_deref());
    text(out, "LOCATION", e.location.as_ref().and_then(|l| l.display_name.as_deref()));
    let show_as = e.show_as.as_deref().unwrap_or("busy");
    push(out, if show_as == "tentative" { "STATUS:TENTATIVE" } else { "STATUS:CONFIRMED" });
    let transparent = matches!(show_as, "free" | "workingElsewhere");
    push(out, if transparent { "TRANSP:TRANSPARENT" } else { "TRANSP:OPAQUE" });
    if let Some(addr) = e.organizer.as_ref().and_then(|o| o.email_address.as_ref())
        && let Some(address) = addr.address.as_deref().filter(|a| !a.is_empty())
    {
        let cn = addr.name.as_deref().map(|n| format!(";CN={}", param(n))).unwrap_or_default();
        push(out, &format!("ORGANIZER{cn}:mailto:{address}"));
    }
    for a in e.attendees.iter().flatten() {
        let Some(addr) = a.email_address.as_ref() else { continue };
        let Some(address) = addr.address.as_deref().filter(|a| !a.is_empty()) else { continue };
        let cn = addr.name.as_deref().map(|n| format!(";CN={}", param(n))).unwrap_or_default();
        let role = match a.kind.as_deref() {
            Some("optional") => ";ROLE=OPT-PARTICIPANT",
            Some("resource") => ";CUTYPE=RESOURCE",
            _ => ";ROLE=REQ-PARTICIPANT",
        };
        let status = partstat(a.status.as_ref().and_then(|s| s.response.as_deref()));
        push(out, &format!("ATTENDEE{cn}{role};PARTSTAT={status}:mailto:{address}"));
    }
    let link = e.online_meeting.as_ref().and_then(|m| m.join_url.clone()).or_else(|| e.online_meeting_url.clone());
    if let Some(url) = link.filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
        push(out, &format!("URL:{url}"));
    }
    if let Some(t) = e.last_modified_date_time.as_deref().and_then(wire::offset_instant) {
        push(out, &format!("DTSTAMP:{}", utc_basic(t)));
    }
}

/// One instance (Graph event JSON: a single event, occurrence or exception) as a standalone
/// VEVENT.
pub fn instance_vevent(event: &serde_json::Value) -> Result<String, MappingError> {
    let id = event.get("id").and_then(serde_json::Value::as_str).unwrap_or("");
    let e: Event = serde_json::from_value(event.clone())
        .map_err(|err| MappingError::new(id, format!("not a Graph event: {err}")))?;
    instance(&e)
}

/// [`instance_vevent`] for an event already read.
pub(crate) fn instance(e: &Event) -> Result<String, MappingError> {
    let (Some(start), Some(end)) = (e.start.as_ref(), e.end.as_ref()) else {
        return Err(MappingError::new(&e.id, "no start or end"));
    };
    let mut out = String::from("BEGIN:VEVENT\r\n");
    push(&mut out, &format!("UID:{}", escape_text(&e.id)));
    push(&mut out, &format!("X-KAIROS-REMOTE-ID:{}", escape_text(&e.id)));
    if let Some(series) = e.series_master_id.as_deref().filter(|s| !s.is_empty()) {
        push(&mut out, &format!("X-KAIROS-SERIES-ID:{}", escape_text(series)));
    }
    if e.all_day() {
        // Graph shows all-day events as midnight to midnight in the zone asked for: the
        // dates are what count.
        let day = |t: &wire::DateTimeTimeZone| wire::local(&t.date_time).map(|dt| dt.date());
        let (Some(s), Some(end_day)) = (day(start), day(end)) else {
            return Err(MappingError::new(&e.id, "unreadable all-day dates"));
        };
        let end_day = if end_day > s { end_day } else { s.tomorrow().unwrap_or(s) };
        push(&mut out, &format!("DTSTART;VALUE=DATE:{}", date_basic(s)));
        push(&mut out, &format!("DTEND;VALUE=DATE:{}", date_basic(end_day)));
    } else {
        let (Some(s), Some(t)) = (wire::instant(start), wire::instant(end)) else {
            return Err(MappingError::new(&e.id, "unreadable start or end (unknown time zone?)"));
        };
        push(&mut out, &format!("DTSTART:{}", utc_basic(s)));
        push(&mut out, &format!("DTEND:{}", utc_basic(t.max(s))));
    }
    details(&mut out, e);
    out.push_str("END:VEVENT\r\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;
    use kairos_core::Interval;
    use kairos_core::calendar::Calendar;
    use kairos_core::calendar::event::EventStatus;
    use serde_json::json;

    use super::*;

    fn event(v: serde_json::Value) -> serde_json::Value {
        v
    }

    fn parse(vevents: &str) -> Calendar {
        let cal = Calendar::parse(&format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{vevents}END:VCALENDAR\r\n")).unwrap();
        assert!(cal.skipped.is_empty(), "{:?}", cal.skipped);
        cal
    }

    #[test]
    fn an_occurrence_becomes_a_utc_vevent_tagged_with_its_series() {
        let e = event(json!({
            "id": "AAMkAGocc=", "@odata.etag": "W/\"ck1\"", "type": "occurrence", "seriesMasterId": "AAMkADmaster=",
            "subject": "Standup; daily, short", "showAs": "tentative",
            "body": {"contentType": "html", "content": "<p>x</p>"}, "bodyPreview": "Agenda\nline two",
            "start": {"dateTime": "2026-03-09T16:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-09T16:15:00.0000000", "timeZone": "UTC"},
            "organizer": {"emailAddress": {"name": "Alice, Contoso", "address": "alice@contoso.com"}},
            "attendees": [{"type": "required", "status": {"response": "declined"},
                           "emailAddress": {"name": "Bob", "address": "bob@example.com"}}],
            "onlineMeeting": {"joinUrl": "https://teams.microsoft.com/l/meetup-join/abc"}
        }));
        let text = instance_vevent(&e).unwrap();
        assert!(text.lines().all(|l| l.len() <= 75), "folded at 75 octets");
        let flat = text.replace("\r\n ", "");
        assert!(
            flat.contains("UID:AAMkAGocc=\r\nX-KAIROS-REMOTE-ID:AAMkAGocc=\r\nX-KAIROS-SERIES-ID:AAMkADmaster=\r\n")
        );
        assert!(flat.contains("SUMMARY:Standup\\; daily\\, short\r\n"), "{text}");
        assert!(flat.contains("DESCRIPTION:Agenda\\nline two\r\n"));
        assert!(flat.contains("ORGANIZER;CN=\"Alice, Contoso\":mailto:alice@contoso.com\r\n"));
        assert!(flat.contains("ATTENDEE;CN=Bob;ROLE=REQ-PARTICIPANT;PARTSTAT=DECLINED:mailto:bob@example.com\r\n"));
        assert!(flat.contains("URL:https://teams.microsoft.com/l/meetup-join/abc\r\n"));
        let cal = parse(&text);
        let window =
            Interval::new("2026-03-01T00:00:00Z".parse().unwrap(), "2026-04-01T00:00:00Z".parse().unwrap()).unwrap();
        let instances = cal.instances(window, &TimeZone::UTC);
        assert_eq!(instances.len(), 1);
        assert_eq!(instances[0].start.instant(&TimeZone::UTC), "2026-03-09T16:00:00Z".parse().unwrap());
        assert_eq!(instances[0].event.status, EventStatus::Tentative);
        assert_eq!(instances[0].event.attendees[0].partstat, "DECLINED");
    }

    #[test]
    fn all_day_and_free_events() {
        let e = event(json!({
            "id": "a", "isAllDay": true, "showAs": "free", "subject": "Holiday",
            "start": {"dateTime": "2026-03-15T00:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-17T00:00:00.0000000", "timeZone": "UTC"}
        }));
        let text = instance_vevent(&e).unwrap();
        assert!(text.contains("DTSTART;VALUE=DATE:20260315\r\nDTEND;VALUE=DATE:20260317\r\n"), "{text}");
        assert!(text.contains("TRANSP:TRANSPARENT\r\n"));
        let cal = parse(&text);
        assert!(cal.events[0].transparent);
    }

    #[test]
    fn windows_zone_times_are_converted_to_utc() {
        let e = event(json!({
            "id": "w", "start": {"dateTime": "2026-07-01T09:00:00", "timeZone": "Pacific Standard Time"},
            "end": {"dateTime": "2026-07-01T10:00:00", "timeZone": "Pacific Standard Time"}
        }));
        let text = instance_vevent(&e).unwrap();
        assert!(text.contains("DTSTART:20260701T160000Z\r\nDTEND:20260701T170000Z\r\n"), "{text}");
        let bad = event(json!({"id": "x", "start": {"dateTime": "2026-07-01T09:00:00", "timeZone": "Mars"},
                               "end": {"dateTime": "2026-07-01T10:00:00", "timeZone": "Mars"}}));
        assert!(instance_vevent(&bad).is_err());
    }
}
