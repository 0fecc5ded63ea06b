//! The calendar object resource written for an [`EventDraft`], and the resource name it is
//! stored under.
//!
//! Times are written in UTC (`…Z`): a `TZID` must reference a VTIMEZONE in the same object
//! (RFC 5545 §3.2.19) and some servers refuse one without it, while a UTC time reads the same
//! in every client; a booking is a single instance, so no rule needs the zone to recur.
//! Attendees and the organizer carry `SCHEDULE-AGENT=CLIENT` (RFC 6638 §7.1): Kairos sends
//! the invitations itself, so a scheduling server must not send its own as well.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use kairos_core::calendar::ical::{escape_text, fold};
use sha2::{Digest, Sha256};

use crate::EventDraft;

fn utc(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC).strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// A parameter value: no control characters, no double quote (it cannot be escaped).
fn param(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).map(|c| if c == '"' { '\'' } else { c }).collect()
}

/// An address for a `mailto:` value: no control characters or spaces.
fn address(value: &str) -> String {
    value.chars().filter(|c| !c.is_control() && !c.is_whitespace()).collect()
}

/// The whole VCALENDAR for `draft`. `organizer` is the account's address when known;
/// `sequence` is RFC 5545's revision number (0 on create, one more than the stored one on
/// update).
pub(crate) fn vcalendar(draft: &EventDraft, organizer: Option<&str>, sequence: u32, now: Timestamp) -> String {
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//Kairos//Kairos//EN".to_string(),
        "CALSCALE:GREGORIAN".to_string(),
        "BEGIN:VEVENT".to_string(),
        format!("UID:{}", escape_text(&draft.uid)),
        format!("DTSTAMP:{}", utc(now)),
        format!("DTSTART:{}", utc(draft.start)),
        format!("DTEND:{}", utc(draft.end)),
        format!("SUMMARY:{}", escape_text(&draft.title)),
    ];
    if let Some(description) = &draft.description {
        lines.push(format!("DESCRIPTION:{}", escape_text(description)));
    }
    if let Some(organizer) = organizer {
        lines.push(format!("ORGANIZER;SCHEDULE-AGENT=CLIENT:mailto:{}", address(organizer)));
    }
    for a in &draft.attendees {
        let cn = a.name.as_deref().map(|n| format!(";CN=\"{}\"", param(n))).unwrap_or_default();
        lines.push(format!(
            "ATTENDEE{cn};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;SCHEDULE-AGENT=CLIENT:mailto:{}",
            address(&a.email)
        ));
    }
    lines.push(format!("SEQUENCE:{sequence}"));
    lines.push("STATUS:CONFIRMED".to_string());
    lines.push("TRANSP:OPAQUE".to_string());
    lines.push("END:VEVENT".to_string());
    lines.push("END:VCALENDAR".to_string());
    lines.iter().map(|l| fold(l)).collect()
}

/// The resource name for a UID: the UID itself when it is a plain file name (so a person
/// browsing the server recognises it), else a digest of it. Either way one UID always maps to
/// one name, which is what lets a retried create find its earlier attempt.
pub(crate) fn resource_name(uid: &str) -> String {
    let plain = !uid.is_empty()
        && uid.len() <= 120
        && !uid.starts_with('.')
        && uid.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if plain {
        return format!("{uid}.ics");
    }
    let digest = Sha256::digest(uid.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{hex}.ics")
}

/// The SEQUENCE of the first VEVENT of a stored resource.
pub(crate) fn sequence(data: &str) -> Option<u32> {
    kairos_core::calendar::ical::unfold(data)
        .into_iter()
        .find_map(|(_, line)| line.strip_prefix("SEQUENCE:").and_then(|v| v.trim().parse().ok()))
}

/// The UID of the first VEVENT of a stored resource.
pub(crate) fn uid(data: &str) -> Option<String> {
    let calendar = kairos_core::calendar::Calendar::parse(data).ok()?;
    calendar.events.into_iter().next().map(|e| e.uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DraftAttendee;
    use kairos_core::Interval;
    use kairos_core::calendar::Calendar;

    fn draft() -> EventDraft {
        EventDraft {
            uid: "bk_01J@kairos".into(),
            title: "Intro call, with Ana; 30 min".into(),
            description: Some("Line one\nLine two".into()),
            start: "2027-03-01T10:00:00Z".parse().unwrap(),
            end: "2027-03-01T10:30:00Z".parse().unwrap(),
            timezone: "Europe/Berlin".into(),
            attendees: vec![
                DraftAttendee { email: "ana@example.com".into(), name: Some("Ana \"A\" Ruiz".into()) },
                DraftAttendee { email: "bo@example.com".into(), name: None },
            ],
        }
    }

    #[test]
    fn the_written_event_reads_back_with_its_times_text_and_attendees() {
        let text = vcalendar(&draft(), Some("host@example.com"), 3, "2027-02-01T00:00:00Z".parse().unwrap());
        assert!(text.contains("DTSTART:20270301T100000Z\r\n") && text.contains("DTEND:20270301T103000Z\r\n"), "{text}");
        assert!(text.contains("SEQUENCE:3\r\n"));
        let cal = Calendar::parse(&text).unwrap();
        assert!(cal.skipped.is_empty(), "{:?}", cal.skipped);
        let event = &cal.events[0];
        assert_eq!(event.uid, "bk_01J@kairos");
        assert_eq!(event.summary.as_deref(), Some("Intro call, with Ana; 30 min"));
        assert_eq!(event.description.as_deref(), Some("Line one\nLine two"));
        assert_eq!(event.organizer.as_deref(), Some("host@example.com"));
        let attendees: Vec<(&str, Option<&str>, &str)> =
            event.attendees.iter().map(|a| (a.email.as_str(), a.name.as_deref(), a.partstat.as_str())).collect();
        assert_eq!(
            attendees,
            [("ana@example.com", Some("Ana 'A' Ruiz"), "NEEDS-ACTION"), ("bo@example.com", None, "NEEDS-ACTION")]
        );
        let window =
            Interval::new("2027-03-01T00:00:00Z".parse().unwrap(), "2027-03-02T00:00:00Z".parse().unwrap()).unwrap();
        let instances = cal.instances(window, &TimeZone::UTC);
        assert_eq!(instances.len(), 1);
        assert_eq!(instances[0].start.instant(&TimeZone::UTC), draft().start);
        assert_eq!(instances[0].end.instant(&TimeZone::UTC), draft().end);
        assert_eq!(sequence(&text), Some(3));
        assert_eq!(uid(&text).as_deref(), Some("bk_01J@kairos"));
    }

    #[test]
    fn control_characters_cannot_inject_lines() {
        let mut d = draft();
        d.title = "x\r\nATTENDEE:mailto:evil@example.com".into();
        d.attendees = vec![DraftAttendee { email: "a@b.c\r\nX-EVIL:1".into(), name: Some("N\r\nX-EVIL:2".into()) }];
        let text = vcalendar(&d, None, 0, "2027-02-01T00:00:00Z".parse().unwrap());
        assert!(!text.contains("\r\nX-EVIL") && !text.contains("\r\nATTENDEE:mailto:evil"), "{text}");
        assert!(!text.contains("ORGANIZER"));
    }

    #[test]
    fn resource_names_are_stable_and_safe() {
        assert_eq!(resource_name("bk_01J@kairos"), "bk_01J@kairos.ics");
        let odd = resource_name("a/b:c");
        assert_eq!(odd.len(), 36);
        assert_eq!(odd, resource_name("a/b:c"));
        assert_ne!(odd, resource_name("a/b;c"));
        assert_ne!(resource_name(".."), "...ics");
    }
}
