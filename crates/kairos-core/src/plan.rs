//! Assembling a search from what a store loaded: who is involved (a business, its hosts,
//! named participants) and what holds their time. Both the slot search and the re-check a
//! store makes inside its booking transaction go through here, so they cannot disagree.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::availability::{Member, Mode, Rules, Slot, SlotSearch, Unavailable};
use crate::directory::{Business, User};
use crate::interval::{Interval, Timeline};

/// Everyone whose time a search or booking involves, and their busy time.
#[derive(Debug, Clone, Default)]
pub struct Party {
    pub business: Option<Arc<Business>>,
    /// The business's hosts first (in host order), then named participants; no repeats.
    /// Shared, because stores hand out the same users to many concurrent searches.
    pub members: Vec<Arc<User>>,
    /// Whether each member is required even in any mode (same order): people named explicitly
    /// while a business's hosts form the pool. Empty means none is.
    pub required: Vec<bool>,
    /// Busy time of each member, same order, each list sorted by start. It may reach beyond
    /// the window (stores share one list among many searches instead of copying a slice).
    pub busy: Vec<Timeline>,
    /// Time held on the business itself: its bookings that hold no person's time (made while
    /// it had no hosts), whatever its hosts are now.
    pub base_busy: Timeline,
    /// Starts of the business's bookings that count against its daily cap.
    pub booked_starts: Vec<Timestamp>,
}

/// What was asked for.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    pub window: Interval,
    pub duration: SignedDuration,
    pub now: Timestamp,
    pub mode: Mode,
    pub limit: Option<usize>,
}

impl Party {
    /// Runs `f` over the search this party and ask describe.
    fn with_search<R>(&self, ask: Ask, f: impl FnOnce(&SlotSearch) -> R) -> R {
        let members: Vec<Member> = self
            .members
            .iter()
            .zip(&self.busy)
            .enumerate()
            .map(|(i, (u, busy))| Member {
                schedule: &u.schedule,
                busy,
                required: self.required.get(i).copied().unwrap_or(false),
            })
            .collect();
        let rules = match &self.business {
            Some(b) => b.rules(&self.booked_starts),
            None => Rules::default(),
        };
        let search = SlotSearch {
            window: ask.window,
            duration: ask.duration,
            now: ask.now,
            mode: ask.mode,
            base: self.business.as_ref().map(|b| &b.schedule),
            base_busy: &self.base_busy,
            members: &members,
            rules,
            limit: ask.limit,
        };
        f(&search)
    }

    /// The bookable slots.
    pub fn slots(&self, ask: Ask) -> Vec<Slot> {
        self.with_search(ask, |s| s.find())
    }

    /// Whether `interval` can be booked now; the indices of the members free for it.
    pub fn check(&self, interval: Interval, now: Timestamp, mode: Mode) -> Result<Vec<usize>, Unavailable> {
        let ask = Ask { window: interval, duration: interval.duration(), now, mode, limit: None };
        self.with_search(ask, |s| s.check(interval))
    }

    /// How far around an interval busy time must be loaded for a check to see everything
    /// that could matter: the buffers on both sides.
    pub fn busy_margin(business: Option<&Business>) -> SignedDuration {
        let minutes = business.map(|b| b.buffer_before_minutes.max(b.buffer_after_minutes)).unwrap_or(0);
        SignedDuration::from_mins(i64::from(minutes))
    }
}
