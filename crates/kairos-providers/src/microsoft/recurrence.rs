//! A Graph series master's `patternedRecurrence` as an RRULE VEVENT, and its exceptions and
//! cancelled occurrences as RECURRENCE-ID overrides — a pure mapping, for callers that read
//! series masters (`GET /me/events`) rather than a calendar view's instances.
//!
//! Graph's rules (learn.microsoft.com/graph/api/resources/recurrencepattern, …/recurrencerange):
//!
//! | pattern | RRULE |
//! | --- | --- |
//! | `daily` | `FREQ=DAILY;INTERVAL=n` |
//! | `weekly` (`daysOfWeek`, `firstDayOfWeek`) | `FREQ=WEEKLY;INTERVAL=n;BYDAY=…;WKST=…` |
//! | `absoluteMonthly` (`dayOfMonth`) | `FREQ=MONTHLY;BYMONTHDAY=d` |
//! | `relativeMonthly` (`daysOfWeek`, `index`) | `FREQ=MONTHLY;BYDAY=…;BYSETPOS=1…4 or -1` |
//! | `absoluteYearly` (`month`, `dayOfMonth`) | `FREQ=YEARLY;BYMONTH=m;BYMONTHDAY=d` |
//! | `relativeYearly` (`month`, `daysOfWeek`, `index`) | `FREQ=YEARLY;BYMONTH=m;BYDAY=…;BYSETPOS=…` |
//!
//! Exchange places a `dayOfMonth` past the month's end on its last day (EWS
//! AbsoluteMonthlyRecurrence: "the last day of the month is assumed"), where RRULE would skip
//! the month: day 31 becomes `BYMONTHDAY=-1`, days 29–30 `BYMONTHDAY=28,…,d;BYSETPOS=-1`.
//! With several `daysOfWeek`, `index` picks among all of them ("the first day that satisfies
//! the pattern"), which is BYSETPOS. Ranges: `numbered` → COUNT, `endDate` (inclusive, a date
//! in `recurrenceTimeZone`) → UNTIL at the end of that day, `noEnd` → no bound.
//!
//! The series recurs in `recurrenceTimeZone` (else the start's zone): DTSTART is written with
//! that TZID (a Windows or IANA name; kairos-core resolves both) at the start's wall-clock time
//! there, so occurrences keep their local time across DST.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use kairos_core::calendar::ical::escape_text;
use kairos_core::calendar::rrule::RRule;
use serde_json::Value;

use super::vevent::{MappingError, date_basic, details, local_basic, push, utc_basic};
use super::wire::{self, Event, PatternedRecurrence};

/// The zone a series recurs in, by the name Graph gave it.
struct Clock {
    name: String,
    tz: TimeZone,
}

fn clock(master: &Event) -> Result<Clock, MappingError> {
    let range_zone =
        master.recurrence.as_ref().and_then(|r| r.range.as_ref()).and_then(|r| r.recurrence_time_zone.clone());
    let name = range_zone
        .filter(|z| !z.trim().is_empty())
        .or_else(|| {
            master.original_start_time_zone.clone().filter(|z| !z.trim().is_empty() && z != "tzone://Microsoft/Custom")
        })
        .or_else(|| master.start.as_ref().and_then(|s| s.time_zone.clone()))
        .unwrap_or_else(|| "UTC".to_string());
    let tz = wire::zone(&name).ok_or_else(|| MappingError::new(&master.id, format!("unknown time zone `{name}`")))?;
    Ok(Clock { name, tz })
}

fn ical_day(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "monday" => "MO",
        "tuesday" => "TU",
        "wednesday" => "WE",
        "thursday" => "TH",
        "friday" => "FR",
        "saturday" => "SA",
        "sunday" => "SU",
        _ => return None,
    })
}

fn weekday_code(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "MO",
        Weekday::Tuesday => "TU",
        Weekday::Wednesday => "WE",
        Weekday::Thursday => "TH",
        Weekday::Friday => "FR",
        Weekday::Saturday => "SA",
        Weekday::Sunday => "SU",
    }
}

