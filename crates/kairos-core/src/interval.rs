//! Half-open time intervals `[start, end)` on the UTC time line, and the set operations the
//! availability engine is built from (merge, intersect, subtract), all linear over sorted input.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// A non-empty half-open interval `[start, end)`. It cannot end at or before its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawInterval")]
pub struct Interval {
    start: Timestamp,
    end: Timestamp,
}

#[derive(Deserialize)]
struct RawInterval {
    start: Timestamp,
    end: Timestamp,
}

impl TryFrom<RawInterval> for Interval {
    type Error = IntervalError;
    fn try_from(raw: RawInterval) -> Result<Self, Self::Error> {
        Interval::new(raw.start, raw.end)
    }
}

/// Why an interval could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    /// The end is not after the start.
    #[error("the end must be after the start")]
    EndNotAfterStart,
}

impl Interval {
    /// An interval from `start` (inclusive) to `end` (exclusive).
    pub fn new(start: Timestamp, end: Timestamp) -> Result<Self, IntervalError> {
        if end > start { Ok(Self { start, end }) } else { Err(IntervalError::EndNotAfterStart) }
    }

    /// The interval of `length` starting at `start`; `None` unless `length` is positive and the
    /// end is representable.
    pub fn starting_at(start: Timestamp, length: SignedDuration) -> Option<Self> {
        let end = start.checked_add(length).ok()?;
        Self::new(start, end).ok()
    }

    pub fn start(&self) -> Timestamp {
        self.start
    }

    pub fn end(&self) -> Timestamp {
        self.end
    }

    pub fn duration(&self) -> SignedDuration {
        self.end.duration_since(self.start)
    }

    /// True when the two intervals share at least one instant.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// True when `other` lies wholly inside `self`.
    pub fn contains(&self, other: &Interval) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// This interval grown by `before` at its start and `after` at its end (saturating at the
    /// ends of the representable time line).
    pub fn widened(&self, before: SignedDuration, after: SignedDuration) -> Interval {
        let start = self.start.checked_sub(before).unwrap_or(Timestamp::MIN);
        let end = self.end.checked_add(after).unwrap_or(Timestamp::MAX);
        Interval { start, end }
    }

    /// The overlap of the two intervals, if any.
    pub fn intersection(&self, other: &Interval) -> Option<Interval> {
        Interval::new(self.start.max(other.start), self.end.min(other.end)).ok()
    }
}

/// Intervals sorted by start (they may overlap): busy time as the engine reads it. Sorted once
/// when made, then shared cheaply (an `Arc`), so searches never re-sort or re-check it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline(std::sync::Arc<[Interval]>);

impl Timeline {
    /// Sorts `intervals` by start (unless they already are) into a timeline.
    pub fn new(mut intervals: Vec<Interval>) -> Self {
        if !intervals.is_sorted_by_key(|i| i.start) {
            intervals.sort_unstable_by_key(|i| i.start);
        }
        Self(intervals.into())
    }

    pub fn as_slice(&self) -> &[Interval] {
        &self.0
    }
}

impl std::ops::Deref for Timeline {
    type Target = [Interval];
    fn deref(&self) -> &[Interval] {
        &self.0
    }
}

impl From<Vec<Interval>> for Timeline {
    fn from(intervals: Vec<Interval>) -> Self {
        Self::new(intervals)
    }
}

impl FromIterator<Interval> for Timeline {
    fn from_iter<I: IntoIterator<Item = Interval>>(iter: I) -> Self {
        Self::new(iter.into_iter().collect())
    }
}

impl<const N: usize> From<[Interval; N]> for Timeline {
    fn from(intervals: [Interval; N]) -> Self {
        Self::new(intervals.to_vec())
    }
}

/// Sorts and coalesces intervals into a disjoint, sorted list; touching intervals are joined.
pub fn merge(mut intervals: Vec<Interval>) -> Vec<Interval> {
    if !intervals.is_sorted() {
        intervals.sort_unstable();
    }
    let mut out: Vec<Interval> = Vec::with_capacity(intervals.len());
    for iv in intervals {
        match out.last_mut() {
            Some(last) if iv.start <= last.end => {
                if iv.end > last.end {
                    last.end = iv.end;
                }
            }
            _ => out.push(iv),
        }
    }
    out
}

/// An interval in whole Unix seconds: the engine's working representation. Integer
/// comparisons and additions keep the hot loops (thousands of busy blocks per search) cheap;
/// [`Span::covering`] and [`Span::inside`] round outward and inward so that nothing busy is
/// ever lost to rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Span {
    pub start: i64,
    pub end: i64,
}

impl Span {
    /// The smallest whole-second span containing `iv` (for busy time).
    pub fn covering(iv: &Interval) -> Span {
        let end = iv.end.as_second() + i64::from(iv.end.subsec_nanosecond() > 0);
        Span { start: iv.start.as_second(), end }
    }

    /// The largest whole-second span inside `iv` (for free time); may be empty.
    pub fn inside(iv: &Interval) -> Span {
        let start = iv.start.as_second() + i64::from(iv.start.subsec_nanosecond() > 0);
        Span { start, end: iv.end.as_second() }
    }

