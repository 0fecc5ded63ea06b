//! Invitations (iTIP, RFC 5546): the one-event calendar attached to a booking's emails, which
//! mail clients show as an invitation card with its answer buttons.
//!
//! A booking keeps one UID for its whole life and counts its revisions in SEQUENCE, so a
//! client that received the first REQUEST replaces it with a later one (a move) and removes
//! it on a CANCEL, instead of showing two events. Times are written in UTC: every client
//! reads them the same way, and one occurrence needs no VTIMEZONE.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::Event;
use super::event::{Attendee, EventEnd, EventStatus, EventTime};
use super::write::{self, Extras};

/// What an invitation asks of its attendees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InviteMethod {
    /// A new event, or a change to one sent before (same UID, higher SEQUENCE).
    Request,
    /// The event no longer takes place.
    Cancel,
}

impl InviteMethod {
    /// The iCalendar `METHOD` (also the `method=` parameter of a `text/calendar` MIME part).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "REQUEST",
            Self::Cancel => "CANCEL",
        }
    }
}

/// Someone an invitation names: an address, and the name to show for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub email: String,
    pub name: Option<String>,
}

/// One booking as an invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Stable for the booking's whole life: it is how clients match a change to the event
    /// they already hold.
    pub uid: String,
    /// The revision: 0 first, higher with every change sent (a move, a cancellation).
    pub sequence: u32,
    pub method: InviteMethod,
    pub summary: String,
    pub description: Option<String>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub organizer: Person,
    pub attendees: Vec<Person>,
    /// Where the booking can be seen or changed.
    pub url: Option<String>,
}

