//! That the VFS batches at all: one write to the WAL file per commit. A test binary of its own,
//! because the counters are per process and the other tests would move them.
#![allow(clippy::unwrap_used)]

use rusqlite::{Connection, OpenFlags};

#[test]
fn each_commit_reaches_the_wal_in_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = kairos_sqlite_vfs::register().unwrap();
    let mut c = Connection::open_with_flags_and_vfs(dir.path().join("k.db"), OpenFlags::default(), vfs).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE t (id INTEGER PRIMARY KEY, tag TEXT NOT NULL, body BLOB NOT NULL);
         CREATE INDEX t_by_tag ON t (tag);",
    )
    .unwrap();
    let before = kairos_sqlite_vfs::counters();
    let commits: i64 = 200;
    for round in 0..commits {
        let tx = c.transaction().unwrap();
        for id in round * 10..round * 10 + 10 {
            tx.execute("INSERT INTO t VALUES (?1, ?2, zeroblob(900))", (id, format!("{}", id * 7919 % 1000))).unwrap();
        }
        tx.commit().unwrap();
    }
    let after = kairos_sqlite_vfs::counters();
    let asked = (after.sqlite_writes - before.sqlite_writes) as i64;
    let made = (after.file_writes - before.file_writes) as i64;
    // Each commit writes several pages (two writes each, for SQLite); the file gets one.
    assert!(asked >= 4 * commits, "SQLite wrote {asked} times for {commits} commits");
    assert_eq!(made, commits, "one write per commit, where SQLite asked for {asked}");
}
