//! The availability engine: from schedules, busy time and booking rules to bookable slots.
//!
//! Everything is computed on the UTC time line from instants. Working hours are turned into
//! intervals one local day at a time in each owner's zone ([`Schedule::working_intervals`]),
//! intersected, and busy time (widened by the buffers) is subtracted; candidate starts step
//! from the start of each working interval. Every step is linear in its input, so a search
//! over many people with thousands of busy blocks stays in the tens of microseconds.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

use crate::interval::{self, Interval, Span, Timeline, secs_up};
use crate::schedule::{Clocks, Schedule};
use crate::zone::Zone;

/// Whether every member must be free, or any one of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Everyone free at once (the default).
    #[default]
    Collective,
    /// Every required member free, and at least one member of the pool (those not required);
    /// each slot lists the pool members free for it. With no pool, as collective.
    Any,
}

/// A cap on holding bookings per local day.
#[derive(Debug, Clone, Copy)]
pub struct DailyLimit<'a> {
    pub max: u32,
    /// The zone whose calendar days are counted.
    pub zone: &'a Zone,
    /// Start instants of the bookings that already count against the cap (any order).
    pub booked_starts: &'a [Timestamp],
}

/// The rules a business (or nobody, with the defaults) sets on its slots.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules<'a> {
    /// Free time needed before a slot's start.
    pub buffer_before: SignedDuration,
    /// Free time needed after a slot's end.
    pub buffer_after: SignedDuration,
    /// How far ahead of "now" the earliest slot may start.
    pub minimum_notice: SignedDuration,
    /// The distance between candidate starts; the duration when `None`.
    pub step: Option<SignedDuration>,
    pub daily_limit: Option<DailyLimit<'a>>,
}

/// One person whose time counts: their hours and what already holds their time.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub schedule: &'a Schedule,
    /// Busy time.
    pub busy: &'a Timeline,
    /// In [`Mode::Any`], a required member must be free for every slot; the others form the
    /// pool of which one suffices. Ignored in [`Mode::Collective`].
    pub required: bool,
}

/// A search for slots.
#[derive(Debug, Clone, Copy)]
pub struct SlotSearch<'a> {
    /// Slots lie wholly inside this window.
    pub window: Interval,
    pub duration: SignedDuration,
    pub now: Timestamp,
    pub mode: Mode,
    /// Hours that bound every member (a business's own), if any.
    pub base: Option<&'a Schedule>,
    /// Time held on the base itself (the bookings of a business without hosts).
    pub base_busy: &'a Timeline,
    pub members: &'a [Member<'a>],
    pub rules: Rules<'a>,
    /// Stop after this many slots.
    pub limit: Option<usize>,
}

/// A bookable slot and the members free for it (indices into [`SlotSearch::members`]: every
/// member in collective mode; the free pool members in any mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub interval: Interval,
    pub free_members: Vec<usize>,
}

/// Why a given interval cannot be booked. `member` is an index into
/// [`SlotSearch::members`]; `None` means the base (the business itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    InPast,
    TooSoon {
        minimum_notice: SignedDuration,
    },
    OutsideWorkingHours {
        member: Option<usize>,
    },
    Busy {
        member: Option<usize>,
    },
    DailyLimitReached {
        max: u32,
    },
    /// The search names nobody whose time could be booked.
    NobodyToBook,
}

/// Working hours are computed this far beyond the window on each side, so that an interval
/// cut by the window still anchors the slot grid at its true start (a local day is at most
/// 25 hours long).
const ANCHOR_MARGIN: SignedDuration = SignedDuration::from_hours(26);

impl<'a> SlotSearch<'a> {
    fn step(&self) -> SignedDuration {
        match self.rules.step {
            Some(step) if step.is_positive() => step,
            _ => self.duration,
        }
    }

    fn span(&self, around: Interval) -> Interval {
        around.widened(ANCHOR_MARGIN, ANCHOR_MARGIN)
    }

    fn base_working(&self, span: Interval, clocks: &mut Clocks) -> Option<Vec<Span>> {
        self.base.map(|b| spans_inside(&b.working_intervals_with(span, clocks)))
    }

    /// Busy time widens by the buffers the other way round: a slot needs `buffer_before` free
    /// before it, so busy time reaches `buffer_before` further past its end, and vice versa.
    fn widen(&self) -> (SignedDuration, SignedDuration) {
        (self.rules.buffer_after, self.rules.buffer_before)
    }

