//! A week of slots as a visitor reads it: which week (from a date, never before today), its
//! days in the visitor's zone, each with its free times ("9:00 AM"), and the words around them
//! ("30 minutes", "with Ana and Bo").

use jiff::civil::Date;
use jiff::{Timestamp, Zoned};
use kairos_core::describe::Renderer;
use kairos_core::{Interval, Zone};
use serde::Serialize;

/// The days a page shows.
pub const DAYS: i64 = 7;

/// The week a page shows: `DAYS` days from `first`, as an interval of the visitor's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Week {
    pub first: Date,
    /// From the start of `first` (or now, if later) to the start of the day after the last.
    pub window: Interval,
}

impl Week {
    /// The week starting at `asked` (a `YYYY-MM-DD`), or today when absent, unreadable or past;
    /// days begin at local midnight (or the first moment after it that exists). `None` only
    /// for a date at the end of time.
    pub fn starting(asked: Option<&str>, zone: &Zone, now: Timestamp) -> Option<Week> {
        let today = now.to_zoned(zone.tz().clone()).date();
        let first = asked.and_then(|a| a.parse::<Date>().ok()).filter(|d| *d > today).unwrap_or(today);
        let start = first.to_zoned(zone.tz().clone()).ok()?.timestamp().max(now);
        let end = first.checked_add(jiff::Span::new().days(DAYS)).ok()?.to_zoned(zone.tz().clone()).ok()?.timestamp();
        Some(Week { first, window: Interval::new(start, end).ok()? })
    }

    /// The first day of the week before, unless it would start before today.
    pub fn previous(&self, zone: &Zone, now: Timestamp) -> Option<Date> {
        let today = now.to_zoned(zone.tz().clone()).date();
        (self.first > today).then(|| self.first.checked_sub(jiff::Span::new().days(DAYS)).unwrap_or(today).max(today))
    }

    pub fn next(&self) -> Option<Date> {
        self.first.checked_add(jiff::Span::new().days(DAYS)).ok()
    }

    pub fn days(&self) -> impl Iterator<Item = Date> + '_ {
        (0..DAYS).filter_map(|i| self.first.checked_add(jiff::Span::new().days(i)).ok())
    }

    /// "January 1 – 7, 2030", "January 29 – February 4, 2030", "December 30, 2030 – January 5,
    /// 2031".
    pub fn label(&self) -> String {
        let last = self.first.checked_add(jiff::Span::new().days(DAYS - 1)).unwrap_or(self.first);
        let from = if self.first.year() != last.year() {
            self.first.strftime("%B %-d, %Y").to_string()
        } else {
            self.first.strftime("%B %-d").to_string()
        };
        let to = if self.first.year() == last.year() && self.first.month() == last.month() {
            last.strftime("%-d, %Y").to_string()
        } else {
            last.strftime("%B %-d, %Y").to_string()
        };
        format!("{from} – {to}")
    }
}

/// One day of the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Day {
    /// "Tuesday, January 1".
    pub heading: String,
    pub slots: Vec<SlotLink>,
}

/// One free time, as a link to its booking form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotLink {
    /// "9:00 AM".
    pub label: String,
    /// The whole date and time, for screen readers: "Tuesday, January 1 at 9:00 AM EST".
    pub aria: String,
    pub href: String,
}

/// The week's days, each with the slots that start on it in `zone`. `href` makes a slot's
/// link from its start.
pub fn days(week: &Week, slots: &[Interval], zone: &Zone, href: impl Fn(Timestamp) -> String) -> Vec<Day> {
    let mut days: Vec<(Date, Day)> = week
        .days()
        .map(|date| (date, Day { heading: date.strftime("%A, %B %-d").to_string(), slots: Vec::new() }))
        .collect();
    let mut render = Renderer::new(zone);
    for slot in slots {
        let start = slot.start();
        let local = start.to_zoned(zone.tz().clone());
        if let Some((_, day)) = days.iter_mut().find(|(date, _)| *date == local.date()) {
            day.slots.push(SlotLink { label: clock(&local), aria: render.describe(start), href: href(start) });
        }
    }
    days.into_iter().map(|(_, day)| day).collect()
}

/// "9:00 AM".
pub fn clock(local: &Zoned) -> String {
    local.strftime("%-I:%M %p").to_string()
}

/// "30 minutes", "1 hour", "1 hour 30 minutes".
pub fn duration(minutes: u32) -> String {
    let plural = |n: u32, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (minutes / 60, minutes % 60) {
        (0, m) => plural(m, "minute"),
        (h, 0) => plural(h, "hour"),
        (h, m) => format!("{} {}", plural(h, "hour"), plural(m, "minute")),
    }
}

