//! A calendar object resource as a [`RemoteItem`]: its VCALENDAR wrapper removed, its
//! VTIMEZONEs kept, each VEVENT tagged with the resource's href. Tasks, journal entries and
//! other components are not events and are dropped.

use kairos_core::calendar::ical::{escape_text, fold, parse_line, unfold};

use crate::RemoteItem;

/// The property that carries the resource's href inside each VEVENT.
pub const REMOTE_ID: &str = "X-KAIROS-REMOTE-ID";

/// The resource's top-level component a line belongs to: the one under VCALENDAR (or the
/// outermost one, for a resource that forgot its wrapper).
fn object(stack: &[String]) -> Option<(usize, &str)> {
    let at = usize::from(stack.first().is_some_and(|c| c == "VCALENDAR"));
    stack.get(at).map(|c| (at, c.as_str()))
}

fn kept(stack: &[String]) -> bool {
    matches!(object(stack), Some((_, "VEVENT" | "VTIMEZONE")))
}

/// The VEVENTs and VTIMEZONEs of `data` (one resource's `calendar-data`), CRLF-terminated and
/// folded; `None` when it holds no VEVENT.
pub(crate) fn events(href: &str, data: &str) -> Option<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut out = String::with_capacity(data.len() + 64);
    let mut has_event = false;
    for (number, line) in unfold(data) {
        // A line that is not a content line is passed on as it is inside a kept component:
        // the calendar core reports it against its event.
        let Ok(prop) = parse_line(number, &line) else {
            if kept(&stack) {
                out.push_str(&fold(&line));
            }
            continue;
        };
        match prop.name.as_str() {
            "BEGIN" => {
                stack.push(prop.value.trim().to_ascii_uppercase());
                if let Some((at, "VEVENT")) = object(&stack)
                    && at + 1 == stack.len()
                {
                    has_event = true;
                }
                if kept(&stack) {
                    out.push_str(&fold(&line));
                }
            }
            "END" => {
                let name = prop.value.trim().to_ascii_uppercase();
                let Some(depth) = stack.iter().rposition(|c| *c == name) else { continue };
                let closes_event = matches!(object(&stack), Some((at, "VEVENT")) if at == depth);
                if closes_event {
                    out.push_str(&fold(&format!("{REMOTE_ID}:{}", escape_text(href))));
                }
                if kept(&stack[..=depth]) {
                    out.push_str(&fold(&line));
                }
                stack.truncate(depth);
            }
            // Only this adapter says where an event lives.
            name if name == REMOTE_ID && matches!(object(&stack), Some((_, "VEVENT"))) => {}
            _ => {
                if kept(&stack) {
                    out.push_str(&fold(&line));
                }
            }
        }
    }
    has_event.then_some(out)
}

/// The item for one resource, or `None` when it is not an event.
pub(crate) fn item(href: &str, etag: Option<String>, data: &str) -> Option<RemoteItem> {
    Some(RemoteItem { id: href.to_string(), etag, ical: events(href, data)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_core::Interval;
    use kairos_core::calendar::Calendar;

    const SERIES: &str = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Example//EN\nX-WR-CALNAME:Work\n\
BEGIN:VTIMEZONE\nTZID:Europe/Berlin\nBEGIN:STANDARD\nDTSTART:19701025T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\n\
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\nEND:STANDARD\nBEGIN:DAYLIGHT\nDTSTART:19700329T020000\nTZOFFSETFROM:+0100\n\
TZOFFSETTO:+0200\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\nEND:DAYLIGHT\nEND:VTIMEZONE\n\
BEGIN:VEVENT\nUID:standup\nDTSTART;TZID=Europe/Berlin:20270322T090000\nDTEND;TZID=Europe/Berlin:20270322T091500\n\
RRULE:FREQ=DAILY;COUNT=10\nSUMMARY:Standup with a summary long enough that the server folded it over two \n lines\n\
X-KAIROS-REMOTE-ID:/spoofed\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT5M\nEND:VALARM\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:standup\nRECURRENCE-ID;TZID=Europe/Berlin:20270324T090000\n\
DTSTART;TZID=Europe/Berlin:20270324T110000\nDTEND;TZID=Europe/Berlin:20270324T111500\nSUMMARY:Moved\nEND:VEVENT\n\
END:VCALENDAR\n";

    #[test]
    fn a_series_keeps_its_zone_and_exception_and_each_vevent_carries_the_href() {
        let ical = events("/cal/alice/work/standup.ics", SERIES).unwrap();
        assert!(!ical.contains("VCALENDAR") && !ical.contains("PRODID") && !ical.contains("X-WR-CALNAME"), "{ical}");
        assert!(ical.starts_with("BEGIN:VTIMEZONE\r\n"), "{ical}");
        assert_eq!(
            ical.matches("X-KAIROS-REMOTE-ID:/cal/alice/work/standup.ics\r\nEND:VEVENT\r\n").count(),
            2,
            "{ical}"
        );
        assert!(!ical.contains("/spoofed"));
        assert!(ical.contains("END:VALARM\r\nX-KAIROS-REMOTE-ID"), "the tag closes the VEVENT, not its alarm");
        assert!(ical.lines().all(|l| l.trim_end_matches('\r').len() <= 75), "{ical}");

        let cal = Calendar::parse(&format!("BEGIN:VCALENDAR\r\n{ical}END:VCALENDAR\r\n")).unwrap();
        assert!(cal.skipped.is_empty(), "{:?}", cal.skipped);
        let window =
            Interval::new("2027-03-22T00:00:00Z".parse().unwrap(), "2027-03-26T00:00:00Z".parse().unwrap()).unwrap();
        let starts: Vec<String> = cal
            .instances(window, &jiff::tz::TimeZone::UTC)
            .iter()
            .map(|i| i.start.instant(&jiff::tz::TimeZone::UTC).to_string())
            .collect();
        assert_eq!(
            starts,
            ["2027-03-22T08:00:00Z", "2027-03-23T08:00:00Z", "2027-03-24T10:00:00Z", "2027-03-25T08:00:00Z"],
            "Berlin is UTC+1 until 28 March; the 24th was moved to 11:00"
        );
    }

    #[test]
    fn tasks_are_not_events() {
        let todo = "BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:t\r\nSUMMARY:Buy milk\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
        assert_eq!(item("/c/t.ics", None, todo), None);
        let mixed = "BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\nBEGIN:VEVENT\r\nUID:e\r\nDTSTART:20270301T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let item = item("/c/m.ics", Some("\"1\"".into()), mixed).unwrap();
        assert_eq!(
            item.ical,
            "BEGIN:VEVENT\r\nUID:e\r\nDTSTART:20270301T100000Z\r\nX-KAIROS-REMOTE-ID:/c/m.ics\r\nEND:VEVENT\r\n"
        );
        assert_eq!(item.etag.as_deref(), Some("\"1\""));
    }

    #[test]
    fn a_resource_without_its_wrapper_still_yields_its_event() {
        let bare = "BEGIN:VEVENT\nUID:e\nDTSTART;VALUE=DATE:20270301\nEND:VEVENT\n";
        assert_eq!(
            events("/c/e.ics", bare).unwrap(),
            "BEGIN:VEVENT\r\nUID:e\r\nDTSTART;VALUE=DATE:20270301\r\nX-KAIROS-REMOTE-ID:/c/e.ics\r\nEND:VEVENT\r\n"
        );
    }
}
