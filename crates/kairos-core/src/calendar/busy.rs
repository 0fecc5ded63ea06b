//! Which events make a person busy: opaque, not cancelled, not declined by them; tentative
//! ones by choice; all-day events block their whole days in the person's zone.

use jiff::tz::TimeZone;

use super::event::{Calendar, Event, EventStatus, Instance};
use crate::Interval;

/// How a person's events turn into busy time.
#[derive(Debug, Clone, Copy)]
pub struct BusyRules<'a> {
    /// The person's address: an event they declined does not hold their time.
    pub email: Option<&'a str>,
    /// Whether tentative events (STATUS:TENTATIVE, or their own PARTSTAT=TENTATIVE) hold time.
    pub tentative_is_busy: bool,
}

/// Whether one instance holds the person's time.
pub fn holds_time(instance: &Instance<'_>, rules: &BusyRules<'_>) -> bool {
    let event = instance.event;
    if event.transparent || event.status == EventStatus::Cancelled {
        return false;
    }
    let answer = rules
        .email
        .and_then(|me| event.attendees.iter().find(|a| a.email.eq_ignore_ascii_case(me)))
        .map(|a| a.partstat.as_str());
    match answer {
        Some("DECLINED") => false,
        Some("TENTATIVE") => rules.tentative_is_busy,
        _ => event.status != EventStatus::Tentative || rules.tentative_is_busy,
    }
}

/// The busy intervals of a calendar within `window`, in the person's `zone` (which places
/// all-day and floating events), merged where they overlap or touch, sorted. Empty instances
/// hold no time.
pub fn busy_intervals(calendar: &Calendar, window: Interval, zone: &TimeZone, rules: &BusyRules<'_>) -> Vec<Interval> {
    busy_of(&calendar.events, window, zone, rules)
}

/// [`busy_intervals`] of events held anywhere.
pub fn busy_of<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    window: Interval,
    zone: &TimeZone,
    rules: &BusyRules<'_>,
) -> Vec<Interval> {
    crate::interval::merge(
        super::event::instances_of(events, window, zone)
            .iter()
            .filter(|i| holds_time(i, rules))
            .filter_map(|i| Interval::new(i.start.instant(zone), i.end.instant(zone)).ok())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Interval {
        Interval::new("2027-03-01T00:00:00Z".parse().unwrap(), "2027-03-08T00:00:00Z".parse().unwrap()).unwrap()
    }

    const FEED: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n\
BEGIN:VEVENT\r\nUID:opaque\r\nDTSTART:20270301T100000Z\r\nDTEND:20270301T110000Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:free\r\nDTSTART:20270301T120000Z\r\nDTEND:20270301T130000Z\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:cancelled\r\nDTSTART:20270301T140000Z\r\nDTEND:20270301T150000Z\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:declined\r\nDTSTART:20270302T100000Z\r\nDTEND:20270302T110000Z\r\nATTENDEE;PARTSTAT=DECLINED:mailto:Me@Example.com\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:maybe\r\nDTSTART:20270302T120000Z\r\nDTEND:20270302T130000Z\r\nSTATUS:TENTATIVE\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:holiday\r\nDTSTART;VALUE=DATE:20270304\r\nDTEND;VALUE=DATE:20270305\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn only_opaque_live_accepted_events_hold_time_and_all_day_means_the_local_day() {
        let cal = Calendar::parse(FEED).unwrap();
        let berlin = crate::Zone::parse("Europe/Berlin").unwrap().tz().clone();
        let strict = BusyRules { email: Some("me@example.com"), tentative_is_busy: false };
        let busy = busy_intervals(&cal, window(), &berlin, &strict);
        let shown: Vec<String> = busy.iter().map(|i| format!("{}..{}", i.start(), i.end())).collect();
        assert_eq!(
            shown,
            ["2027-03-01T10:00:00Z..2027-03-01T11:00:00Z", "2027-03-03T23:00:00Z..2027-03-04T23:00:00Z"],
            "the all-day event is Berlin's whole 4 March"
        );
        let lenient = BusyRules { email: Some("me@example.com"), tentative_is_busy: true };
        assert_eq!(busy_intervals(&cal, window(), &berlin, &lenient).len(), 3);
        let someone_else = BusyRules { email: Some("other@example.com"), tentative_is_busy: false };
        assert_eq!(busy_intervals(&cal, window(), &berlin, &someone_else).len(), 3, "declined only for the decliner");
    }
}