/// "Ana", "Ana and Bo", "Ana, Bo and Cy", with "1 other person" / "2 other people" for
/// people without a display name (whose emails are never shown). `None` for nobody.
pub fn people(names: &[String], unnamed: usize) -> Option<String> {
    let mut parts: Vec<String> = names.to_vec();
    match unnamed {
        0 => {}
        1 if parts.is_empty() => parts.push("1 person".into()),
        1 => parts.push("1 other person".into()),
        n if parts.is_empty() => parts.push(format!("{n} people")),
        n => parts.push(format!("{n} other people")),
    }
    match parts.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        [init @ .., last] => Some(format!("{} and {last}", init.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> Zone {
        Zone::parse(name).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_week_starts_today_at_the_earliest_and_spans_seven_local_days() {
        let now = ts("2030-01-01T08:00:00Z");
        let ny = zone("America/New_York");
        let week = Week::starting(None, &ny, now).unwrap();
        assert_eq!(week.first, jiff::civil::date(2030, 1, 1));
        assert_eq!(week.window.start(), now, "never before now");
        assert_eq!(week.window.end(), ts("2030-01-08T05:00:00Z"), "midnight in New York");
        assert_eq!(Week::starting(Some("2029-12-01"), &ny, now).unwrap().first, week.first, "the past is today");
        assert_eq!(Week::starting(Some("nonsense"), &ny, now).unwrap().first, week.first);
        assert_eq!(week.previous(&ny, now), None);
        let later = Week::starting(Some("2030-01-04"), &ny, now).unwrap();
        assert_eq!(later.window.start(), ts("2030-01-04T05:00:00Z"));
        assert_eq!(later.previous(&ny, now), Some(week.first), "not before today");
        assert_eq!(later.next(), Some(jiff::civil::date(2030, 1, 11)));
        // In Auckland it is already the evening of January 1.
        assert_eq!(Week::starting(None, &zone("Pacific/Auckland"), now).unwrap().first, jiff::civil::date(2030, 1, 1));
    }

    #[test]
    fn a_week_across_a_dst_change_is_seven_local_days_long() {
        let now = ts("2030-01-01T08:00:00Z");
        let week = Week::starting(Some("2030-03-08"), &zone("America/New_York"), now).unwrap();
        assert_eq!(week.window.start(), ts("2030-03-08T05:00:00Z"));
        assert_eq!(week.window.end(), ts("2030-03-15T04:00:00Z"), "EDT from March 10");
    }

    #[test]
    fn slots_fall_on_their_local_day_with_their_local_time() {
        let now = ts("2030-01-01T08:00:00Z");
        let berlin = zone("Europe/Berlin");
        let week = Week::starting(Some("2030-03-08"), &berlin, now).unwrap();
        let slot = |s: &str| Interval::new(ts(s), ts(s) + jiff::SignedDuration::from_mins(30)).unwrap();
        let slots = [slot("2030-03-08T14:00:00Z"), slot("2030-03-11T13:00:00Z"), slot("2030-03-11T23:30:00Z")];
        let days = days(&week, &slots, &berlin, |t| format!("/b?start={t}"));
        assert_eq!(days.len(), 7);
        assert_eq!(days[0].heading, "Friday, March 8");
        assert_eq!(days[0].slots[0].label, "3:00 PM");
        assert_eq!(days[0].slots[0].href, "/b?start=2030-03-08T14:00:00Z");
        assert_eq!(days[3].slots[0].label, "2:00 PM");
        assert_eq!(days[3].slots[0].aria, "Monday, March 11 at 2:00 PM CET");
        assert_eq!(days[4].slots[0].label, "12:30 AM", "after midnight in Berlin: the next day");
    }

    #[test]
    fn words_for_durations_people_and_weeks() {
        assert_eq!(duration(30), "30 minutes");
        assert_eq!(duration(60), "1 hour");
        assert_eq!(duration(90), "1 hour 30 minutes");
        assert_eq!(duration(121), "2 hours 1 minute");
        assert_eq!(people(&[], 0), None);
        assert_eq!(people(&["Ana".into()], 0).unwrap(), "Ana");
        assert_eq!(people(&["Ana".into(), "Bo".into(), "Cy".into()], 0).unwrap(), "Ana, Bo and Cy");
        assert_eq!(people(&["Ana".into()], 1).unwrap(), "Ana and 1 other person");
        assert_eq!(people(&[], 2).unwrap(), "2 people");
        let now = ts("2030-01-01T08:00:00Z");
        let utc = Zone::utc();
        assert_eq!(Week::starting(None, &utc, now).unwrap().label(), "January 1 – 7, 2030");
        assert_eq!(Week::starting(Some("2030-01-29"), &utc, now).unwrap().label(), "January 29 – February 4, 2030");
        assert_eq!(
            Week::starting(Some("2030-12-30"), &utc, now).unwrap().label(),
            "December 30, 2030 – January 5, 2031"
        );
    }
}