/// BYMONTHDAY for a day that Exchange clamps to the month's end; `longest` is the most days
/// the month(s) concerned can have.
fn month_day(day: i64, longest: i64) -> String {
    if day <= 28 {
        format!("BYMONTHDAY={day}")
    } else if day >= longest {
        "BYMONTHDAY=-1".to_string()
    } else {
        let days: Vec<String> = (28..=day).map(|d| d.to_string()).collect();
        format!("BYMONTHDAY={};BYSETPOS=-1", days.join(","))
    }
}

/// The series' first start (date and wall-clock time in the series zone) and length.
struct Anchor {
    start: DateTime,
    end: DateTime,
    all_day: bool,
}

fn anchor(master: &Event, clock: &Clock) -> Result<Anchor, MappingError> {
    let bad = |why: &str| MappingError::new(&master.id, why);
    let (Some(start), Some(end)) = (master.start.as_ref(), master.end.as_ref()) else {
        return Err(bad("no start or end"));
    };
    if master.all_day() {
        let s = wire::local(&start.date_time).ok_or_else(|| bad("unreadable start"))?;
        let e = wire::local(&end.date_time).ok_or_else(|| bad("unreadable end"))?;
        return Ok(Anchor { start: s.date().to_datetime(jiff::civil::Time::midnight()), end: e, all_day: true });
    }
    let s = wire::instant(start).ok_or_else(|| bad("unreadable start"))?;
    let e = wire::instant(end).ok_or_else(|| bad("unreadable end"))?.max(s);
    Ok(Anchor {
        start: s.to_zoned(clock.tz.clone()).datetime(),
        end: e.to_zoned(clock.tz.clone()).datetime(),
        all_day: false,
    })
}

/// The RRULE value of a series master's `patternedRecurrence`.
pub(crate) fn rrule_of(master: &Event) -> Result<String, MappingError> {
    let clock = clock(master)?;
    let anchor = anchor(master, &clock)?;
    rule_text(master, &clock, &anchor)
}

