//! RFC 5545 recurrence rules (`RRULE`, §3.3.10): a parser and a lazy expander over civil
//! (wall-clock) date-times in DTSTART's frame. Pure: no IO, no clock, no time zones — the
//! caller converts UNTIL and the results between zones.
//!
//! Hand-written rather than taken from the `rrule` crate: that crate always iterates from
//! DTSTART under a fixed 100,000-iteration cap (so a daily series started decades ago runs out
//! before reaching today's window), rejects DTSTARTs that are ambiguous around a DST change and
//! is built on chrono. Kairos needs expansion that is lazy, bounded by the window it is asked
//! about (whole periods before the window are skipped arithmetically, not generated), and done
//! on `jiff` civil times.
//!
//! Semantics follow RFC 5545 and, where the RFC is silent, python-dateutil's `rrule` (which the
//! conformance corpus is generated with). The deliberate differences from dateutil are listed
//! on [`RRule::occurrences`].

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::Offset;

/// How often the rule repeats: the length of one period (`FREQ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Frequency {
    Secondly,
    Minutely,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Frequency {
    /// The name as written in an RRULE (`DAILY`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secondly => "SECONDLY",
            Self::Minutely => "MINUTELY",
            Self::Hourly => "HOURLY",
            Self::Daily => "DAILY",
            Self::Weekly => "WEEKLY",
            Self::Monthly => "MONTHLY",
            Self::Yearly => "YEARLY",
        }
    }

    fn is_sub_daily(self) -> bool {
        matches!(self, Self::Secondly | Self::Minutely | Self::Hourly)
    }
}

impl fmt::Display for Frequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed recurrence rule. Build one with [`str::parse`] (which validates it) or
/// [`RRule::new`] plus field updates; [`RRule::validate`] checks a hand-built one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RRule {
    pub freq: Frequency,
    /// At least 1.
    pub interval: u32,
    pub count: Option<u32>,
    pub until: Option<Until>,
    /// 0..=60 (60 is a leap second: accepted, never generated).
    pub by_second: Vec<u8>,
    pub by_minute: Vec<u8>,
    pub by_hour: Vec<u8>,
    /// An optional ordinal (`-1`, `2`, `20`: the nth such weekday of the month or year) and a weekday.
    pub by_day: Vec<(Option<i16>, Weekday)>,
    pub by_month_day: Vec<i8>,
    pub by_year_day: Vec<i16>,
    pub by_week_no: Vec<i8>,
    pub by_month: Vec<u8>,
    pub by_set_pos: Vec<i32>,
    /// WKST, Monday unless the rule says otherwise.
    pub week_start: Weekday,
}

/// UNTIL as written: a date, a floating/local date-time, or a UTC date-time (`Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    Date(Date),
    Local(DateTime),
    Utc(Timestamp),
}

/// Why an RRULE value was rejected. Messages name the rule part and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RRuleError {
    #[error("the RRULE is empty")]
    Empty,
    #[error("RRULE part `{0}` is not NAME=VALUE")]
    MalformedPart(String),
    #[error("the RRULE has no FREQ part")]
    MissingFreq,
    #[error("{0} appears more than once in the RRULE")]
    DuplicatePart(String),
    #[error("unknown RRULE part {0} (only X- extension parts are ignored)")]
    UnknownPart(String),
    #[error("{part} value `{value}` is not valid: expected {expected}")]
    InvalidValue { part: &'static str, value: String, expected: &'static str },
    #[error("{part} value {value} is out of range ({range})")]
    OutOfRange { part: &'static str, value: i64, range: &'static str },
    #[error("COUNT and UNTIL must not both appear in one RRULE")]
    CountAndUntil,
    #[error("{part} must not be used with FREQ={freq}")]
    NotAllowedWithFreq { part: &'static str, freq: Frequency },
    #[error(
        "BYDAY value {value} has an ordinal, which is only allowed with FREQ=MONTHLY or FREQ=YEARLY, not FREQ={freq}"
    )]
    OrdinalNotAllowed { value: String, freq: Frequency },
    #[error("BYDAY value {0} has an ordinal, which must not be combined with BYWEEKNO")]
    OrdinalWithWeekNo(String),
    #[error("BYSETPOS needs another BYxxx rule part to select from")]
    SetPosAlone,
}

const WEEKDAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];
const WEEKDAY_CODES: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

fn weekday_index(wd: Weekday) -> i64 {
    i64::from(wd.to_monday_zero_offset())
}

fn weekday_code(wd: Weekday) -> &'static str {
    WEEKDAY_CODES[wd.to_monday_zero_offset().rem_euclid(7) as usize]
}

fn byday_text((ordinal, wd): (Option<i16>, Weekday)) -> String {
    match ordinal {
        Some(n) => format!("{n}{}", weekday_code(wd)),
        None => weekday_code(wd).to_string(),
    }
}

/// The accepted range of each numeric part: (name, min, max, zero allowed, description).
struct Range {
    part: &'static str,
    min: i64,
    max: i64,
    zero: bool,
    text: &'static str,
}

const R_SECOND: Range = Range { part: "BYSECOND", min: 0, max: 60, zero: true, text: "0..=60" };
const R_MINUTE: Range = Range { part: "BYMINUTE", min: 0, max: 59, zero: true, text: "0..=59" };
const R_HOUR: Range = Range { part: "BYHOUR", min: 0, max: 23, zero: true, text: "0..=23" };
const R_ORDINAL: Range = Range { part: "BYDAY ordinal", min: -53, max: 53, zero: false, text: "-53..=53, not 0" };
const R_MONTH_DAY: Range = Range { part: "BYMONTHDAY", min: -31, max: 31, zero: false, text: "-31..=31, not 0" };
const R_YEAR_DAY: Range = Range { part: "BYYEARDAY", min: -366, max: 366, zero: false, text: "-366..=366, not 0" };
const R_WEEK_NO: Range = Range { part: "BYWEEKNO", min: -53, max: 53, zero: false, text: "-53..=53, not 0" };
const R_MONTH: Range = Range { part: "BYMONTH", min: 1, max: 12, zero: true, text: "1..=12" };
const R_SET_POS: Range = Range { part: "BYSETPOS", min: -366, max: 366, zero: false, text: "-366..=366, not 0" };
const R_INTERVAL: Range = Range { part: "INTERVAL", min: 1, max: u32::MAX as i64, zero: false, text: "1..=4294967295" };
const R_COUNT: Range = Range { part: "COUNT", min: 1, max: u32::MAX as i64, zero: false, text: "1..=4294967295" };

impl Range {
    fn check(&self, value: i64) -> Result<i64, RRuleError> {
        if value < self.min || value > self.max || (value == 0 && !self.zero) {
            return Err(RRuleError::OutOfRange { part: self.part, value, range: self.text });
        }
        Ok(value)
    }

    fn check_all<T: Copy + Into<i64>>(&self, values: &[T]) -> Result<(), RRuleError> {
        values.iter().try_for_each(|&v| self.check(v.into()).map(drop))
    }
}

impl RRule {
    /// A rule of the given frequency with every other part at its default: INTERVAL=1, no
    /// COUNT/UNTIL, no BYxxx parts, WKST=MO.
    pub fn new(freq: Frequency) -> Self {
        Self {
            freq,
            interval: 1,
            count: None,
            until: None,
            by_second: Vec::new(),
            by_minute: Vec::new(),
            by_hour: Vec::new(),
            by_day: Vec::new(),
            by_month_day: Vec::new(),
            by_year_day: Vec::new(),
            by_week_no: Vec::new(),
            by_month: Vec::new(),
            by_set_pos: Vec::new(),
            week_start: Weekday::Monday,
        }
    }

    /// Checks value ranges and the RFC 5545 combination rules: COUNT with UNTIL, BYWEEKNO
    /// outside YEARLY, BYYEARDAY with DAILY/WEEKLY/MONTHLY, BYMONTHDAY with WEEKLY, BYDAY
    /// ordinals outside MONTHLY/YEARLY or with BYWEEKNO, BYSETPOS without another BYxxx part.
    /// [`str::parse`] always runs this.
    pub fn validate(&self) -> Result<(), RRuleError> {
        R_INTERVAL.check(i64::from(self.interval))?;
        if let Some(count) = self.count {
            R_COUNT.check(i64::from(count))?;
        }
        if self.count.is_some() && self.until.is_some() {
            return Err(RRuleError::CountAndUntil);
        }
        R_SECOND.check_all(&self.by_second)?;
        R_MINUTE.check_all(&self.by_minute)?;
        R_HOUR.check_all(&self.by_hour)?;
        for &(ordinal, _) in &self.by_day {
            if let Some(n) = ordinal {
                R_ORDINAL.check(i64::from(n))?;
            }
        }
        R_MONTH_DAY.check_all(&self.by_month_day)?;
        R_YEAR_DAY.check_all(&self.by_year_day)?;
        R_WEEK_NO.check_all(&self.by_week_no)?;
        R_MONTH.check_all(&self.by_month)?;
        R_SET_POS.check_all(&self.by_set_pos)?;

        let freq = self.freq;
        let not_with = |part| Err(RRuleError::NotAllowedWithFreq { part, freq });
        if !self.by_week_no.is_empty() && freq != Frequency::Yearly {
            return not_with("BYWEEKNO");
        }
        if !self.by_year_day.is_empty() && matches!(freq, Frequency::Daily | Frequency::Weekly | Frequency::Monthly) {
            return not_with("BYYEARDAY");
        }
        if !self.by_month_day.is_empty() && freq == Frequency::Weekly {
            return not_with("BYMONTHDAY");
        }
        if let Some(&day) = self.by_day.iter().find(|(ordinal, _)| ordinal.is_some()) {
            if !matches!(freq, Frequency::Monthly | Frequency::Yearly) {
                return Err(RRuleError::OrdinalNotAllowed { value: byday_text(day), freq });
            }
            if !self.by_week_no.is_empty() {
                return Err(RRuleError::OrdinalWithWeekNo(byday_text(day)));
            }
        }
        let other_by = !(self.by_second.is_empty()
            && self.by_minute.is_empty()
            && self.by_hour.is_empty()
            && self.by_day.is_empty()
            && self.by_month_day.is_empty()
            && self.by_year_day.is_empty()
            && self.by_week_no.is_empty()
            && self.by_month.is_empty());
        if !self.by_set_pos.is_empty() && !other_by {
            return Err(RRuleError::SetPosAlone);
        }
        Ok(())
    }

