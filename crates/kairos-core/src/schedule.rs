//! Working schedules: weekly hours and date overrides in an owner's time zone, and their
//! conversion into UTC intervals, one local day at a time, so DST days come out right.
//!
//! A local time that does not exist (inside a spring-forward gap) is resolved as RFC 5545
//! §3.3.5 says: it moves forward by the gap's length (02:30 becomes 03:30 in New York on
//! 2027-03-14); an ambiguous one (a fall-back fold) means its first occurrence. Slots are then
//! generated from the resulting instants, never from wall-clock arithmetic.

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::{Date, Weekday};
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::interval::{self, Interval};
use crate::zone::Zone;

/// A wall-clock time of day in minutes after midnight, `00:00` to `24:00` (the latter only as
/// the end of a range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime(u16);

impl LocalTime {
    pub const MIDNIGHT: LocalTime = LocalTime(0);
    pub const END_OF_DAY: LocalTime = LocalTime(24 * 60);

    /// Parses `HH:MM` (24-hour clock); `24:00` is accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{text}` is not a time of day: use HH:MM on the 24-hour clock, e.g. 09:00 or 17:30 (24:00 for the end of the day)"
            )
        };
        let (h, m) = text.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if m > 59 || h > 24 || (h == 24 && m != 0) {
            return Err(bad());
        }
        Ok(LocalTime(h * 60 + m))
    }

    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// One working range in a day. An `end` at or before `start` means the range runs past
/// midnight into the next day (`22:00`–`02:00`); equal bounds are not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    start: LocalTime,
    end: LocalTime,
}

impl TimeRange {
    pub fn new(start: LocalTime, end: LocalTime) -> Result<Self, String> {
        if start == LocalTime::END_OF_DAY {
            return Err("`start` cannot be 24:00: use 00:00 of the next day".to_string());
        }
        if start == end {
            return Err(format!("the range {start}–{end} is empty: `end` must differ from `start`"));
        }
        Ok(Self { start, end })
    }

    pub fn start(&self) -> LocalTime {
        self.start
    }

    pub fn end(&self) -> LocalTime {
        self.end
    }

    /// True when the range runs into the next day.
    pub fn crosses_midnight(&self) -> bool {
        self.end < self.start
    }
}

impl Serialize for TimeRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("start", &self.start.to_string())?;
        map.serialize_entry("end", &self.end.to_string())?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for TimeRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            start: String,
            end: String,
        }
        let raw = Raw::deserialize(d)?;
        let start = LocalTime::parse(&raw.start).map_err(de::Error::custom)?;
        let end = LocalTime::parse(&raw.end).map_err(de::Error::custom)?;
        TimeRange::new(start, end).map_err(de::Error::custom)
    }
}

const DAY_NAMES: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// Working ranges for each day of the week; a day with no ranges is closed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkingHours {
    /// Indexed Monday (0) to Sunday (6).
    days: [Vec<TimeRange>; 7],
}

impl WorkingHours {
    /// Monday to Friday, 09:00–17:00: the default when none are given.
    pub fn business_days_nine_to_five() -> Self {
        let nine_to_five = TimeRange { start: LocalTime(9 * 60), end: LocalTime(17 * 60) };
        let mut days: [Vec<TimeRange>; 7] = Default::default();
        for day in days.iter_mut().take(5) {
            day.push(nine_to_five);
        }
        Self { days }
    }

    /// Every day, all day.
    pub fn always() -> Self {
        let all = TimeRange { start: LocalTime::MIDNIGHT, end: LocalTime::END_OF_DAY };
        Self { days: std::array::from_fn(|_| vec![all]) }
    }

    /// Sets the ranges of one day.
    pub fn with_day(mut self, day: Weekday, ranges: Vec<TimeRange>) -> Self {
        self.days[day.to_monday_zero_offset() as usize] = ranges;
        self
    }

    pub fn day(&self, day: Weekday) -> &[TimeRange] {
        &self.days[day.to_monday_zero_offset() as usize]
    }
}