fn rule_text(master: &Event, clock: &Clock, anchor: &Anchor) -> Result<String, MappingError> {
    let bad = |why: String| MappingError::new(&master.id, why);
    let PatternedRecurrence { pattern, range } = master.recurrence.clone().ok_or_else(|| bad("not a series".into()))?;
    let pattern = pattern.ok_or_else(|| bad("a recurrence without a pattern".into()))?;
    let range = range.unwrap_or_default();
    let first = anchor.start.date();
    let interval = pattern.interval.unwrap_or(1).max(1);
    let mut days: Vec<&str> = pattern.days_of_week.iter().flatten().filter_map(|d| ical_day(d)).collect();
    if days.is_empty() {
        days.push(weekday_code(first.weekday()));
    }
    let by_day = days.join(",");
    let set_pos = match pattern.index.as_deref().unwrap_or("first").to_ascii_lowercase().as_str() {
        "first" => 1,
        "second" => 2,
        "third" => 3,
        "fourth" => 4,
        "last" => -1,
        other => return Err(bad(format!("unknown week index `{other}`"))),
    };
    let day_of_month = pattern.day_of_month.filter(|d| (1..=31).contains(d)).unwrap_or(i64::from(first.day()));
    let month = pattern.month.filter(|m| (1..=12).contains(m)).unwrap_or(i64::from(first.month()));
    let kind = pattern.kind.as_deref().unwrap_or("").to_ascii_lowercase();
    let mut rule = match kind.as_str() {
        "daily" => format!("FREQ=DAILY;INTERVAL={interval}"),
        "weekly" => {
            let wkst = pattern.first_day_of_week.as_deref().and_then(ical_day).unwrap_or("SU");
            format!("FREQ=WEEKLY;INTERVAL={interval};BYDAY={by_day};WKST={wkst}")
        }
        "absolutemonthly" => format!("FREQ=MONTHLY;INTERVAL={interval};{}", month_day(day_of_month, 31)),
        "relativemonthly" => format!("FREQ=MONTHLY;INTERVAL={interval};BYDAY={by_day};BYSETPOS={set_pos}"),
        "absoluteyearly" => {
            // The longest this month gets (February: 29).
            let longest = Date::new(2000, month as i8, 1).map_or(31, |d| i64::from(d.days_in_month()));
            format!("FREQ=YEARLY;INTERVAL={interval};BYMONTH={month};{}", month_day(day_of_month, longest))
        }
        "relativeyearly" => {
            format!("FREQ=YEARLY;INTERVAL={interval};BYMONTH={month};BYDAY={by_day};BYSETPOS={set_pos}")
        }
        other => return Err(bad(format!("unknown recurrence pattern `{other}`"))),
    };
    match range.kind.as_deref().unwrap_or("noEnd").to_ascii_lowercase().as_str() {
        "numbered" => {
            let n =
                range.number_of_occurrences.filter(|n| *n > 0).ok_or_else(|| bad("numbered without a count".into()))?;
            rule.push_str(&format!(";COUNT={n}"));
        }
        "enddate" => {
            let end: Date = range
                .end_date
                .as_deref()
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| bad("endDate range without an endDate".into()))?;
            if anchor.all_day {
                rule.push_str(&format!(";UNTIL={}", date_basic(end)));
            } else {
                // Inclusive: anything starting on that day, in the series' zone.
                let next_day =
                    end.tomorrow().map_err(|e| bad(e.to_string()))?.to_datetime(jiff::civil::Time::midnight());
                let limit = clock
                    .tz
                    .to_ambiguous_zoned(next_day)
                    .compatible()
                    .map_err(|e| bad(e.to_string()))?
                    .timestamp()
                    .checked_sub(1.second())
                    .map_err(|e| bad(e.to_string()))?;
                rule.push_str(&format!(";UNTIL={}", utc_basic(limit)));
            }
        }
        "noend" => {}
        other => return Err(bad(format!("unknown recurrence range `{other}`"))),
    }
    Ok(rule)
}

/// The DTSTART/DTEND lines of a series or override in the series' clock.
fn time_lines(out: &mut String, clock: &Clock, start: DateTime, end: DateTime, all_day: bool) {
    if all_day {
        let end_day =
            if end.date() > start.date() { end.date() } else { start.date().tomorrow().unwrap_or(start.date()) };
        push(out, &format!("DTSTART;VALUE=DATE:{}", date_basic(start.date())));
        push(out, &format!("DTEND;VALUE=DATE:{}", date_basic(end_day)));
    } else {
        let tzid = super::vevent::param(&clock.name);
        push(out, &format!("DTSTART;TZID={tzid}:{}", local_basic(start)));
        push(out, &format!("DTEND;TZID={tzid}:{}", local_basic(end)));
    }
}

/// A series master as one VEVENT with its RRULE, `UID` = the master's id (the UID its
/// overrides share).
pub(crate) fn series(master: &Event) -> Result<String, MappingError> {
    let clock = clock(master)?;
    let mut anchor = anchor(master, &clock)?;
    // The range may start later than the master's own start date.
    let range_start: Option<Date> = master
        .recurrence
        .as_ref()
        .and_then(|r| r.range.as_ref())
        .and_then(|r| r.start_date.as_deref())
        .and_then(|d| d.parse().ok());
    let shift_to = |a: &mut Anchor, to: DateTime| {
        let span = a.start.until(to).unwrap_or_default();
        a.start = to;
        a.end = a.end.checked_add(span).unwrap_or(a.end);
    };
    if let Some(d) = range_start.filter(|d| *d > anchor.start.date()) {
        let to = d.to_datetime(anchor.start.time());
        shift_to(&mut anchor, to);
    }
    let rule = rule_text(master, &clock, &anchor)?;
    // Graph's first occurrence is the first day on or after startDate that fits the pattern;
    // in iCalendar DTSTART is always an instance, so DTSTART moves there.
    let parsed: RRule = rule.parse().map_err(|e| MappingError::new(&master.id, format!("{e}")))?;
    if let Some(first) = parsed.occurrences(anchor.start, None, None).next()
        && first != anchor.start
    {
        shift_to(&mut anchor, first);
    }
    let mut out = String::from("BEGIN:VEVENT\r\n");
    push(&mut out, &format!("UID:{}", escape_text(&master.id)));
    push(&mut out, &format!("X-KAIROS-REMOTE-ID:{}", escape_text(&master.id)));
    time_lines(&mut out, &clock, anchor.start, anchor.end, anchor.all_day);
    push(&mut out, &format!("RRULE:{rule}"));
    details(&mut out, master);
    out.push_str("END:VEVENT\r\n");
    Ok(out)
}

