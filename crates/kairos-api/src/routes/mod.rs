//! The HTTP handlers, one module per resource. Each handler extracts, calls one store or
//! domain function, and maps the result; rules live in `kairos-core`, persistence in the
//! store.

pub mod availability;
pub mod bookings;
pub mod businesses;
pub mod calendars;
pub mod connect;
pub mod events;
pub mod health;
pub mod links;
pub mod mcp;
pub mod pages;
pub mod payments;
pub mod proposals;
pub mod push;
pub mod users;
pub mod webhooks;

/// OpenAPI tags.
pub const USERS: &str = "users";
pub const BUSINESSES: &str = "businesses";
pub const AVAILABILITY: &str = "availability";
pub const BOOKINGS: &str = "bookings";
pub const WEBHOOKS: &str = "webhooks";
pub const CALENDARS: &str = "calendars";
pub const SYSTEM: &str = "system";
pub const AGENTS: &str = "agents";
pub const PROPOSALS: &str = "proposals";
