//! Provider-neutral events read from iCalendar, and the expansion of a series (a master
//! with RRULE/RDATE/EXDATE and its RECURRENCE-ID overrides) into the instances that touch a
//! window.
//!
//! Expansion is lazy and bounded by the window: a rule without COUNT starts at the window
//! (the rule skips whole periods before it), and iteration stops past the window's end, so a
//! daily rule from 1990 costs what the window holds. Local times that do not exist (a
//! spring-forward gap) move forward by the gap and ambiguous ones take their first
//! occurrence (RFC 5545 §3.3.5; jiff's "compatible" disambiguation).

use std::collections::BTreeMap;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan, Zoned};

use super::ical::{self, Component, DateOrTime, IcalDuration, Property};
use super::rrule::{RRule, Until};
use super::timezone::Zones;
use crate::Interval;

/// The most instances one series yields for one window: a hostile or mistaken feed
/// (`FREQ=SECONDLY` without an end) must not cost unbounded memory. Real series stay far
/// below it (a daily series over 180 days is 180; an hourly one over 62 days, 1,488).
pub const MAX_INSTANCES_PER_SERIES: usize = 20_000;

/// The most instances one calendar yields for one window, all series together.
pub const MAX_INSTANCES_PER_CALENDAR: usize = 100_000;

/// A start or end as an event states it.
#[derive(Debug, Clone, PartialEq)]
pub enum EventTime {
    /// An all-day date (`VALUE=DATE`).
    Date(Date),
    /// A wall-clock time in no zone (its reader's zone applies).
    Floating(DateTime),
    /// An instant with the zone its rules recur in (UTC for `…Z` times), and the wall-clock
    /// time as written: a series recurs from that, even when it does not exist on its first
    /// day (a start in a spring-forward gap recurs at the written time on later days).
    Zoned(Zoned, DateTime),
}

/// How an event ends.
#[derive(Debug, Clone, PartialEq)]
pub enum EventEnd {
    At(EventTime),
    For(IcalDuration),
}

/// STATUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventStatus {
    Tentative,
    #[default]
    Confirmed,
    Cancelled,
}

/// An attendee and their answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    /// Lower-cased, without `mailto:`.
    pub email: String,
    pub name: Option<String>,
    /// PARTSTAT, upper-cased (`NEEDS-ACTION` when absent).
    pub partstat: String,
}

/// An RDATE: an extra start, or a period with its own end.
#[derive(Debug, Clone, PartialEq)]
pub enum RDate {
    At(EventTime),
    Period(EventTime, EventEnd),
}

/// One VEVENT.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub uid: String,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: EventTime,
    pub end: Option<EventEnd>,
    pub rrule: Option<RRule>,
    pub rdates: Vec<RDate>,
    pub exdates: Vec<EventTime>,
    /// For an override: the start of the instance it replaces, and whether it also applies
    /// to every later one (`RANGE=THISANDFUTURE`).
    pub recurrence_id: Option<(EventTime, bool)>,
    pub status: EventStatus,
    /// TRANSP:TRANSPARENT — does not make its people busy.
    pub transparent: bool,
    pub organizer: Option<String>,
    pub attendees: Vec<Attendee>,
    pub sequence: u32,
    /// Where it begins in the feed.
    pub line: usize,
}

/// An event that could not be read, and why; the rest of the feed still counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub uid: Option<String>,
    pub line: usize,
    pub reason: String,
}

/// A feed: its events and what was skipped.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    pub name: Option<String>,
    pub events: Vec<Event>,
    pub skipped: Vec<Skipped>,
}

/// A start or end of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InstanceTime {
    Instant(Timestamp),
    Floating(DateTime),
    Date(Date),
}

impl InstanceTime {
    /// As an instant, reading floating times and dates in `zone`.
    pub fn instant(&self, zone: &TimeZone) -> Timestamp {
        match self {
            Self::Instant(t) => *t,
            Self::Floating(dt) => resolve(dt, zone),
            Self::Date(d) => resolve(&d.to_datetime(jiff::civil::Time::midnight()), zone),
        }
    }
}

/// One occurrence of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance<'a> {
    /// The event that defines it: the master, or the override that replaced this instance.
    pub event: &'a Event,
    pub start: InstanceTime,
    pub end: InstanceTime,
    /// For a recurring series: the start the rule gave it (its RECURRENCE-ID).
    pub recurrence_id: Option<InstanceTime>,
}

