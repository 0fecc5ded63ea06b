//! Time zones as Graph names them (Windows names such as `Pacific Standard Time`, or IANA names,
//! which Graph also accepts), and Graph's way of writing local times
//! (`2026-03-15T12:00:00.0000000`).
//!
//! The emulator keeps its own small Windows→IANA table (from CLDR's windowsZones.xml, territory
//! `001`) rather than borrowing kairos-core's, so a mistake in one cannot hide the same mistake in
//! the other.

use std::sync::OnceLock;

use jiff::civil::DateTime;
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{Timestamp, Zoned};

/// Windows zone name → IANA zone (CLDR windowsZones.xml, territory 001), for the zones tests use.
const WINDOWS_TO_IANA: &[(&str, &str)] = &[
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("Alaskan Standard Time", "America/Anchorage"),
    ("Arabian Standard Time", "Asia/Dubai"),
    ("Atlantic Standard Time", "America/Halifax"),
    ("Cen. Australia Standard Time", "Australia/Adelaide"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("Central Standard Time", "America/Chicago"),
    ("China Standard Time", "Asia/Shanghai"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("Eastern Standard Time", "America/New_York"),
    ("FLE Standard Time", "Europe/Kiev"),
    ("GMT Standard Time", "Europe/London"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("Hawaiian Standard Time", "Pacific/Honolulu"),
    ("India Standard Time", "Asia/Calcutta"),
    ("Israel Standard Time", "Asia/Jerusalem"),
    ("Korea Standard Time", "Asia/Seoul"),
    ("Mountain Standard Time", "America/Denver"),
    ("New Zealand Standard Time", "Pacific/Auckland"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("SA Pacific Standard Time", "America/Bogota"),
    ("Singapore Standard Time", "Asia/Singapore"),
    ("South Africa Standard Time", "Africa/Johannesburg"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("US Mountain Standard Time", "America/Phoenix"),
    ("UTC", "UTC"),
    ("W. Australia Standard Time", "Australia/Perth"),
    ("W. Europe Standard Time", "Europe/Berlin"),
];

fn database() -> &'static TimeZoneDatabase {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    // The bundled rules, never the host's: every machine expands series the same way.
    DB.get_or_init(TimeZoneDatabase::bundled)
}

/// Resolves a Graph time zone name: a Windows name from the table, else an IANA name.
pub(crate) fn resolve(name: &str) -> Option<TimeZone> {
    let name = name.trim().trim_matches('"');
    if name.eq_ignore_ascii_case("utc") || name.eq_ignore_ascii_case("Coordinated Universal Time") {
        return Some(TimeZone::UTC);
    }
    if let Some((_, iana)) = WINDOWS_TO_IANA.iter().find(|(w, _)| w.eq_ignore_ascii_case(name)) {
        return database().get(iana).ok();
    }
    database().get(name).ok()
}

/// Graph's local date-time format: seven fractional digits, no offset.
pub(crate) fn format_local(dt: DateTime) -> String {
    format!("{}.0000000", dt.strftime("%Y-%m-%dT%H:%M:%S"))
}

/// A UTC instant as Graph writes `DateTimeOffset` properties (`2026-03-15T12:00:00Z`).
pub(crate) fn format_utc(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Reads a Graph `dateTime` (`2026-03-15T12:00:00`, `…12:00:00.0000000`); a trailing `Z` or
/// offset is ignored, as the accompanying `timeZone` names the zone.
pub(crate) fn parse_local(value: &str) -> Option<DateTime> {
    let v = value.trim();
    if let Ok(dt) = v.parse::<DateTime>() {
        return Some(dt);
    }
    // `2026-03-15T12:00:00Z` or with an offset: keep the wall-clock part.
    let cut = v.rfind(['Z', 'z', '+']).or_else(|| v.get(11..).and_then(|t| t.rfind('-')).map(|i| i + 11))?;
    v.get(..cut)?.parse::<DateTime>().ok()
}

/// Reads a query-string instant: RFC 3339 with an offset, or a bare local time taken as UTC.
pub(crate) fn parse_instant(value: &str) -> Option<Timestamp> {
    let v = value.trim();
    if let Ok(t) = v.parse::<Timestamp>() {
        return Some(t);
    }
    // A `+` offset may have become a space when a client forgot to percent-encode it.
    if let Ok(t) = v.replacen(' ', "+", 1).parse::<Timestamp>() {
        return Some(t);
    }
    v.parse::<DateTime>().ok().and_then(|dt| TimeZone::UTC.to_zoned(dt).ok()).map(|z| z.timestamp())
}

/// A wall-clock time in a zone as an instant (a time in a DST gap moves forward, an ambiguous
/// one takes its first occurrence, as Exchange does).
pub(crate) fn to_zoned(dt: DateTime, tz: &TimeZone) -> Option<Zoned> {
    tz.to_ambiguous_zoned(dt).compatible().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_iana_names_resolve_to_the_same_rules() {
        let t: Timestamp = "2026-07-01T12:00:00Z".parse().unwrap();
        let a = t.to_zoned(resolve("Pacific Standard Time").unwrap());
        let b = t.to_zoned(resolve("America/Los_Angeles").unwrap());
        assert_eq!(a.offset(), b.offset());
        assert!(resolve("Mars Standard Time").is_none());
    }

    #[test]
    fn graph_local_times_round_trip() {
        let dt = parse_local("2026-03-15T12:00:00.0000000").unwrap();
        assert_eq!(format_local(dt), "2026-03-15T12:00:00.0000000");
        assert_eq!(parse_local("2026-03-15T12:00:00Z").unwrap(), dt);
        assert_eq!(parse_local("2026-03-15T12:00:00-08:00").unwrap(), dt);
        assert_eq!(parse_instant("2026-03-15T12:00:00").unwrap(), "2026-03-15T12:00:00Z".parse().unwrap());
    }
}