    /// Finds the slots, sorted by start, each at most once.
    pub fn find(&self) -> Vec<Slot> {
        if !self.duration.is_positive() {
            return Vec::new();
        }
        match (self.mode, self.members.is_empty()) {
            (_, true) => self.find_collective(),
            (Mode::Collective, false) => self.find_collective(),
            (Mode::Any, false) => self.find_any(),
        }
    }

    fn find_collective(&self) -> Vec<Slot> {
        let span = self.span(self.window);
        let mut clocks = Clocks::default();
        let mut working = match self.base_working(span, &mut clocks) {
            Some(w) => w,
            None if self.members.is_empty() => return Vec::new(),
            None => vec![Span::inside(&span)],
        };
        for m in self.members {
            working =
                interval::intersect(&working, &spans_inside(&m.schedule.working_intervals_with(span, &mut clocks)));
        }
        let (ws, we) = (secs_up(self.widen().0), secs_up(self.widen().1));
        let mut free = interval::subtract(&working, self.base_busy.spans(), ws, we);
        for m in self.members {
            free = interval::subtract(&free, m.busy.spans(), ws, we);
        }
        let everyone: Vec<usize> = (0..self.members.len()).collect();
        let counts = DayCounts::new(self.rules.daily_limit);
        let mut out = Vec::new();
        self.candidates(&working, &free, &counts, |interval| {
            out.push(Slot { interval, free_members: everyone.clone() });
            self.limit.is_none_or(|limit| out.len() < limit)
        });
        out
    }

    fn find_any(&self) -> Vec<Slot> {
        if self.members.iter().all(|m| m.required) {
            return self.find_collective();
        }
        let span = self.span(self.window);
        let (ws, we) = (secs_up(self.widen().0), secs_up(self.widen().1));
        // What every slot needs: the base's hours and every required member's, all free.
        let mut clocks = Clocks::default();
        let mut shared = self.base_working(span, &mut clocks).unwrap_or_else(|| vec![Span::inside(&span)]);
        for m in self.members.iter().filter(|m| m.required) {
            shared = interval::intersect(&shared, &spans_inside(&m.schedule.working_intervals_with(span, &mut clocks)));
        }
        let mut shared_free = interval::subtract(&shared, self.base_busy.spans(), ws, we);
        for m in self.members.iter().filter(|m| m.required) {
            shared_free = interval::subtract(&shared_free, m.busy.spans(), ws, we);
        }
        let counts = DayCounts::new(self.rules.daily_limit);
        let mut found: Vec<(Interval, usize)> = Vec::new();
        for (index, m) in self.members.iter().enumerate().filter(|(_, m)| !m.required) {
            let own = spans_inside(&m.schedule.working_intervals_with(span, &mut clocks));
            let working = interval::intersect(&shared, &own);
            let free = interval::subtract(&interval::intersect(&shared_free, &own), m.busy.spans(), ws, we);
            self.candidates(&working, &free, &counts, |interval| {
                found.push((interval, index));
                true
            });
        }
        // Each member's list is sorted already; one sort of the concatenation groups equal
        // slots together with their members in index order.
        found.sort_unstable();
        let mut slots: Vec<Slot> = Vec::new();
        for (interval, index) in found {
            match slots.last_mut() {
                Some(last) if last.interval == interval => last.free_members.push(index),
                _ => {
                    if self.limit.is_some_and(|limit| slots.len() == limit) {
                        break;
                    }
                    slots.push(Slot { interval, free_members: vec![index] });
                }
            }
        }
        slots
    }

    /// Walks the slot grid of each working span and hands every candidate that fits in
    /// `free` (and the window, notice and daily cap) to `emit` until it returns false.
    fn candidates(&self, working: &[Span], free: &[Span], counts: &DayCounts, mut emit: impl FnMut(Interval) -> bool) {
        let step = secs_up(self.step()).max(1);
        let duration = secs_up(self.duration);
        let window = Span::inside(&self.window);
        let notice_end =
            self.now.as_second() + i64::from(self.now.subsec_nanosecond() > 0) + secs_up(self.rules.minimum_notice);
        let earliest = window.start.max(notice_end);
        let mut p = 0;
        for w in working {
            let last_end = w.end.min(window.end);
            let mut start = w.start;
            if start < earliest {
                // The first grid point at or after `earliest`.
                start += ceil_div(earliest - start, step) * step;
            }
            while start + duration <= last_end {
                let end = start + duration;
                while p < free.len() && free[p].end < end {
                    p += 1;
                }
                if p == free.len() {
                    return;
                }
                if free[p].start <= start {
                    if let Some(slot) = (Span { start, end }).to_interval()
                        && counts.has_room(slot.start())
                        && !emit(slot)
                    {
                        return;
                    }
                    start += step;
                } else {
                    // Skip the grid points that start before the next free span.
                    start += ceil_div(free[p].start - start, step) * step;
                }
            }
        }
    }

