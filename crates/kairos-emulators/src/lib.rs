//! Local emulators of the calendar providers, for tests and benchmarks (there is no internet
//! where Kairos is tested). Each speaks its provider's published wire format — field names,
//! paging, error bodies, status codes — closely enough that the provider's own SDK reads it
//! (see the Python fidelity tests), and each can be told to misbehave the way the real one does
//! (expired tokens, revoked grants, 410 Gone, 429 with Retry-After).
//!
//! They keep their state in memory and listen on 127.0.0.1 on a port of their own.

pub mod browser;
pub mod google;
pub mod microsoft;
pub mod radicale;
pub mod smtp;
pub mod stripe;
