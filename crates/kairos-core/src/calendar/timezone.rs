//! Time zones as calendars name them. A TZID is resolved, in order, as an IANA name (also
//! when prefixed, as in `/mozilla.org/20050126_1/America/New_York`), as a Windows name
//! (Microsoft Graph and Outlook; CLDR's table), or from the feed's own VTIMEZONE. A known
//! name uses the bundled IANA rules even when a VTIMEZONE is present: a feed's embedded rules
//! are often stale, the IANA database is not.

use std::collections::HashMap;

use jiff::tz::TimeZone;

use super::ical::{Component, parse_utc_offset};
use super::windows_zones::{IANA_TO_WINDOWS, WINDOWS_TO_IANA};

/// The IANA zone a Windows name stands for.
pub fn windows_to_iana(name: &str) -> Option<&'static str> {
    WINDOWS_TO_IANA.binary_search_by(|(w, _)| (*w).cmp(name)).ok().map(|i| WINDOWS_TO_IANA[i].1)
}

/// The Windows name of an IANA zone (what Microsoft Graph wants).
pub fn iana_to_windows(name: &str) -> Option<&'static str> {
    IANA_TO_WINDOWS.binary_search_by(|(i, _)| (*i).cmp(name)).ok().map(|i| IANA_TO_WINDOWS[i].1)
}

/// An IANA zone from the bundled database (never the host's).
fn iana(name: &str) -> Option<TimeZone> {
    crate::Zone::parse(name).ok().map(|z| z.tz().clone())
}

/// The time zones one calendar can name.
#[derive(Debug, Clone, Default)]
pub struct Zones {
    embedded: HashMap<String, TimeZone>,
}

impl Zones {
    /// Reads the VTIMEZONE components of a VCALENDAR. Returns the zones and, for each
    /// VTIMEZONE that cannot be turned into rules, why.
    pub fn from_calendar(calendar: &Component) -> (Self, Vec<String>) {
        let mut zones = Self::default();
        let mut problems = Vec::new();
        for vtz in calendar.components.iter().filter(|c| c.name == "VTIMEZONE") {
            let Some(tzid) = vtz.property("TZID").map(|p| p.value.trim().to_string()) else {
                problems.push(format!("line {}: a VTIMEZONE without TZID", vtz.line));
                continue;
            };
            match embedded_rules(vtz) {
                Ok(tz) => {
                    zones.embedded.insert(tzid, tz);
                }
                Err(why) => problems.push(format!("VTIMEZONE {tzid} (line {}): {why}", vtz.line)),
            }
        }
        (zones, problems)
    }

    /// Resolves a TZID.
    pub fn resolve(&self, tzid: &str) -> Option<TimeZone> {
        let tzid = tzid.trim().trim_matches('"');
        if let Some(tz) = iana(tzid) {
            return Some(tz);
        }
        // Prefixed IANA names: try each '/'-separated suffix with a '/' in it.
        let parts: Vec<&str> = tzid.split('/').filter(|p| !p.is_empty()).collect();
        for start in 1..parts.len().saturating_sub(1) {
            if let Some(tz) = iana(&parts[start..].join("/")) {
                return Some(tz);
            }
        }
        if let Some(tz) = windows_to_iana(tzid).and_then(iana) {
            return Some(tz);
        }
        self.embedded.get(tzid).cloned()
    }
}

/// A VTIMEZONE's current rules as a POSIX TZ string: its latest open-ended STANDARD and
/// DAYLIGHT observances with yearly `BYMONTH`/`BYDAY` rules, or a fixed offset when there is
/// no daylight time. Historical observances are not kept (events of the past rarely matter
/// to availability, and a stale feed's history is the least trustworthy part of it).
fn embedded_rules(vtz: &Component) -> Result<TimeZone, String> {
    struct Observance {
        to: i32,
        start: String,
        rule: Option<(i8, i8, i8)>, // month, week (1..5, 5 = last), weekday (0 = Sunday)
        time: (i8, i8, i8),
        open: bool,
    }
    let read = |c: &Component| -> Result<Observance, String> {
        let to = parse_utc_offset(&c.property("TZOFFSETTO").ok_or("an observance without TZOFFSETTO")?.value)?;
        let start = c.property("DTSTART").ok_or("an observance without DTSTART")?.value.trim().to_string();
        let time = match start.split_once('T') {
            Some((_, t)) if t.len() >= 6 => {
                let n = |r: std::ops::Range<usize>| t[r].parse::<i8>().unwrap_or(0);
                (n(0..2), n(2..4), n(4..6))
            }
            _ => (0, 0, 0),
        };
        // Only an observance with an endless yearly rule is current; one given by DTSTART
        // or RDATEs alone is history.
        let (mut rule, mut open) = (None, false);
        if let Some(rrule) = c.property("RRULE") {
            let mut month = None;
            let mut day = None;
            let mut ended = false;
            for part in rrule.value.split(';') {
                let (k, v) = part.split_once('=').unwrap_or((part, ""));
                match k.to_ascii_uppercase().as_str() {
                    "BYMONTH" => month = v.parse::<i8>().ok(),
                    "BYDAY" => day = parse_ordinal_day(v),
                    "UNTIL" | "COUNT" => ended = true,
                    _ => {}
                }
            }
            open = !ended;
            match (month, day) {
                (Some(m), Some((w, d))) => rule = Some((m, w, d)),
                _ => return Err(format!("the rule `{}` is not a yearly month/weekday rule", rrule.value)),
            }
        }
        Ok(Observance { to, start, rule, time, open })
    };
    let mut standard = Vec::new();
    let mut daylight = Vec::new();
    for c in &vtz.components {
        match c.name.as_str() {
            "STANDARD" => standard.push(read(c)?),
            "DAYLIGHT" => daylight.push(read(c)?),
            _ => {}
        }
    }
    let latest = |list: &mut Vec<Observance>| {
        list.sort_by(|a, b| (a.open, &a.start).cmp(&(b.open, &b.start)));
        list.pop()
    };
    let std = latest(&mut standard).ok_or("no STANDARD observance")?;
    let posix = match latest(&mut daylight).filter(|d| d.open && d.rule.is_some()) {
        Some(dst) if std.rule.is_some() && std.open => {
            let (Some(to_dst), Some(to_std)) = (dst.rule, std.rule) else { unreachable!() };
            format!(
                "{}{}{}{},{},{}",
                name(std.to),
                posix_offset(std.to),
                name(dst.to),
                posix_offset(dst.to),
                transition(to_dst, dst.time),
                transition(to_std, std.time)
            )
        }
        _ => format!("{}{}", name(std.to), posix_offset(std.to)),
    };
    TimeZone::posix(&posix).map_err(|e| format!("its rules did not make a time zone ({e})"))
}

