//! The writer thread's memo of the directory rows a booking write reads: businesses (with their
//! hosts) and users by id, and how long each one's longest hold is known to be at least.
//!
//! Every booking write re-reads everyone it involves inside its transaction (the read-side
//! [`Cache`](crate::cache::Cache) is never trusted there); reading and parsing those rows was
//! a quarter of a booking's work on the writer thread, the one thread every write waits for.
//! The memo keeps them between writes, and stays exact without relying on any caller:
//!
//! - SQLite's update hook on the writer connection bumps [`Memo`]'s generation whenever a row
//!   of `users`, `businesses` or `business_hosts` is inserted, updated or deleted, by any
//!   statement (cascades included); the memo drops everything when it sees a new generation.
//! - The write loop drops everything whenever work is undone (a rolled-back savepoint, a group
//!   that did not commit), since the memo may hold what that work wrote.
//!
//! It lives on the writer thread only; reads never see it. Another process writing the same
//! file would not bump the generation: as for the cache, run one server per SQLite file.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kairos_core::{Business, User};
use kairos_store::Tenant;
use rusqlite::Connection;
use rusqlite::hooks::Action;

/// The tables whose rows the memo copies.
const DIRECTORY_TABLES: [&str; 3] = ["users", "businesses", "business_hosts"];

#[derive(Default)]
pub(crate) struct Memo {
    /// Bumped by the update hook on every change to a directory table.
    changes: Arc<AtomicU64>,
    /// The generation the entries below were read at.
    seen: u64,
    businesses: HashMap<String, (Tenant, Arc<Business>)>,
    users: HashMap<String, (Tenant, Arc<User>)>,
    /// Lengths (ms) each user's or business's `longest_hold_ms` is known to be at least.
    longest_hold: HashMap<String, i64>,
    /// False when the update hook could not be set: then nothing is kept.
    watched: bool,
}

/// Entries kept before the memo starts over (a crude bound on memory).
const MAX_ENTRIES: usize = 50_000;

impl Memo {
    /// A memo kept exact by an update hook on `conn` (the writer connection); one that keeps
    /// nothing if the hook cannot be set.
    pub(crate) fn watching(conn: &Connection) -> Self {
        let mut memo = Self::default();
        let changes = memo.changes.clone();
        let hook = conn.update_hook(Some(move |_: Action, _: &str, table: &str, _: i64| {
            if DIRECTORY_TABLES.contains(&table) {
                changes.fetch_add(1, Ordering::Relaxed);
            }
        }));
        match hook {
            Ok(()) => memo.watched = true,
            Err(e) => {
                tracing::warn!(error = %e, "no update hook on the writer connection: booking writes read every row")
            }
        }
        memo
    }

    /// Forgets everything (work was undone).
    pub(crate) fn clear(&mut self) {
        self.businesses.clear();
        self.users.clear();
        self.longest_hold.clear();
    }

    /// Drops what a directory change since the last look made stale.
    fn fresh(&mut self) -> &mut Self {
        let now = self.changes.load(Ordering::Relaxed);
        if !self.watched
            || now != self.seen
            || self.businesses.len() + self.users.len() + self.longest_hold.len() >= MAX_ENTRIES
        {
            self.clear();
            self.seen = now;
        }
        self
    }

    pub(crate) fn business(&mut self, t: &Tenant, id: &str) -> Option<Arc<Business>> {
        self.fresh().businesses.get(id).filter(|(owner, _)| owner == t).map(|(_, b)| b.clone())
    }

    pub(crate) fn put_business(&mut self, t: &Tenant, business: Arc<Business>) {
        self.fresh().businesses.insert(business.id.clone(), (t.clone(), business));
    }

    pub(crate) fn user(&mut self, t: &Tenant, id: &str) -> Option<Arc<User>> {
        self.fresh().users.get(id).filter(|(owner, _)| owner == t).map(|(_, u)| u.clone())
    }

    pub(crate) fn put_user(&mut self, t: &Tenant, user: Arc<User>) {
        self.fresh().users.insert(user.id.clone(), (t.clone(), user));
    }

    /// True when `id`'s `longest_hold_ms` is known to be at least `length`.
    pub(crate) fn holds_at_least(&mut self, id: &str, length: i64) -> bool {
        self.fresh().longest_hold.get(id).is_some_and(|known| *known >= length)
    }

    /// `id`'s `longest_hold_ms` is now at least `length`.
    pub(crate) fn held_at_least(&mut self, id: &str, length: i64) {
        let known = self.fresh().longest_hold.entry(id.to_string()).or_insert(length);
        *known = (*known).max(length);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_to_a_directory_table_empties_the_memo_and_others_do_not() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE users (id TEXT); CREATE TABLE bookings (id TEXT);").unwrap();
        let mut memo = Memo::watching(&conn);
        memo.held_at_least("usr_1", 10);
        conn.execute("INSERT INTO bookings VALUES ('b')", []).unwrap();
        assert!(memo.holds_at_least("usr_1", 10), "a booking row changes nothing of the directory");
        conn.execute("INSERT INTO users VALUES ('u')", []).unwrap();
        assert!(!memo.holds_at_least("usr_1", 10), "a user row does");
        memo.held_at_least("usr_1", 10);
        memo.held_at_least("usr_1", 5);
        assert!(memo.holds_at_least("usr_1", 10) && !memo.holds_at_least("usr_1", 11));
        memo.clear();
        assert!(!memo.holds_at_least("usr_1", 1));
    }
}
