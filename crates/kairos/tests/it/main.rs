//! Integration tests: the real server on a random port, a temporary SQLite database, spoken
//! to over HTTP. One binary for all of them (faster to build than one per file).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation should fail the test loudly

mod bookings;
mod browser;
mod caldav;
mod calendars;
mod cli;
mod crash;
mod emails;
mod google;
mod links;
mod mcp;
mod microsoft;
mod multinode;
mod pages;
mod payments;
mod proposals;
mod readme;
mod receiver;
mod support;
mod system;
mod validation;
mod webhooks;
