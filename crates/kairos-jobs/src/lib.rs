//! Background work over the [`Store`](kairos_store::Store): webhook delivery from the outbox,
//! the retention sweep, and the outgoing HTTP client that refuses private addresses.
#![forbid(unsafe_code)]

pub mod calendar_sync;
pub mod delivery;
pub mod egress;
pub mod sweep;

pub use delivery::{DeliveryConfig, DeliveryWorker};
