//! Kairos's pure domain: time intervals, time zones, working schedules, the availability
//! engine, booking rules, webhook signing and retries, and how times are described to people.
//!
//! Architecture invariant: nothing in this crate does IO, reads the clock or is async.
//! "Now" is always an argument, so every rule is testable with fixed inputs.
#![forbid(unsafe_code)]

pub mod availability;
pub mod booking;
pub mod calendar;
pub mod describe;
pub mod directory;
pub mod interval;
pub mod plan;
pub mod proposal;
pub mod schedule;
pub mod webhook;
pub mod zone;

pub use availability::{Member, Mode, Rules, Slot, SlotSearch, Unavailable};
pub use booking::{Booking, BookingEvent, BookingStatus, Participant};
pub use directory::{Business, Link, User};
pub use interval::{Interval, IntervalError, Timeline};
pub use schedule::{DateOverrides, LocalTime, Schedule, TimeRange, WorkingHours};
pub use zone::Zone;