/// An exception (a changed occurrence) or a cancelled occurrence of `master` as an override:
/// same UID as the series, RECURRENCE-ID in the form of the series' DTSTART, from the
/// instance's `originalStart`.
pub(crate) fn override_of(master: &Event, instance: &Event) -> Result<String, MappingError> {
    let clock = clock(master)?;
    let bad = |why: &str| MappingError::new(&instance.id, why);
    let original: Timestamp = instance
        .original_start
        .as_deref()
        .and_then(wire::offset_instant)
        .ok_or_else(|| bad("an occurrence without originalStart"))?;
    let original_local = original.to_zoned(clock.tz.clone()).datetime();
    let mut out = String::from("BEGIN:VEVENT\r\n");
    push(&mut out, &format!("UID:{}", escape_text(&master.id)));
    push(&mut out, &format!("X-KAIROS-REMOTE-ID:{}", escape_text(&instance.id)));
    if master.all_day() {
        push(&mut out, &format!("RECURRENCE-ID;VALUE=DATE:{}", date_basic(original_local.date())));
    } else {
        let tzid = super::vevent::param(&clock.name);
        push(&mut out, &format!("RECURRENCE-ID;TZID={tzid}:{}", local_basic(original_local)));
    }
    if instance.is_cancelled.unwrap_or(false) {
        let master_anchor = anchor(master, &clock)?;
        let length = master_anchor.start.until(master_anchor.end).unwrap_or_default();
        let end = original_local.checked_add(length).unwrap_or(original_local);
        time_lines(&mut out, &clock, original_local, end, master.all_day());
        push(&mut out, "STATUS:CANCELLED");
        text_summary(&mut out, instance.subject.as_deref().or(master.subject.as_deref()));
    } else {
        let a = anchor(instance, &clock)?;
        time_lines(&mut out, &clock, a.start, a.end, a.all_day);
        details(&mut out, instance);
    }
    out.push_str("END:VEVENT\r\n");
    Ok(out)
}

fn read(event: &Value) -> Result<Event, MappingError> {
    let id = event.get("id").and_then(Value::as_str).unwrap_or("");
    serde_json::from_value(event.clone()).map_err(|e| MappingError::new(id, format!("not a Graph event: {e}")))
}

/// The RRULE value of a series master (Graph event JSON).
pub fn rrule(master: &Value) -> Result<String, MappingError> {
    rrule_of(&read(master)?)
}

/// A series master (Graph event JSON, `type: seriesMaster`) as one VEVENT with its RRULE.
pub fn series_vevent(master: &Value) -> Result<String, MappingError> {
    series(&read(master)?)
}

/// An exception or cancelled occurrence (Graph event JSON with `originalStart`) of `master` as
/// a RECURRENCE-ID override.
pub fn override_vevent(master: &Value, instance: &Value) -> Result<String, MappingError> {
    override_of(&read(master)?, &read(instance)?)
}

fn text_summary(out: &mut String, subject: Option<&str>) {
    if let Some(s) = subject.filter(|s| !s.is_empty()) {
        push(out, &format!("SUMMARY:{}", escape_text(s)));
    }
}

#[cfg(test)]
mod tests;