fn resolve(dt: &DateTime, zone: &TimeZone) -> Timestamp {
    // `compatible`: a time in a gap moves forward by the gap; an ambiguous one is the first.
    zone.to_ambiguous_zoned(*dt).compatible().map(|z| z.timestamp()).unwrap_or(Timestamp::MAX)
}

impl Calendar {
    /// Reads a feed. Syntax errors that break the structure fail it whole; an event that
    /// cannot be understood is skipped and reported.
    pub fn parse(text: &str) -> Result<Self, ical::SyntaxError> {
        let top = ical::parse(text)?;
        let mut out = Calendar::default();
        for vcal in top.iter().filter(|c| c.name == "VCALENDAR") {
            let (zones, problems) = Zones::from_calendar(vcal);
            out.skipped.extend(problems.into_iter().map(|reason| Skipped { uid: None, line: vcal.line, reason }));
            out.skipped.extend(vcal.all("X-KAIROS-UNPARSEABLE").map(|p| Skipped {
                uid: None,
                line: p.line,
                reason: p.value.clone(),
            }));
            out.name = out.name.take().or_else(|| vcal.text("X-WR-CALNAME"));
            // Google's exports state their zone here and write floating times meaning it.
            let default_zone = vcal.property("X-WR-TIMEZONE").and_then(|p| zones.resolve(&p.value));
            for c in vcal.components.iter().filter(|c| c.name == "VEVENT") {
                match read_event(c, &zones, default_zone.as_ref()) {
                    Ok(event) => out.events.push(event),
                    Err(reason) => out.skipped.push(Skipped { uid: c.text("UID"), line: c.line, reason }),
                }
            }
        }
        Ok(out)
    }

    /// Every instance of every event that overlaps `window` (an empty event overlaps when its
    /// start is inside), sorted by start. Floating times and dates are read in `floating`.
    pub fn instances(&self, window: Interval, floating: &TimeZone) -> Vec<Instance<'_>> {
        instances_of(&self.events, window, floating)
    }
}

/// [`Calendar::instances`] of events held anywhere (e.g. read item by item, as calendar sync
/// keeps them).
pub fn instances_of<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    window: Interval,
    floating: &TimeZone,
) -> Vec<Instance<'a>> {
    {
        let mut series: BTreeMap<&str, (Option<&Event>, Vec<&Event>)> = BTreeMap::new();
        // Further events with a UID already seen and no RECURRENCE-ID: some feeds export
        // every occurrence as its own event under one UID. Each is expanded on its own.
        let mut extra: Vec<&Event> = Vec::new();
        for e in events {
            let entry = series.entry(e.uid.as_str()).or_default();
            match (&e.recurrence_id, entry.0) {
                (Some(_), _) => entry.1.push(e),
                (None, None) => entry.0 = Some(e),
                (None, Some(_)) => extra.push(e),
            }
        }
        let mut out = Vec::new();
        for (master, overrides) in series.values() {
            if out.len() >= MAX_INSTANCES_PER_CALENDAR {
                break;
            }
            match master {
                Some(master) => expand(master, overrides, window, floating, &mut out),
                None => {
                    // Overrides without their master (a feed sharing single instances).
                    for o in overrides {
                        let (start, end) = single(o);
                        let rid = o.recurrence_id.as_ref().map(|(t, _)| Frame::of(&o.start).key(t));
                        push_if_overlaps(&mut out, o, start, end, rid, window, floating);
                    }
                }
            }
        }
        for e in extra {
            if out.len() >= MAX_INSTANCES_PER_CALENDAR {
                break;
            }
            expand(e, &[], window, floating, &mut out);
        }
        out.truncate(MAX_INSTANCES_PER_CALENDAR);
        out.sort_by(|a, b| {
            (a.start.instant(floating), a.end.instant(floating))
                .cmp(&(b.start.instant(floating), b.end.instant(floating)))
        });
        out
    }
}

/// The length of an event: nominal days, then exact time.
#[derive(Debug, Clone, Copy, Default)]
struct Length {
    days: i64,
    exact: SignedDuration,
}

