//! Google Calendar events as iCalendar VEVENTs, the form every provider feeds the calendar
//! core in. One Google event makes one VEVENT:
//!
//! - a series master (`recurrence` set): `UID` = its id, `DTSTART;TZID=<start.timeZone>` in
//!   local wall time so the rule recurs DST-correctly, and Google's `RRULE`/`EXDATE`/`RDATE`
//!   lines as they are (they are RFC 5545 lines without DTSTART);
//! - an instance of a series (`recurringEventId` set), moved, changed or cancelled: `UID` =
//!   the series' id, `RECURRENCE-ID` from `originalStartTime` in the master's form, and for a
//!   cancelled one `STATUS:CANCELLED` (Google sends cancelled instances as stubs with only
//!   `id`, `recurringEventId` and `originalStartTime`);
//! - any other event: `DTSTART`/`DTEND` in UTC, or `VALUE=DATE` for all-day events (end
//!   exclusive, as Google's).

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use kairos_core::calendar::ical::{escape_text, fold};

use super::wire::{Event, EventDateTime};
use crate::RemoteItem;

/// Why an event could not be mapped; the sync skips it and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Google event {id} cannot be read: {why}")]
pub(crate) struct Unreadable {
    pub id: String,
    pub why: String,
}

/// A start or end as Google states it.
#[derive(Debug, Clone, PartialEq)]
enum Time {
    Date(Date),
    /// An instant, with the IANA zone it was given in (if any).
    Instant(Timestamp, Option<(TimeZone, String)>),
}

fn zone_named(name: &str) -> Option<(TimeZone, String)> {
    TimeZone::get(name).ok().map(|z| (z, name.to_string()))
}

/// Reads an `EventDateTime`; a `dateTime` without an offset is local to its `timeZone`, or
/// else to the calendar's.
fn read(t: &EventDateTime, calendar_zone: Option<&str>) -> Result<Time, String> {
    if let Some(date) = &t.date {
        return date.parse::<Date>().map(Time::Date).map_err(|e| format!("date {date:?}: {e}"));
    }
    let text = t.date_time.as_deref().ok_or("a time with neither date nor dateTime")?;
    let zone = t.time_zone.as_deref().and_then(zone_named);
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Ok(Time::Instant(instant, zone));
    }
    let local: DateTime = text.parse().map_err(|e| format!("dateTime {text:?}: {e}"))?;
    let (tz, name) = zone.or_else(|| calendar_zone.and_then(zone_named)).ok_or("a local dateTime without a zone")?;
    let instant = tz.to_ambiguous_zoned(local).compatible().map_err(|e| e.to_string())?.timestamp();
    Ok(Time::Instant(instant, Some((tz, name))))
}

/// One content line for a start-like property. `zoned`: write the local time with TZID when
/// the zone is known (series and their instances); else UTC.
fn time_line(name: &str, t: &Time, zoned: bool) -> String {
    match t {
        Time::Date(d) => format!("{name};VALUE=DATE:{}", d.strftime("%Y%m%d")),
        Time::Instant(instant, Some((tz, zone_name))) if zoned => {
            let local = instant.to_zoned(tz.clone()).datetime();
            format!("{name};TZID={}:{}", param_value(zone_name), local.strftime("%Y%m%dT%H%M%S"))
        }
        Time::Instant(instant, _) => format!("{name}:{}", instant.strftime("%Y%m%dT%H%M%SZ")),
    }
}

/// A parameter value: no quotes or control characters, quoted when it holds `:;,`.
fn param_value(value: &str) -> String {
    let clean: String = value.chars().filter(|c| *c != '"' && !c.is_control()).collect();
    if clean.contains([':', ';', ',']) { format!("\"{clean}\"") } else { clean }
}

/// An email for `mailto:`, without anything that could break the line.
fn mailto(email: &str) -> String {
    let clean: String = email.chars().filter(|c| !c.is_control() && !c.is_whitespace()).collect();
    format!("mailto:{clean}")
}

fn partstat(response_status: Option<&str>) -> &'static str {
    match response_status {
        Some("accepted") => "ACCEPTED",
        Some("declined") => "DECLINED",
        Some("tentative") => "TENTATIVE",
        _ => "NEEDS-ACTION",
    }
}

/// The meeting link: the Meet link, or the conference's video entry point.
fn meeting_link(event: &Event) -> Option<&str> {
    event.hangout_link.as_deref().or_else(|| {
        let points = &event.conference_data.as_ref()?.entry_points;
        points.iter().find(|p| p.entry_point_type.as_deref() == Some("video")).and_then(|p| p.uri.as_deref())
    })
}

