//! Expands a series master's `patternedRecurrence` into the starts of its occurrences, the way
//! Exchange does (learn.microsoft.com/graph/api/resources/recurrencepattern and
//! …/recurrencerange):
//!
//! - `daily`, `weekly` (weeks begin on `firstDayOfWeek`, every `interval`-th week counted from
//!   the week holding `startDate`), `absoluteMonthly` / `absoluteYearly` (a `dayOfMonth` past the
//!   month's end means its last day, as EWS documents for AbsoluteMonthlyRecurrence),
//!   `relativeMonthly` / `relativeYearly` (the `index`-th day of the month among `daysOfWeek`:
//!   with several days, "the first day that satisfies the pattern").
//! - Ranges `endDate` (inclusive), `numbered`, `noEnd`; occurrences begin on or after
//!   `startDate`.
//! - Dates are in `recurrenceTimeZone` (else the start's zone); each occurrence starts at the
//!   master's wall-clock time of day in that zone, so a series keeps its local time across DST.
//!
//! Written independently of kairos-core's RRULE engine on purpose: the emulator is the reference
//! the adapter is tested against.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{ToSpan, Zoned};
use serde_json::Value;

use super::zones;

/// The most dates examined for one series (a guard against a runaway `noEnd` series).
const MAX_STEPS: usize = 200_000;

/// One occurrence of a series: its original start.
#[derive(Debug, Clone)]
pub(crate) struct Occurrence {
    pub start: Zoned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Daily,
    Weekly,
    AbsoluteMonthly,
    RelativeMonthly,
    AbsoluteYearly,
    RelativeYearly,
}

#[derive(Debug, Clone)]
struct Pattern {
    kind: Kind,
    interval: i64,
    days: Vec<Weekday>,
    day_of_month: i8,
    month: i8,
    first_day: Weekday,
    /// 1..=4, or -1 for `last`.
    index: i32,
}

#[derive(Debug, Clone, Copy)]
enum End {
    Date(Date),
    Count(usize),
    Never,
}

pub(crate) fn weekday(name: &str) -> Option<Weekday> {
    Some(match name.to_ascii_lowercase().as_str() {
        "monday" => Weekday::Monday,
        "tuesday" => Weekday::Tuesday,
        "wednesday" => Weekday::Wednesday,
        "thursday" => Weekday::Thursday,
        "friday" => Weekday::Friday,
        "saturday" => Weekday::Saturday,
        "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn int_of(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64).filter(|n| *n != 0)
}

/// The zone a master's occurrences are laid out in, and the wall-clock time they start at.
fn series_clock(master: &Value) -> Result<(TimeZone, Time, Date), String> {
    let start = master.get("start").ok_or("the series has no start")?;
    let start_zone_name = str_of(start, "timeZone").unwrap_or("UTC");
    let start_zone = zones::resolve(start_zone_name).ok_or_else(|| format!("unknown time zone {start_zone_name}"))?;
    let local = str_of(start, "dateTime").and_then(zones::parse_local).ok_or("the series start is not a date-time")?;
    if master.get("isAllDay").and_then(Value::as_bool).unwrap_or(false) {
        return Ok((start_zone, local.time(), local.date()));
    }
    let instant = zones::to_zoned(local, &start_zone).ok_or("the series start does not exist")?;
    let range = master.pointer("/recurrence/range");
    let zone = match range.and_then(|r| str_of(r, "recurrenceTimeZone")) {
        Some(name) => zones::resolve(name).ok_or_else(|| format!("unknown recurrence time zone {name}"))?,
        None => start_zone,
    };
    let there = instant.with_time_zone(zone.clone());
    Ok((zone, there.time(), there.date()))
}

fn read_pattern(p: &Value, start: Date) -> Result<Pattern, String> {
    let kind = match str_of(p, "type").unwrap_or("").to_ascii_lowercase().as_str() {
        "daily" => Kind::Daily,
        "weekly" => Kind::Weekly,
        "absolutemonthly" => Kind::AbsoluteMonthly,
        "relativemonthly" => Kind::RelativeMonthly,
        "absoluteyearly" => Kind::AbsoluteYearly,
        "relativeyearly" => Kind::RelativeYearly,
        other => return Err(format!("unknown recurrence pattern type `{other}`")),
    };
    let mut days: Vec<Weekday> = p
        .get("daysOfWeek")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).filter_map(weekday).collect())
        .unwrap_or_default();
    if days.is_empty() {
        days.push(start.weekday());
    }
    let index = match str_of(p, "index").unwrap_or("first").to_ascii_lowercase().as_str() {
        "first" => 1,
        "second" => 2,
        "third" => 3,
        "fourth" => 4,
        "last" => -1,
        other => return Err(format!("unknown week index `{other}`")),
    };
    Ok(Pattern {
        kind,
        interval: int_of(p, "interval").unwrap_or(1).max(1),
        days,
        day_of_month: int_of(p, "dayOfMonth").map_or(start.day(), |d| d.clamp(1, 31) as i8),
        month: int_of(p, "month").map_or(start.month(), |m| m.clamp(1, 12) as i8),
        first_day: str_of(p, "firstDayOfWeek").and_then(weekday).unwrap_or(Weekday::Sunday),
        index,
    })
}

