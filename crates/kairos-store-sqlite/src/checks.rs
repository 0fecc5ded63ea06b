//! Migration 10: the CHECK constraints of the tables every booking writes, restated without
//! `IN (…)` lists.
//!
//! SQLite evaluates `status IN ('a', 'b', 'c')` in a CHECK by building a temporary b-tree of
//! the list each time the row is inserted or updated (`OpenEphemeral` in its bytecode): a page
//! allocated and zeroed, the list inserted, the tree dropped. A booking wrote five such rows,
//! which was the largest single cost of the booking write path. `status = 'a' OR status = 'b'
//! …` is the same rule, evaluated in place.
//!
//! Only a CHECK's text changes, so every stored row stays valid and the on-disk format is
//! untouched; the schema is therefore edited in place, by the procedure SQLite documents for
//! such changes (<https://www.sqlite.org/lang_altertable.html#otheralter>): within the
//! migration's transaction, rewrite the table's SQL in `sqlite_schema` and bump
//! `schema_version` so every other connection reloads it. The migrating connection itself is
//! closed afterwards (`SqliteStore::open` opens the writer anew), as SQLite advises.

use rusqlite::Transaction;
use rusqlite_migration::{HookError, HookResult};

/// `(table, the CHECK as created, the same CHECK without a list)`.
const REWRITES: [(&str, &str, &str); 4] = [
    (
        "bookings",
        "CHECK (status IN ('confirmed', 'pending_payment', 'cancelled'))",
        "CHECK (status = 'confirmed' OR status = 'pending_payment' OR status = 'cancelled')",
    ),
    (
        "booking_emails",
        "CHECK (kind IN ('confirmation', 'updated', 'cancelled'))",
        "CHECK (kind = 'confirmation' OR kind = 'updated' OR kind = 'cancelled')",
    ),
    (
        "booking_emails",
        "CHECK (status IN ('pending', 'sent', 'skipped', 'failed'))",
        "CHECK (status = 'pending' OR status = 'sent' OR status = 'skipped' OR status = 'failed')",
    ),
    (
        "webhook_deliveries",
        "CHECK (status IN ('pending', 'succeeded', 'failed'))",
        "CHECK (status = 'pending' OR status = 'succeeded' OR status = 'failed')",
    ),
];

pub(crate) fn without_in_lists(tx: &Transaction) -> HookResult {
    let version: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    tx.execute_batch("PRAGMA writable_schema = ON")?;
    for (table, from, to) in REWRITES {
        let sql: String =
            tx.query_row("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))?;
        if !sql.contains(from) {
            return Err(HookError::Hook(format!("table {table} does not have the expected `{from}`")));
        }
        tx.execute(
            "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = ?2",
            [sql.replace(from, to), table.to_string()],
        )?;
    }
    tx.execute_batch(&format!("PRAGMA schema_version = {}; PRAGMA writable_schema = OFF;", version + 1))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    /// The bytecode of `sql`'s opcodes.
    fn opcodes(c: &Connection, sql: &str) -> Vec<String> {
        let mut s = c.prepare(&format!("EXPLAIN {sql}")).unwrap();
        s.query_map([], |r| r.get::<_, String>(1)).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn the_booking_path_builds_no_temporary_trees_and_the_rules_still_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut migrating = crate::db::open(&path, true, false).unwrap();
        crate::migrations().to_latest(&mut migrating).unwrap();
        drop(migrating);
        let c = crate::db::open(&path, true, false).unwrap();
        for sql in [
            "INSERT INTO bookings (id, account_id, mode, status, title, metadata, start_at, end_at, held_from, held_until, created_at, updated_at, holds_business)
             VALUES ('b', 'a', 'test', 'confirmed', 't', '{}', 1, 2, 1, 2, 0, 0, 1)",
            "INSERT INTO booking_emails (booking_id, recipient, account_id, mode, position, kind, version, status, next_attempt_at, updated_at)
             VALUES ('b', 'r', 'a', 'test', 0, 'confirmation', 0, 'pending', 0, 0)",
        ] {
            let ops = opcodes(&c, sql);
            assert!(!ops.iter().any(|o| o == "OpenEphemeral"), "{sql}: {ops:?}");
            c.execute(sql, []).unwrap();
        }
        let bad = c.execute("UPDATE bookings SET status = 'lost' WHERE id = 'b'", []);
        assert!(bad.unwrap_err().to_string().contains("CHECK constraint failed"));
        let bad = c.execute("UPDATE booking_emails SET kind = 'spam'", []);
        assert!(bad.unwrap_err().to_string().contains("CHECK constraint failed"));
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
    }
}