fn length(start: &EventTime, end: Option<&EventEnd>) -> Length {
    match (start, end) {
        (_, Some(EventEnd::For(d))) => {
            let sign = if d.negative { -1 } else { 1 };
            Length { days: sign * d.days, exact: if d.negative { -d.exact } else { d.exact } }
        }
        (EventTime::Date(s), Some(EventEnd::At(EventTime::Date(e)))) => {
            Length { days: (*e - *s).get_days().into(), exact: SignedDuration::ZERO }
        }
        (EventTime::Floating(s), Some(EventEnd::At(EventTime::Floating(e)))) => {
            Length { days: 0, exact: s.duration_until(*e) }
        }
        (EventTime::Zoned(s, _), Some(EventEnd::At(EventTime::Zoned(e, _)))) => {
            Length { days: 0, exact: s.timestamp().duration_until(e.timestamp()) }
        }
        (EventTime::Date(_), _) => Length { days: 1, exact: SignedDuration::ZERO },
        // Mixed kinds (a date-time end for a floating start…): measured in UTC.
        (s, Some(EventEnd::At(e))) => {
            let utc = TimeZone::UTC;
            Length { days: 0, exact: at(s).instant(&utc).duration_until(at(e).instant(&utc)) }
        }
        _ => Length::default(),
    }
}

/// The instance time an event time denotes.
fn at(t: &EventTime) -> InstanceTime {
    match t {
        EventTime::Date(d) => InstanceTime::Date(*d),
        EventTime::Floating(dt) => InstanceTime::Floating(*dt),
        EventTime::Zoned(z, _) => InstanceTime::Instant(z.timestamp()),
    }
}

/// The frame a series recurs in.
#[derive(Clone)]
enum Frame {
    Date,
    Floating,
    Zone(TimeZone),
}

impl Frame {
    fn of(t: &EventTime) -> Self {
        match t {
            EventTime::Date(_) => Self::Date,
            EventTime::Floating(_) => Self::Floating,
            EventTime::Zoned(z, _) => Self::Zone(z.time_zone().clone()),
        }
    }

    fn local(&self, t: &EventTime) -> DateTime {
        match (self, t) {
            (_, EventTime::Date(d)) => d.to_datetime(jiff::civil::Time::midnight()),
            (_, EventTime::Floating(dt)) => *dt,
            (Self::Zone(tz), EventTime::Zoned(z, written)) if z.time_zone() == tz => *written,
            (Self::Zone(tz), EventTime::Zoned(z, _)) => z.timestamp().to_zoned(tz.clone()).datetime(),
            (_, EventTime::Zoned(z, _)) => z.datetime(),
        }
    }

    fn local_of_instant(&self, t: Timestamp, floating: &TimeZone) -> DateTime {
        match self {
            Self::Zone(tz) => t.to_zoned(tz.clone()).datetime(),
            _ => t.to_zoned(floating.clone()).datetime(),
        }
    }

    /// An occurrence's start and end.
    fn instance(&self, local: DateTime, len: Length) -> (InstanceTime, InstanceTime) {
        match self {
            Self::Date => {
                let start = local.date();
                let end = span_days(len.days).and_then(|d| start.checked_add(d).ok()).unwrap_or(start);
                (InstanceTime::Date(start), InstanceTime::Date(end))
            }
            Self::Floating => {
                let end_day = span_days(len.days).and_then(|d| local.checked_add(d).ok()).unwrap_or(local);
                let end = end_day.checked_add(len.exact).unwrap_or(end_day);
                (InstanceTime::Floating(local), InstanceTime::Floating(end))
            }
            Self::Zone(tz) => {
                let start = tz.to_ambiguous_zoned(local).compatible().ok();
                let Some(start) = start else {
                    return (InstanceTime::Instant(Timestamp::MAX), InstanceTime::Instant(Timestamp::MAX));
                };
                let end_day =
                    span_days(len.days).and_then(|d| start.checked_add(d).ok()).unwrap_or_else(|| start.clone());
                let end = end_day.timestamp().checked_add(len.exact).unwrap_or(end_day.timestamp());
                (InstanceTime::Instant(start.timestamp()), InstanceTime::Instant(end))
            }
        }
    }

    /// An event time as this frame's instance time (for EXDATE and RECURRENCE-ID matching).
    fn key(&self, t: &EventTime) -> InstanceTime {
        match (self, t) {
            (Self::Date, t) => InstanceTime::Date(self.local(t).date()),
            (Self::Floating, t) => InstanceTime::Floating(self.local(t)),
            (Self::Zone(tz), EventTime::Zoned(z, _)) => {
                let _ = tz;
                InstanceTime::Instant(z.timestamp())
            }
            (Self::Zone(tz), t) => InstanceTime::Instant(resolve(&self.local(t), tz)),
        }
    }
}