fn read_end(r: &Value) -> Result<End, String> {
    Ok(match str_of(r, "type").unwrap_or("noEnd").to_ascii_lowercase().as_str() {
        "enddate" => End::Date(
            str_of(r, "endDate").and_then(|d| d.parse::<Date>().ok()).ok_or("an endDate range needs endDate")?,
        ),
        "numbered" => End::Count(
            r.get("numberOfOccurrences")
                .and_then(Value::as_u64)
                .filter(|n| *n > 0)
                .ok_or("a numbered range needs a positive numberOfOccurrences")? as usize,
        ),
        "noend" => End::Never,
        other => return Err(format!("unknown recurrence range type `{other}`")),
    })
}

/// `day` clamped into the month of `any_day`.
fn clamp_day(any_day: Date, day: i8) -> Date {
    any_day.first_of_month().saturating_add((i64::from(day.min(any_day.days_in_month())) - 1).days())
}

/// The `index`-th day of `month_day`'s month whose weekday is among `days` (-1: the last).
fn relative_day(month_day: Date, days: &[Weekday], index: i32) -> Option<Date> {
    let first = month_day.first_of_month();
    let matching: Vec<Date> = (0..i64::from(first.days_in_month()))
        .map(|i| first.saturating_add(i.days()))
        .filter(|d| days.contains(&d.weekday()))
        .collect();
    if index < 0 { matching.last().copied() } else { matching.get((index - 1) as usize).copied() }
}

/// The candidate dates of period `k` (a day, a week, a month or a year after the first).
fn period_dates(p: &Pattern, first: Date, k: i64) -> Vec<Date> {
    let step = k * p.interval;
    match p.kind {
        Kind::Daily => vec![first.saturating_add(step.days())],
        Kind::Weekly => {
            let back = i64::from(first.weekday().since(p.first_day));
            let week = first.saturating_sub(back.days()).saturating_add((step * 7).days());
            let mut out: Vec<Date> =
                p.days.iter().map(|d| week.saturating_add(i64::from(d.since(p.first_day)).days())).collect();
            out.sort();
            out
        }
        Kind::AbsoluteMonthly => {
            vec![clamp_day(first.first_of_month().saturating_add(step.months()), p.day_of_month)]
        }
        Kind::RelativeMonthly => {
            relative_day(first.first_of_month().saturating_add(step.months()), &p.days, p.index).into_iter().collect()
        }
        Kind::AbsoluteYearly | Kind::RelativeYearly => {
            let Ok(month) = Date::new(first.year().saturating_add(step as i16), p.month, 1) else {
                return Vec::new();
            };
            if p.kind == Kind::AbsoluteYearly {
                vec![clamp_day(month, p.day_of_month)]
            } else {
                relative_day(month, &p.days, p.index).into_iter().collect()
            }
        }
    }
}

