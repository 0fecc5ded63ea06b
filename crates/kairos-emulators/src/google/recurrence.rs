//! Recurring series as Google Calendar expands them, for freeBusy, time-window filters and
//! `singleEvents=true`. Written independently of `kairos-core` on purpose: the emulator is a
//! second opinion on what the adapter and the core compute.
//!
//! Supported: `RRULE` with `FREQ=DAILY|WEEKLY|MONTHLY|YEARLY`, `INTERVAL`, `COUNT`, `UNTIL`
//! (UTC, local or date), `BYDAY` (plain weekdays, for DAILY and WEEKLY), `BYMONTHDAY` (one
//! positive day, for MONTHLY), `WKST`; `EXDATE` and `RDATE` as UTC, `TZID=` local or
//! `VALUE=DATE` values. Not supported (the rule is ignored past its first instance):
//! `BYSETPOS`, ordinal `BYDAY` (`2MO`, `-1FR`), `BYMONTH`, `BYYEARDAY`, `BYWEEKNO`, sub-daily
//! frequencies, `EXRULE`.

use std::collections::BTreeSet;

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde_json::Value;

/// Iterations one expansion may take, whatever the rule says.
const MAX_ITERATIONS: usize = 100_000;

/// A start as the series states it: an instant, or a date for all-day series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum When {
    Timed(Timestamp),
    AllDay(Date),
}

impl When {
    /// The suffix Google gives an instance's id: `_20240102T090000Z` or `_20240102`.
    pub fn id_suffix(&self) -> String {
        match self {
            When::Timed(t) => t.strftime("%Y%m%dT%H%M%SZ").to_string(),
            When::AllDay(d) => d.strftime("%Y%m%d").to_string(),
        }
    }
}

/// One instance of a series: where the rule put it, and its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Occurrence {
    pub original: When,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// An `EventDateTime` (`{dateTime, timeZone?}` or `{date}`) read in `zone` where it has no
/// offset of its own.
pub(crate) fn read_time(value: &Value, default_zone: &TimeZone) -> Option<When> {
    if let Some(date) = value.get("date").and_then(Value::as_str) {
        return date.parse::<Date>().ok().map(When::AllDay);
    }
    let text = value.get("dateTime").and_then(Value::as_str)?;
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(When::Timed(t));
    }
    // No offset: the event's own zone applies.
    let zone = value.get("timeZone").and_then(Value::as_str).and_then(|z| TimeZone::get(z).ok());
    let local: DateTime = text.parse().ok()?;
    let zoned = zone.as_ref().unwrap_or(default_zone).to_ambiguous_zoned(local).compatible().ok()?;
    Some(When::Timed(zoned.timestamp()))
}

/// The instant a start denotes (all-day dates begin at midnight in `zone`).
pub(crate) fn instant(when: When, zone: &TimeZone) -> Timestamp {
    match when {
        When::Timed(t) => t,
        When::AllDay(d) => zone
            .to_ambiguous_zoned(d.to_datetime(jiff::civil::Time::midnight()))
            .compatible()
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX),
    }
}