fn single(e: &Event) -> (InstanceTime, InstanceTime) {
    let frame = Frame::of(&e.start);
    frame.instance(frame.local(&e.start), length(&e.start, e.end.as_ref()))
}

fn overlaps(start: &InstanceTime, end: &InstanceTime, window: Interval, floating: &TimeZone) -> bool {
    let (s, e) = (start.instant(floating), end.instant(floating));
    if s == e { window.start() <= s && s < window.end() } else { s < window.end() && e > window.start() }
}

fn push_if_overlaps<'a>(
    out: &mut Vec<Instance<'a>>,
    event: &'a Event,
    start: InstanceTime,
    end: InstanceTime,
    recurrence_id: Option<InstanceTime>,
    window: Interval,
    floating: &TimeZone,
) {
    if overlaps(&start, &end, window, floating) {
        out.push(Instance { event, start, end, recurrence_id });
    }
}

fn expand<'a>(
    master: &'a Event,
    overrides: &[&'a Event],
    window: Interval,
    floating: &TimeZone,
    out: &mut Vec<Instance<'a>>,
) {
    let len = length(&master.start, master.end.as_ref());
    if master.rrule.is_none() && master.rdates.is_empty() {
        let (start, end) = single(master);
        push_if_overlaps(out, master, start, end, None, window, floating);
        return;
    }
    let frame = Frame::of(&master.start);
    let dtstart = frame.local(&master.start);
    // Instances that start before the window may still reach into it: look back by the
    // longest instance (and a margin for zone offsets).
    let longest = overrides.iter().map(|o| length(&o.start, o.end.as_ref())).chain([len]);
    let reach =
        longest.map(|l| l.exact + SignedDuration::from_hours(24 * (l.days.max(0) + 2))).max().unwrap_or_default();
    // A THISANDFUTURE override moves later instances: the rule's own starts must be looked
    // for as far from the window as the largest move, or the answer would depend on it.
    let moved = overrides
        .iter()
        .filter_map(|o| match &o.recurrence_id {
            Some((rid, true)) => Some(at(rid).instant(floating).duration_until(at(&o.start).instant(floating)).abs()),
            _ => None,
        })
        .max()
        .unwrap_or_default();
    let back = reach.checked_add(moved).unwrap_or(reach);
    let from = frame.local_of_instant(window.start().saturating_sub(back).unwrap_or(window.start()), floating);
    let ahead = window.end().saturating_add(moved).unwrap_or(window.end());
    let stop = frame.local_of_instant(ahead, floating).checked_add(2.days()).unwrap_or(DateTime::MAX);

    // Original starts (the rule's own, DTSTART included, and RDATEs), keyed for matching.
    let mut starts: BTreeMap<InstanceTime, (InstanceTime, InstanceTime)> = BTreeMap::new();
    let mut add = |local: DateTime, l: Length| {
        let (s, e) = frame.instance(local, l);
        let key = match frame {
            Frame::Date => InstanceTime::Date(local.date()),
            Frame::Floating => InstanceTime::Floating(local),
            Frame::Zone(_) => s,
        };
        starts.entry(key).or_insert((s, e));
    };
    add(dtstart, len);
    if let Some(rule) = &master.rrule {
        let until = rule.until.as_ref().map(|u| match u {
            Until::Date(d) => d.to_datetime(jiff::civil::Time::MAX),
            Until::Local(dt) => *dt,
            Until::Utc(t) => frame.local_of_instant(*t, &TimeZone::UTC),
        });
        for local in rule.occurrences(dtstart, until, Some(from)).take(MAX_INSTANCES_PER_SERIES) {
            if local > stop {
                break;
            }
            add(local, len);
        }
    }
    for rdate in &master.rdates {
        match rdate {
            RDate::At(t) => add(frame.local(t), len),
            RDate::Period(t, end) => add(frame.local(t), length(t, Some(end))),
        }
    }
    for ex in &master.exdates {
        starts.remove(&frame.key(ex));
    }
    // Overrides: a plain one replaces its instance; THISANDFUTURE moves it and every later one.
    let mut ranged: Vec<&Event> =
        overrides.iter().copied().filter(|o| o.recurrence_id.as_ref().is_some_and(|r| r.1)).collect();
    ranged.sort_by_key(|o| o.recurrence_id.as_ref().map(|r| frame.key(&r.0)));
    let mut by_id: BTreeMap<InstanceTime, &Event> = BTreeMap::new();
    for o in overrides.iter().copied() {
        if let Some((rid, false)) = &o.recurrence_id {
            by_id.insert(frame.key(rid), o);
        }
    }
    for (key, (start, end)) in &starts {
        let mut event = master;
        let (mut start, mut end) = (*start, *end);
        if let Some(o) = ranged.iter().rev().find(|o| o.recurrence_id.as_ref().is_some_and(|r| frame.key(&r.0) <= *key))
        {
            let rid = &o.recurrence_id.as_ref().map(|r| frame.key(&r.0));
            let (o_start, o_end) = single(o);
            if let Some(rid) = rid {
                let shift = rid.instant(floating).duration_until(o_start.instant(floating));
                let olen = o_start.instant(floating).duration_until(o_end.instant(floating));
                let moved = start.instant(floating).checked_add(shift).unwrap_or(Timestamp::MAX);
                start = retime(&start, moved, floating);
                end = retime(&end, moved.checked_add(olen).unwrap_or(Timestamp::MAX), floating);
                event = o;
            }
        }
        if let Some(o) = by_id.remove(key) {
            if o.status == EventStatus::Cancelled {
                continue;
            }
            let (s, e) = single(o);
            push_if_overlaps(out, o, s, e, Some(*key), window, floating);
            continue;
        }
        if event.status == EventStatus::Cancelled && !std::ptr::eq(event, master) {
            continue;
        }
        push_if_overlaps(out, event, start, end, Some(*key), window, floating);
    }
    // Overrides of instances the rule does not produce (or outside the expanded range).
    for (key, o) in by_id {
        if o.status != EventStatus::Cancelled {
            let (s, e) = single(o);
            push_if_overlaps(out, o, s, e, Some(key), window, floating);
        }
    }
}

