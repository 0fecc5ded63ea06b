//! How instants are shown to people and programs in a chosen zone: RFC 3339 with that zone's
//! offset for that very instant, and plain English such as "Friday, May 1 at 9:00 AM EDT".

use jiff::Timestamp;

use crate::zone::Zone;

/// RFC 3339 in `zone`'s offset at `at` (`Z` for UTC), e.g. `2026-05-01T09:00:00-04:00`.
pub fn rfc3339_in(at: Timestamp, zone: &Zone) -> String {
    Renderer::new(zone).rfc3339(at)
}

/// The zone's abbreviation at `at` ("EDT", "CET", "IST"), or "UTC+05:45" where the database
/// has no letters for it (many zones are abbreviated as bare offsets such as "-03").
pub fn zone_label(at: Timestamp, zone: &Zone) -> String {
    let info = zone.tz().to_offset_info(at);
    label(info.abbreviation(), info.offset().seconds())
}

fn label(abbreviation: &str, offset_seconds: i32) -> String {
    if abbreviation.is_empty()
        || abbreviation.starts_with(['+', '-'])
        || abbreviation.bytes().any(|b| b.is_ascii_digit())
    {
        let sign = if offset_seconds < 0 { '-' } else { '+' };
        let secs = offset_seconds.unsigned_abs();
        format!("UTC{sign}{:02}:{:02}", secs / 3600, (secs % 3600) / 60)
    } else {
        abbreviation.to_string()
    }
}

/// Plain English in `zone`: "Friday, May 1 at 9:00 AM EDT".
pub fn describe(at: Timestamp, zone: &Zone) -> String {
    Renderer::new(zone).describe(at)
}

const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Renders many instants in one zone, writing the text directly rather than through a
/// general `strftime` (a slot search renders every slot twice in RFC 3339 and once in
/// English). Only the offset is looked up per instant; the abbreviation (a costlier lookup)
/// only when the offset differs from the previous instant's.
pub struct Renderer<'a> {
    zone: &'a Zone,
    /// The last offset seen and its label.
    last: Option<(i32, String)>,
}

impl<'a> Renderer<'a> {
    pub fn new(zone: &'a Zone) -> Self {
        Self { zone, last: None }
    }

    fn offset(&mut self, at: Timestamp) -> (i32, &str) {
        let seconds = self.zone.tz().to_offset(at).seconds();
        if !matches!(&self.last, Some((s, _)) if *s == seconds) {
            let info = self.zone.tz().to_offset_info(at);
            self.last = Some((seconds, label(info.abbreviation(), seconds)));
        }
        match &self.last {
            Some((seconds, label)) => (*seconds, label.as_str()),
            None => (0, "UTC"),
        }
    }

    fn local(at: Timestamp, offset: i32) -> jiff::civil::DateTime {
        jiff::tz::Offset::from_seconds(offset).unwrap_or(jiff::tz::Offset::UTC).to_datetime(at)
    }

    /// RFC 3339 with this zone's offset at `at` (`Z` for UTC).
    pub fn rfc3339(&mut self, at: Timestamp) -> String {
        let (offset, _) = self.offset(at);
        let dt = Self::local(at, offset);
        if at.subsec_nanosecond() != 0 || dt.year() < 0 {
            // Rare (slots are whole minutes): let jiff print fractions and negative years.
            let offset = jiff::tz::Offset::from_seconds(offset).unwrap_or(jiff::tz::Offset::UTC);
            return if self.zone.name() == "UTC" { at.to_string() } else { at.display_with_offset(offset).to_string() };
        }
        // `YYYY-MM-DDTHH:MM:SS` in place, then appended at once (pushing byte by byte was a
        // twentieth of a slot search).
        let year = dt.year() as u32;
        let mut text = *b"0000-00-00T00:00:00";
        // jiff's years end at 9999.
        text[..4].copy_from_slice(&four(year));
        for (at, n) in [(5, dt.month()), (8, dt.day()), (11, dt.hour()), (14, dt.minute()), (17, dt.second())] {
            text[at..at + 2].copy_from_slice(&two(n as u32));
        }
        let mut out = String::with_capacity(25);
        out.push_str(std::str::from_utf8(&text).unwrap_or_default());
        if self.zone.name() == "UTC" {
            out.push('Z');
        } else {
            out.push(if offset < 0 { '-' } else { '+' });
            let secs = offset.unsigned_abs();
            digits(&mut out, secs / 3600, 2);
            out.push(':');
            digits(&mut out, (secs % 3600) / 60, 2);
            if secs % 60 != 0 {
                out.push(':');
                digits(&mut out, secs % 60, 2);
            }
        }
        out
    }

    /// "Friday, May 1 at 9:00 AM EDT".
    pub fn describe(&mut self, at: Timestamp) -> String {
        let (offset, label) = self.offset(at);
        let dt = Self::local(at, offset);
        let (hour12, half) = match dt.hour() {
            0 => (12, "AM"),
            h @ 1..=11 => (h, "AM"),
            12 => (12, "PM"),
            h => (h - 12, "PM"),
        };
        let mut out = String::with_capacity(40);
        out.push_str(WEEKDAYS[dt.weekday().to_monday_zero_offset() as usize]);
        out.push_str(", ");
        out.push_str(MONTHS[(dt.month() - 1) as usize]);
        out.push(' ');
        digits(&mut out, dt.day() as u32, 1);
        out.push_str(" at ");
        digits(&mut out, hour12 as u32, 1);
        out.push(':');
        digits(&mut out, dt.minute() as u32, 2);
        out.push(' ');
        out.push_str(half);
        out.push(' ');
        out.push_str(label);
        out
    }
}