/// The span of a single (non-recurring) event.
pub(crate) fn span(event: &Value, zone: &TimeZone) -> Option<(Timestamp, Timestamp)> {
    let start = read_time(event.get("start")?, zone)?;
    let end = event.get("end").and_then(|e| read_time(e, zone)).unwrap_or(start);
    Some((instant(start, zone), instant(end, zone)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freq {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

#[derive(Debug, Clone)]
enum Until {
    Instant(Timestamp),
    Local(DateTime),
    Date(Date),
}

#[derive(Debug, Clone)]
struct Rule {
    freq: Freq,
    interval: i32,
    count: Option<usize>,
    until: Option<Until>,
    by_day: Vec<Weekday>,
    by_month_day: Option<i8>,
    week_start: Weekday,
}

fn weekday(code: &str) -> Option<Weekday> {
    Some(match code {
        "MO" => Weekday::Monday,
        "TU" => Weekday::Tuesday,
        "WE" => Weekday::Wednesday,
        "TH" => Weekday::Thursday,
        "FR" => Weekday::Friday,
        "SA" => Weekday::Saturday,
        "SU" => Weekday::Sunday,
        _ => return None,
    })
}

fn parse_rule(line: &str) -> Option<Rule> {
    let body = line.strip_prefix("RRULE:")?;
    let mut rule = Rule {
        freq: Freq::Daily,
        interval: 1,
        count: None,
        until: None,
        by_day: vec![],
        by_month_day: None,
        week_start: Weekday::Monday,
    };
    let mut freq = None;
    for part in body.split(';') {
        let (key, value) = part.split_once('=')?;
        match key {
            "FREQ" => {
                freq = Some(match value {
                    "DAILY" => Freq::Daily,
                    "WEEKLY" => Freq::Weekly,
                    "MONTHLY" => Freq::Monthly,
                    "YEARLY" => Freq::Yearly,
                    _ => return None,
                })
            }
            "INTERVAL" => rule.interval = value.parse().ok().filter(|i: &i32| *i >= 1)?,
            "COUNT" => rule.count = value.parse().ok(),
            "UNTIL" => rule.until = parse_until(value),
            "BYDAY" => rule.by_day = value.split(',').map(weekday).collect::<Option<Vec<_>>>()?,
            "BYMONTHDAY" => rule.by_month_day = value.parse().ok().filter(|d: &i8| (1..=31).contains(d)),
            "WKST" => rule.week_start = weekday(value)?,
            // An unsupported part makes the whole rule unsupported (see the module docs).
            _ => return None,
        }
    }
    rule.freq = freq?;
    Some(rule)
}

fn parse_until(value: &str) -> Option<Until> {
    if let Some(utc) = value.strip_suffix('Z') {
        let local = DateTime::strptime("%Y%m%dT%H%M%S", utc).ok()?;
        return local.to_zoned(TimeZone::UTC).ok().map(|z| Until::Instant(z.timestamp()));
    }
    if value.len() == 8 {
        return Date::strptime("%Y%m%d", value).ok().map(Until::Date);
    }
    DateTime::strptime("%Y%m%dT%H%M%S", value).ok().map(Until::Local)
}

/// The values of an EXDATE or RDATE line, as starts.
fn parse_dates(line: &str, zone: &TimeZone) -> Vec<When> {
    let Some((head, values)) = line.split_once(':') else { return vec![] };
    let mut tz = zone.clone();
    let mut is_date = false;
    for param in head.split(';').skip(1) {
        match param.split_once('=') {
            Some(("TZID", id)) => tz = TimeZone::get(id).unwrap_or(tz),
            Some(("VALUE", "DATE")) => is_date = true,
            _ => {}
        }
    }
    values
        .split(',')
        .filter_map(|v| {
            if is_date || v.len() == 8 {
                return Date::strptime("%Y%m%d", v).ok().map(When::AllDay);
            }
            match v.strip_suffix('Z') {
                Some(utc) => DateTime::strptime("%Y%m%dT%H%M%S", utc).ok()?.to_zoned(TimeZone::UTC).ok(),
                None => tz.to_ambiguous_zoned(DateTime::strptime("%Y%m%dT%H%M%S", v).ok()?).compatible().ok(),
            }
            .map(|z| When::Timed(z.timestamp()))
        })
        .collect()
}

/// Candidate dates of a rule, in order, from the series' first date.
fn dates(rule: &Rule, first: Date) -> impl Iterator<Item = Date> + '_ {
    let mut period: i64 = 0;
    let mut pending: Vec<Date> = Vec::new();
    std::iter::from_fn(move || {
        loop {
            if let Some(d) = pending.pop() {
                return Some(d);
            }
            let step = period * i64::from(rule.interval);
            period += 1;
            if period > MAX_ITERATIONS as i64 {
                return None;
            }
            let mut batch: Vec<Date> = match rule.freq {
                Freq::Daily => {
                    let d = first.checked_add(step.days()).ok()?;
                    if rule.by_day.is_empty() || rule.by_day.contains(&d.weekday()) { vec![d] } else { vec![] }
                }
                Freq::Weekly => {
                    let back = i64::from(first.weekday().since(rule.week_start));
                    let week = first.checked_sub(back.days()).ok()?.checked_add((step * 7).days()).ok()?;
                    let days = if rule.by_day.is_empty() { vec![first.weekday()] } else { rule.by_day.clone() };
                    days.iter()
                        .filter_map(|w| week.checked_add(i64::from(w.since(rule.week_start)).days()).ok())
                        .filter(|d| *d >= first)
                        .collect()
                }
                Freq::Monthly => {
                    let month = first.first_of_month().checked_add(step.months()).ok()?;
                    let day = rule.by_month_day.unwrap_or(first.day());
                    Date::new(month.year(), month.month(), day).ok().into_iter().filter(|d| *d >= first).collect()
                }
                Freq::Yearly => {
                    let year = first.year().checked_add(i16::try_from(step).ok()?)?;
                    Date::new(year, first.month(), first.day()).ok().into_iter().collect()
                }
            };
            batch.sort();
            batch.dedup();
            batch.reverse();
            pending = batch;
        }
    })
}

/// The instances of a master event (`start`, `end`, `recurrence`) that start before
/// `stop_at`, at most `limit` of them, EXDATEs removed and RDATEs added. A master without a
/// rule we understand yields its first instance only.
pub(crate) fn expand(master: &Value, calendar_zone: &TimeZone, stop_at: Timestamp, limit: usize) -> Vec<Occurrence> {
    let zone = master
        .pointer("/start/timeZone")
        .and_then(Value::as_str)
        .and_then(|z| TimeZone::get(z).ok())
        .unwrap_or_else(|| calendar_zone.clone());
    let (Some(first), end) =
        (master.get("start").and_then(|s| read_time(s, &zone)), master.get("end").and_then(|e| read_time(e, &zone)))
    else {
        return vec![];
    };
    let lines: Vec<&str> = master
        .get("recurrence")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let rule = lines.iter().find_map(|l| parse_rule(l));
    let excluded: BTreeSet<When> =
        lines.iter().filter(|l| l.starts_with("EXDATE")).flat_map(|l| parse_dates(l, &zone)).collect();
    let mut starts: BTreeSet<When> =
        lines.iter().filter(|l| l.starts_with("RDATE")).flat_map(|l| parse_dates(l, &zone)).collect();

    // The first instance's local wall time and date, from which the rule recurs.
    let (first_date, wall) = match first {
        When::AllDay(d) => (d, None),
        When::Timed(t) => {
            let local = t.to_zoned(zone.clone()).datetime();
            (local.date(), Some(local.time()))
        }
    };
    let length: SignedDuration = match (first, end) {
        (When::Timed(s), Some(When::Timed(e))) => s.duration_until(e),
        _ => SignedDuration::ZERO,
    };
    let days = match (first, end) {
        (When::AllDay(s), Some(When::AllDay(e))) => (e - s).get_days().max(1),
        _ => 1,
    };
    starts.insert(first);
    if let Some(rule) = &rule {
        for (generated, date) in dates(rule, first_date).enumerate() {
            let when = match wall {
                None => When::AllDay(date),
                Some(time) => match zone.to_ambiguous_zoned(date.to_datetime(time)).compatible() {
                    Ok(z) => When::Timed(z.timestamp()),
                    Err(_) => break,
                },
            };
            let past_until = match (&rule.until, when) {
                (Some(Until::Instant(u)), w) => instant(w, &zone) > *u,
                (Some(Until::Date(u)), _) => date > *u,
                (Some(Until::Local(u)), _) => wall.map(|t| date.to_datetime(t)).is_some_and(|l| l > *u),
                (None, _) => false,
            };
            if past_until || rule.count.is_some_and(|c| generated >= c) || instant(when, &zone) >= stop_at {
                break;
            }
            starts.insert(when);
            // Enough instances to fill `limit` once the EXDATEs are gone.
            if starts.len() > MAX_ITERATIONS || starts.len() >= limit.saturating_add(excluded.len()) {
                break;
            }
        }
    }
    starts
        .into_iter()
        .filter(|w| !excluded.contains(w) && !excluded.contains(&date_of(*w, &zone)))
        .filter(|w| instant(*w, &zone) < stop_at)
        .take(limit)
        .map(|original| {
            let start = instant(original, &zone);
            let end = match original {
                When::Timed(_) => start.checked_add(length).unwrap_or(start),
                When::AllDay(d) => instant(When::AllDay(d.checked_add(days.days()).unwrap_or(d)), &zone),
            };
            Occurrence { original, start, end }
        })
        .collect()
}

/// An EXDATE written as a date excludes the instance on that local day.
fn date_of(when: When, zone: &TimeZone) -> When {
    match when {
        When::AllDay(d) => When::AllDay(d),
        When::Timed(t) => When::AllDay(t.to_zoned(zone.clone()).date()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn starts(master: Value) -> Vec<String> {
        let stop: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        expand(&master, &TimeZone::UTC, stop, 50).iter().map(|o| o.start.to_string()).collect()
    }

    #[test]
    fn weekly_byday_with_count_and_exdate_recurs_in_the_series_zone() {
        let master = json!({
            "start": {"dateTime": "2024-03-04T09:00:00+01:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2024-03-04T10:00:00+01:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6", "EXDATE;TZID=Europe/Berlin:20240306T090000"],
        });
        // 9:00 Berlin is 08:00Z before 31 March and 07:00Z after.
        assert_eq!(
            starts(master),
            [
                "2024-03-04T08:00:00Z",
                "2024-03-11T08:00:00Z",
                "2024-03-13T08:00:00Z",
                "2024-03-18T08:00:00Z",
                "2024-03-20T08:00:00Z"
            ]
        );
    }

    #[test]
    fn daily_interval_until_and_all_day() {
        let master = json!({
            "start": {"date": "2024-01-01"}, "end": {"date": "2024-01-02"},
            "recurrence": ["RRULE:FREQ=DAILY;INTERVAL=2;UNTIL=20240107"],
        });
        assert_eq!(
            starts(master),
            ["2024-01-01T00:00:00Z", "2024-01-03T00:00:00Z", "2024-01-05T00:00:00Z", "2024-01-07T00:00:00Z"]
        );
    }

    #[test]
    fn unsupported_rules_yield_the_first_instance() {
        let master = json!({
            "start": {"dateTime": "2024-01-01T10:00:00Z"}, "end": {"dateTime": "2024-01-01T11:00:00Z"},
            "recurrence": ["RRULE:FREQ=MONTHLY;BYDAY=2MO"],
        });
        assert_eq!(starts(master), ["2024-01-01T10:00:00Z"]);
    }

    #[test]
    fn instance_ids_use_utc_basic_format() {
        assert_eq!(When::Timed("2024-03-04T08:00:00Z".parse().unwrap()).id_suffix(), "20240304T080000Z");
        assert_eq!(When::AllDay(jiff::civil::date(2024, 3, 4)).id_suffix(), "20240304");
    }
}