impl Serialize for WorkingHours {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(7))?;
        for (name, ranges) in DAY_NAMES.iter().zip(&self.days) {
            map.serialize_entry(name, ranges)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for WorkingHours {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WorkingHours;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object from lowercase day names (monday … sunday) to lists of {\"start\": \"HH:MM\", \"end\": \"HH:MM\"}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WorkingHours, A::Error> {
                let mut hours = WorkingHours::default();
                let mut seen = [false; 7];
                while let Some(key) = map.next_key::<String>()? {
                    let Some(index) = DAY_NAMES.iter().position(|d| *d == key) else {
                        return Err(de::Error::custom(format!(
                            "unknown day `{key}`: use lowercase English day names, monday to sunday"
                        )));
                    };
                    if seen[index] {
                        return Err(de::Error::custom(format!("`{key}` is given twice")));
                    }
                    seen[index] = true;
                    hours.days[index] = map.next_value()?;
                }
                Ok(hours)
            }
        }
        d.deserialize_map(V)
    }
}

/// Days whose hours replace the weekly ones; an empty list closes the day.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DateOverrides(BTreeMap<Date, Vec<TimeRange>>);

impl DateOverrides {
    pub fn insert(&mut self, date: Date, ranges: Vec<TimeRange>) {
        self.0.insert(date, ranges);
    }

    pub fn get(&self, date: Date) -> Option<&[TimeRange]> {
        self.0.get(&date).map(Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Date, &[TimeRange])> {
        self.0.iter().map(|(d, r)| (*d, r.as_slice()))
    }
}

/// A time in a dated override that does not exist on its date: the clocks skip it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub date: Date,
    /// Which range of that date.
    pub index: usize,
    /// `start` or `end`.
    pub field: &'static str,
    pub time: LocalTime,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} does not exist on {} in this time zone (the clocks jump forward then); choose a time outside the gap",
            self.time, self.date
        )
    }
}

impl<'de> Deserialize<'de> for DateOverrides {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DateOverrides;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object from dates (YYYY-MM-DD) to lists of {\"start\", \"end\"} ranges")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DateOverrides, A::Error> {
                let mut out = DateOverrides::default();
                while let Some(key) = map.next_key::<String>()? {
                    let date: Date = parse_date(&key).map_err(de::Error::custom)?;
                    let ranges: Vec<TimeRange> = map.next_value()?;
                    if out.0.insert(date, ranges).is_some() {
                        return Err(de::Error::custom(format!("the date {key} is given twice")));
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// OpenAPI schemas for the hand-written JSON shapes above.
#[cfg(feature = "openapi")]
pub mod doc {
    use std::collections::BTreeMap;

    /// A working range; `end` at or before `start` runs past midnight; `24:00` ends the day.
    #[derive(utoipa::ToSchema)]
    #[schema(as = TimeRange)]
    pub struct TimeRange {
        #[schema(example = "09:00", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
        pub start: String,
        #[schema(example = "17:00", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
        pub end: String,
    }

    /// Weekly hours in the owner's time zone; a missing or empty day is closed.
    #[derive(utoipa::ToSchema)]
    #[schema(as = WorkingHours)]
    pub struct WorkingHours {
        pub monday: Option<Vec<TimeRange>>,
        pub tuesday: Option<Vec<TimeRange>>,
        pub wednesday: Option<Vec<TimeRange>>,
        pub thursday: Option<Vec<TimeRange>>,
        pub friday: Option<Vec<TimeRange>>,
        pub saturday: Option<Vec<TimeRange>>,
        pub sunday: Option<Vec<TimeRange>>,
    }

    /// Dates (`YYYY-MM-DD`) whose hours replace the weekly ones; `[]` closes the day.
    #[derive(utoipa::ToSchema)]
    #[schema(as = DateOverrides)]
    pub struct DateOverrides(pub BTreeMap<String, Vec<TimeRange>>);
}

/// Parses a calendar date written `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    let ok_shape = text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
    match text.parse::<Date>() {
        Ok(date) if ok_shape => Ok(date),
        _ => Err(format!("`{text}` is not a date: write it as YYYY-MM-DD, e.g. 2026-12-24")),
    }
}

/// When someone (or a business) works: weekly hours and overrides, in their own zone. Users
/// and businesses embed one; its fields are theirs on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Schedule {
    /// IANA time zone of the hours.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "America/New_York"))]
    pub timezone: Zone,
    #[cfg_attr(feature = "openapi", schema(value_type = doc::WorkingHours))]
    pub working_hours: WorkingHours,
    #[cfg_attr(feature = "openapi", schema(value_type = doc::DateOverrides))]
    pub date_overrides: DateOverrides,
}

impl Schedule {
    pub fn new(timezone: Zone, working_hours: WorkingHours, date_overrides: DateOverrides) -> Self {
        Self { timezone, working_hours, date_overrides }
    }

