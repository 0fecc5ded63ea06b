//! Writing iCalendar: a VCALENDAR of events with escaped text, folded lines and CRLF. Times
//! with a zone are written as UTC (`…Z`), which every client reads the same way without a
//! VTIMEZONE; a recurring event keeps its IANA `TZID` so that its rule recurs in that zone.
//!
//! What reaches a parameter (a `CN`) or a `mailto:` comes from people (names and addresses
//! typed into a booking form), so it is cleaned here rather than trusted: a line break in a
//! name would otherwise start a property of its own.

use jiff::tz::TimeZone;

use super::event::{EventEnd, EventStatus, EventTime};
use super::ical::{escape_text, fold};
use super::{Event, rrule::RRule};

/// What a written VEVENT may say that [`Event`] does not hold. `Event` models what feeds say
/// that matters for busy time; an invitation also names its organizer and links back to the
/// booking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras<'a> {
    /// The organizer's display name (`ORGANIZER;CN=…`), when the event has an organizer.
    pub organizer_name: Option<&'a str>,
    /// `URL`: where the event can be seen or managed.
    pub url: Option<&'a str>,
}

/// A whole calendar: `METHOD` (e.g. `REQUEST`, `CANCEL`) when it is an invitation.
pub fn calendar(events: &[Event], method: Option<&str>, now: jiff::Timestamp) -> String {
    let vevents: Vec<String> = events.iter().map(|e| event(e, now)).collect();
    wrap(method, &vevents)
}

/// A VCALENDAR around VEVENTs already written (by [`event`] or [`event_with`]).
pub fn wrap(method: Option<&str>, vevents: &[String]) -> String {
    let mut out = String::new();
    out.push_str(&fold("BEGIN:VCALENDAR"));
    out.push_str(&fold("VERSION:2.0"));
    out.push_str(&fold("PRODID:-//Kairos//Kairos//EN"));
    out.push_str(&fold("CALSCALE:GREGORIAN"));
    if let Some(method) = method {
        // A METHOD is an iana-token or x-name: letters, digits and '-'.
        let method: String = method.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        out.push_str(&fold(&format!("METHOD:{}", method.to_ascii_uppercase())));
    }
    for e in vevents {
        out.push_str(e);
    }
    out.push_str(&fold("END:VCALENDAR"));
    out
}

/// One VEVENT.
pub fn event(e: &Event, now: jiff::Timestamp) -> String {
    event_with(e, &Extras::default(), now)
}

/// One VEVENT, with what [`Extras`] adds to the event.
pub fn event_with(e: &Event, extras: &Extras<'_>, now: jiff::Timestamp) -> String {
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
    if let Some(url) = extras.url {
        // A URI value is not TEXT: no escapes, but nothing that could end the line.
        lines.push(format!("URL:{}", url.chars().filter(|c| !c.is_control()).collect::<String>()));
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
        lines.push(format!("ORGANIZER{}:mailto:{}", cn(extras.organizer_name), mailto(o)));
    }
    for a in &e.attendees {
        lines.push(format!(
            "ATTENDEE{};ROLE=REQ-PARTICIPANT;PARTSTAT={};RSVP=TRUE:mailto:{}",
            cn(a.name.as_deref()),
            param_value(&a.partstat),
            mailto(&a.email)
        ));
    }
    lines.push("END:VEVENT".to_string());
    lines.iter().map(|l| fold(l)).collect()
}

/// `;CN=…` for a name, or nothing.
fn cn(name: Option<&str>) -> String {
    match name.map(param_value).filter(|n| !n.is_empty()) {
        Some(n) => format!(";CN={n}"),
        None => String::new(),
    }
}

/// A parameter value (RFC 5545 §3.1): control characters and DQUOTE cannot appear in one at
/// all (there is no escape for them), so they are dropped; a value holding `:`, `;` or `,`
/// is DQUOTEd, which is the only way it can hold them.
fn param_value(value: &str) -> String {
    let clean: String = value.chars().filter(|c| !c.is_control() && *c != '"').collect();
    if clean.contains([':', ';', ',']) { format!("\"{clean}\"") } else { clean }
}

/// An address for a `mailto:` value: no control characters or white space.
fn mailto(address: &str) -> String {
    address.chars().filter(|c| !c.is_control() && !c.is_whitespace()).collect()
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

    #[test]
    fn parameter_values_are_quoted_only_when_they_must_be_and_never_hold_quotes() {
        assert_eq!(super::param_value("Jane Doe"), "Jane Doe");
        assert_eq!(super::param_value("Doe, Jane"), "\"Doe, Jane\"");
        assert_eq!(super::param_value("a;b"), "\"a;b\"");
        assert_eq!(super::param_value("Dr: X"), "\"Dr: X\"");
        assert_eq!(super::param_value("Jane \"JD\" Doe"), "Jane JD Doe");
        assert_eq!(super::param_value("Line\r\nX-EVIL:1"), "\"LineX-EVIL:1\"");
    }

    #[test]
    fn an_organizer_name_and_url_are_written_when_given() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:u\r\nDTSTART:20270101T090000Z\r\nORGANIZER:mailto:host@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let event = &Calendar::parse(text).unwrap().events[0];
        let now = "2027-01-01T00:00:00Z".parse().unwrap();
        assert!(super::event(event, now).contains("ORGANIZER:mailto:host@example.com\r\n"));
        let extras = super::Extras { organizer_name: Some("Smith, Host"), url: Some("https://x.example/b?a=1\r\nX:1") };
        let written = super::event_with(event, &extras, now);
        assert!(written.contains("ORGANIZER;CN=\"Smith, Host\":mailto:host@example.com\r\n"), "{written}");
        assert!(written.contains("URL:https://x.example/b?a=1X:1\r\n"), "{written}");
    }
}