/// `n` days as a span, or `None` beyond what a span can hold (a date difference or DURATION
/// that large cannot be an event's length).
fn span_days(n: i64) -> Option<jiff::Span> {
    jiff::Span::new().try_days(n).ok()
}

/// `t` moved to instant `to`, kept in its own kind.
fn retime(t: &InstanceTime, to: Timestamp, floating: &TimeZone) -> InstanceTime {
    match t {
        InstanceTime::Instant(_) => InstanceTime::Instant(to),
        InstanceTime::Floating(_) => InstanceTime::Floating(to.to_zoned(floating.clone()).datetime()),
        InstanceTime::Date(_) => InstanceTime::Date(to.to_zoned(floating.clone()).date()),
    }
}

fn read_time(p: &Property, zones: &Zones, default_zone: Option<&TimeZone>) -> Result<EventTime, String> {
    read_value(&p.value, p, zones, default_zone)
}

fn read_value(value: &str, p: &Property, zones: &Zones, default_zone: Option<&TimeZone>) -> Result<EventTime, String> {
    let parsed = ical::parse_date_or_time(value).map_err(|e| format!("{}: {e}", p.name))?;
    let date_only = p.param("VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE"));
    Ok(match parsed {
        DateOrTime::Date(d) => EventTime::Date(d),
        DateOrTime::Local(dt) if date_only => EventTime::Date(dt.date()),
        DateOrTime::Utc(t) => {
            let z = t.to_zoned(TimeZone::UTC);
            let written = z.datetime();
            EventTime::Zoned(z, written)
        }
        DateOrTime::Local(dt) => match p.param("TZID") {
            Some(tzid) => {
                let tz = zones.resolve(tzid).ok_or_else(|| format!("{}: unknown time zone TZID={tzid}", p.name))?;
                EventTime::Zoned(tz.to_ambiguous_zoned(dt).compatible().map_err(|e| format!("{}: {e}", p.name))?, dt)
            }
            None => match default_zone {
                Some(tz) => EventTime::Zoned(
                    tz.to_ambiguous_zoned(dt).compatible().map_err(|e| format!("{}: {e}", p.name))?,
                    dt,
                ),
                None => EventTime::Floating(dt),
            },
        },
    })
}