    pub fn to_interval(self) -> Option<Interval> {
        Interval::new(Timestamp::from_second(self.start).ok()?, Timestamp::from_second(self.end).ok()?).ok()
    }
}

/// Whole seconds of a duration, rounded up (buffers and notice only ever grow).
pub(crate) fn secs_up(d: SignedDuration) -> i64 {
    d.as_secs() + i64::from(d.subsec_nanos() > 0)
}

/// The intersection of two sorted, disjoint lists.
pub(crate) fn intersect(a: &[Span], b: &[Span]) -> Vec<Span> {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (start, end) = (a[i].start.max(b[j].start), a[i].end.min(b[j].end));
        if start < end {
            out.push(Span { start, end });
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// `free` (sorted, disjoint) minus every interval of `busy` (rounded out to whole seconds),
/// each first widened to `[start - widen_start, end + widen_end)`. `busy` must be sorted by
/// start; its intervals may overlap one another. Linear in `free.len() + busy.len()`, and it
/// reads `busy` in place: searches pass thousands of busy intervals.
pub(crate) fn subtract(free: &[Span], busy: &[Interval], widen_start: i64, widen_end: i64) -> Vec<Span> {
    let mut out = Vec::with_capacity(free.len() + 1);
    let mut j = 0;
    for f in free {
        let mut cursor = f.start;
        // Busy spans that end before this free span starts can never matter again: the free
        // list is sorted, so skip them for good.
        while j < busy.len() && Span::covering(&busy[j]).end + widen_end <= cursor {
            j += 1;
        }
        for b in &busy[j..] {
            let b = Span::covering(b);
            let (b_start, b_end) = (b.start - widen_start, b.end + widen_end);
            if b_start >= f.end {
                break;
            }
            if b_end > cursor {
                if b_start > cursor {
                    out.push(Span { start: cursor, end: b_start });
                }
                cursor = b_end;
                if cursor >= f.end {
                    break;
                }
            }
        }
        if cursor < f.end {
            out.push(Span { start: cursor, end: f.end });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn iv(a: &str, b: &str) -> Interval {
        Interval::new(ts(a), ts(b)).unwrap()
    }

    #[test]
    fn an_interval_cannot_end_at_or_before_its_start() {
        let t = ts("2026-05-01T09:00:00Z");
        assert_eq!(Interval::new(t, t), Err(IntervalError::EndNotAfterStart));
        assert!(Interval::new(ts("2026-05-01T10:00:00Z"), t).is_err());
    }

    #[test]
    fn merge_joins_overlapping_and_touching_intervals() {
        let merged = merge(vec![
            iv("2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z"),
            iv("2026-05-01T09:00:00Z", "2026-05-01T10:00:00Z"),
            iv("2026-05-01T10:00:00Z", "2026-05-01T10:30:00Z"),
            iv("2026-05-01T11:30:00Z", "2026-05-01T11:45:00Z"),
        ]);
        assert_eq!(
            merged,
            vec![
                iv("2026-05-01T09:00:00Z", "2026-05-01T10:30:00Z"),
                iv("2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z"),
            ]
        );
    }

    fn sp(a: &str, b: &str) -> Span {
        Span::covering(&iv(a, b))
    }

    #[test]
    fn subtract_removes_widened_busy_time() {
        let free = [sp("2026-05-01T09:00:00Z", "2026-05-01T17:00:00Z")];
        let busy = [
            iv("2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z"),
            iv("2026-05-01T10:30:00Z", "2026-05-01T10:45:00Z"),
            iv("2026-05-01T16:50:00Z", "2026-05-01T18:00:00Z"),
        ];
        let out = subtract(&free, &busy, 15 * 60, 5 * 60);
        assert_eq!(
            out,
            vec![
                sp("2026-05-01T09:00:00Z", "2026-05-01T09:45:00Z"),
                sp("2026-05-01T11:05:00Z", "2026-05-01T16:35:00Z")
            ]
        );
    }

    #[test]
    fn intersect_keeps_only_common_time() {
        let a =
            [sp("2026-05-01T09:00:00Z", "2026-05-01T12:00:00Z"), sp("2026-05-01T13:00:00Z", "2026-05-01T17:00:00Z")];
        let b = [sp("2026-05-01T11:00:00Z", "2026-05-01T14:00:00Z")];
        assert_eq!(
            intersect(&a, &b),
            vec![
                sp("2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z"),
                sp("2026-05-01T13:00:00Z", "2026-05-01T14:00:00Z")
            ]
        );
    }

    #[test]
    fn spans_round_busy_time_outward_and_free_time_inward() {
        let odd = Interval::new("2026-05-01T09:00:00.5Z".parse().unwrap(), "2026-05-01T10:00:00.25Z".parse().unwrap())
            .unwrap();
        let out = Span::covering(&odd);
        let inn = Span::inside(&odd);
        assert_eq!((out.end - out.start, inn.end - inn.start), (3601, 3599));
    }
}