    /// The first override time that falls in a spring-forward gap of the zone. Weekly hours
    /// are not checked (a gap comes once or twice a year and the grid simply starts when the
    /// clocks resume), but a dated override names one day, so a time it names that day never
    /// reaches is refused rather than silently shifted.
    pub fn override_gap(&self) -> Option<Gap> {
        let tz = self.timezone.tz();
        for (date, ranges) in self.date_overrides.iter() {
            for (index, range) in ranges.iter().enumerate() {
                let end_day = if range.end <= range.start { date.tomorrow().ok()? } else { date };
                for (field, day, time) in [("start", date, range.start), ("end", end_day, range.end)] {
                    let local =
                        day.to_datetime(jiff::civil::Time::midnight()).checked_add((time.0 as i64).minutes()).ok()?;
                    let in_gap = |t: jiff::civil::DateTime| {
                        matches!(tz.to_ambiguous_timestamp(t).offset(), jiff::tz::AmbiguousOffset::Gap { .. })
                    };
                    // The gap's first moment (02:00 when 02:00 becomes 03:00) is the jump
                    // itself, one unambiguous instant; only times after it are skipped.
                    if in_gap(local) && local.checked_sub(1.second()).is_ok_and(in_gap) {
                        return Some(Gap { date, index, field, time });
                    }
                }
            }
        }
        None
    }

    /// The working time of every local day that touches `span`, as sorted, disjoint UTC
    /// intervals. Intervals are not clipped to `span`: their starts anchor the slot grid.
    pub fn working_intervals(&self, span: Interval) -> Vec<Interval> {
        self.working_intervals_with(span, &mut Clocks::default())
    }