impl Invitation {
    /// The VCALENDAR text (CRLF, folded) stamped with `now` (DTSTAMP: when it was made).
    pub fn to_ics(&self, now: Timestamp) -> String {
        let at = |t: Timestamp| {
            let zoned = t.to_zoned(TimeZone::UTC);
            let written = zoned.datetime();
            EventTime::Zoned(zoned, written)
        };
        let event = Event {
            uid: self.uid.clone(),
            summary: Some(self.summary.clone()),
            description: self.description.clone(),
            location: None,
            start: at(self.start),
            end: Some(EventEnd::At(at(self.end))),
            rrule: None,
            rdates: Vec::new(),
            exdates: Vec::new(),
            recurrence_id: None,
            // RFC 5546 §3.2.5: a CANCEL of a whole event says so in STATUS as well.
            status: match self.method {
                InviteMethod::Request => EventStatus::Confirmed,
                InviteMethod::Cancel => EventStatus::Cancelled,
            },
            transparent: false,
            organizer: Some(self.organizer.email.clone()),
            attendees: self
                .attendees
                .iter()
                .map(|p| Attendee { email: p.email.clone(), name: p.name.clone(), partstat: "NEEDS-ACTION".into() })
                .collect(),
            sequence: self.sequence,
            line: 0,
        };
        let extras = Extras { organizer_name: self.organizer.name.as_deref(), url: self.url.as_deref() };
        write::wrap(Some(self.method.as_str()), &[write::event_with(&event, &extras, now)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Calendar;
    use crate::calendar::ical::{self, Component};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn invitation() -> Invitation {
        Invitation {
            uid: "bk_01JTESTBOOKING@kairos".into(),
            sequence: 0,
            method: InviteMethod::Request,
            summary: "Intro call; 30 min, with Ana".into(),
            description: Some("Bring the contract.\nSecond line, with a comma; and a semicolon\\".into()),
            start: ts("2026-05-01T13:00:00Z"),
            end: ts("2026-05-01T13:30:00Z"),
            organizer: Person { email: "host@example.com".into(), name: Some("Hana Host".into()) },
            attendees: vec![
                Person { email: "ana@example.com".into(), name: Some("Ruiz, Ana".into()) },
                Person { email: "bo@example.com".into(), name: None },
            ],
            url: Some("https://book.example.com/manage/bk_01?token=a;b,c".into()),
        }
    }

    /// The VCALENDAR component and its one VEVENT, read with the crate's own syntax reader.
    fn components(ics: &str) -> (Component, Component) {
        let top = ical::parse(ics).unwrap();
        assert_eq!(top.len(), 1, "{ics}");
        let vcal = top[0].clone();
        assert_eq!(vcal.components.len(), 1, "{ics}");
        let vevent = vcal.components[0].clone();
        assert_eq!(vevent.name, "VEVENT");
        (vcal, vevent)
    }

    #[test]
    fn a_request_carries_every_property_itip_asks_for() {
        let now = ts("2026-04-20T08:15:00Z");
        let ics = invitation().to_ics(now);
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        assert!(ics.split("\r\n").all(|l| l.len() <= 75), "{ics}");

        let (vcal, vevent) = components(&ics);
        assert_eq!(vcal.property("VERSION").unwrap().value, "2.0");
        assert!(vcal.property("PRODID").is_some());
        assert_eq!(vcal.property("METHOD").unwrap().value, "REQUEST");
        assert_eq!(vevent.text("UID").unwrap(), "bk_01JTESTBOOKING@kairos");
        assert_eq!(vevent.property("DTSTAMP").unwrap().value, "20260420T081500Z");
        assert_eq!(vevent.property("DTSTART").unwrap().value, "20260501T130000Z");
        assert_eq!(vevent.property("DTEND").unwrap().value, "20260501T133000Z");
        assert_eq!(vevent.property("SEQUENCE").unwrap().value, "0");
        assert_eq!(vevent.property("STATUS").unwrap().value, "CONFIRMED");
        assert_eq!(vevent.property("URL").unwrap().value, "https://book.example.com/manage/bk_01?token=a;b,c");

        let organizer = vevent.property("ORGANIZER").unwrap();
        assert_eq!(organizer.value, "mailto:host@example.com");
        assert_eq!(organizer.param("CN"), Some("Hana Host"));

        let attendees: Vec<_> = vevent.all("ATTENDEE").collect();
        assert_eq!(attendees.len(), 2);
        for a in &attendees {
            assert_eq!(a.param("ROLE"), Some("REQ-PARTICIPANT"));
            assert_eq!(a.param("PARTSTAT"), Some("NEEDS-ACTION"));
            assert_eq!(a.param("RSVP"), Some("TRUE"));
        }
        assert_eq!(attendees[0].value, "mailto:ana@example.com");
        assert_eq!(attendees[0].param("CN"), Some("Ruiz, Ana"));
        assert!(ics.contains("ATTENDEE;CN=\"Ruiz, Ana\";ROLE="), "a comma needs quotes: {ics}");
        assert_eq!(attendees[1].value, "mailto:bo@example.com");
        assert_eq!(attendees[1].param("CN"), None);

        // And the event model reads the same event back.
        let cal = Calendar::parse(&ics).unwrap();
        assert!(cal.skipped.is_empty(), "{:?}", cal.skipped);
        let e = &cal.events[0];
        assert_eq!(e.uid, "bk_01JTESTBOOKING@kairos");
        assert_eq!(e.summary.as_deref(), Some("Intro call; 30 min, with Ana"));
        assert_eq!(e.description, invitation().description);
        let EventTime::Zoned(start, _) = &e.start else { panic!("{:?}", e.start) };
        assert_eq!(start.timestamp(), ts("2026-05-01T13:00:00Z"));
        let Some(EventEnd::At(EventTime::Zoned(end, _))) = &e.end else { panic!("{:?}", e.end) };
        assert_eq!(end.timestamp(), ts("2026-05-01T13:30:00Z"));
        assert_eq!(e.status, EventStatus::Confirmed);
        assert_eq!(e.sequence, 0);
        assert_eq!(e.organizer.as_deref(), Some("host@example.com"));
        assert_eq!(
            e.attendees,
            vec![
                Attendee {
                    email: "ana@example.com".into(),
                    name: Some("Ruiz, Ana".into()),
                    partstat: "NEEDS-ACTION".into()
                },
                Attendee { email: "bo@example.com".into(), name: None, partstat: "NEEDS-ACTION".into() },
            ]
        );
    }

    #[test]
    fn a_cancel_keeps_the_uid_and_says_cancelled() {
        let now = ts("2026-04-21T08:00:00Z");
        let request = invitation().to_ics(now);
        let cancel = Invitation { method: InviteMethod::Cancel, sequence: 1, ..invitation() }.to_ics(now);
        let (vcal, vevent) = components(&cancel);
        assert_eq!(vcal.property("METHOD").unwrap().value, "CANCEL");
        assert_eq!(vevent.property("STATUS").unwrap().value, "CANCELLED");
        assert_eq!(vevent.property("SEQUENCE").unwrap().value, "1");
        let uid = |ics: &str| Calendar::parse(ics).unwrap().events[0].uid.clone();
        assert_eq!(uid(&cancel), uid(&request));
        let e = &Calendar::parse(&cancel).unwrap().events[0];
        assert_eq!(e.status, EventStatus::Cancelled);
        assert_eq!(e.sequence, 1);
        assert_eq!(e.organizer.as_deref(), Some("host@example.com"));
        assert_eq!(e.attendees.len(), 2);
    }

    #[test]
    fn long_and_hostile_names_are_folded_quoted_and_cannot_add_lines() {
        let long = "Dr. Maximiliane Theodora von Habsburg-Lothringen-Sachsen-Coburg und Gotha, PhD: Ñoño 日本語";
        let inv = Invitation {
            organizer: Person { email: "host@example.com".into(), name: Some("Host \"The Boss\" Person".into()) },
            attendees: vec![
                Person { email: "long@example.com".into(), name: Some(long.into()) },
                Person { email: "evil@example.com\r\nX-EVIL:1".into(), name: Some("Eve\r\nX-EVIL:2;x".into()) },
            ],
            summary: "A summary that is long enough to be folded, with ünïcödé characters — and more text".into(),
            ..invitation()
        };
        let ics = inv.to_ics(ts("2026-04-20T08:15:00Z"));
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "{line:?} is {} octets", line.len());
            assert!(!line.starts_with("X-EVIL"), "{ics}");
        }
        let (_, vevent) = components(&ics);
        assert!(vevent.property("X-EVIL").is_none());
        // A DQUOTE cannot appear inside a parameter value: it is dropped.
        assert_eq!(vevent.property("ORGANIZER").unwrap().param("CN"), Some("Host The Boss Person"));
        let attendees: Vec<_> = vevent.all("ATTENDEE").collect();
        assert_eq!(attendees[0].param("CN"), Some(long));
        assert_eq!(attendees[1].param("CN"), Some("EveX-EVIL:2;x"));
        assert_eq!(attendees[1].value, "mailto:evil@example.comX-EVIL:1");
        let e = &Calendar::parse(&ics).unwrap().events[0];
        assert_eq!(e.summary.as_deref(), Some(inv.summary.as_str()));
        assert_eq!(e.attendees[0].name.as_deref(), Some(long));
    }

    #[test]
    fn later_revisions_keep_the_uid_and_raise_the_sequence() {
        let first = invitation();
        let moved = Invitation {
            sequence: 1,
            start: ts("2026-05-02T13:00:00Z"),
            end: ts("2026-05-02T13:30:00Z"),
            ..invitation()
        };
        let now = ts("2026-04-22T00:00:00Z");
        let a = &Calendar::parse(&first.to_ics(now)).unwrap().events[0].clone();
        let b = &Calendar::parse(&moved.to_ics(now)).unwrap().events[0].clone();
        assert_eq!(a.uid, b.uid);
        assert!(b.sequence > a.sequence);
        assert_eq!(b.status, EventStatus::Confirmed);
    }
}