/// The VEVENT of one Google event. `calendar_zone` is the calendar's own zone (the events
/// list's `timeZone`), for local times that name none.
pub(crate) fn to_item(event: &Event, calendar_zone: Option<&str>) -> Result<RemoteItem, Unreadable> {
    let fail = |why: String| Unreadable { id: event.id.clone(), why };
    let is_master = !event.recurrence.is_empty() && event.recurring_event_id.is_none();
    let original = match (&event.recurring_event_id, &event.original_start_time) {
        (Some(_), Some(o)) => Some(read(o, calendar_zone).map_err(fail)?),
        (Some(_), None) => return Err(fail("an instance without originalStartTime".into())),
        (None, _) => None,
    };
    let start = match &event.start {
        Some(s) => read(s, calendar_zone).map_err(fail)?,
        // A cancelled instance comes as a stub: it starts where the series put it.
        None => original.clone().ok_or_else(|| fail("an event without start".into()))?,
    };
    let end = match &event.end {
        Some(e) if event.start.is_some() => Some(read(e, calendar_zone).map_err(fail)?),
        _ => None,
    };
    let zoned = is_master || original.is_some();

    let mut lines: Vec<String> = vec!["BEGIN:VEVENT".into()];
    let uid = event.recurring_event_id.as_deref().unwrap_or(&event.id);
    lines.push(format!("UID:{}", escape_text(uid)));
    lines.push(format!("X-KAIROS-REMOTE-ID:{}", escape_text(&event.id)));
    if let Some(updated) = event.updated.as_deref().and_then(|u| u.parse::<Timestamp>().ok()) {
        lines.push(format!("DTSTAMP:{}", updated.strftime("%Y%m%dT%H%M%SZ")));
    }
    if let Some(original) = &original {
        lines.push(time_line("RECURRENCE-ID", original, true));
    }
    lines.push(time_line("DTSTART", &start, zoned));
    if let Some(end) = &end {
        lines.push(time_line("DTEND", end, zoned));
    }
    if is_master {
        // Only recurrence properties, each on its own line: nothing else may ride along.
        for rule in &event.recurrence {
            let rule: String = rule.chars().filter(|c| !c.is_control()).collect();
            let name = rule.split([':', ';']).next().unwrap_or_default().to_ascii_uppercase();
            if matches!(name.as_str(), "RRULE" | "EXRULE" | "RDATE" | "EXDATE") {
                lines.push(rule);
            }
        }
    }
    for (name, value) in
        [("SUMMARY", &event.summary), ("DESCRIPTION", &event.description), ("LOCATION", &event.location)]
    {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            lines.push(format!("{name}:{}", escape_text(v)));
        }
    }
    let status = match event.status.as_deref() {
        Some("cancelled") => "CANCELLED",
        Some("tentative") => "TENTATIVE",
        _ => "CONFIRMED",
    };
    lines.push(format!("STATUS:{status}"));
    let transp = if event.transparency.as_deref() == Some("transparent") { "TRANSPARENT" } else { "OPAQUE" };
    lines.push(format!("TRANSP:{transp}"));
    if let Some(sequence) = event.sequence.filter(|s| *s >= 0) {
        lines.push(format!("SEQUENCE:{sequence}"));
    }
    if let Some(email) = event.organizer.as_ref().and_then(|o| o.email.as_deref()) {
        let cn = event.organizer.as_ref().and_then(|o| o.display_name.as_deref());
        let cn = cn.map(|n| format!(";CN={}", param_value(n))).unwrap_or_default();
        lines.push(format!("ORGANIZER{cn}:{}", mailto(email)));
    }
    for a in event.attendees.iter().filter(|a| !a.resource) {
        let Some(email) = a.email.as_deref() else { continue };
        let cn = a.display_name.as_deref().map(|n| format!(";CN={}", param_value(n))).unwrap_or_default();
        lines.push(format!("ATTENDEE{cn};PARTSTAT={}:{}", partstat(a.response_status.as_deref()), mailto(email)));
    }
    if let Some(link) = meeting_link(event) {
        lines.push(format!("URL:{}", link.chars().filter(|c| !c.is_control()).collect::<String>()));
    }
    lines.push("END:VEVENT".into());
    Ok(RemoteItem { id: event.id.clone(), etag: event.etag.clone(), ical: lines.iter().map(|l| fold(l)).collect() })
}

#[cfg(test)]
mod tests;
