//! Background work over the [`Store`](kairos_store::Store): webhook delivery from the outbox,
//! the retention sweep, and the outgoing HTTP client that refuses private addresses.
#![forbid(unsafe_code)]

pub mod calendar_sync;
pub mod delivery;
pub mod egress;
pub mod email;
pub mod holds;
pub mod lease;
pub mod mail;
pub mod parsed;
pub mod proposals;
pub mod provider_sync;
pub mod push;
pub mod remote_events;
pub mod sweep;
pub mod writeback;

pub use delivery::{DeliveryConfig, DeliveryWorker};