/// `2SU` → (2, 0); `-1SU` → (5, 0) ("last" in POSIX terms).
fn parse_ordinal_day(v: &str) -> Option<(i8, i8)> {
    let v = v.trim();
    if v.len() < 3 {
        return None;
    }
    let (n, day) = v.split_at(v.len() - 2);
    let week: i8 = match n.trim_start_matches('+').parse::<i8>().ok()? {
        -1 => 5,
        w @ 1..=4 => w,
        _ => return None,
    };
    let weekday = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"].iter().position(|d| d.eq_ignore_ascii_case(day))?;
    Some((week, i8::try_from(weekday).ok()?))
}

/// A POSIX zone abbreviation for an offset: `<+0530>`.
fn name(offset: i32) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.abs();
    format!("<{sign}{:02}{:02}>", a / 3600, a % 3600 / 60)
}

/// POSIX offsets count west of Greenwich: UTC-5 is `5`.
fn posix_offset(offset: i32) -> String {
    let west = -offset;
    let sign = if west < 0 { "-" } else { "" };
    let a = west.abs();
    format!("{sign}{}:{:02}:{:02}", a / 3600, a % 3600 / 60, a % 60)
}

fn transition((month, week, weekday): (i8, i8, i8), (h, m, s): (i8, i8, i8)) -> String {
    format!("M{month}.{week}.{weekday}/{h}:{m:02}:{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zoned(tz: &TimeZone, local: &str) -> String {
        let dt: jiff::civil::DateTime = local.parse().unwrap();
        dt.to_zoned(tz.clone()).unwrap().timestamp().to_string()
    }

    #[test]
    fn names_resolve_as_iana_prefixed_iana_and_windows() {
        let zones = Zones::default();
        assert_eq!(zones.resolve("America/New_York").unwrap().iana_name(), Some("America/New_York"));
        assert_eq!(
            zones.resolve("/mozilla.org/20050126_1/America/New_York").unwrap().iana_name(),
            Some("America/New_York")
        );
        assert_eq!(zones.resolve("Eastern Standard Time").unwrap().iana_name(), Some("America/New_York"));
        assert_eq!(zones.resolve("W. Europe Standard Time").unwrap().iana_name(), Some("Europe/Berlin"));
        assert_eq!(iana_to_windows("Europe/Berlin"), Some("W. Europe Standard Time"));
        assert!(zones.resolve("Mars/Olympus_Mons").is_none());
    }

    #[test]
    fn an_embedded_vtimezone_becomes_rules() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Custom Eastern\r\nBEGIN:STANDARD\r\nDTSTART:20071104T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:20070311T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n";
        let cal = crate::calendar::ical::parse(text).unwrap();
        let (zones, problems) = Zones::from_calendar(&cal[0]);
        assert!(problems.is_empty(), "{problems:?}");
        let tz = zones.resolve("Custom Eastern").unwrap();
        let ny = iana("America/New_York").unwrap();
        for local in [
            "2027-03-14T01:30",
            "2027-03-14T03:30",
            "2027-07-01T09:00",
            "2027-11-07T01:30",
            "2027-11-07T02:30",
            "2028-01-15T12:00",
        ] {
            assert_eq!(zoned(&tz, local), zoned(&ny, local), "{local}");
        }
    }

    #[test]
    fn a_vtimezone_without_daylight_time_is_a_fixed_offset() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:India\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0530\r\nTZOFFSETTO:+0530\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n";
        let cal = crate::calendar::ical::parse(text).unwrap();
        let tz = Zones::from_calendar(&cal[0]).0.resolve("India").unwrap();
        assert_eq!(zoned(&tz, "2027-01-01T09:00"), "2027-01-01T03:30:00Z");
    }
}