/// `n` (below 100) as two ASCII digits.
fn two(n: u32) -> [u8; 2] {
    [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]
}

/// `n` (below 10,000) as four ASCII digits.
fn four(n: u32) -> [u8; 4] {
    let ([a, b], [c, d]) = (two(n / 100), two(n % 100));
    [a, b, c, d]
}

/// Appends `n` in decimal, zero-padded to at least `width` digits. (`format!` with a width
/// costs ~170 ns a number; a search renders hundreds of them.)
fn digits(out: &mut String, n: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(buf.len() - width.min(buf.len()));
    // ASCII digits only, so always valid UTF-8.
    out.push_str(std::str::from_utf8(&buf[start..]).unwrap_or_default());
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
    fn dst_days_name_the_offset_in_force_at_each_instant() {
        let ny = Zone::parse("America/New_York").unwrap();
        // 2027-03-14: 1:30 AM is still EST; an hour later it is 3:30 AM EDT.
        assert_eq!(describe(ts("2027-03-14T06:30:00Z"), &ny), "Sunday, March 14 at 1:30 AM EST");
        assert_eq!(describe(ts("2027-03-14T07:30:00Z"), &ny), "Sunday, March 14 at 3:30 AM EDT");
        // 2027-11-07: 1:30 AM happens twice, first EDT then EST.
        assert_eq!(describe(ts("2027-11-07T05:30:00Z"), &ny), "Sunday, November 7 at 1:30 AM EDT");
        assert_eq!(describe(ts("2027-11-07T06:30:00Z"), &ny), "Sunday, November 7 at 1:30 AM EST");
        let lord_howe = Zone::parse("Australia/Lord_Howe").unwrap();
        // Lord Howe moves by 30 minutes: 2:00 AM standard (+10:30) becomes 2:30 AM (+11:00).
        assert_eq!(rfc3339_in(ts("2027-10-02T15:29:00Z"), &lord_howe), "2027-10-03T01:59:00+10:30");
        assert_eq!(rfc3339_in(ts("2027-10-02T15:30:00Z"), &lord_howe), "2027-10-03T02:30:00+11:00");
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

    /// The hand-written renderer against jiff's own formatting, across transitions in zones
    /// with unusual offsets, every 41 minutes for three years.
    #[test]
    fn the_renderer_matches_jiffs_formatting() {
        for name in [
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
            "America/Sao_Paulo",
            "Europe/Dublin",
            "UTC",
            "Africa/Monrovia",
        ] {
            let zone = Zone::parse(name).unwrap();
            let mut r = Renderer::new(&zone);
            let mut at = ts("2025-01-01T00:00:00Z");
            while at < ts("2028-01-01T00:00:00Z") {
                let local = at.to_zoned(zone.tz().clone());
                let expected_text = format!("{} {}", local.strftime("%A, %B %-d at %-I:%M %p"), zone_label(at, &zone));
                assert_eq!(r.describe(at), expected_text, "{name} {at}");
                let expected_rfc = if name == "UTC" {
                    at.to_string()
                } else {
                    at.display_with_offset(zone.tz().to_offset(at)).to_string()
                };
                assert_eq!(r.rfc3339(at), expected_rfc, "{name} {at}");
                at += jiff::SignedDuration::from_mins(41);
            }
        }
    }

    #[test]
    fn rfc3339_pads_every_field() {
        let utc = Zone::utc();
        assert_eq!(rfc3339_in(ts("0042-03-04T05:06:07Z"), &utc), "0042-03-04T05:06:07Z");
        assert_eq!(rfc3339_in(ts("2026-12-31T23:59:59Z"), &utc), "2026-12-31T23:59:59Z");
        assert_eq!(rfc3339_in(ts("9999-01-02T03:04:05Z"), &utc), "9999-01-02T03:04:05Z");
    }

    #[test]
    fn digits_pad_to_their_width() {
        let mut out = String::new();
        for (n, width) in [(7, 2), (2026, 4), (5, 1), (12, 1), (0, 2), (123, 2)] {
            digits(&mut out, n, width);
            out.push('|');
        }
        assert_eq!(out, "07|2026|5|12|00|123|");
    }

    #[test]
    fn local_rfc3339_carries_the_offset_of_that_instant() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(rfc3339_in(ts("2026-07-01T07:00:00Z"), &berlin), "2026-07-01T09:00:00+02:00");
        assert_eq!(rfc3339_in(ts("2026-12-01T08:00:00Z"), &berlin), "2026-12-01T09:00:00+01:00");
        assert_eq!(rfc3339_in(ts("2026-12-01T08:00:00Z"), &Zone::utc()), "2026-12-01T08:00:00Z");
    }
}