fn read_event(c: &Component, zones: &Zones, default_zone: Option<&TimeZone>) -> Result<Event, String> {
    if let Some(bad) = c.property("X-KAIROS-UNPARSEABLE") {
        return Err(bad.value.clone());
    }
    let uid = c.text("UID").map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).ok_or("a VEVENT without UID")?;
    let start = read_time(c.property("DTSTART").ok_or("a VEVENT without DTSTART")?, zones, default_zone)?;
    let end = match (c.property("DTEND"), c.property("DURATION")) {
        (Some(_), Some(_)) => return Err("a VEVENT with both DTEND and DURATION".into()),
        (Some(p), None) => Some(EventEnd::At(read_time(p, zones, default_zone)?)),
        (None, Some(p)) => Some(EventEnd::For(ical::parse_duration(&p.value)?)),
        (None, None) => None,
    };
    let rrule = match c.property("RRULE") {
        Some(p) => Some(p.value.parse::<RRule>().map_err(|e| format!("RRULE: {e}"))?),
        None => None,
    };
    let mut rdates = Vec::new();
    for p in c.all("RDATE") {
        let period = p.param("VALUE").is_some_and(|v| v.eq_ignore_ascii_case("PERIOD"));
        for v in p.value.split(',').filter(|v| !v.trim().is_empty()) {
            match v.split_once('/') {
                Some((s, e)) if period || v.contains('/') => {
                    let start = read_value(s, p, zones, default_zone)?;
                    let end = if e.trim_start_matches(['+', '-']).starts_with(['P', 'p']) {
                        EventEnd::For(ical::parse_duration(e)?)
                    } else {
                        EventEnd::At(read_value(e, p, zones, default_zone)?)
                    };
                    rdates.push(RDate::Period(start, end));
                }
                _ => rdates.push(RDate::At(read_value(v, p, zones, default_zone)?)),
            }
        }
    }
    let mut exdates = Vec::new();
    for p in c.all("EXDATE") {
        for v in p.value.split(',').filter(|v| !v.trim().is_empty()) {
            exdates.push(read_value(v, p, zones, default_zone)?);
        }
    }
    let recurrence_id = match c.property("RECURRENCE-ID") {
        Some(p) => Some((
            read_time(p, zones, default_zone)?,
            p.param("RANGE").is_some_and(|r| r.eq_ignore_ascii_case("THISANDFUTURE")),
        )),
        None => None,
    };
    let status = match c.property("STATUS").map(|p| p.value.trim().to_ascii_uppercase()) {
        Some(s) if s == "CANCELLED" => EventStatus::Cancelled,
        Some(s) if s == "TENTATIVE" => EventStatus::Tentative,
        _ => EventStatus::Confirmed,
    };
    let email = |v: &str| {
        let v = v.trim();
        let v = v.get(..7).filter(|p| p.eq_ignore_ascii_case("mailto:")).map_or(v, |_| &v[7..]);
        v.to_ascii_lowercase()
    };
    Ok(Event {
        uid,
        summary: c.text("SUMMARY"),
        description: c.text("DESCRIPTION"),
        location: c.text("LOCATION"),
        start,
        end,
        rrule,
        rdates,
        exdates,
        recurrence_id,
        status,
        transparent: c.property("TRANSP").is_some_and(|p| p.value.trim().eq_ignore_ascii_case("TRANSPARENT")),
        organizer: c.property("ORGANIZER").map(|p| email(&p.value)),
        attendees: c
            .all("ATTENDEE")
            .map(|p| Attendee {
                email: email(&p.value),
                name: p.param("CN").map(str::to_string),
                partstat: p.param("PARTSTAT").unwrap_or("NEEDS-ACTION").to_ascii_uppercase(),
            })
            .collect(),
        sequence: c.property("SEQUENCE").and_then(|p| p.value.trim().parse().ok()).unwrap_or(0),
        line: c.line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(a: &str, b: &str) -> Interval {
        Interval::new(a.parse().unwrap(), b.parse().unwrap()).unwrap()
    }

    #[test]
    fn floating_times_follow_x_wr_timezone_when_the_feed_names_one() {
        let text = "BEGIN:VCALENDAR\r\nX-WR-TIMEZONE:Europe/Berlin\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20300102T090000\r\nDTEND:20300102T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let cal = Calendar::parse(text).unwrap();
        let got = cal.instances(window("2030-01-01T00:00:00Z", "2030-01-03T00:00:00Z"), &TimeZone::UTC);
        assert_eq!(got[0].start, InstanceTime::Instant("2030-01-02T08:00:00Z".parse().unwrap()));
        // Without it, a floating time is read in the reader's zone.
        let plain = Calendar::parse(&text.replace("X-WR-TIMEZONE:Europe/Berlin\r\n", "")).unwrap();
        let tokyo = crate::Zone::parse("Asia/Tokyo").unwrap().tz().clone();
        let got = plain.instances(window("2030-01-01T00:00:00Z", "2030-01-03T00:00:00Z"), &tokyo);
        assert_eq!(got[0].start.instant(&tokyo), "2030-01-02T00:00:00Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn a_thisandfuture_move_does_not_depend_on_the_window() {
        // Weekly on Mondays; from 2030-03-04 on, moved 3 days earlier (to Fridays).
        let text = "BEGIN:VCALENDAR\r\n\
BEGIN:VEVENT\r\nUID:w\r\nDTSTART:20300107T100000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:w\r\nRECURRENCE-ID;RANGE=THISANDFUTURE:20300304T100000Z\r\nDTSTART:20300301T100000Z\r\nDURATION:PT1H\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
        let cal = Calendar::parse(text).unwrap();
        let starts = |a: &str, b: &str| -> Vec<InstanceTime> {
            cal.instances(window(a, b), &TimeZone::UTC).iter().map(|i| i.start).collect()
        };
        let wide = starts("2030-02-01T00:00:00Z", "2030-04-01T00:00:00Z");
        for (a, b) in
            [("2030-03-07T00:00:00Z", "2030-03-09T00:00:00Z"), ("2030-03-14T00:00:00Z", "2030-03-16T00:00:00Z")]
        {
            let narrow = starts(a, b);
            let inside: Vec<InstanceTime> = wide
                .iter()
                .copied()
                .filter(|s| {
                    s.instant(&TimeZone::UTC) >= a.parse::<Timestamp>().unwrap()
                        && s.instant(&TimeZone::UTC) < b.parse::<Timestamp>().unwrap()
                })
                .collect();
            assert_eq!(narrow, inside, "{a}..{b}");
            assert_eq!(narrow.len(), 1, "one moved (Friday) instance in {a}..{b}");
        }
    }

    #[test]
    fn an_unclosed_component_spoils_its_event_only() {
        let text = "BEGIN:VCALENDAR\r\n\
BEGIN:VEVENT\r\nUID:alarm\r\nDTSTART:20300102T090000Z\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:good\r\nDTSTART:20300102T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let cal = Calendar::parse(text).unwrap();
        assert_eq!(cal.events.iter().map(|e| e.uid.as_str()).collect::<Vec<_>>(), ["good"]);
        assert_eq!(cal.skipped.len(), 1);
        assert!(cal.skipped[0].reason.contains("BEGIN:VALARM is never closed"), "{:?}", cal.skipped);
    }

    #[test]
    fn a_series_yields_a_bounded_number_of_instances() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:s\r\nDTSTART:20300101T000000Z\r\nRRULE:FREQ=SECONDLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let cal = Calendar::parse(text).unwrap();
        let got = cal.instances(window("2030-01-01T00:00:00Z", "2030-03-01T00:00:00Z"), &TimeZone::UTC);
        assert!(got.len() <= MAX_INSTANCES_PER_SERIES + 1, "{}", got.len());
        assert!(got.len() >= MAX_INSTANCES_PER_SERIES);
    }

    #[test]
    fn a_bad_event_is_skipped_and_reported_and_the_rest_counts() {
        let text = "BEGIN:VCALENDAR\r\n\
BEGIN:VEVENT\r\nUID:bad-zone\r\nDTSTART;TZID=Mars/Base:20300102T090000\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:bad-rule\r\nDTSTART:20300102T090000Z\r\nRRULE:FREQ=SOMETIMES\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:good\r\nDTSTART:20300102T090000Z\r\nDURATION:PT1H\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let cal = Calendar::parse(text).unwrap();
        assert_eq!(cal.events.iter().map(|e| e.uid.as_str()).collect::<Vec<_>>(), ["good"]);
        let reasons: Vec<&str> = cal.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert!(reasons[0].contains("Mars/Base") && reasons[1].contains("RRULE"), "{reasons:?}");
        assert_eq!(cal.skipped[0].uid.as_deref(), Some("bad-zone"));
    }
}