    /// The rule's instances, in order, as civil date-times in DTSTART's frame (the frame the
    /// rule is expanded in: wall-clock time of DTSTART's zone, or floating time).
    ///
    /// **DTSTART is not added.** Only generated instances that match the rule are returned,
    /// as python-dateutil's `rrule` does: DTSTART itself appears only if it matches the rule
    /// (RFC 5545 makes DTSTART the first instance of the recurrence *set*; the recurrence-set
    /// code adds it separately). Instances before DTSTART are never returned, and COUNT counts
    /// only instances at or after DTSTART. A sub-second part of DTSTART is not carried into the
    /// instances (iCalendar has whole seconds).
    ///
    /// * `until_local` is UNTIL already converted into DTSTART's frame by the caller; instances
    ///   after it (civil comparison, inclusive) end the iteration. It applies even when the rule
    ///   has a COUNT.
    /// * `from`: instances before `from` are not returned. Without COUNT, whole periods before
    ///   `from` are skipped arithmetically (the first period is computed, not reached by
    ///   iterating), so the cost is proportional to the window, not to the age of the series.
    ///   With COUNT everything is generated from DTSTART (COUNT counts from there) and only the
    ///   output is filtered.
    ///
    /// Expansion: each period (year, month, WKST-aligned week, day, hour, minute or second,
    /// INTERVAL apart from DTSTART's) is filtered by the BYxxx parts (RFC 5545's "expand" and
    /// "limit" rows amount to keeping the period's days and times that satisfy every part),
    /// then BYSETPOS picks from the period's sorted instances. Dates that do not exist (Feb 30,
    /// the 31st of a 30-day month) are skipped, never clamped.
    ///
    /// Differences from python-dateutil, where dateutil contradicts the RFC:
    /// * plain and ordinal BYDAY values are a union (`BYDAY=MO,1TU`: every Monday and the first
    ///   Tuesday); dateutil requires a day to satisfy both.
    /// * BYWEEKNO numbers every day in its own week-numbering year (week 1 is the first week,
    ///   starting on WKST, with four days in the year; ISO 8601 for WKST=MO), positive and
    ///   negative numbers alike, so a period (calendar year) can include days of week 1 of the
    ///   next year or of the last week of the previous one. dateutil miscounts the previous
    ///   year's weeks for some years (1994-01-01 as "week 53 of 1993") and ignores negative
    ///   numbers of the adjacent week-numbering year.
    /// * a rule that [`RRule::validate`] rejects yields nothing (dateutil ignores BYDAY ordinals
    ///   outside MONTHLY/YEARLY and accepts the other forbidden combinations).
    ///
    /// Like dateutil, the first WEEKLY period starts at DTSTART's day rather than at the start of
    /// its week, which matters only for BYSETPOS.
    ///
    /// Termination: a rule that can never match again (`FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30`)
    /// ends once a full 400-year Gregorian cycle of periods passes without an instance: 400
    /// YEARLY, 4,800 MONTHLY, 20,871 WEEKLY or 146,097 DAILY periods, after which the pattern
    /// would only repeat. Sub-daily rules end after 400 years or 1,000,000 skip steps without an
    /// instance; sub-daily rules whose INTERVAL can never land on the BYHOUR/BYMINUTE/BYSECOND
    /// values (`FREQ=SECONDLY;INTERVAL=2;BYSECOND=1` from an even second), or whose BYSETPOS
    /// values all exceed the instances a period can hold, yield nothing at once.
    /// Iteration also ends at the end of year 9999, jiff's limit.
    pub fn occurrences(&self, dtstart: DateTime, until_local: Option<DateTime>, from: Option<DateTime>) -> Occurrences {
        Occurrences { inner: Expansion::new(self, dtstart, until_local, from).map(Box::new) }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing and formatting
// ---------------------------------------------------------------------------------------------

fn invalid(part: &'static str, value: &str, expected: &'static str) -> RRuleError {
    RRuleError::InvalidValue { part, value: value.to_string(), expected }
}

/// An integer; a sign only where the grammar has one.
fn parse_int(part: &'static str, text: &str, signed: bool) -> Result<i64, RRuleError> {
    let expected = if signed { "an integer" } else { "an unsigned integer" };
    let digits = if signed { text.strip_prefix(['+', '-']).unwrap_or(text) } else { text };
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(part, text, expected));
    }
    text.parse::<i64>().map_err(|_| invalid(part, text, expected))
}

fn parse_list<T>(
    part: &'static str,
    value: &str,
    mut item: impl FnMut(&str) -> Result<T, RRuleError>,
) -> Result<Vec<T>, RRuleError> {
    value
        .split(',')
        .map(|v| {
            let v = v.trim();
            if v.is_empty() { Err(invalid(part, value, "a comma-separated list without empty items")) } else { item(v) }
        })
        .collect()
}

fn parse_numbers<T: TryFrom<i64>>(range: &Range, value: &str, signed: bool) -> Result<Vec<T>, RRuleError> {
    parse_list(range.part, value, |v| {
        let n = range.check(parse_int(range.part, v, signed)?)?;
        T::try_from(n).map_err(|_| RRuleError::OutOfRange { part: range.part, value: n, range: range.text })
    })
}

fn parse_weekday(part: &'static str, text: &str) -> Result<Weekday, RRuleError> {
    WEEKDAY_CODES
        .iter()
        .position(|code| code.eq_ignore_ascii_case(text))
        .map(|i| WEEKDAYS[i])
        .ok_or_else(|| invalid(part, text, "a weekday: MO, TU, WE, TH, FR, SA or SU"))
}

fn parse_byday(text: &str) -> Result<(Option<i16>, Weekday), RRuleError> {
    let expected = "a weekday with an optional ordinal, such as MO, 2TU or -1FR";
    let split = text
        .len()
        .checked_sub(2)
        .filter(|&i| text.is_char_boundary(i))
        .ok_or_else(|| invalid("BYDAY", text, expected))?;
    let (ordinal, code) = text.split_at(split);
    let weekday = parse_weekday("BYDAY", code).map_err(|_| invalid("BYDAY", text, expected))?;
    if ordinal.is_empty() {
        return Ok((None, weekday));
    }
    let n = R_ORDINAL.check(parse_int("BYDAY", ordinal, true).map_err(|_| invalid("BYDAY", text, expected))?)?;
    let n = i16::try_from(n).map_err(|_| invalid("BYDAY", text, expected))?;
    Ok((Some(n), weekday))
}

fn parse_freq(text: &str) -> Result<Frequency, RRuleError> {
    use Frequency::*;
    [Secondly, Minutely, Hourly, Daily, Weekly, Monthly, Yearly]
        .into_iter()
        .find(|f| f.as_str().eq_ignore_ascii_case(text))
        .ok_or_else(|| invalid("FREQ", text, "SECONDLY, MINUTELY, HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY"))
}