    /// [`Schedule::working_intervals`], sharing what `clocks` learnt of this schedule's zone
    /// from other schedules in it (a search over ten people in one zone looks its transitions
    /// up once, not ten times).
    pub fn working_intervals_with(&self, span: Interval, clocks: &mut Clocks) -> Vec<Interval> {
        let mut to_instant = LocalToInstant { tz: self.timezone.tz(), stretch: clocks.of(&self.timezone) };
        let first = to_instant.date_of(span.start()).yesterday().unwrap_or(jiff::civil::Date::MIN);
        let last = to_instant.date_of(span.end());
        let Some(mut midnight) = naive_midnight(first) else { return Vec::new() };
        let mut out = Vec::new();
        let (mut day, mut weekday) = (first, first.weekday());
        let no_overrides = self.date_overrides.is_empty();
        while day <= last {
            let ranges = if no_overrides { None } else { self.date_overrides.get(day) };
            for range in ranges.unwrap_or_else(|| self.working_hours.day(weekday)) {
                let end_day = if range.end <= range.start { 1 } else { 0 };
                let start = to_instant.at(midnight, day, 0, range.start);
                let end = to_instant.at(midnight, day, end_day, range.end);
                let (Some(start), Some(end)) = (start, end) else { continue };
                if let Ok(iv) = Interval::new(start, end)
                    && iv.overlaps(&span)
                {
                    out.push(iv);
                }
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
            midnight += DAY;
            weekday = weekday.next();
        }
        interval::merge(out)
    }
}

const DAY: i64 = 24 * 3600;

/// Local midnight of `day` read as if it were UTC, in Unix seconds: the zone-free "naive"
/// clock that local times are counted on.
fn naive_midnight(day: Date) -> Option<i64> {
    jiff::tz::Offset::UTC.to_timestamp(day.to_datetime(jiff::civil::Time::midnight())).ok().map(|t| t.as_second())
}

/// What one search has learnt of each zone it converted times in: the stretch of time around
/// the last conversion in which the zone's offset is fixed. A search holds one; schedules in
/// the same zone then share it.
#[derive(Debug, Default)]
pub struct Clocks {
    /// By zone name; a search meets a handful of zones, so a list is the fastest map.
    zones: Vec<(String, Stretch)>,
}

impl Clocks {
    fn of(&mut self, zone: &Zone) -> &mut Stretch {
        let at = match self.zones.iter().position(|(name, _)| name == zone.name()) {
            Some(at) => at,
            None => {
                self.zones.push((zone.name().to_string(), Stretch::default()));
                self.zones.len() - 1
            }
        };
        &mut self.zones[at].1
    }
}

/// A zone's offset in seconds, valid for instants in `[from, until)` (Unix seconds), which
/// lies at least two days inside the stretch between two of its transitions. Empty at first.
#[derive(Debug, Default, Clone, Copy)]
struct Stretch {
    offset: i64,
    from: i64,
    until: i64,
}

/// Local times to instants in one zone, and instants to local dates, fast for runs of nearby
/// times.
///
/// jiff's conversion searches the zone's transitions (and, for future years, evaluates its
/// POSIX rule) on every call. Between two transitions the offset is fixed, so while a time is
/// more than two days from either transition its instant is plain arithmetic — and unique: no
/// offset change in history exceeds 26 hours, so no other reading of that local time can fall
/// inside the stretch. Near a transition, jiff's gap- and fold-aware conversion is used, and
/// the stretch is refreshed around its answer.
struct LocalToInstant<'a> {
    tz: &'a jiff::tz::TimeZone,
    stretch: &'a mut Stretch,
}

const MARGIN: i64 = 2 * DAY;

impl LocalToInstant<'_> {
    /// The instant at which local `time` happens `plus_days` after `day`, whose naive midnight
    /// is `midnight` (`24:00` is the following midnight).
    fn at(&mut self, midnight: i64, day: Date, plus_days: i64, time: LocalTime) -> Option<Timestamp> {
        let naive = midnight + plus_days * DAY + i64::from(time.0) * 60;
        let guess = naive - self.stretch.offset;
        if self.stretch.from <= guess && guess < self.stretch.until {
            return Timestamp::from_second(guess).ok();
        }
        let local = day
            .to_datetime(jiff::civil::Time::midnight())
            .checked_add(((plus_days * 24 * 60) + i64::from(time.0)).minutes())
            .ok()?;
        let exact = self.tz.to_ambiguous_timestamp(local).compatible().ok()?;
        self.learn(exact);
        Some(exact)
    }

    /// The local date at `instant`.
    fn date_of(&mut self, instant: Timestamp) -> Date {
        let second = instant.as_second();
        if !(self.stretch.from <= second && second < self.stretch.until) {
            self.learn(instant);
        }
        match jiff::tz::Offset::from_seconds(self.stretch.offset as i32) {
            Ok(offset) => offset.to_datetime(instant).date(),
            Err(_) => instant.to_zoned(self.tz.clone()).date(),
        }
    }

