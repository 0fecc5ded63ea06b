//! Writing iCalendar: a VCALENDAR of events with escaped text, folded lines and CRLF. Times
//! with a zone are written as UTC (`…Z`), which every client reads the same way without a
//! VTIMEZONE; a recurring event keeps its IANA `TZID` so that its rule recurs in that zone.

use jiff::tz::TimeZone;

use super::event::{EventEnd, EventStatus, EventTime};
use super::ical::{escape_text, fold};
use super::{Event, rrule::RRule};

/// A whole calendar: `METHOD` (e.g. `REQUEST`, `CANCEL`) when it is an invitation.
pub fn calendar(events: &[Event], method: Option<&str>, now: jiff::Timestamp) -> String {
    let mut out = String::new();
    out.push_str(&fold("BEGIN:VCALENDAR"));
    out.push_str(&fold("VERSION:2.0"));
    out.push_str(&fold("PRODID:-//Kairos//Kairos//EN"));
    out.push_str(&fold("CALSCALE:GREGORIAN"));
    if let Some(method) = method {
        out.push_str(&fold(&format!("METHOD:{method}")));
    }
    for e in events {
        out.push_str(&event(e, now));
    }
    out.push_str(&fold("END:VCALENDAR"));
    out
}

/// One VEVENT.
pub fn event(e: &Event, now: jiff::Timestamp) -> String {
    let keep_zone = e.rrule.is_some();
    let mut lines = vec!["BEGIN:VEVENT".to_string(), format!("UID:{}", escape_text(&e.uid))];
    lines.push(format!("DTSTAMP:{}", utc(now)));
    lines.push(time("DTSTART", &e.start, keep_zone));
    match &e.end {
        Some(EventEnd::At(t)) => lines.push(time("DTEND", t, keep_zone)),
        Some(EventEnd::For(d)) => {
            let sign = if d.negative { "-" } else { "" };
            let secs = d.exact.as_secs();
            let mut text = format!("{sign}P");
            if d.days > 0 {
                text.push_str(&format!("{}D", d.days));
            }
            if secs > 0 || d.days == 0 {
                text.push_str(&format!("T{}S", secs));
            }
            lines.push(format!("DURATION:{text}"));
        }
        None => {}
    }
    if let Some(rule) = &e.rrule {
        lines.push(format!("RRULE:{}", rrule_text(rule)));
    }
    for (name, value) in [("SUMMARY", &e.summary), ("DESCRIPTION", &e.description), ("LOCATION", &e.location)] {
        if let Some(v) = value {
            lines.push(format!("{name}:{}", escape_text(v)));
        }
    }
    lines.push(format!("SEQUENCE:{}", e.sequence));
    lines.push(
        match e.status {
            EventStatus::Confirmed => "STATUS:CONFIRMED",
            EventStatus::Tentative => "STATUS:TENTATIVE",
            EventStatus::Cancelled => "STATUS:CANCELLED",
        }
        .to_string(),
    );
    lines.push(if e.transparent { "TRANSP:TRANSPARENT" } else { "TRANSP:OPAQUE" }.to_string());
    if let Some(o) = &e.organizer {
        lines.push(format!("ORGANIZER:mailto:{o}"));
    }
    for a in &e.attendees {
        let cn = a.name.as_ref().map(|n| format!(";CN=\"{}\"", n.replace('"', "'"))).unwrap_or_default();
        lines.push(format!("ATTENDEE{cn};ROLE=REQ-PARTICIPANT;PARTSTAT={};RSVP=TRUE:mailto:{}", a.partstat, a.email));
    }
    lines.push("END:VEVENT".to_string());
    lines.iter().map(|l| fold(l)).collect()
}

fn utc(t: jiff::Timestamp) -> String {
    t.to_zoned(TimeZone::UTC).strftime("%Y%m%dT%H%M%SZ").to_string()
}

fn time(name: &str, t: &EventTime, keep_zone: bool) -> String {
    match t {
        EventTime::Date(d) => format!("{name};VALUE=DATE:{}", d.strftime("%Y%m%d")),
        EventTime::Floating(dt) => format!("{name}:{}", dt.strftime("%Y%m%dT%H%M%S")),
        EventTime::Zoned(z, written) => match z.time_zone().iana_name() {
            Some(tzid) if keep_zone && tzid != "UTC" => {
                format!("{name};TZID={tzid}:{}", written.strftime("%Y%m%dT%H%M%S"))
            }
            _ => format!("{name}:{}", utc(z.timestamp())),
        },
    }
}

fn rrule_text(r: &RRule) -> String {
    r.to_string()
}

#[cfg(test)]
mod tests {
    use crate::calendar::Calendar;

    #[test]
    fn written_events_read_back_the_same() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:abc@kairos\r\nDTSTART;TZID=America/New_York:20270314T090000\r\nDTEND;TZID=America/New_York:20270314T093000\r\nRRULE:FREQ=WEEKLY;COUNT=5;BYDAY=SU,TU\r\nSUMMARY:Call\\, with a comma; and more\r\nDESCRIPTION:Line one\\nLine two that is long enough to be folded when written back out again by Kairos\r\nATTENDEE;CN=Jane;PARTSTAT=ACCEPTED:mailto:jane@example.com\r\nORGANIZER:mailto:host@example.com\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:day@kairos\r\nDTSTART;VALUE=DATE:20270401\r\nDURATION:P1D\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let first = Calendar::parse(text).unwrap();
        let now = "2027-01-01T00:00:00Z".parse().unwrap();
        let written = super::calendar(&first.events, Some("REQUEST"), now);
        assert!(written.lines().all(|l| l.len() <= 76), "{written}");
        assert!(written.contains("METHOD:REQUEST\r\n"));
        let again = Calendar::parse(&written).unwrap();
        assert!(again.skipped.is_empty(), "{:?}", again.skipped);
        let strip = |c: &Calendar| {
            c.events
                .iter()
                .map(|e| (e.clone(), e.line))
                .map(|(mut e, _)| {
                    e.line = 0;
                    e
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&again), strip(&first));
    }
}
