//! The calendar model every provider feeds: iCalendar (RFC 5545) read into provider-neutral
//! events, time zones as calendars name them (IANA, Windows, or an embedded VTIMEZONE), and
//! recurring series expanded lazily into the instances that touch a window.

pub mod busy;
pub mod event;
pub mod ical;
pub mod invite;
pub mod rrule;
pub mod timezone;
mod windows_zones;
pub mod write;

pub use busy::{BusyRules, busy_intervals, busy_of};
pub use event::{Calendar, Event, EventTime, Instance, InstanceTime, Skipped, instances_of};
pub use invite::{Invitation, InviteMethod, Person};