/// The occurrences of a series master whose start date is on or before `last_date` (in the
/// series' zone), in order. Errors say what in the recurrence cannot be read.
pub(crate) fn occurrences(master: &Value, last_date: Date) -> Result<Vec<Occurrence>, String> {
    let recurrence = master.get("recurrence").filter(|r| !r.is_null()).ok_or("the event has no recurrence")?;
    let (zone, time, start_date) = series_clock(master)?;
    let range = recurrence.get("range").cloned().unwrap_or(Value::Null);
    let first = str_of(&range, "startDate").and_then(|d| d.parse::<Date>().ok()).unwrap_or(start_date);
    let pattern = read_pattern(recurrence.get("pattern").unwrap_or(&Value::Null), first)?;
    let end = read_end(&range)?;
    let mut out = Vec::new();
    let mut steps = 0usize;
    for k in 0.. {
        for date in period_dates(&pattern, first, k) {
            steps += 1;
            if date < first {
                continue;
            }
            let past_end = match end {
                End::Date(d) => date > d,
                End::Count(n) => out.len() >= n,
                End::Never => false,
            };
            if past_end || date > last_date || steps > MAX_STEPS {
                return Ok(out);
            }
            let start = zones::to_zoned(date.to_datetime(time), &zone).ok_or("an occurrence does not exist")?;
            out.push(Occurrence { start });
        }
        if steps > MAX_STEPS {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn starts(master: Value, last: &str) -> Vec<String> {
        occurrences(&master, last.parse().unwrap())
            .unwrap()
            .into_iter()
            .map(|o| o.start.timestamp().to_string())
            .collect()
    }

    fn master(start: &str, zone: &str, pattern: Value, range: Value) -> Value {
        json!({"start": {"dateTime": start, "timeZone": zone}, "recurrence": {"pattern": pattern, "range": range}})
    }

    #[test]
    fn weekly_series_keep_their_local_time_across_dst() {
        let m = master(
            "2026-03-02T09:00:00.0000000",
            "Pacific Standard Time",
            json!({"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"}),
            json!({"type": "numbered", "startDate": "2026-03-02", "numberOfOccurrences": 3}),
        );
        // US DST starts 2026-03-08: 09:00 PST = 17:00Z, then 09:00 PDT = 16:00Z.
        assert_eq!(starts(m, "2027-01-01"), ["2026-03-02T17:00:00Z", "2026-03-09T16:00:00Z", "2026-03-16T16:00:00Z"]);
    }

    #[test]
    fn every_other_week_counts_weeks_from_first_day_of_week() {
        // Starts on a Wednesday; weeks begin on Monday; Mon+Wed every 2 weeks.
        let m = master(
            "2026-03-04T10:00:00",
            "UTC",
            json!({"type": "weekly", "interval": 2, "daysOfWeek": ["monday", "wednesday"], "firstDayOfWeek": "monday"}),
            json!({"type": "endDate", "startDate": "2026-03-04", "endDate": "2026-03-18"}),
        );
        assert_eq!(starts(m, "2027-01-01"), ["2026-03-04T10:00:00Z", "2026-03-16T10:00:00Z", "2026-03-18T10:00:00Z"]);
    }

    #[test]
    fn absolute_monthly_past_the_month_end_falls_on_its_last_day() {
        let m = master(
            "2026-01-31T08:00:00",
            "UTC",
            json!({"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31}),
            json!({"type": "numbered", "startDate": "2026-01-31", "numberOfOccurrences": 3}),
        );
        assert_eq!(starts(m, "2027-01-01"), ["2026-01-31T08:00:00Z", "2026-02-28T08:00:00Z", "2026-03-31T08:00:00Z"]);
    }

    #[test]
    fn relative_monthly_last_weekday_and_relative_yearly() {
        let m = master(
            "2026-01-30T08:00:00",
            "UTC",
            json!({"type": "relativeMonthly", "interval": 1, "index": "last",
                   "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"]}),
            json!({"type": "numbered", "startDate": "2026-01-01", "numberOfOccurrences": 3}),
        );
        assert_eq!(starts(m, "2027-01-01"), ["2026-01-30T08:00:00Z", "2026-02-27T08:00:00Z", "2026-03-31T08:00:00Z"]);
        let y = master(
            "2026-11-26T12:00:00",
            "UTC",
            json!({"type": "relativeYearly", "interval": 1, "index": "fourth", "daysOfWeek": ["thursday"], "month": 11}),
            json!({"type": "noEnd", "startDate": "2026-11-26"}),
        );
        assert_eq!(starts(y, "2028-12-31"), ["2026-11-26T12:00:00Z", "2027-11-25T12:00:00Z", "2028-11-23T12:00:00Z"]);
    }

    #[test]
    fn daily_and_absolute_yearly_with_recurrence_time_zone() {
        let m = json!({
            "start": {"dateTime": "2026-03-27T23:00:00.0000000", "timeZone": "UTC"},
            "recurrence": {"pattern": {"type": "daily", "interval": 2},
                           "range": {"type": "numbered", "startDate": "2026-03-28", "numberOfOccurrences": 2,
                                     "recurrenceTimeZone": "W. Europe Standard Time"}}});
        // 23:00Z is midnight in Berlin (CET); the series recurs at 00:00 Berlin time, after the
        // switch to CEST on 2026-03-29 that is 22:00Z.
        assert_eq!(starts(m, "2027-01-01"), ["2026-03-27T23:00:00Z", "2026-03-29T22:00:00Z"]);
        let leap = master(
            "2028-02-29T12:00:00",
            "UTC",
            json!({"type": "absoluteYearly", "interval": 1, "dayOfMonth": 29, "month": 2}),
            json!({"type": "numbered", "startDate": "2028-02-29", "numberOfOccurrences": 2}),
        );
        assert_eq!(starts(leap, "2035-01-01"), ["2028-02-29T12:00:00Z", "2029-02-28T12:00:00Z"]);
    }
}
