//! How instants are shown to people and programs in a chosen zone: RFC 3339 with that zone's
//! offset for that very instant, and plain English such as "Friday, May 1 at 9:00 AM EDT".

use jiff::Timestamp;

use crate::zone::Zone;

/// RFC 3339 in `zone`'s offset at `at` (`Z` for UTC), e.g. `2026-05-01T09:00:00-04:00`.
pub fn rfc3339_in(at: Timestamp, zone: &Zone) -> String {
    if zone.name() == "UTC" {
        return at.to_string();
    }
    at.display_with_offset(zone.tz().to_offset(at)).to_string()
}

/// The zone's abbreviation at `at` ("EDT", "CET", "IST"), or "UTC+05:45" where the database
/// has no letters for it (many zones are abbreviated as bare offsets such as "-03").
pub fn zone_label(at: Timestamp, zone: &Zone) -> String {
    let info = zone.tz().to_offset_info(at);
    let abbreviation = info.abbreviation();
    if abbreviation.is_empty()
        || abbreviation.starts_with(['+', '-'])
        || abbreviation.bytes().any(|b| b.is_ascii_digit())
    {
        let secs = info.offset().seconds();
        let sign = if secs < 0 { '-' } else { '+' };
        let secs = secs.unsigned_abs();
        format!("UTC{sign}{:02}:{:02}", secs / 3600, (secs % 3600) / 60)
    } else {
        abbreviation.to_string()
    }
}

/// Plain English in `zone`: "Friday, May 1 at 9:00 AM EDT".
pub fn describe(at: Timestamp, zone: &Zone) -> String {
    let local = at.to_zoned(zone.tz().clone());
    format!("{} {}", local.strftime("%A, %B %-d at %-I:%M %p"), zone_label(at, zone))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn descriptions_read_as_plain_english_in_the_display_zone() {
        let ny = Zone::parse("America/New_York").unwrap();
        assert_eq!(describe(ts("2026-05-01T13:00:00Z"), &ny), "Friday, May 1 at 9:00 AM EDT");
        assert_eq!(describe(ts("2026-12-01T22:30:00Z"), &ny), "Tuesday, December 1 at 5:30 PM EST");
        assert_eq!(describe(ts("2026-05-01T13:00:00Z"), &Zone::utc()), "Friday, May 1 at 1:00 PM UTC");
    }

    #[test]
    fn half_hour_and_numeric_zones_get_a_readable_label() {
        let kolkata = Zone::parse("Asia/Kolkata").unwrap();
        assert_eq!(describe(ts("2026-05-01T03:30:00Z"), &kolkata), "Friday, May 1 at 9:00 AM IST");
        let kathmandu = Zone::parse("Asia/Kathmandu").unwrap();
        assert_eq!(zone_label(ts("2026-05-01T03:30:00Z"), &kathmandu), "UTC+05:45");
        let sao_paulo = Zone::parse("America/Sao_Paulo").unwrap();
        assert_eq!(zone_label(ts("2026-05-01T03:30:00Z"), &sao_paulo), "UTC-03:00");
    }

    #[test]
    fn local_rfc3339_carries_the_offset_of_that_instant() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(rfc3339_in(ts("2026-07-01T07:00:00Z"), &berlin), "2026-07-01T09:00:00+02:00");
        assert_eq!(rfc3339_in(ts("2026-12-01T08:00:00Z"), &berlin), "2026-12-01T09:00:00+01:00");
        assert_eq!(rfc3339_in(ts("2026-12-01T08:00:00Z"), &Zone::utc()), "2026-12-01T08:00:00Z");
    }
}
