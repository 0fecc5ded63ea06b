//! Where the API gets "now": the system clock in production, a settable clock in tests
//! (so holds, notice and expiry are tested without sleeping).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::{SignedDuration, Timestamp};

/// The current time, to the millisecond (what the store keeps).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    fixed_ms: Option<Arc<AtomicI64>>,
    /// Added to the system clock: a clock that runs, from another starting point.
    offset_ms: i64,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that runs at the system clock's pace but reads `at` now (tests: background
    /// work whose delays really pass, in the same era as a fixed API clock).
    pub fn running_from(at: Timestamp) -> Self {
        Self { fixed_ms: None, offset_ms: at.as_millisecond() - Timestamp::now().as_millisecond() }
    }

    /// A clock stopped at `at` until moved with [`Clock::set`] or [`Clock::advance`].
    pub fn fixed(at: Timestamp) -> Self {
        Self { fixed_ms: Some(Arc::new(AtomicI64::new(at.as_millisecond()))), offset_ms: 0 }
    }

    pub fn now(&self) -> Timestamp {
        match &self.fixed_ms {
            Some(ms) => Timestamp::from_millisecond(ms.load(Ordering::SeqCst)).unwrap_or(Timestamp::UNIX_EPOCH),
            None => {
                let now = Timestamp::now();
                Timestamp::from_millisecond(now.as_millisecond() + self.offset_ms).unwrap_or(now)
            }
        }
    }

    /// Moves a fixed clock; no effect on the system clock.
    pub fn set(&self, at: Timestamp) {
        if let Some(ms) = &self.fixed_ms {
            ms.store(at.as_millisecond(), Ordering::SeqCst);
        }
    }

    pub fn advance(&self, by: SignedDuration) {
        self.set(self.now() + by);
    }
}