    /// Refreshes the stretch around `exact`.
    fn learn(&mut self, exact: Timestamp) {
        let offset = i64::from(self.tz.to_offset(exact).seconds());
        // The transition at or before `exact` (jiff's `preceding` is strict: when `exact` is
        // itself a transition, e.g. a time in a gap moved forward onto it, the offset starts
        // there, not at the transition before).
        let probe = exact.checked_add(SignedDuration::from_secs(1)).unwrap_or(exact);
        let before = self.tz.preceding(probe).next().map_or(i64::MIN / 2, |t| t.timestamp().as_second());
        let after = self.tz.following(exact).next().map_or(i64::MAX / 2, |t| t.timestamp().as_second());
        *self.stretch = Stretch { offset, from: before + MARGIN, until: after - MARGIN };
    }
}

/// jiff's full conversion: the reference the fast path is tested against.
#[cfg(test)]
fn instant(tz: &jiff::tz::TimeZone, day: Date, time: LocalTime) -> Option<Timestamp> {
    let midnight = day.to_datetime(jiff::civil::Time::midnight());
    let local = midnight.checked_add((time.0 as i64).minutes()).ok()?;
    tz.to_ambiguous_timestamp(local).compatible().ok()
}

/// Whole minutes as a signed duration.
pub fn minutes(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(a: &str, b: &str) -> Interval {
        Interval::new(a.parse().unwrap(), b.parse().unwrap()).unwrap()
    }

    fn schedule(zone: &str, json: &str) -> Schedule {
        Schedule::new(Zone::parse(zone).unwrap(), serde_json::from_str(json).unwrap(), DateOverrides::default())
    }

    #[test]
    fn local_times_parse_strictly() {
        assert_eq!(LocalTime::parse("09:30").unwrap().minutes(), 570);
        assert_eq!(LocalTime::parse("24:00").unwrap(), LocalTime::END_OF_DAY);
        for bad in ["9:30", "24:01", "12:60", "noon", "12-00", "1200", "+1:00"] {
            assert!(LocalTime::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn working_hours_reject_unknown_days_and_empty_ranges() {
        assert!(serde_json::from_str::<WorkingHours>(r#"{"mon": []}"#).is_err());
        assert!(serde_json::from_str::<WorkingHours>(r#"{"monday": [{"start": "09:00", "end": "09:00"}]}"#).is_err());
        let hours: WorkingHours = serde_json::from_str(r#"{"friday": [{"start": "22:00", "end": "02:00"}]}"#).unwrap();
        assert!(hours.day(Weekday::Friday)[0].crosses_midnight());
    }

    #[test]
    fn a_spring_forward_day_is_an_hour_shorter_in_utc() {
        let s = schedule("America/New_York", r#"{"sunday": [{"start": "00:00", "end": "24:00"}]}"#);
        let got = s.working_intervals(iv("2027-03-14T12:00:00Z", "2027-03-14T13:00:00Z"));
        assert_eq!(got, vec![iv("2027-03-14T05:00:00Z", "2027-03-15T04:00:00Z")]);
        assert_eq!(got[0].duration(), SignedDuration::from_hours(23));
    }

    #[test]
    fn a_range_starting_inside_the_gap_starts_when_the_clock_resumes() {
        let s = schedule("America/New_York", r#"{"sunday": [{"start": "02:30", "end": "04:00"}]}"#);
        let got = s.working_intervals(iv("2027-03-14T00:00:00Z", "2027-03-15T00:00:00Z"));
        // 02:30 does not exist; it is read as 03:30 EDT (07:30Z). 04:00 EDT is 08:00Z.
        assert_eq!(got, vec![iv("2027-03-14T07:30:00Z", "2027-03-14T08:00:00Z")]);
    }

    #[test]
    fn a_range_past_midnight_ends_the_next_day() {
        let s = schedule("Europe/Berlin", r#"{"friday": [{"start": "22:00", "end": "02:00"}]}"#);
        let got = s.working_intervals(iv("2026-05-01T00:00:00Z", "2026-05-03T00:00:00Z"));
        assert_eq!(got, vec![iv("2026-05-01T20:00:00Z", "2026-05-02T00:00:00Z")]);
    }

    #[test]
    fn an_override_replaces_the_weekly_hours_and_an_empty_one_closes_the_day() {
        let mut s = schedule(
            "UTC",
            r#"{"thursday": [{"start": "09:00", "end": "17:00"}], "friday": [{"start": "09:00", "end": "17:00"}]}"#,
        );
        s.date_overrides
            .insert("2026-12-24".parse().unwrap(), vec![TimeRange::new(LocalTime(540), LocalTime(720)).unwrap()]);
        s.date_overrides.insert("2026-12-25".parse().unwrap(), vec![]);
        let got = s.working_intervals(iv("2026-12-24T00:00:00Z", "2026-12-26T00:00:00Z"));
        assert_eq!(got, vec![iv("2026-12-24T09:00:00Z", "2026-12-24T12:00:00Z")]);
    }

    proptest::proptest! {
        #[test]
        fn the_fast_conversion_equals_jiffs_everywhere(
            zone in proptest::sample::select(vec!["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Apia",
                "Asia/Kolkata", "America/Sao_Paulo", "Africa/Casablanca", "Pacific/Chatham", "UTC", "Antarctica/Troll"]),
            start_day in 0i64..40_000,
            times in proptest::collection::vec((0i64..60, 0u16..=1440), 1..60),
        ) {
            let zone = Zone::parse(zone).unwrap();
            let origin: Date = "1960-01-01".parse().unwrap();
            let mut stretch = Stretch::default();
            let mut fast = LocalToInstant { tz: zone.tz(), stretch: &mut stretch };
            // In the order given: correctness must not depend on calls being in time order.
            for (offset, minutes) in times {
                let day = origin.checked_add((start_day + offset).days()).unwrap();
                let time = LocalTime(minutes);
                let got = fast.at(naive_midnight(day).unwrap(), day, 0, time);
                proptest::prop_assert_eq!(got, instant(zone.tz(), day, time), "{} {} {}", zone.name(), day, time);
                // The same local time reached from the day before.
                let yesterday = day.yesterday().unwrap();
                let via = fast.at(naive_midnight(yesterday).unwrap(), yesterday, 1, time);
                proptest::prop_assert_eq!(via, got, "{} {} {} via the day before", zone.name(), day, time);
                // And back: the local date at that instant, and a second before it.
                if let Some(at) = got {
                    for instant in [at, at - SignedDuration::from_secs(1)] {
                        let date = fast.date_of(instant);
                        proptest::prop_assert_eq!(date, instant.to_zoned(zone.tz().clone()).date(), "{} {}", zone.name(), instant);
                    }
                }
            }
        }

        #[test]
        fn schedules_sharing_clocks_get_what_each_gets_alone(
            zones in proptest::collection::vec(proptest::sample::select(vec!["America/New_York", "Europe/Berlin",
                "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]), 1..6),
            start in 1_700_000_000i64..1_900_000_000,
            days in 1i64..40,
        ) {
            let span = Interval::new(Timestamp::from_second(start).unwrap(), Timestamp::from_second(start + days * DAY).unwrap()).unwrap();
            let mut clocks = Clocks::default();
            // Twice over: the second round starts from what the first learnt.
            for zone in zones.iter().chain(zones.iter()) {
                let s = schedule(zone, r#"{"monday":[{"start":"09:00","end":"17:00"}],"friday":[{"start":"22:00","end":"02:30"}],"sunday":[{"start":"01:30","end":"03:30"}]}"#);
                proptest::prop_assert_eq!(s.working_intervals_with(span, &mut clocks), s.working_intervals(span), "{}", zone);
            }
        }
    }

    #[test]
    fn an_override_inside_a_spring_forward_gap_is_found() {
        let mut s = schedule("America/New_York", "{}");
        s.date_overrides
            .insert("2027-03-13".parse().unwrap(), vec![TimeRange::new(LocalTime(150), LocalTime(240)).unwrap()]);
        assert_eq!(s.override_gap(), None, "02:30 exists the day before");
        s.date_overrides.insert(
            "2027-03-14".parse().unwrap(),
            vec![
                TimeRange::new(LocalTime(60), LocalTime(120)).unwrap(),
                TimeRange::new(LocalTime(150), LocalTime(240)).unwrap(),
            ],
        );
        let gap = s.override_gap().unwrap();
        assert_eq!(
            (gap.date.to_string(), gap.index, gap.field, gap.time.to_string()),
            ("2027-03-14".to_string(), 1, "start", "02:30".to_string())
        );
        // Fall-back times exist (twice); they are fine.
        let mut fall = schedule("America/New_York", "{}");
        fall.date_overrides
            .insert("2027-11-07".parse().unwrap(), vec![TimeRange::new(LocalTime(90), LocalTime(120)).unwrap()]);
        assert_eq!(fall.override_gap(), None);
    }

    #[test]
    fn dates_must_be_written_in_full() {
        assert!(parse_date("2026-12-24").is_ok());
        assert!(parse_date("2026-2-4").is_err());
        assert!(parse_date("2026-02-30").is_err());
    }
}