    /// Checks one interval against every rule, as a booking would take it: it need not lie on
    /// the slot grid or inside the window. Returns the members free for it (all of them in
    /// collective mode; at least one in any mode), or the first reason it cannot be booked.
    pub fn check(&self, candidate: Interval) -> Result<Vec<usize>, Unavailable> {
        if candidate.start() < self.now {
            return Err(Unavailable::InPast);
        }
        if candidate.start() < self.now.checked_add(self.rules.minimum_notice).unwrap_or(Timestamp::MAX) {
            return Err(Unavailable::TooSoon { minimum_notice: self.rules.minimum_notice });
        }
        let span = self.span(candidate);
        let (ws, we) = self.widen();
        let hits = |busy: &[Interval]| busy.iter().any(|b| b.widened(ws, we).overlaps(&candidate));
        let mut clocks = Clocks::default();
        if let Some(base) = self.base {
            if !covers(&base.working_intervals_with(span, &mut clocks), candidate) {
                return Err(Unavailable::OutsideWorkingHours { member: None });
            }
        } else if self.members.is_empty() {
            return Err(Unavailable::NobodyToBook);
        }
        if hits(self.base_busy) {
            return Err(Unavailable::Busy { member: None });
        }
        if let Some(limit) = self.rules.daily_limit
            && !DayCounts::new(Some(limit)).has_room(candidate.start())
        {
            return Err(Unavailable::DailyLimitReached { max: limit.max });
        }
        // In any mode with a pool, the free pool members are the answer; otherwise everyone.
        let pooled = self.mode == Mode::Any && self.members.iter().any(|m| !m.required);
        let mut free = Vec::new();
        let mut first_pool_problem = None;
        for (index, m) in self.members.iter().enumerate() {
            let problem = if !covers(&m.schedule.working_intervals_with(span, &mut clocks), candidate) {
                Some(Unavailable::OutsideWorkingHours { member: Some(index) })
            } else if hits(m.busy) {
                Some(Unavailable::Busy { member: Some(index) })
            } else {
                None
            };
            match problem {
                None if !pooled || !m.required => free.push(index),
                None => {}
                Some(p) if !pooled || m.required => return Err(p),
                Some(p) => {
                    first_pool_problem.get_or_insert(p);
                }
            }
        }
        match first_pool_problem {
            Some(p) if free.is_empty() => Err(p),
            _ => Ok(free),
        }
    }
}

fn covers(working: &[Interval], candidate: Interval) -> bool {
    working.iter().any(|w| w.contains(&candidate))
}

/// `a / b` rounded up, for `a >= 0` and `b > 0` (signed `div_ceil` is not stable yet).
fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

fn spans_inside(intervals: &[Interval]) -> Vec<Span> {
    intervals.iter().map(Span::inside).filter(|s| s.start < s.end).collect()
}

/// Bookings per local day, for the daily cap.
struct DayCounts<'a> {
    limit: Option<DailyLimit<'a>>,
    counts: BTreeMap<Date, u32>,
}

impl<'a> DayCounts<'a> {
    fn new(limit: Option<DailyLimit<'a>>) -> Self {
        let mut counts = BTreeMap::new();
        if let Some(limit) = limit {
            for start in limit.booked_starts {
                *counts.entry(start.to_zoned(limit.zone.tz().clone()).date()).or_insert(0) += 1;
            }
        }
        Self { limit, counts }
    }

    fn has_room(&self, start: Timestamp) -> bool {
        match self.limit {
            None => true,
            Some(limit) => {
                let day = start.to_zoned(limit.zone.tz().clone()).date();
                self.counts.get(&day).copied().unwrap_or(0) < limit.max
            }
        }
    }
}

#[cfg(test)]
mod tests;