fn parse_until(text: &str) -> Result<Until, RRuleError> {
    let expected = "a date YYYYMMDD or a date-time YYYYMMDDTHHMMSS, optionally ending in Z";
    let bad = || invalid("UNTIL", text, expected);
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Result<i64, RRuleError> {
        let digits = bytes.get(range).ok_or_else(bad)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(digits.iter().fold(0, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let date = {
        let (y, m, d) = (number(0..4)?, number(4..6)?, number(6..8)?);
        Date::new(y as i16, m as i8, d as i8).map_err(|_| bad())?
    };
    match bytes.len() {
        8 => Ok(Until::Date(date)),
        15 | 16 if bytes[8].eq_ignore_ascii_case(&b'T') => {
            let (h, mi, s) = (number(9..11)?, number(11..13)?, number(13..15)?);
            let time = jiff::civil::Time::new(h as i8, mi as i8, s as i8, 0).map_err(|_| bad())?;
            let local = date.to_datetime(time);
            match bytes.get(15) {
                None => Ok(Until::Local(local)),
                Some(z) if z.eq_ignore_ascii_case(&b'Z') => {
                    Offset::UTC.to_timestamp(local).map(Until::Utc).map_err(|_| bad())
                }
                Some(_) => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

impl FromStr for RRule {
    type Err = RRuleError;

    /// Parses the value of an RRULE property (`FREQ=WEEKLY;COUNT=10;BYDAY=TU,TH;WKST=SU`):
    /// names and values case-insensitive, parts in any order, empty parts and X- parts ignored,
    /// `RSCALE=GREGORIAN` and `SKIP=OMIT` (RFC 7529, this expander's behaviour) accepted. Then
    /// [`RRule::validate`].
    fn from_str(s: &str) -> Result<Self, RRuleError> {
        if s.trim().is_empty() {
            return Err(RRuleError::Empty);
        }
        let mut freq = None;
        let mut rule = RRule::new(Frequency::Yearly);
        let mut seen: Vec<String> = Vec::new();
        for part in s.split(';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((name, value)) = part.split_once('=') else {
                return Err(RRuleError::MalformedPart(part.to_string()));
            };
            let name = name.trim().to_ascii_uppercase();
            let value = value.trim();
            if name.starts_with("X-") {
                continue;
            }
            if seen.contains(&name) {
                return Err(RRuleError::DuplicatePart(name));
            }
            match name.as_str() {
                "FREQ" => freq = Some(parse_freq(value)?),
                "INTERVAL" => {
                    rule.interval = u32::try_from(R_INTERVAL.check(parse_int("INTERVAL", value, false)?)?)
                        .map_err(|_| invalid("INTERVAL", value, "a positive integer"))?;
                }
                "COUNT" => {
                    rule.count = Some(
                        u32::try_from(R_COUNT.check(parse_int("COUNT", value, false)?)?)
                            .map_err(|_| invalid("COUNT", value, "a positive integer"))?,
                    );
                }
                "UNTIL" => rule.until = Some(parse_until(value)?),
                "BYSECOND" => rule.by_second = parse_numbers(&R_SECOND, value, false)?,
                "BYMINUTE" => rule.by_minute = parse_numbers(&R_MINUTE, value, false)?,
                "BYHOUR" => rule.by_hour = parse_numbers(&R_HOUR, value, false)?,
                "BYDAY" => rule.by_day = parse_list("BYDAY", value, parse_byday)?,
                "BYMONTHDAY" => rule.by_month_day = parse_numbers(&R_MONTH_DAY, value, true)?,
                "BYYEARDAY" => rule.by_year_day = parse_numbers(&R_YEAR_DAY, value, true)?,
                "BYWEEKNO" => rule.by_week_no = parse_numbers(&R_WEEK_NO, value, true)?,
                "BYMONTH" => rule.by_month = parse_numbers(&R_MONTH, value, false)?,
                "BYSETPOS" => rule.by_set_pos = parse_numbers(&R_SET_POS, value, true)?,
                "WKST" => rule.week_start = parse_weekday("WKST", value)?,
                "RSCALE" if value.eq_ignore_ascii_case("GREGORIAN") => {}
                "RSCALE" => return Err(invalid("RSCALE", value, "GREGORIAN (the only calendar supported)")),
                "SKIP" if value.eq_ignore_ascii_case("OMIT") => {}
                "SKIP" => return Err(invalid("SKIP", value, "OMIT (invalid dates are always skipped)")),
                _ => return Err(RRuleError::UnknownPart(name)),
            }
            seen.push(name);
        }
        rule.freq = freq.ok_or(RRuleError::MissingFreq)?;
        rule.validate()?;
        Ok(rule)
    }
}

impl fmt::Display for Until {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = |f: &mut fmt::Formatter<'_>, d: Date| write!(f, "{:04}{:02}{:02}", d.year(), d.month(), d.day());
        let datetime = |f: &mut fmt::Formatter<'_>, dt: DateTime| {
            date(f, dt.date())?;
            write!(f, "T{:02}{:02}{:02}", dt.hour(), dt.minute(), dt.second())
        };
        match *self {
            Until::Date(d) => date(f, d),
            Until::Local(dt) => datetime(f, dt),
            Until::Utc(t) => {
                datetime(f, Offset::UTC.to_datetime(t))?;
                f.write_str("Z")
            }
        }
    }
}

/// The canonical RRULE value: FREQ first, defaults (INTERVAL=1, WKST=MO) left out.
impl fmt::Display for RRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, name: &str, values: &[T]) -> fmt::Result {
            for (i, v) in values.iter().enumerate() {
                write!(f, "{}{v}", if i == 0 { format!(";{name}=") } else { ",".to_string() })?;
            }
            Ok(())
        }
        write!(f, "FREQ={}", self.freq)?;
        if let Some(until) = &self.until {
            write!(f, ";UNTIL={until}")?;
        }
        if let Some(count) = self.count {
            write!(f, ";COUNT={count}")?;
        }
        if self.interval != 1 {
            write!(f, ";INTERVAL={}", self.interval)?;
        }
        list(f, "BYSECOND", &self.by_second)?;
        list(f, "BYMINUTE", &self.by_minute)?;
        list(f, "BYHOUR", &self.by_hour)?;
        let days: Vec<String> = self.by_day.iter().map(|&d| byday_text(d)).collect();
        list(f, "BYDAY", &days)?;
        list(f, "BYMONTHDAY", &self.by_month_day)?;
        list(f, "BYYEARDAY", &self.by_year_day)?;
        list(f, "BYWEEKNO", &self.by_week_no)?;
        list(f, "BYMONTH", &self.by_month)?;
        list(f, "BYSETPOS", &self.by_set_pos)?;
        if self.week_start != Weekday::Monday {
            write!(f, ";WKST={}", weekday_code(self.week_start))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Civil arithmetic on day numbers (days since 1970-01-01, proleptic Gregorian)
// ---------------------------------------------------------------------------------------------

const SECS_PER_DAY: i64 = 86_400;
const MAX_YEAR: i64 = 9999;
/// The last day jiff can represent.
const MAX_DAY: i64 = days_from_civil(MAX_YEAR, 12, 31);
/// Days, months, weeks and years in one Gregorian cycle, after which weekdays and leap years
/// repeat exactly.
const CYCLE_DAYS: i64 = 146_097;
const CYCLE_WEEKS: i64 = 20_871;
const CYCLE_MONTHS: i64 = 4_800;
const CYCLE_YEARS: i64 = 400;
/// Skips (to the next day, hour, minute, second or allowed month) a sub-daily search may make
/// without finding an instance before it gives up.
const SUB_DAILY_STEP_CAP: u64 = 1_000_000;

/// Howard Hinnant's `days_from_civil`.
const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * CYCLE_DAYS + doe - 719_468
}

/// Howard Hinnant's `civil_from_days`: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(CYCLE_DAYS);
    let doe = z - era * CYCLE_DAYS;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Monday = 0 .. Sunday = 6.
fn weekday_of(days: i64) -> i64 {
    (days + 3).rem_euclid(7)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

fn days_in_year(year: i64) -> i64 {
    if is_leap(year) { 366 } else { 365 }
}

fn floor_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b)
}

fn ceil_div(a: i64, b: i64) -> i64 {
    -(-a).div_euclid(b)
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

/// The first day of week 1 of `year` for weeks starting on `week_start`: week 1 is the first
/// week with at least four days in the year (ISO 8601 when the week starts on Monday).
fn first_week_start(year: i64, week_start: i64) -> i64 {
    let jan1 = days_from_civil(year, 1, 1);
    let into_week = (weekday_of(jan1) - week_start).rem_euclid(7);
    if into_week <= 3 { jan1 - into_week } else { jan1 - into_week + 7 }
}

/// The week number of `day` (in calendar year `year`) and the number of weeks in its
/// week-numbering year, which may be the year before or after.
fn week_number(day: i64, year: i64, week_start: i64) -> (i64, i64) {
    let this = first_week_start(year, week_start);
    let (start, end) = if day < this {
        (first_week_start(year - 1, week_start), this)
    } else {
        let next = first_week_start(year + 1, week_start);
        if day >= next { (next, first_week_start(year + 2, week_start)) } else { (this, next) }
    };
    ((day - start) / 7 + 1, (end - start) / 7)
}

/// Seconds since 1970-01-01T00:00:00 of a civil date-time, rounded down, and whether it had
/// a sub-second part.
fn civil_seconds(dt: DateTime) -> (i64, bool) {
    let day = days_from_civil(i64::from(dt.year()), i64::from(dt.month()), i64::from(dt.day()));
    let tod = i64::from(dt.hour()) * 3600 + i64::from(dt.minute()) * 60 + i64::from(dt.second());
    (day * SECS_PER_DAY + tod, dt.subsec_nanosecond() != 0)
}

fn to_datetime(secs: i64) -> Option<DateTime> {
    let (day, tod) = (secs.div_euclid(SECS_PER_DAY), secs.rem_euclid(SECS_PER_DAY));
    let (y, m, d) = civil_from_days(day);
    let (h, mi, s) = (tod / 3600, tod / 60 % 60, tod % 60);
    DateTime::new(i16::try_from(y).ok()?, m as i8, d as i8, h as i8, mi as i8, s as i8, 0).ok()
}

// ---------------------------------------------------------------------------------------------
// The expansion plan: the rule with its defaults filled in, as bit sets
// ---------------------------------------------------------------------------------------------

/// A set of small non-negative integers (0..384).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bits([u64; 6]);

impl Bits {
    fn of(values: impl IntoIterator<Item = i64>) -> Self {
        let mut bits = Self::default();
        values.into_iter().for_each(|v| bits.insert(v));
        bits
    }

    fn insert(&mut self, i: i64) {
        if let Ok(i) = usize::try_from(i)
            && i < 384
        {
            self.0[i / 64] |= 1 << (i % 64);
        }
    }

    fn has(&self, i: i64) -> bool {
        usize::try_from(i).ok().filter(|&i| i < 384).is_some_and(|i| (self.0[i / 64] >> (i % 64)) & 1 == 1)
    }
}

/// Positive and negative (from the end) indexes, 1-based.
#[derive(Debug, Clone, Copy, Default)]
struct Signed {
    from_start: Bits,
    from_end: Bits,
}

impl Signed {
    fn of(values: impl IntoIterator<Item = i64>) -> Self {
        let mut set = Self::default();
        for v in values {
            if v > 0 { set.from_start.insert(v) } else { set.from_end.insert(-v) }
        }
        set
    }

    /// Whether index `i` (1-based) of `len` is in the set, counted from either end.
    fn has(&self, i: i64, len: i64) -> bool {
        self.from_start.has(i) || self.from_end.has(len - i + 1)
    }
}

#[derive(Debug, Clone)]
struct Plan {
    freq: Frequency,
    interval: i64,
    week_start: i64,
    months: Option<Bits>,
    week_nos: Option<Signed>,
    year_days: Option<Signed>,
    month_days: Option<Signed>,
    /// Plain BYDAY weekdays; `Some` whenever BYDAY is in effect (even with ordinals only).
    weekdays: Option<Bits>,
    /// Ordinal BYDAY values: (ordinal, weekday index).
    nth: Vec<(i64, i64)>,
    /// BYHOUR/BYMINUTE/BYSECOND where they limit (sub-daily rules).
    hours: Option<Bits>,
    minutes: Option<Bits>,
    seconds: Option<Bits>,
    /// Where they expand in sub-daily rules: HOURLY's minutes and seconds, MINUTELY's seconds.
    minute_list: Vec<u32>,
    second_list: Vec<u32>,
    /// Seconds of the day of each instance in a day, for DAILY and coarser rules.
    timeset: Vec<u32>,
    set_pos: Vec<i64>,
}

/// DTSTART taken apart.
#[derive(Debug, Clone, Copy)]
struct Start {
    day: i64,
    year: i64,
    month: i64,
    month_day: i64,
    hour: u32,
    minute: u32,
    second: u32,
    /// DTSTART in seconds, rounded up: the earliest instance.
    secs: i64,
}

impl Start {
    fn new(dt: DateTime) -> Self {
        let (secs, fraction) = civil_seconds(dt);
        Self {
            day: secs.div_euclid(SECS_PER_DAY),
            year: i64::from(dt.year()),
            month: i64::from(dt.month()),
            month_day: i64::from(dt.day()),
            hour: dt.hour().unsigned_abs().into(),
            minute: dt.minute().unsigned_abs().into(),
            second: dt.second().unsigned_abs().into(),
            secs: secs + i64::from(fraction),
        }
    }
}

fn sorted_times(values: &[u8], default: u32) -> Vec<u32> {
    if values.is_empty() {
        return vec![default];
    }
    let mut v: Vec<u32> = values.iter().map(|&x| u32::from(x)).filter(|&x| x < 60).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn limit(values: &[u8]) -> Option<Bits> {
    (!values.is_empty()).then(|| Bits::of(values.iter().map(|&v| i64::from(v)).filter(|&v| v < 60)))
}

impl Plan {
    fn new(rule: &RRule, start: &Start) -> Option<Self> {
        rule.validate().ok()?;
        let freq = rule.freq;
        let mut months = limit(&rule.by_month);
        let mut month_days =
            (!rule.by_month_day.is_empty()).then(|| Signed::of(rule.by_month_day.iter().map(|&d| i64::from(d))));
        let mut weekdays = None;
        let mut nth = Vec::new();
        if !rule.by_day.is_empty() {
            let mut plain = Bits::default();
            for &(ordinal, wd) in &rule.by_day {
                match ordinal {
                    Some(n) => nth.push((i64::from(n), weekday_index(wd))),
                    None => plain.insert(weekday_index(wd)),
                }
            }
            weekdays = Some(plain);
        }
        nth.sort_unstable();
        nth.dedup();
        let no_day_parts = rule.by_week_no.is_empty()
            && rule.by_year_day.is_empty()
            && rule.by_month_day.is_empty()
            && rule.by_day.is_empty();
        if no_day_parts {
            match freq {
                Frequency::Yearly => {
                    months = months.or(Some(Bits::of([start.month])));
                    month_days = Some(Signed::of([start.month_day]));
                }
                Frequency::Monthly => month_days = Some(Signed::of([start.month_day])),
                Frequency::Weekly => weekdays = Some(Bits::of([weekday_of(start.day)])),
                _ => {}
            }
        }

        let (mut hours, mut minutes, mut seconds) = (None, None, None);
        let (mut minute_list, mut second_list, mut timeset) = (Vec::new(), Vec::new(), Vec::new());
        match freq {
            Frequency::Hourly => {
                hours = limit(&rule.by_hour);
                minute_list = sorted_times(&rule.by_minute, start.minute);
                second_list = sorted_times(&rule.by_second, start.second);
            }
            Frequency::Minutely => {
                hours = limit(&rule.by_hour);
                minutes = limit(&rule.by_minute);
                second_list = sorted_times(&rule.by_second, start.second);
            }
            Frequency::Secondly => {
                hours = limit(&rule.by_hour);
                minutes = limit(&rule.by_minute);
                seconds = limit(&rule.by_second);
            }
            _ => {
                let hour_list = sorted_times(&rule.by_hour, start.hour);
                minute_list = sorted_times(&rule.by_minute, start.minute);
                second_list = sorted_times(&rule.by_second, start.second);
                for &h in &hour_list {
                    for &m in &minute_list {
                        timeset.extend(second_list.iter().map(|&s| h * 3600 + m * 60 + s));
                    }
                }
                if timeset.is_empty() {
                    return None; // BYSECOND=60 only
                }
            }
        }
        if matches!(freq, Frequency::Hourly | Frequency::Minutely) && second_list.is_empty() {
            return None;
        }
        // BYSETPOS beyond the most instances a period can hold can never select anything.
        let per_period = match freq {
            Frequency::Yearly => 366 * timeset.len(),
            Frequency::Monthly => 31 * timeset.len(),
            Frequency::Weekly => 7 * timeset.len(),
            Frequency::Daily => timeset.len(),
            Frequency::Hourly => minute_list.len() * second_list.len(),
            Frequency::Minutely => second_list.len(),
            Frequency::Secondly => 1,
        };
        if !rule.by_set_pos.is_empty() && rule.by_set_pos.iter().all(|p| p.unsigned_abs() as usize > per_period) {
            return None;
        }
        Some(Self {
            freq,
            interval: i64::from(rule.interval),
            week_start: weekday_index(rule.week_start),
            months,
            week_nos: (!rule.by_week_no.is_empty()).then(|| Signed::of(rule.by_week_no.iter().map(|&w| i64::from(w)))),
            year_days: (!rule.by_year_day.is_empty())
                .then(|| Signed::of(rule.by_year_day.iter().map(|&d| i64::from(d)))),
            month_days,
            weekdays,
            nth,
            hours,
            minutes,
            seconds,
            minute_list,
            second_list,
            timeset,
            set_pos: rule.by_set_pos.iter().map(|&p| i64::from(p)).collect(),
        })
    }

    /// Whether `day` passes every day-level part. `marks` holds the days (as offsets from
    /// `marks_base`) that ordinal BYDAY values select in the current period.
    fn day_passes(&self, day: i64, marks: &Bits, marks_base: i64) -> bool {
        let (year, month, month_day) = civil_from_days(day);
        if self.months.is_some_and(|m| !m.has(month)) {
            return false;
        }
        if let Some(plain) = &self.weekdays
            && !plain.has(weekday_of(day))
            && !marks.has(day - marks_base)
        {
            return false;
        }
        if let Some(days) = &self.month_days
            && !days.has(month_day, days_in_month(year, month))
        {
            return false;
        }
        if let Some(days) = &self.year_days
            && !days.has(day - days_from_civil(year, 1, 1) + 1, days_in_year(year))
        {
            return false;
        }
        if let Some(weeks) = &self.week_nos {
            let (week, weeks_in_year) = week_number(day, year, self.week_start);
            if !weeks.has(week, weeks_in_year) {
                return false;
            }
        }
        true
    }

    /// Marks the days that ordinal BYDAY values select within `first..=last`.
    fn mark_nth(&self, marks: &mut Bits, base: i64, first: i64, last: i64) {
        for &(n, wd) in &self.nth {
            let day = if n > 0 {
                first + (wd - weekday_of(first)).rem_euclid(7) + (n - 1) * 7
            } else {
                last - (weekday_of(last) - wd).rem_euclid(7) + (n + 1) * 7
            };
            if (first..=last).contains(&day) {
                marks.insert(day - base);
            }
        }
    }

    /// The first day after `day` that could pass: the next allowed month's first day when
    /// BYMONTH rules out `day`'s month, else the next day.
    fn next_candidate_day(&self, day: i64) -> i64 {
        let (year, month, _) = civil_from_days(day);
        match self.months {
            Some(months) if !months.has(month) => {
                match (month + 1..=12).find(|&m| months.has(m)) {
                    Some(m) => days_from_civil(year, m, 1),
                    // BYMONTH is never empty, so some month of next year is allowed.
                    None => days_from_civil(year + 1, (1..=12).find(|&m| months.has(m)).unwrap_or(1), 1),
                }
            }
            _ => day + 1,
        }
    }

    /// For sub-daily rules: whether any allowed time of day is on the grid of period starts
    /// (`base + k * step`). If not, the rule never matches.
    fn time_reachable(&self, base: i64, step: i64) -> bool {
        let g = gcd(step, SECS_PER_DAY);
        let residue = base.rem_euclid(g);
        let allowed = |set: &Option<Bits>, v: i64| set.is_none_or(|s| s.has(v));
        for h in (0..24).filter(|&h| allowed(&self.hours, h)) {
            if self.freq == Frequency::Hourly {
                if (h * 3600) % g == residue {
                    return true;
                }
                continue;
            }
            for m in (0..60).filter(|&m| allowed(&self.minutes, m)) {
                if self.freq == Frequency::Minutely {
                    if (h * 3600 + m * 60) % g == residue {
                        return true;
                    }
                    continue;
                }
                if (0..60).any(|s| allowed(&self.seconds, s) && (h * 3600 + m * 60 + s) % g == residue) {
                    return true;
                }
            }
        }
        false
    }
}

// ---------------------------------------------------------------------------------------------
// The iterator
// ---------------------------------------------------------------------------------------------

/// The instances of one period: `days × times` in order, or the BYSETPOS picks from them.
#[derive(Debug, Clone, Default)]
struct Batch {
    days: Vec<i64>,
    /// Sub-daily rules only; coarser rules use the plan's timeset.
    times: Vec<u32>,
    picks: Vec<usize>,
    use_picks: bool,
    total: usize,
    next: usize,
}

impl Batch {
    fn clear(&mut self) {
        self.days.clear();
        self.times.clear();
        self.picks.clear();
        self.use_picks = false;
        self.total = 0;
        self.next = 0;
    }

    /// Applies BYSETPOS; whether the period has any instance.
    fn seal(&mut self, plan: &Plan) -> bool {
        let times = if plan.freq.is_sub_daily() { self.times.len() } else { plan.timeset.len() };
        self.total = self.days.len() * times;
        self.next = 0;
        if self.total == 0 {
            return false;
        }
        if plan.set_pos.is_empty() {
            return true;
        }
        let total = self.total as i64;
        for &pos in &plan.set_pos {
            let index = if pos > 0 { pos - 1 } else { total + pos };
            if let Ok(index) = usize::try_from(index)
                && index < self.total
            {
                self.picks.push(index);
            }
        }
        self.picks.sort_unstable();
        self.picks.dedup();
        self.use_picks = true;
        !self.picks.is_empty()
    }
}

/// The lazy iterator returned by [`RRule::occurrences`].
#[derive(Debug, Clone)]
pub struct Occurrences {
    inner: Option<Box<Expansion>>,
}

impl Iterator for Occurrences {
    type Item = DateTime;

    fn next(&mut self) -> Option<DateTime> {
        let next = self.inner.as_mut()?.next_instance();
        if next.is_none() {
            self.inner = None;
        }
        next
    }
}

impl std::iter::FusedIterator for Occurrences {}

#[derive(Debug, Clone)]
struct Expansion {
    plan: Plan,
    start: Start,
    /// Instances before this (max of DTSTART and `from`, in seconds) are not returned.
    lower: i64,
    until: Option<i64>,
    remaining: Option<u32>,
    /// First day of DTSTART's WKST-aligned week.
    week0: i64,
    /// DTSTART's year * 12 + month - 1.
    month0: i64,
    /// Sub-daily: the start of DTSTART's period and the distance between periods, in seconds.
    base: i64,
    step: i64,
    next_period: i64,
    /// Where the current run of empty periods began, and the skips made in it.
    empty_since: i64,
    empty_steps: u64,
    cap_periods: i64,
    batch: Batch,
    /// Periods generated (tests check that skipping ahead is cheap).
    periods_visited: u64,
}

impl Expansion {
    fn new(rule: &RRule, dtstart: DateTime, until: Option<DateTime>, from: Option<DateTime>) -> Option<Self> {
        let start = Start::new(dtstart);
        let plan = Plan::new(rule, &start)?;
        let n = plan.interval;
        let unit = match plan.freq {
            Frequency::Hourly => 3600,
            Frequency::Minutely => 60,
            _ => 1,
        };
        let (dt_secs, _) = civil_seconds(dtstart);
        let base = floor_div(dt_secs, unit) * unit;
        let step = n.saturating_mul(unit);
        if plan.freq.is_sub_daily() && !plan.time_reachable(base, step) {
            return None;
        }
        let week0 = start.day - (weekday_of(start.day) - plan.week_start).rem_euclid(7);
        let month0 = start.year * 12 + start.month - 1;
        let lower = match from.map(civil_seconds) {
            Some((secs, fraction)) => (secs + i64::from(fraction)).max(start.secs),
            None => start.secs,
        };
        let mut first = 0;
        if rule.count.is_none() && lower > start.secs {
            let day = lower.div_euclid(SECS_PER_DAY);
            let (year, month, _) = civil_from_days(day);
            first = match plan.freq {
                Frequency::Yearly => floor_div(year - start.year, n),
                Frequency::Monthly => floor_div(year * 12 + month - 1 - month0, n),
                Frequency::Weekly => {
                    let week = day - (weekday_of(day) - plan.week_start).rem_euclid(7);
                    floor_div((week - week0) / 7, n)
                }
                Frequency::Daily => floor_div(day - start.day, n),
                _ => floor_div(lower - base, step),
            }
            .max(0);
        }
        let cap_periods = match plan.freq {
            Frequency::Yearly => CYCLE_YEARS,
            Frequency::Monthly => CYCLE_MONTHS,
            Frequency::Weekly => CYCLE_WEEKS,
            Frequency::Daily => CYCLE_DAYS,
            _ => ceil_div(CYCLE_DAYS * SECS_PER_DAY, step),
        };
        Some(Self {
            plan,
            start,
            lower,
            until: until.map(|u| civil_seconds(u).0),
            remaining: rule.count,
            week0,
            month0,
            base,
            step,
            next_period: first,
            empty_since: first,
            empty_steps: 0,
            cap_periods,
            batch: Batch::default(),
            periods_visited: 0,
        })
    }

    fn next_instance(&mut self) -> Option<DateTime> {
        loop {
            if self.remaining == Some(0) {
                return None;
            }
            let Some(secs) = self.batch_next() else {
                if !self.advance() {
                    return None;
                }
                continue;
            };
            if secs < self.start.secs {
                continue;
            }
            if self.until.is_some_and(|u| secs > u) {
                return None;
            }
            if let Some(remaining) = self.remaining.as_mut() {
                *remaining -= 1;
            }
            if secs >= self.lower {
                return to_datetime(secs);
            }
        }
    }

    fn batch_next(&mut self) -> Option<i64> {
        let b = &mut self.batch;
        let index = if b.use_picks {
            *b.picks.get(b.next)?
        } else if b.next < b.total {
            b.next
        } else {
            return None;
        };
        b.next += 1;
        let times = if self.plan.freq.is_sub_daily() { &b.times } else { &self.plan.timeset };
        let (day, time) = (b.days.get(index / times.len())?, times.get(index % times.len())?);
        Some(day * SECS_PER_DAY + i64::from(*time))
    }

    /// Fills the batch with the next period that has instances; false when there is none.
    fn advance(&mut self) -> bool {
        loop {
            let k = self.next_period;
            if k - self.empty_since > self.cap_periods || self.empty_steps > SUB_DAILY_STEP_CAP {
                return false;
            }
            self.next_period = k + 1;
            self.periods_visited += 1;
            self.batch.clear();
            let more = match self.plan.freq {
                Frequency::Yearly => self.yearly(k),
                Frequency::Monthly => self.monthly(k),
                Frequency::Weekly => self.weekly(k),
                Frequency::Daily => self.daily(k),
                _ => self.sub_daily(k),
            };
            if !more {
                return false;
            }
            if self.batch.seal(&self.plan) {
                self.empty_since = self.next_period;
                self.empty_steps = 0;
                return true;
            }
            self.empty_steps += 1;
        }
    }

    /// Whether everything from `secs` on is after UNTIL.
    fn past_until(&self, secs: i64) -> bool {
        self.until.is_some_and(|u| secs > u)
    }

    fn yearly(&mut self, k: i64) -> bool {
        let year = self.start.year.saturating_add(k.saturating_mul(self.plan.interval));
        if year > MAX_YEAR {
            return false;
        }
        let jan1 = days_from_civil(year, 1, 1);
        if self.past_until(jan1 * SECS_PER_DAY) {
            return false;
        }
        let plan = &self.plan;
        let mut marks = Bits::default();
        if !plan.nth.is_empty() {
            match plan.months {
                Some(months) => {
                    for month in (1..=12).filter(|&m| months.has(m)) {
                        let first = days_from_civil(year, month, 1);
                        plan.mark_nth(&mut marks, jan1, first, first + days_in_month(year, month) - 1);
                    }
                }
                None => plan.mark_nth(&mut marks, jan1, jan1, jan1 + days_in_year(year) - 1),
            }
        }
        for month in (1..=12).filter(|&m| plan.months.is_none_or(|months| months.has(m))) {
            let first = days_from_civil(year, month, 1);
            let days = first..first + days_in_month(year, month);
            self.batch.days.extend(days.filter(|&d| plan.day_passes(d, &marks, jan1)));
        }
        true
    }

    fn monthly(&mut self, k: i64) -> bool {
        let index = self.month0.saturating_add(k.saturating_mul(self.plan.interval));
        let (year, month) = (index.div_euclid(12), index.rem_euclid(12) + 1);
        if year > MAX_YEAR {
            return false;
        }
        let first = days_from_civil(year, month, 1);
        if self.past_until(first * SECS_PER_DAY) {
            return false;
        }
        let plan = &self.plan;
        if plan.months.is_some_and(|m| !m.has(month)) {
            return true;
        }
        let last = first + days_in_month(year, month) - 1;
        let mut marks = Bits::default();
        plan.mark_nth(&mut marks, first, first, last);
        self.batch.days.extend((first..=last).filter(|&d| plan.day_passes(d, &marks, first)));
        true
    }

    fn weekly(&mut self, k: i64) -> bool {
        let week = self.week0.saturating_add(k.saturating_mul(self.plan.interval).saturating_mul(7));
        if week > MAX_DAY || self.past_until(week * SECS_PER_DAY) {
            return false;
        }
        // As dateutil does, the first period starts at DTSTART's day.
        let from = if k == 0 { self.start.day } else { week };
        let plan = &self.plan;
        let days = from..(week + 7).min(MAX_DAY + 1);
        self.batch.days.extend(days.filter(|&d| plan.day_passes(d, &Bits::default(), 0)));
        true
    }

    fn daily(&mut self, k: i64) -> bool {
        let n = self.plan.interval;
        let day = self.start.day.saturating_add(k.saturating_mul(n));
        if day > MAX_DAY || self.past_until(day * SECS_PER_DAY) {
            return false;
        }
        if self.plan.months.is_some_and(|m| !m.has(civil_from_days(day).1)) {
            let target = self.plan.next_candidate_day(day);
            self.next_period = self.next_period.max(ceil_div(target - self.start.day, n));
        } else if self.plan.day_passes(day, &Bits::default(), 0) {
            self.batch.days.push(day);
        }
        true
    }

    fn sub_daily(&mut self, k: i64) -> bool {
        let p = self.base.saturating_add(k.saturating_mul(self.step));
        let day = p.div_euclid(SECS_PER_DAY);
        if day > MAX_DAY || self.past_until(p) {
            return false;
        }
        let plan = &self.plan;
        let midnight = day * SECS_PER_DAY;
        let tod = p - midnight;
        let (hour, minute, second) = (tod / 3600, tod / 60 % 60, tod % 60);
        let next_in = |set: &Option<Bits>, now: i64, end: i64| set.and_then(|s| (now + 1..end).find(|&v| s.has(v)));
        let blocked = |set: &Option<Bits>, v: i64| set.is_some_and(|s| !s.has(v));
        let jump_to = if !plan.day_passes(day, &Bits::default(), 0) {
            Some(plan.next_candidate_day(day) * SECS_PER_DAY)
        } else if blocked(&plan.hours, hour) {
            Some(next_in(&plan.hours, hour, 24).map_or(midnight + SECS_PER_DAY, |h| midnight + h * 3600))
        } else if plan.freq != Frequency::Hourly && blocked(&plan.minutes, minute) {
            let hour_start = midnight + hour * 3600;
            Some(next_in(&plan.minutes, minute, 60).map_or(hour_start + 3600, |m| hour_start + m * 60))
        } else if plan.freq == Frequency::Secondly && blocked(&plan.seconds, second) {
            let minute_start = midnight + hour * 3600 + minute * 60;
            Some(next_in(&plan.seconds, second, 60).map_or(minute_start + 60, |s| minute_start + s))
        } else {
            None
        };
        if let Some(target) = jump_to {
            self.next_period = self.next_period.max(ceil_div(target - self.base, self.step));
            return true;
        }
        self.batch.days.push(day);
        let (h, m) = (hour as u32, minute as u32);
        match plan.freq {
            Frequency::Hourly => {
                for &mi in &plan.minute_list {
                    self.batch.times.extend(plan.second_list.iter().map(|&s| h * 3600 + mi * 60 + s));
                }
            }
            Frequency::Minutely => self.batch.times.extend(plan.second_list.iter().map(|&s| h * 3600 + m * 60 + s)),
            _ => self.batch.times.push(tod as u32),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, datetime};
    use proptest::prelude::*;

    fn dt(s: &str) -> DateTime {
        s.parse().unwrap()
    }

    fn rule(s: &str) -> RRule {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// The first `n` instances (or all, if fewer) as ISO strings.
    fn expand(start: &str, r: &str, until: Option<&str>, n: usize) -> Vec<String> {
        rule(r).occurrences(dt(start), until.map(dt), None).take(n).map(|d| d.to_string()).collect()
    }

    /// "1997-09-02" style dates at a fixed time of day.
    fn at(time: &str, dates: &[&str]) -> Vec<String> {
        dates.iter().map(|d| format!("{d}T{time}")).collect()
    }

    /// Dates of one month: `ym` is "1997-09".
    fn days(ym: &str, days: &[u32]) -> Vec<String> {
        days.iter().map(|d| format!("{ym}-{d:02}")).collect()
    }

    fn nine(groups: &[Vec<String>]) -> Vec<String> {
        let all: Vec<&str> = groups.iter().flatten().map(String::as_str).collect();
        at("09:00:00", &all)
    }

    const S: &str = "1997-09-02T09:00:00";

    // ---- RFC 5545 §3.8.5.3 examples (civil times in America/New_York; UNTIL ...Z converted by hand) ----

    #[test]
    fn rfc_daily_for_10_occurrences() {
        let got = expand(S, "FREQ=DAILY;COUNT=10", None, 100);
        assert_eq!(got, nine(&[days("1997-09", &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11])]));
    }

    #[test]
    fn rfc_daily_until_december_24() {
        // UNTIL=19971224T000000Z is 1997-12-23T19:00 EST.
        let got = expand(S, "FREQ=DAILY;UNTIL=19971224T000000Z", Some("1997-12-23T19:00"), 1000);
        assert_eq!(got.len(), 29 + 31 + 30 + 23);
        assert_eq!(got.first().unwrap(), "1997-09-02T09:00:00");
        assert_eq!(got.last().unwrap(), "1997-12-23T09:00:00");
    }

    #[test]
    fn rfc_every_other_day_and_every_10_days() {
        let got = expand(S, "FREQ=DAILY;INTERVAL=2", None, 5);
        assert_eq!(got, nine(&[days("1997-09", &[2, 4, 6, 8, 10])]));
        let got = expand(S, "FREQ=DAILY;INTERVAL=10;COUNT=5", None, 100);
        assert_eq!(got, nine(&[days("1997-09", &[2, 12, 22]), days("1997-10", &[2, 12])]));
    }

    #[test]
    fn rfc_every_day_in_january_for_3_years() {
        let until = Some("2000-01-31T09:00"); // 20000131T140000Z
        let yearly = expand(
            "1998-01-01T09:00",
            "FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA",
            until,
            1000,
        );
        let daily = expand("1998-01-01T09:00", "FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1", until, 1000);
        let all: Vec<u32> = (1..=31).collect();
        let want = nine(&[days("1998-01", &all), days("1999-01", &all), days("2000-01", &all)]);
        assert_eq!(yearly, want);
        assert_eq!(daily, want);
    }

    #[test]
    fn rfc_weekly() {
        let got = expand(S, "FREQ=WEEKLY;COUNT=10", None, 100);
        assert_eq!(
            got,
            nine(&[days("1997-09", &[2, 9, 16, 23, 30]), days("1997-10", &[7, 14, 21, 28]), days("1997-11", &[4])])
        );
        let got = expand(S, "FREQ=WEEKLY;INTERVAL=2;WKST=SU", None, 13);
        let want = nine(&[
            days("1997-09", &[2, 16, 30]),
            days("1997-10", &[14, 28]),
            days("1997-11", &[11, 25]),
            days("1997-12", &[9, 23]),
            days("1998-01", &[6, 20]),
            days("1998-02", &[3, 17]),
        ]);
        assert_eq!(got, want);
        let tu_th = nine(&[days("1997-09", &[2, 4, 9, 11, 16, 18, 23, 25, 30]), days("1997-10", &[2])]);
        // UNTIL=19971007T000000Z is 1997-10-06T20:00 EDT.
        let got = expand(S, "FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH", Some("1997-10-06T20:00"), 100);
        assert_eq!(got, tu_th);
        assert_eq!(expand(S, "FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH", None, 100), tu_th);
        let got = expand(S, "FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH", None, 100);
        assert_eq!(got, nine(&[days("1997-09", &[2, 4, 16, 18, 30]), days("1997-10", &[2, 14, 16])]));
    }

    #[test]
    fn rfc_every_other_week_mo_we_fr_until_december_24() {
        let got = expand(
            "1997-09-01T09:00",
            "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR",
            Some("1997-12-23T19:00"),
            100,
        );
        let want = nine(&[
            days("1997-09", &[1, 3, 5, 15, 17, 19, 29]),
            days("1997-10", &[1, 3, 13, 15, 17, 27, 29, 31]),
            days("1997-11", &[10, 12, 14, 24, 26, 28]),
            days("1997-12", &[8, 10, 12, 22]),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn rfc_monthly_by_day() {
        let got = expand("1997-09-05T09:00", "FREQ=MONTHLY;COUNT=10;BYDAY=1FR", None, 100);
        let want = nine(&[
            days("1997-09", &[5]),
            days("1997-10", &[3]),
            days("1997-11", &[7]),
            days("1997-12", &[5]),
            days("1998-01", &[2]),
            days("1998-02", &[6]),
            days("1998-03", &[6]),
            days("1998-04", &[3]),
            days("1998-05", &[1]),
            days("1998-06", &[5]),
        ]);
        assert_eq!(got, want);
        let got = expand("1997-09-07T09:00", "FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU", None, 100);
        let want = nine(&[
            days("1997-09", &[7, 28]),
            days("1997-11", &[2, 30]),
            days("1998-01", &[4, 25]),
            days("1998-03", &[1, 29]),
            days("1998-05", &[3, 31]),
        ]);
        assert_eq!(got, want);
        let got = expand("1997-09-22T09:00", "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO", None, 100);
        let want = nine(&[
            days("1997-09", &[22]),
            days("1997-10", &[20]),
            days("1997-11", &[17]),
            days("1997-12", &[22]),
            days("1998-01", &[19]),
            days("1998-02", &[16]),
        ]);
        assert_eq!(got, want);
        let got = expand(S, "FREQ=MONTHLY;INTERVAL=2;BYDAY=TU", None, 18);
        let want = nine(&[
            days("1997-09", &[2, 9, 16, 23, 30]),
            days("1997-11", &[4, 11, 18, 25]),
            days("1998-01", &[6, 13, 20, 27]),
            days("1998-03", &[3, 10, 17, 24, 31]),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn rfc_monthly_by_month_day() {
        let got = expand("1997-09-28T09:00", "FREQ=MONTHLY;BYMONTHDAY=-3", None, 6);
        let want = nine(&[
            days("1997-09", &[28]),
            days("1997-10", &[29]),
            days("1997-11", &[28]),
            days("1997-12", &[29]),
            days("1998-01", &[29]),
            days("1998-02", &[26]),
        ]);
        assert_eq!(got, want);
        let got = expand(S, "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15", None, 100);
        let want = nine(&[
            days("1997-09", &[2, 15]),
            days("1997-10", &[2, 15]),
            days("1997-11", &[2, 15]),
            days("1997-12", &[2, 15]),
            days("1998-01", &[2, 15]),
        ]);
        assert_eq!(got, want);
        let got = expand("1997-09-30T09:00", "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1", None, 100);
        let want = nine(&[
            days("1997-09", &[30]),
            days("1997-10", &[1, 31]),
            days("1997-11", &[1, 30]),
            days("1997-12", &[1, 31]),
            days("1998-01", &[1, 31]),
            days("1998-02", &[1]),
        ]);
        assert_eq!(got, want);
        let got =
            expand("1997-09-10T09:00", "FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12,13,14,15", None, 100);
        assert_eq!(got, nine(&[days("1997-09", &[10, 11, 12, 13, 14, 15]), days("1999-03", &[10, 11, 12, 13])]));
    }

    #[test]
    fn rfc_yearly() {
        let got = expand("1997-06-10T09:00", "FREQ=YEARLY;COUNT=10;BYMONTH=6,7", None, 100);
        let want: Vec<String> =
            (1997..=2001).flat_map(|y| [format!("{y}-06-10T09:00:00"), format!("{y}-07-10T09:00:00")]).collect();
        assert_eq!(got, want);
        let got = expand("1997-03-10T09:00", "FREQ=YEARLY;INTERVAL=2;COUNT=10;BYMONTH=1,2,3", None, 100);
        let mut want = vec!["1997-03-10".to_string()];
        for y in [1999, 2001, 2003] {
            want.extend([format!("{y}-01-10"), format!("{y}-02-10"), format!("{y}-03-10")]);
        }
        assert_eq!(got, nine(&[want]));
    }

    #[test]
    fn rfc_every_third_year_on_year_days() {
        let got = expand("1997-01-01T09:00", "FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200", None, 100);
        let want = at(
            "09:00:00",
            &[
                "1997-01-01",
                "1997-04-10",
                "1997-07-19",
                "2000-01-01",
                "2000-04-09",
                "2000-07-18",
                "2003-01-01",
                "2003-04-10",
                "2003-07-19",
                "2006-01-01",
            ],
        );
        assert_eq!(got, want);
    }

    #[test]
    fn rfc_20th_monday_and_week_number_20() {
        let got = expand("1997-05-19T09:00", "FREQ=YEARLY;BYDAY=20MO", None, 3);
        assert_eq!(got, at("09:00:00", &["1997-05-19", "1998-05-18", "1999-05-17"]));
        let got = expand("1997-05-12T09:00", "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO", None, 3);
        assert_eq!(got, at("09:00:00", &["1997-05-12", "1998-05-11", "1999-05-17"]));
    }

    #[test]
    fn rfc_thursdays_in_months() {
        let got = expand("1997-03-13T09:00", "FREQ=YEARLY;BYMONTH=3;BYDAY=TH", None, 11);
        let want = nine(&[
            days("1997-03", &[13, 20, 27]),
            days("1998-03", &[5, 12, 19, 26]),
            days("1999-03", &[4, 11, 18, 25]),
        ]);
        assert_eq!(got, want);
        let got = expand("1997-06-05T09:00", "FREQ=YEARLY;BYDAY=TH;BYMONTH=6,7,8", None, 13);
        let want = nine(&[
            days("1997-06", &[5, 12, 19, 26]),
            days("1997-07", &[3, 10, 17, 24, 31]),
            days("1997-08", &[7, 14, 21, 28]),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn rfc_every_friday_the_13th() {
        // DTSTART (a Tuesday) does not match, so it is not generated (the RFC excludes it with EXDATE).
        let got = expand(S, "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", None, 5);
        assert_eq!(got, at("09:00:00", &["1998-02-13", "1998-03-13", "1998-11-13", "1999-08-13", "2000-10-13"]));
    }

    #[test]
    fn rfc_first_saturday_after_first_sunday() {
        let got = expand("1997-09-13T09:00", "FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13", None, 10);
        let want = at(
            "09:00:00",
            &[
                "1997-09-13",
                "1997-10-11",
                "1997-11-08",
                "1997-12-13",
                "1998-01-10",
                "1998-02-07",
                "1998-03-07",
                "1998-04-11",
                "1998-05-09",
                "1998-06-13",
            ],
        );
        assert_eq!(got, want);
    }

    #[test]
    fn rfc_us_presidential_election_day() {
        let got =
            expand("1996-11-05T09:00", "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8", None, 3);
        assert_eq!(got, at("09:00:00", &["1996-11-05", "2000-11-07", "2004-11-02"]));
    }

    #[test]
    fn rfc_by_set_pos() {
        let got = expand("1997-09-04T09:00", "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3", None, 100);
        assert_eq!(got, at("09:00:00", &["1997-09-04", "1997-10-07", "1997-11-06"]));
        let got = expand("1997-09-29T09:00", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2", None, 7);
        let want = at(
            "09:00:00",
            &["1997-09-29", "1997-10-30", "1997-11-27", "1997-12-30", "1998-01-29", "1998-02-26", "1998-03-30"],
        );
        assert_eq!(got, want);
    }

    #[test]
    fn rfc_sub_daily() {
        // Erratum 3883: UNTIL=19970902T210000Z is 17:00 EDT; as printed (170000Z) it is 13:00 EDT.
        let got = expand(S, "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T210000Z", Some("1997-09-02T17:00"), 100);
        assert_eq!(got, ["1997-09-02T09:00:00", "1997-09-02T12:00:00", "1997-09-02T15:00:00"]);
        let got = expand(S, "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T170000Z", Some("1997-09-02T13:00"), 100);
        assert_eq!(got, ["1997-09-02T09:00:00", "1997-09-02T12:00:00"]);
        let got = expand(S, "FREQ=MINUTELY;INTERVAL=15;COUNT=6", None, 100);
        let times = ["09:00", "09:15", "09:30", "09:45", "10:00", "10:15"];
        assert_eq!(got, times.map(|t| format!("1997-09-02T{t}:00")));
        let got = expand(S, "FREQ=MINUTELY;INTERVAL=90;COUNT=4", None, 100);
        let times = ["09:00", "10:30", "12:00", "13:30"];
        assert_eq!(got, times.map(|t| format!("1997-09-02T{t}:00")));
    }

    #[test]
    fn rfc_every_20_minutes_from_9_to_16_40() {
        let mut want = Vec::new();
        for day in ["1997-09-02", "1997-09-03"] {
            for h in 9..=16 {
                for m in [0, 20, 40] {
                    want.push(format!("{day}T{h:02}:{m:02}:00"));
                }
            }
        }
        assert_eq!(expand(S, "FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40", None, 48), want);
        assert_eq!(expand(S, "FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16", None, 48), want);
    }

    #[test]
    fn rfc_wkst_makes_a_difference() {
        let got = expand("1997-08-05T09:00", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO", None, 100);
        assert_eq!(got, nine(&[days("1997-08", &[5, 10, 19, 24])]));
        let got = expand("1997-08-05T09:00", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU", None, 100);
        assert_eq!(got, nine(&[days("1997-08", &[5, 17, 19, 31])]));
    }

    #[test]
    fn rfc_invalid_date_is_ignored() {
        let got = expand("2007-01-15T09:00", "FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5", None, 100);
        assert_eq!(got, nine(&[days("2007-01", &[15, 30]), days("2007-02", &[15]), days("2007-03", &[15, 30])]));
    }

    // ---- Other behaviour ----

    #[test]
    fn invalid_dates_are_skipped_not_clamped() {
        let got = expand("2027-01-31T15:00", "FREQ=MONTHLY;COUNT=4", None, 100);
        assert_eq!(got, at("15:00:00", &["2027-01-31", "2027-03-31", "2027-05-31", "2027-07-31"]));
        let got = expand("2024-02-29T12:00", "FREQ=YEARLY", None, 3);
        assert_eq!(got, at("12:00:00", &["2024-02-29", "2028-02-29", "2032-02-29"]));
        let got = expand("2027-01-01T10:00", "FREQ=MONTHLY;BYMONTHDAY=-31;COUNT=3", None, 100);
        assert_eq!(got, at("10:00:00", &["2027-01-01", "2027-03-01", "2027-05-01"]));
        let got = expand("2027-01-01T10:00", "FREQ=YEARLY;BYYEARDAY=-1,366;COUNT=3", None, 100);
        assert_eq!(got, at("10:00:00", &["2027-12-31", "2028-12-31", "2029-12-31"]));
    }

    #[test]
    fn dtstart_not_matching_is_not_returned_and_count_starts_at_dtstart() {
        // DTSTART Tuesday 09:30; the rule wants Mondays at 09:00.
        let got = expand("2027-06-01T09:30", "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;COUNT=2", None, 100);
        assert_eq!(got, at("09:00:00", &["2027-06-07", "2027-06-14"]));
        // Instances earlier in DTSTART's own period are neither returned nor counted.
        let got = expand("2027-06-15T12:00", "FREQ=MONTHLY;BYMONTHDAY=1,15,20;COUNT=3", None, 100);
        assert_eq!(got, at("12:00:00", &["2027-06-15", "2027-06-20", "2027-07-01"]));
        let got = expand("2027-06-01T09:15", "FREQ=HOURLY;BYMINUTE=0,30;COUNT=3", None, 100);
        assert_eq!(got, ["2027-06-01T09:30:00", "2027-06-01T10:00:00", "2027-06-01T10:30:00"]);
    }

    #[test]
    fn sub_daily_periods_run_across_days() {
        let got = expand("2027-06-01T09:00", "FREQ=HOURLY;INTERVAL=5;COUNT=5", None, 100);
        let want = [
            "2027-06-01T09:00:00",
            "2027-06-01T14:00:00",
            "2027-06-01T19:00:00",
            "2027-06-02T00:00:00",
            "2027-06-02T05:00:00",
        ];
        assert_eq!(got, want);
        let got = expand("2027-06-01T23:59:50", "FREQ=SECONDLY;INTERVAL=7;COUNT=3", None, 100);
        assert_eq!(got, ["2027-06-01T23:59:50", "2027-06-01T23:59:57", "2027-06-02T00:00:04"]);
        let got = expand("2027-03-01T12:00", "FREQ=SECONDLY;BYSECOND=0,30;BYMINUTE=0,1;COUNT=5", None, 100);
        let want = ["12:00:00", "12:00:30", "12:01:00", "12:01:30", "13:00:00"].map(|t| format!("2027-03-01T{t}"));
        assert_eq!(got, want);
        let got = expand("2027-01-01T00:00", "FREQ=HOURLY;INTERVAL=12;BYYEARDAY=1,-1", None, 4);
        let want = ["2027-01-01T00:00:00", "2027-01-01T12:00:00", "2027-12-31T00:00:00", "2027-12-31T12:00:00"];
        assert_eq!(got, want);
        let got = expand("2027-06-01T08:00:50", "FREQ=MINUTELY;BYSECOND=10,20,50;BYSETPOS=-1;COUNT=3", None, 100);
        assert_eq!(got, ["2027-06-01T08:00:50", "2027-06-01T08:01:50", "2027-06-01T08:02:50"]);
    }

    #[test]
    fn set_pos_in_daily_and_yearly() {
        let got =
            expand("2027-05-03T08:00", "FREQ=DAILY;BYHOUR=8,10,12,14;BYMINUTE=0,30;BYSETPOS=2,-2;COUNT=4", None, 100);
        assert_eq!(got, ["2027-05-03T08:30:00", "2027-05-03T14:00:00", "2027-05-04T08:30:00", "2027-05-04T14:00:00"]);
        // Last weekday of the year.
        let got =
            expand("2027-12-31T09:00", "FREQ=YEARLY;BYMONTH=12;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=3", None, 100);
        assert_eq!(got, at("09:00:00", &["2027-12-31", "2028-12-29", "2029-12-31"]));
    }

    #[test]
    fn first_weekly_period_starts_at_dtstart_for_set_pos_like_dateutil() {
        // DTSTART Wednesday: the first week is Wed..Sun, so BYSETPOS=1 picks Wednesday.
        let got = expand("2027-06-02T09:00", "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYSETPOS=1;COUNT=3", None, 100);
        assert_eq!(got, at("09:00:00", &["2027-06-02", "2027-06-07", "2027-06-14"]));
    }

    #[test]
    fn plain_and_ordinal_by_day_are_a_union() {
        let got = expand("2027-06-01T09:00", "FREQ=MONTHLY;BYDAY=MO,1TU;COUNT=4", None, 100);
        assert_eq!(got, at("09:00:00", &["2027-06-01", "2027-06-07", "2027-06-14", "2027-06-21"]));
    }

    #[test]
    fn yearly_ordinals_relative_to_year_or_month() {
        let got = expand("2027-01-04T09:00", "FREQ=YEARLY;BYDAY=1MO,-1MO;COUNT=4", None, 100);
        assert_eq!(got, at("09:00:00", &["2027-01-04", "2027-12-27", "2028-01-03", "2028-12-25"]));
        let got = expand("2027-03-28T01:00", "FREQ=YEARLY;BYMONTH=3,10;BYDAY=-1SU;COUNT=4", None, 100);
        assert_eq!(got, at("01:00:00", &["2027-03-28", "2027-10-31", "2028-03-26", "2028-10-29"]));
    }

    #[test]
    fn week_numbers_across_year_ends() {
        // ISO week 1 of 2026 starts Monday 2025-12-29 and belongs to calendar year 2025's period.
        let got = expand("2025-01-01T12:00", "FREQ=YEARLY;BYWEEKNO=1;BYDAY=MO", None, 3);
        assert_eq!(got, at("12:00:00", &["2025-12-29", "2027-01-04", "2028-01-03"]));
        // Week 53 exists only in long years (2026 and 2032 within this range).
        let got = expand("2025-01-01T12:00", "FREQ=YEARLY;BYWEEKNO=53;BYDAY=TH", None, 2);
        assert_eq!(got, at("12:00:00", &["2026-12-31", "2032-12-30"]));
        let got = expand("2027-12-30T12:00", "FREQ=YEARLY;BYWEEKNO=-1;BYDAY=TH", None, 3);
        assert_eq!(got, at("12:00:00", &["2027-12-30", "2028-12-28", "2029-12-27"]));
        // WKST changes which days form week 2.
        let got = expand("2027-01-10T10:00", "FREQ=YEARLY;BYWEEKNO=2;BYDAY=SU;WKST=SU;COUNT=2", None, 100);
        assert_eq!(got, at("10:00:00", &["2027-01-10", "2028-01-09"]));
        let got = expand("2027-01-17T10:00", "FREQ=YEARLY;BYWEEKNO=2;BYDAY=SU;WKST=MO;COUNT=2", None, 100);
        assert_eq!(got, at("10:00:00", &["2027-01-17", "2028-01-16"]));
        // Each day is numbered in its own ISO year: 1994-01-01 is 1993-W52-6 (dateutil calls it
        // week 53 of 1993 and skips it), and 1990-12-31 is 1991-W01-1, week -52 of a 52-week
        // year (dateutil does not match negative weeks of the adjacent year).
        let got = expand("1993-06-01T10:00", "FREQ=YEARLY;BYWEEKNO=52;BYDAY=SA", None, 3);
        assert_eq!(got, at("10:00:00", &["1994-01-01", "1994-12-31", "1995-12-30"]));
        let got = expand("1990-06-01T10:00", "FREQ=YEARLY;BYWEEKNO=-52;BYDAY=MO", None, 2);
        assert_eq!(got, at("10:00:00", &["1990-12-31", "1992-01-06"]));
    }

    #[test]
    fn impossible_rules_end() {
        for (start, r) in [
            ("2027-01-01T09:00", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
            ("2027-01-01T09:00", "FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=31"),
            ("2027-01-01T09:00", "FREQ=WEEKLY;INTERVAL=2;BYMONTH=2;BYSETPOS=9"),
            ("2027-01-01T09:00", "FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31"),
            ("2027-01-01T09:00", "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30"),
            ("2027-01-01T09:00", "FREQ=MINUTELY;BYMONTHDAY=31;BYMONTH=11;BYHOUR=3"),
            ("2027-01-01T09:00:00", "FREQ=SECONDLY;INTERVAL=2;BYSECOND=1"),
            ("2027-01-01T09:00", "FREQ=HOURLY;INTERVAL=2;BYHOUR=10"),
            ("2027-01-01T09:00", "FREQ=DAILY;BYSECOND=60"),
            ("2027-01-01T09:00", "FREQ=YEARLY;BYWEEKNO=53;BYMONTH=6"),
        ] {
            assert_eq!(rule(r).occurrences(dt(start), None, None).count(), 0, "{r}");
        }
        // Sparse but possible rules keep going.
        let got = expand("2027-01-01T09:00", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", None, 2);
        assert_eq!(got, at("09:00:00", &["2044-02-29", "2072-02-29"]));
        let got = expand("2000-01-01T09:00", "FREQ=YEARLY;INTERVAL=100;BYMONTH=2;BYMONTHDAY=29", None, 2);
        assert_eq!(got, at("09:00:00", &["2000-02-29", "2400-02-29"]));
        // Every 100 years from a year that is 3 mod 4 is never a leap year.
        let r = rule("FREQ=YEARLY;INTERVAL=100;BYMONTH=2;BYMONTHDAY=29");
        assert_eq!(r.occurrences(dt("2027-01-01T09:00"), None, None).count(), 0);
    }

    #[test]
    fn iteration_stops_at_year_9999() {
        let got: Vec<_> = rule("FREQ=YEARLY").occurrences(dt("9997-05-05T00:00"), None, None).collect();
        assert_eq!(got.len(), 3);
        let got = rule("FREQ=SECONDLY").occurrences(dt("9999-12-31T23:59:58"), None, None).count();
        assert_eq!(got, 2);
    }

    #[test]
    fn skip_ahead_jumps_straight_to_the_window() {
        let r = rule("FREQ=DAILY");
        let mut it = r.occurrences(dt("1990-01-01T09:00"), None, Some(dt("2030-06-15T10:00")));
        assert_eq!(it.next(), Some(datetime(2030, 6, 16, 9, 0, 0, 0)));
        assert_eq!(it.next(), Some(datetime(2030, 6, 17, 9, 0, 0, 0)));
        assert!(it.inner.as_ref().unwrap().periods_visited <= 3);
        for (r, start) in [
            ("FREQ=WEEKLY;INTERVAL=3;BYDAY=TU,FR;WKST=SU", "1990-01-02T09:00"),
            ("FREQ=MONTHLY;BYDAY=-1FR", "1990-01-26T09:00"),
            ("FREQ=YEARLY;BYMONTH=7;BYMONTHDAY=4", "1990-07-04T09:00"),
            ("FREQ=HOURLY;INTERVAL=7", "1990-01-01T09:00"),
            ("FREQ=MINUTELY;INTERVAL=13", "1990-01-01T09:00"),
            ("FREQ=SECONDLY;INTERVAL=59", "1990-01-01T09:00"),
        ] {
            let mut it = rule(r).occurrences(dt(start), None, Some(dt("2030-06-15T10:00")));
            let first = it.next().unwrap();
            assert!(first >= dt("2030-06-15T10:00") && first < dt("2031-06-16"), "{r}: {first}");
            assert!(it.inner.as_ref().unwrap().periods_visited <= 3, "{r}");
        }
    }

    #[test]
    fn count_with_from_is_counted_from_dtstart() {
        let got: Vec<String> = rule("FREQ=DAILY;COUNT=10")
            .occurrences(dt("2027-01-01T09:00"), None, Some(dt("2027-01-08T00:00")))
            .map(|d| d.to_string())
            .collect();
        assert_eq!(got, at("09:00:00", &["2027-01-08", "2027-01-09", "2027-01-10"]));
    }

    #[test]
    fn until_is_inclusive_and_subseconds_are_handled() {
        let r = rule("FREQ=DAILY");
        let got = r.occurrences(dt("2027-01-01T09:00"), Some(dt("2027-01-03T09:00")), None).count();
        assert_eq!(got, 3);
        // The caller's UNTIL for a DATE is the end of that day.
        let until = date(2027, 1, 3).to_datetime(jiff::civil::Time::MAX);
        assert_eq!(r.occurrences(dt("2027-01-01T09:00"), Some(until), None).count(), 3);
        // A DTSTART with a fraction starts the series at the next whole second.
        let got: Vec<_> = rule("FREQ=SECONDLY;COUNT=2").occurrences(dt("2027-01-01T09:00:00.5"), None, None).collect();
        assert_eq!(got, [dt("2027-01-01T09:00:01"), dt("2027-01-01T09:00:02")]);
    }

    // ---- Parsing ----

    #[test]
    fn parses_every_part() {
        let r = rule(
            "freq=yearly;interval=2;until=20271224T000000Z;bysecond=0,30;byminute=15;byhour=9,17;byday=+1mo,-1FR,SU;bymonthday=1,-1;bymonth=1,12;bysetpos=1,-1;wkst=su;x-custom=whatever",
        );
        assert_eq!(r.freq, Frequency::Yearly);
        assert_eq!(r.interval, 2);
        assert_eq!(r.until, Some(Until::Utc("2027-12-24T00:00:00Z".parse().unwrap())));
        assert_eq!(r.by_second, [0, 30]);
        assert_eq!(r.by_minute, [15]);
        assert_eq!(r.by_hour, [9, 17]);
        assert_eq!(r.by_day, [(Some(1), Weekday::Monday), (Some(-1), Weekday::Friday), (None, Weekday::Sunday)]);
        assert_eq!(r.by_month_day, [1, -1]);
        assert_eq!(r.by_month, [1, 12]);
        assert_eq!(r.by_set_pos, [1, -1]);
        assert_eq!(r.week_start, Weekday::Sunday);
        let r = rule("BYYEARDAY=1,-366;BYWEEKNO=-53,20;FREQ=YEARLY;COUNT=3;");
        assert_eq!(
            (r.by_year_day.as_slice(), r.by_week_no.as_slice(), r.count),
            (&[1, -366][..], &[-53, 20][..], Some(3))
        );
        assert_eq!(rule("FREQ=DAILY;UNTIL=20270105").until, Some(Until::Date(date(2027, 1, 5))));
        assert_eq!(
            rule("FREQ=DAILY;UNTIL=20270105T093000").until,
            Some(Until::Local(datetime(2027, 1, 5, 9, 30, 0, 0)))
        );
        assert_eq!(rule("FREQ=DAILY;RSCALE=GREGORIAN;SKIP=OMIT"), RRule::new(Frequency::Daily));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "FREQ=WEEKLY;COUNT=10;BYDAY=TU,TH;WKST=SU",
            "FREQ=YEARLY;UNTIL=20271224T000000Z;INTERVAL=4;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8;BYMONTH=11",
            "FREQ=MONTHLY;UNTIL=20270105;BYDAY=1SU,-1SU;BYSETPOS=1",
            "FREQ=SECONDLY;UNTIL=20270105T093000;BYSECOND=0,60;BYMINUTE=5;BYHOUR=3",
            "FREQ=YEARLY;BYYEARDAY=-1;BYWEEKNO=20",
        ] {
            let r = rule(s);
            assert_eq!(r.to_string(), s);
            assert_eq!(rule(&r.to_string()), r);
        }
    }

    #[test]
    fn rejects_bad_rules_with_clear_messages() {
        let err = |s: &str| s.parse::<RRule>().unwrap_err().to_string();
        assert_eq!(err("FREQ=MONTHLY;BYMONTHDAY=32"), "BYMONTHDAY value 32 is out of range (-31..=31, not 0)");
        assert_eq!(err("FREQ=MONTHLY;BYMONTHDAY=0"), "BYMONTHDAY value 0 is out of range (-31..=31, not 0)");
        assert_eq!(err(""), "the RRULE is empty");
        assert_eq!(err("COUNT=3"), "the RRULE has no FREQ part");
        assert_eq!(err("FREQ=DAILY;FREQ=WEEKLY"), "FREQ appears more than once in the RRULE");
        assert_eq!(err("FREQ=DAILY;count=2;COUNT=3"), "COUNT appears more than once in the RRULE");
        assert_eq!(err("FREQ=DAILY;COUNT"), "RRULE part `COUNT` is not NAME=VALUE");
        assert_eq!(
            err("FREQ=FORTNIGHTLY"),
            "FREQ value `FORTNIGHTLY` is not valid: expected SECONDLY, MINUTELY, HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY"
        );
        assert_eq!(err("FREQ=DAILY;BYEASTER=0"), "unknown RRULE part BYEASTER (only X- extension parts are ignored)");
        assert_eq!(err("FREQ=DAILY;COUNT=3;UNTIL=20270101"), "COUNT and UNTIL must not both appear in one RRULE");
        assert_eq!(err("FREQ=DAILY;INTERVAL=0"), "INTERVAL value 0 is out of range (1..=4294967295)");
        assert_eq!(err("FREQ=DAILY;COUNT=0"), "COUNT value 0 is out of range (1..=4294967295)");
        assert_eq!(err("FREQ=DAILY;COUNT=-1"), "COUNT value `-1` is not valid: expected an unsigned integer");
        assert_eq!(err("FREQ=DAILY;INTERVAL=x"), "INTERVAL value `x` is not valid: expected an unsigned integer");
        assert_eq!(err("FREQ=DAILY;BYHOUR=24"), "BYHOUR value 24 is out of range (0..=23)");
        assert_eq!(err("FREQ=DAILY;BYMINUTE=60"), "BYMINUTE value 60 is out of range (0..=59)");
        assert_eq!(err("FREQ=DAILY;BYSECOND=61"), "BYSECOND value 61 is out of range (0..=60)");
        assert_eq!(err("FREQ=DAILY;BYMONTH=13"), "BYMONTH value 13 is out of range (1..=12)");
        assert_eq!(err("FREQ=YEARLY;BYYEARDAY=367"), "BYYEARDAY value 367 is out of range (-366..=366, not 0)");
        assert_eq!(err("FREQ=YEARLY;BYWEEKNO=54"), "BYWEEKNO value 54 is out of range (-53..=53, not 0)");
        assert_eq!(err("FREQ=YEARLY;BYDAY=MO;BYSETPOS=400"), "BYSETPOS value 400 is out of range (-366..=366, not 0)");
        assert_eq!(err("FREQ=YEARLY;BYDAY=54MO"), "BYDAY ordinal value 54 is out of range (-53..=53, not 0)");
        assert_eq!(err("FREQ=YEARLY;BYDAY=0MO"), "BYDAY ordinal value 0 is out of range (-53..=53, not 0)");
        assert_eq!(
            err("FREQ=WEEKLY;BYDAY=XX"),
            "BYDAY value `XX` is not valid: expected a weekday with an optional ordinal, such as MO, 2TU or -1FR"
        );
        assert_eq!(
            err("FREQ=WEEKLY;BYDAY=MO,,TU"),
            "BYDAY value `MO,,TU` is not valid: expected a comma-separated list without empty items"
        );
        assert_eq!(
            err("FREQ=WEEKLY;BYDAY="),
            "BYDAY value `` is not valid: expected a comma-separated list without empty items"
        );
        assert_eq!(
            err("FREQ=WEEKLY;WKST=XY"),
            "WKST value `XY` is not valid: expected a weekday: MO, TU, WE, TH, FR, SA or SU"
        );
        assert_eq!(
            err("FREQ=DAILY;UNTIL=20270230"),
            "UNTIL value `20270230` is not valid: expected a date YYYYMMDD or a date-time YYYYMMDDTHHMMSS, optionally ending in Z"
        );
        assert!(err("FREQ=DAILY;UNTIL=20270101T250000Z").starts_with("UNTIL value"));
        assert!(err("FREQ=DAILY;UNTIL=2027-01-01").starts_with("UNTIL value"));
        assert_eq!(err("FREQ=DAILY;BYWEEKNO=1"), "BYWEEKNO must not be used with FREQ=DAILY");
        assert_eq!(err("FREQ=MONTHLY;BYYEARDAY=1"), "BYYEARDAY must not be used with FREQ=MONTHLY");
        assert_eq!(err("FREQ=WEEKLY;BYMONTHDAY=1"), "BYMONTHDAY must not be used with FREQ=WEEKLY");
        assert_eq!(
            err("FREQ=WEEKLY;BYDAY=1MO"),
            "BYDAY value 1MO has an ordinal, which is only allowed with FREQ=MONTHLY or FREQ=YEARLY, not FREQ=WEEKLY"
        );
        assert_eq!(
            err("FREQ=YEARLY;BYWEEKNO=1;BYDAY=-1MO"),
            "BYDAY value -1MO has an ordinal, which must not be combined with BYWEEKNO"
        );
        assert_eq!(err("FREQ=MONTHLY;BYSETPOS=1"), "BYSETPOS needs another BYxxx rule part to select from");
        assert_eq!(
            err("FREQ=DAILY;RSCALE=HEBREW"),
            "RSCALE value `HEBREW` is not valid: expected GREGORIAN (the only calendar supported)"
        );
        // BYYEARDAY is a limit for sub-daily rules, so it is allowed there.
        assert!("FREQ=HOURLY;BYYEARDAY=1".parse::<RRule>().is_ok());
    }

    #[test]
    fn invalid_hand_built_rules_yield_nothing() {
        let mut r = RRule::new(Frequency::Daily);
        r.interval = 0;
        assert!(r.validate().is_err());
        assert_eq!(r.occurrences(dt("2027-01-01T00:00"), None, None).count(), 0);
    }

    // ---- Cross-checks ----

    #[test]
    fn civil_arithmetic_matches_jiff() {
        let epoch = date(1970, 1, 1);
        for (y, m, d) in [(-9999, 1, 1), (-4, 2, 29), (0, 2, 29), (0, 3, 1), (1582, 10, 15), (9999, 12, 31)] {
            let jiff_days = epoch.until(date(y, m, d)).unwrap().get_days();
            assert_eq!(days_from_civil(i64::from(y), i64::from(m), i64::from(d)), i64::from(jiff_days));
        }
        let mut d = date(1500, 1, 1);
        let end = date(2600, 12, 31);
        let mut n = days_from_civil(1500, 1, 1);
        while d < end {
            let (y, m, day) = civil_from_days(n);
            assert_eq!((y, m, day), (i64::from(d.year()), i64::from(d.month()), i64::from(d.day())));
            assert_eq!(weekday_of(n), weekday_index(d.weekday()));
            assert_eq!(days_from_civil(y, m, day), n);
            d = d.tomorrow().unwrap();
            n += 1;
        }
        assert_eq!(days_from_civil(2600, 12, 31), n);
    }

    #[test]
    fn week_numbers_match_iso_for_monday_weeks() {
        let mut d = date(1990, 1, 1);
        let mut n = days_from_civil(1990, 1, 1);
        while d.year() < 2040 {
            let iso = d.iso_week_date();
            let (week, weeks) = week_number(n, i64::from(d.year()), 0);
            assert_eq!(week, i64::from(iso.week()), "{d}");
            let weeks_in_iso_year = if iso.in_long_year() { 53 } else { 52 };
            assert_eq!(weeks, weeks_in_iso_year, "{d}");
            d = d.tomorrow().unwrap();
            n += 1;
        }
    }

    fn freq_strategy() -> impl Strategy<Value = Frequency> {
        prop::sample::select(vec![
            Frequency::Secondly,
            Frequency::Minutely,
            Frequency::Hourly,
            Frequency::Daily,
            Frequency::Weekly,
            Frequency::Monthly,
            Frequency::Yearly,
        ])
    }

    /// Usually nothing, sometimes a short list.
    fn few<T: fmt::Debug + Clone>(item: impl Strategy<Value = T>, max: usize) -> impl Strategy<Value = Vec<T>> {
        prop_oneof![3 => Just(Vec::new()), 1 => prop::collection::vec(item, 1..=max)]
    }

    prop_compose! {
        fn rule_strategy()(
            freq in freq_strategy(),
            interval in prop_oneof![4 => Just(1u32), 3 => 2u32..5, 1 => 5u32..40],
            months in few(1u8..=12, 3),
            month_days in few(prop_oneof![1i8..=31, -31i8..=-1], 3),
            year_days in few(prop_oneof![1i16..=366, -366i16..=-1], 3),
            week_nos in few(prop_oneof![1i8..=53, -53i8..=-1], 2),
            weekdays in few((0usize..7, prop::option::weighted(0.3, prop_oneof![1i16..=5, -5i16..=-1])), 4),
            hours in few(0u8..24, 3),
            minutes in few(0u8..60, 3),
            seconds in few(0u8..60, 3),
            set_pos in few(prop_oneof![1i32..=5, -5i32..=-1], 2),
            week_start in 0usize..7,
            count in prop::option::weighted(0.2, 1u32..40),
            // Day-level limits make most sub-daily rules empty within their short horizon.
            sub_daily_day_limits in prop::bool::weighted(0.2),
        ) -> RRule {
            let mut r = RRule::new(freq);
            r.interval = interval;
            r.count = count;
            let day_limits = !freq.is_sub_daily() || sub_daily_day_limits;
            if day_limits {
                r.by_month = months;
                if freq != Frequency::Weekly { r.by_month_day = month_days; }
                if freq == Frequency::Yearly || freq.is_sub_daily() { r.by_year_day = year_days; }
            }
            if freq == Frequency::Yearly { r.by_week_no = week_nos; }
            let ordinals = matches!(freq, Frequency::Monthly | Frequency::Yearly) && r.by_week_no.is_empty();
            r.by_day = weekdays.into_iter().map(|(w, n)| (if ordinals { n } else { None }, WEEKDAYS[w])).collect();
            r.by_hour = hours;
            r.by_minute = minutes;
            r.by_second = seconds;
            r.by_set_pos = set_pos;
            r.week_start = WEEKDAYS[week_start];
            r
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        /// Skipping whole periods before `from` never changes what is returned from `from` on.
        #[test]
        fn skip_ahead_is_invisible(
            r in rule_strategy(),
            start_day in 0i64..3650,
            start_secs in 0i64..86_400,
            from_fraction in 0.0f64..1.0,
        ) {
            prop_assume!(r.validate().is_ok());
            let horizon_secs: i64 = match r.freq {
                Frequency::Yearly => 120 * 366 * 86_400,
                Frequency::Monthly => 30 * 366 * 86_400,
                Frequency::Weekly => 10 * 366 * 86_400,
                Frequency::Daily => 4 * 366 * 86_400,
                Frequency::Hourly => 40 * 86_400,
                Frequency::Minutely => 2 * 86_400,
                Frequency::Secondly => 3 * 3600,
            };
            let base = days_from_civil(1994, 1, 1) * 86_400;
            let start = to_datetime(base + start_day * 86_400 + start_secs).unwrap();
            let horizon = to_datetime(base + start_day * 86_400 + start_secs + horizon_secs).unwrap();
            let from = to_datetime(base + start_day * 86_400 + start_secs + (horizon_secs as f64 * from_fraction) as i64).unwrap();
            let all: Vec<DateTime> = r.occurrences(start, Some(horizon), None).filter(|d| *d >= from).collect();
            let skipped: Vec<DateTime> = r.occurrences(start, Some(horizon), Some(from)).collect();
            prop_assert_eq!(&skipped, &all, "{} from {} at {}", r, start, from);
            // Every instance matches and the sequence is strictly increasing.
            prop_assert!(all.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(all.iter().all(|d| *d >= start && *d <= horizon));
        }
    }
}
