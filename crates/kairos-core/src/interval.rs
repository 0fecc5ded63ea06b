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
///
/// Beside the intervals it keeps what subtraction reads: the same time rounded out to whole
/// seconds and merged into disjoint spans. Their starts and ends both ascend, so a search can
/// jump (galloping search) over the busy time that lies between two free spans (most of it,
/// when people's working hours overlap for a few hours a day) instead of walking it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline(std::sync::Arc<Busy>);

#[derive(Debug, Default, PartialEq, Eq)]
struct Busy {
    intervals: Box<[Interval]>,
    spans: Box<[Span]>,
}

impl Timeline {
    /// Sorts `intervals` by start (unless they already are) into a timeline.
    pub fn new(mut intervals: Vec<Interval>) -> Self {
        if !intervals.is_sorted_by_key(|i| i.start) {
            intervals.sort_unstable_by_key(|i| i.start);
        }
        let mut spans: Vec<Span> = Vec::with_capacity(intervals.len());
        for span in intervals.iter().map(Span::covering) {
            match spans.last_mut() {
                Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
                _ => spans.push(span),
            }
        }
        Self(std::sync::Arc::new(Busy { intervals: intervals.into(), spans: spans.into() }))
    }

    pub fn as_slice(&self) -> &[Interval] {
        &self.0.intervals
    }

    /// The busy time as sorted, disjoint whole-second spans (touching ones joined).
    pub(crate) fn spans(&self) -> &[Span] {
        &self.0.spans
    }
}

impl std::ops::Deref for Timeline {
    type Target = [Interval];
    fn deref(&self) -> &[Interval] {
        &self.0.intervals
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

/// `free` (sorted, disjoint) minus every span of `busy` (sorted, disjoint: a
/// [`Timeline::spans`]), each first widened to `[start - widen_start, end + widen_end)`.
/// Widening keeps the ends in order, so the busy time before each free span is skipped by
/// galloping search: the cost follows the busy time that meets free time, not all of it.
pub(crate) fn subtract(free: &[Span], busy: &[Span], widen_start: i64, widen_end: i64) -> Vec<Span> {
    let mut out = Vec::with_capacity(free.len() + 1);
    let mut rest = busy;
    for f in free {
        let mut cursor = f.start;
        // Busy spans that end by this free span's start can never matter again: the free
        // list is sorted too.
        rest = &rest[gallop(rest, |b| b.end + widen_end <= cursor)..];
        for b in rest {
            let (b_start, b_end) = (b.start - widen_start, b.end + widen_end);
            if b_start >= f.end {
                break;
            }
            if b_start > cursor {
                out.push(Span { start: cursor, end: b_start });
            }
            cursor = cursor.max(b_end);
            if cursor >= f.end {
                break;
            }
        }
        if cursor < f.end {
            out.push(Span { start: cursor, end: f.end });
        }
    }
    out
}

/// The first index of `sorted` where `before` turns false (`before` must be true on a prefix
/// only), searched from the front: probes 1, 2, 4, 8 … then a binary search of the last step.
/// The next free span's busy time is usually a few places on, where this takes a probe or
/// two; a plain binary search paid a chain of dependent loads across the whole rest each time
/// (a third of a search's time).
fn gallop(sorted: &[Span], before: impl Fn(&Span) -> bool) -> usize {
    let mut bound = 1;
    while bound <= sorted.len() && before(&sorted[bound - 1]) {
        bound *= 2;
    }
    let low = bound / 2;
    low + sorted[low..bound.min(sorted.len())].partition_point(before)
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
        let out = subtract(&free, Timeline::from(busy).spans(), 15 * 60, 5 * 60);
        assert_eq!(
            out,
            vec![
                sp("2026-05-01T09:00:00Z", "2026-05-01T09:45:00Z"),
                sp("2026-05-01T11:05:00Z", "2026-05-01T16:35:00Z")
            ]
        );
    }

    #[test]
    fn timelines_merge_busy_time_into_disjoint_whole_second_spans() {
        let t = Timeline::from([
            iv("2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z"),
            iv("2026-05-01T09:00:00Z", "2026-05-01T09:30:00.5Z"),
            iv("2026-05-01T10:30:00Z", "2026-05-01T10:45:00Z"),
            iv("2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z"),
        ]);
        assert_eq!(t.len(), 4, "the intervals stay as they are");
        // The half second rounds out; touching and overlapping time joins.
        assert_eq!(
            t.spans(),
            [sp("2026-05-01T09:00:00Z", "2026-05-01T09:30:01Z"), sp("2026-05-01T10:00:00Z", "2026-05-01T12:00:00Z")]
        );
    }

    #[test]
    fn gallop_finds_where_a_prefix_ends_wherever_it_ends() {
        let spans: Vec<Span> = (0..100).map(|i| Span { start: i * 10, end: i * 10 + 5 }).collect();
        for cut in [-1, 0, 4, 5, 6, 15, 499, 994, 995, 2000] {
            let expected = spans.iter().filter(|s| s.end <= cut).count();
            assert_eq!(gallop(&spans, |s| s.end <= cut), expected, "cut at {cut}");
        }
        assert_eq!(gallop(&[], |_| true), 0);
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
