//! Connections and the two ways work reaches them: reads run on a pool of read-only
//! connections through tokio's blocking threads; writes run on one dedicated writer thread
//! that commits them in groups.
//!
//! Why a writer thread rather than a pool: SQLite allows one writer at a time anyway. Giving it
//! a thread of its own lets writes queue without lock contention, run back to back on a warm
//! connection with cached statements, and share one `COMMIT` when several are waiting (group
//! commit). Each write runs inside its own `SAVEPOINT`, so one that fails is rolled back alone;
//! its caller hears back only after the `COMMIT` that made its work durable.
//!
//! Checkpoints (copying the WAL back into the database file, with an fsync) run on a thread of
//! their own: left to SQLite, one would run inside every ~1000th page's `COMMIT`, on the writer
//! thread, while every queued write waits. A PASSIVE checkpoint never blocks the writer.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};

use std::time::Duration;

use kairos_store::StoreError;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Semaphore, oneshot};

use crate::cache::{Cache, CacheKey};
use crate::memo::Memo;

/// The most writes committed together.
const MAX_GROUP: usize = 128;
/// The least time between two checkpoints while writes keep coming.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL frames (64 MiB of 4 KiB pages) past which the writer itself finishes a checkpoint
/// between two transactions (see [`restart_wal`]). Each time costs the writer two fsyncs
/// (7–16 ms on the benchmark machine), while every write waits: at 1000 frames that came
/// several times a second under load.
const RESTART_AT: i64 = 16_384;

/// Maps a SQLite failure: unique violations become conflicts on `field`, foreign-key
/// violations a missing reference, anything else a backend failure.
pub(crate) fn error(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
    {
        return StoreError::NotFound;
    }
    StoreError::Backend(e.to_string())
}

/// Like [`error`], but a unique violation is a conflict on `field`.
pub(crate) fn unique(field: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Conflict(field)
        }
        _ => error(e),
    }
}

/// The file a `sqlite://PATH` (or `sqlite:PATH`) URL names; query parameters are ignored.
pub fn path_of(url: &str) -> Result<PathBuf, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Backend(format!("`{url}` is not a sqlite:// URL")))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Backend("an SQLite database needs a file path, e.g. sqlite://kairos.db".into()));
    }
    Ok(PathBuf::from(path))
}

pub(crate) fn open(path: &Path, writer: bool, synchronous_full: bool) -> Result<Connection, StoreError> {
    let flags = if writer {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = if writer {
        // The writer's WAL frames go to the file in one write per commit (see kairos-sqlite-vfs).
        let vfs = kairos_sqlite_vfs::register().map_err(StoreError::Backend)?;
        Connection::open_with_flags_and_vfs(path, flags, vfs)
    } else {
        Connection::open_with_flags(path, flags)
    }
    .map_err(error)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(error)?;
    conn.set_prepared_statement_cache_capacity(64);
    // Plans from the SQL alone: otherwise a statement whose plan may depend on a bound value
    // (any `LIMIT ?n`) is compiled again every time it is bound (SQLite's STAT4 build), which
    // the webhook fan-out and every list endpoint did on each call. Partial indexes are matched
    // on literals in our SQL, never on bound values, so no plan is lost.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(error)?;
    let sync = if synchronous_full { "FULL" } else { "NORMAL" };
    let pragmas = if writer {
        // No automatic checkpoints on this connection: the `Checkpointer` does them.
        format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;
             PRAGMA wal_autocheckpoint = 0;"
        )
    } else {
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA query_only = ON;".to_string()
    };
    conn.execute_batch(&pragmas).map_err(error)?;
    Ok(conn)
}

/// Read-only connections, used one at a time each on a blocking thread.
pub(crate) struct Readers {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    pub(crate) fn new(conns: Vec<Connection>) -> Self {
        Self { permits: Arc::new(Semaphore::new(conns.len())), idle: Mutex::new(conns) }
    }

    /// Runs `f` on a read connection inside one read transaction (one consistent snapshot).
    ///
    /// The connection goes back to the pool, and its permit is released, on the blocking
    /// thread itself: if the caller's future is dropped (a client hung up), the read still
    /// finishes and nothing leaks.
    pub(crate) async fn run<T, E>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("the store is closed".into()))?;
        let conn = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let conn = conn.ok_or_else(|| StoreError::Backend("no idle read connection".into()))?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let result = snapshot(&conn, f);
            pool.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(conn);
            drop(permit);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("a read failed: {e}")))?
    }
}

fn snapshot<T, E: From<StoreError>>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E> {
    conn.execute_batch("BEGIN").map_err(error)?;
    let result = catch_unwind(AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|_| Err(StoreError::Backend("a read panicked".into()).into()));
    // A read transaction has nothing to commit; ending it releases the snapshot.
    let _ = conn.execute_batch("ROLLBACK");
    result
}

/// What a write hands back to the writer thread: whether its work should be kept, the cache
/// entries it made stale, and how to tell its caller once the commit is known.
pub(crate) struct Done {
    keep: bool,
    stale: Vec<CacheKey>,
    reply: Box<dyn FnOnce(Result<(), StoreError>) + Send>,
}

/// A queued write, and whether it runs inside a `SAVEPOINT` of its own (see [`Journal`]).
struct Job {
    journal: Journal,
    run: Work,
}

/// A queued write's work, given the writer's connection and memo.
type Work = Box<dyn FnOnce(&Connection, &mut Memo) -> Done + Send>;

/// How a write is undone when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Journal {
    /// In a `SAVEPOINT`: a failure rolls back this write alone.
    Savepoint,
    /// Without one, for writes that refuse before they change anything (a booking checks every
    /// rule first): SQLite then copies no page into a savepoint journal, a tenth of a booking's
    /// cost. A failure that left no change needs no undoing; one that did (which such a write
    /// should never do) rolls back the whole group, and every caller in it hears so.
    CheckedFirst,
}

/// The checkpoint thread's wake-up: `(commits since the last checkpoint, stopping)`.
type Wake = Arc<(Mutex<(bool, bool)>, Condvar)>;

/// The thread that checkpoints the WAL after commits, at most every [`CHECKPOINT_EVERY`].
struct Checkpointer {
    wake: Wake,
    /// Set by the thread when its last checkpoint found the WAL past [`RESTART_AT`] frames.
    long_wal: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(conn: Connection) -> Self {
        let wake: Wake = Arc::new((Mutex::new((false, false)), Condvar::new()));
        let long_wal = Arc::new(AtomicBool::new(false));
        let (shared, long) = (wake.clone(), long_wal.clone());
        let thread = std::thread::Builder::new()
            .name("kairos-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&conn, &shared, &long))
            .ok();
        Self { wake, long_wal, thread }
    }

    fn stop(&mut self) {
        let (state, signal) = &*self.wake;
        state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1 = true;
        signal.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A commit happened: the WAL has grown.
fn poke(wake: &Wake) {
    let (state, signal) = &**wake;
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).0 = true;
    signal.notify_one();
}

fn checkpoint_loop(conn: &Connection, wake: &Wake, long_wal: &AtomicBool) {
    let (state, signal) = &**wake;
    loop {
        {
            let mut s = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            while !s.0 && !s.1 {
                s = signal.wait(s).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if s.1 {
                return;
            }
            s.0 = false;
        }
        if let Some(frames) = checkpoint(conn) {
            long_wal.store(frames >= RESTART_AT, Ordering::Relaxed);
        }
        std::thread::sleep(CHECKPOINT_EVERY);
    }
}

/// Lets the WAL start over from its beginning, run by the writer between two transactions.
///
/// SQLite rewinds the WAL only when a write transaction begins while every frame in it has
/// been copied back to the database. Under a steady stream of writes the checkpoint thread
/// never sees that moment (the writer begins again as soon as it commits), and the WAL grew
/// without end: 650 MB in two seconds of bookings, every frame written to new file pages that
/// the kernel first zeroes (a fifth of the writer's time). The checkpoint thread has already
/// copied nearly everything, so this one copies only the last few commits.
fn restart_wal(conn: &Connection) {
    checkpoint(conn);
}

/// A PASSIVE checkpoint on `conn`: the WAL's length in frames, or `None` (logged) if it failed;
/// a later commit tries again.
fn checkpoint(conn: &Connection) -> Option<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))
        .inspect_err(|e| tracing::warn!(error = %e, "a WAL checkpoint failed; a later commit retries it"))
        .ok()
}

/// The handle to the writer thread.
pub(crate) struct Writer {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpointer: Mutex<Option<Checkpointer>>,
}

impl Writer {
    /// Starts the writer on `conn`, and the checkpoint thread on `checkpoints` (another
    /// read-write connection to the same database).
    pub(crate) fn start(conn: Connection, checkpoints: Connection, cache: Arc<Cache>) -> Self {
        let checkpointer = Checkpointer::start(checkpoints);
        let (wake, long_wal) = (checkpointer.wake.clone(), checkpointer.long_wal.clone());
        let committed = move |conn: &Connection| {
            poke(&wake);
            if long_wal.swap(false, Ordering::Relaxed) {
                restart_wal(conn);
            }
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("kairos-sqlite-writer".into())
            .spawn(move || write_loop(&conn, &rx, &cache, committed))
            .ok();
        Self { jobs: Mutex::new(Some(tx)), thread: Mutex::new(thread), checkpointer: Mutex::new(Some(checkpointer)) }
    }

    /// Runs `f` in the writer's transaction. `f` returns its value and the cache entries it
    /// made stale; its error rolls back its own work only.
    pub(crate) async fn run<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<(T, Vec<CacheKey>), E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.run_with(Journal::Savepoint, f).await
    }

    /// Like [`Writer::run`], with the given way of undoing a failure.
    pub(crate) async fn run_with<T, E>(
        &self,
        journal: Journal,
        f: impl FnOnce(&Connection) -> Result<(T, Vec<CacheKey>), E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.run_memo(journal, move |conn, _| f(conn)).await
    }

    /// Like [`Writer::run_with`], for a write that reads the directory through the writer's
    /// [`Memo`].
    pub(crate) async fn run_memo<T, E>(
        &self,
        journal: Journal,
        f: impl FnOnce(&Connection, &mut Memo) -> Result<(T, Vec<CacheKey>), E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, E>>();
        let run: Work = Box::new(move |conn, memo| {
            let outcome = catch_unwind(AssertUnwindSafe(|| f(conn, memo)))
                .unwrap_or_else(|_| Err(StoreError::Backend("a write panicked".into()).into()));
            match outcome {
                Ok((value, stale)) => Done {
                    keep: true,
                    stale,
                    reply: Box::new(move |commit| {
                        let _ = tx.send(commit.map(|()| value).map_err(E::from));
                    }),
                },
                // A refusal may rest on other writes of the same group (a booking refused because
                // of one just made): if those did not commit, the refusal does not stand either.
                Err(e) => Done {
                    keep: false,
                    stale: Vec::new(),
                    reply: Box::new(move |commit| {
                        let _ = tx.send(Err(match commit {
                            Ok(()) => e,
                            Err(failed) => E::from(failed),
                        }));
                    }),
                },
            }
        });
        let sender = self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        sender
            .ok_or_else(|| StoreError::Backend("the store is closed".into()))?
            .send(Job { journal, run })
            .map_err(|_| StoreError::Backend("the writer has stopped".into()))?;
        rx.await.map_err(|_| E::from(StoreError::Backend("the writer dropped a write".into())))?
    }

    /// Stops accepting writes, lets queued ones finish and waits for the threads.
    pub(crate) fn stop(&self) {
        self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            let _ = thread.join();
        }
        if let Some(mut checkpointer) =
            self.checkpointer.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
        {
            checkpointer.stop();
        }
    }
}

/// Runs a parameterless statement through the statement cache (`execute_batch` parses its
/// SQL on every call; the writer runs these for every write).
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn write_loop(conn: &Connection, jobs: &mpsc::Receiver<Job>, cache: &Cache, committed_hook: impl Fn(&Connection)) {
    let mut memo = Memo::watching(conn);
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("kairos_sqlite_write_group_size").record(group.len() as f64);
        // A transaction left open by an earlier failure would make BEGIN fail forever.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        // A job that is dropped without running drops its reply channel: its caller gets an
        // error, and nothing of it was written.
        if let Err(e) = run_cached(conn, "BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "could not begin a write transaction");
            continue;
        }
        let mut done = Vec::with_capacity(group.len());
        // Set when the transaction can no longer be trusted: SQLite rolled it back on its own
        // (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM … may do that), or a failed job's work could
        // not be undone. Then nothing of the group is committed and every caller hears so.
        let mut broken: Option<String> = None;
        for job in group {
            if broken.is_some() {
                continue;
            }
            let journaled = job.journal == Journal::Savepoint;
            if journaled && let Err(e) = run_cached(conn, "SAVEPOINT job") {
                broken = Some(format!("could not open a savepoint: {e}"));
                continue;
            }
            let changes = conn.total_changes();
            let d = (job.run)(conn, &mut memo);
            if conn.is_autocommit() {
                broken = Some("SQLite rolled the write transaction back".to_string());
            } else if journaled {
                let ended = if d.keep {
                    run_cached(conn, "RELEASE job")
                } else {
                    // The memo may hold what the undone work wrote.
                    memo.clear();
                    conn.execute_batch("ROLLBACK TO job; RELEASE job")
                };
                if let Err(e) = ended {
                    broken = Some(format!("could not end a savepoint: {e}"));
                }
            } else if !d.keep && conn.total_changes() != changes {
                broken = Some("a write failed after changing rows, with no savepoint to undo it".to_string());
            }
            done.push(d);
        }
        let committed = match broken {
            None => run_cached(conn, "COMMIT").map_err(|e| e.to_string()),
            Some(why) => Err(why),
        };
        if committed.is_ok() {
            committed_hook(conn);
        }
        if let Err(why) = &committed {
            memo.clear();
            tracing::error!(error = %why, "a group of writes was not committed");
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
        // Stale entries go before anyone hears back, so a caller never reads its own write's
        // old state from the cache.
        cache.invalidate(done.iter().flat_map(|d| d.stale.iter()));
        for d in done {
            (d.reply)(committed.clone().map_err(|why| StoreError::Backend(format!("the write was not saved: {why}"))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, PathBuf, Arc<Cache>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = open(&path, true, false).unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER NOT NULL)").unwrap();
        (dir, path, Arc::new(Cache::default()))
    }

    fn count(path: &Path) -> i64 {
        open(path, false, false).unwrap().query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()
    }

    fn insert(n: i64) -> impl FnOnce(&Connection) -> Result<((), Vec<CacheKey>), StoreError> + Send + 'static {
        move |c| c.execute("INSERT INTO t (n) VALUES (?1)", [n]).map(|_| ((), Vec::new())).map_err(error)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_a_steady_stream_of_writes() {
        let (dir, path, cache) = setup();
        let writer =
            Arc::new(Writer::start(open(&path, true, false).unwrap(), open(&path, true, false).unwrap(), cache));
        // Eight writers keep the queue full for over ten checkpoint periods and until the WAL
        // could have passed the restart point four times; each write adds at least a 4 KiB
        // page to the WAL.
        let started = std::time::Instant::now();
        let enough = 4 * RESTART_AT as u64 * 4096 / 8;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let mut written = 0u64;
                    while started.elapsed() < CHECKPOINT_EVERY * 15 || written < enough {
                        writer
                            .run(|c| {
                                c.execute("INSERT INTO t (n) VALUES (randomblob(4096))", [])
                                    .map(|_| ((), Vec::new()))
                                    .map_err(error)
                            })
                            .await
                            .unwrap();
                        written += 4096;
                    }
                    written
                })
            })
            .collect();
        let mut written = 0;
        for task in tasks {
            written += task.await.unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("t.db-wal")).unwrap().len();
        // Without a restart the WAL holds every frame ever written, so at least `written`.
        assert!(wal < written / 2, "the WAL is {wal} bytes after {written} bytes of writes");
        writer.stop();
    }

    #[tokio::test]
    async fn a_failed_write_is_rolled_back_alone() {
        let (_dir, path, cache) = setup();
        let writer = Writer::start(open(&path, true, false).unwrap(), open(&path, true, false).unwrap(), cache);
        writer.run(insert(1)).await.unwrap();
        let failed: Result<(), StoreError> = writer
            .run(|c| {
                c.execute("INSERT INTO t (n) VALUES (2)", []).map_err(error)?;
                Err(StoreError::Conflict("n"))
            })
            .await;
        assert!(matches!(failed, Err(StoreError::Conflict("n"))));
        writer.run(insert(3)).await.unwrap();
        assert_eq!(count(&path), 2, "the failed write's own insert is gone, the others stay");
    }

    #[tokio::test]
    async fn when_sqlite_rolls_back_the_transaction_nobody_is_told_it_worked() {
        let (_dir, path, cache) = setup();
        let writer =
            Arc::new(Writer::start(open(&path, true, false).unwrap(), open(&path, true, false).unwrap(), cache));
        // Hold the writer on a slow job so the next three land in one group.
        let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
        let held = gate.clone();
        let w = writer.clone();
        let first = tokio::spawn(async move {
            w.run(move |c| {
                held.wait();
                std::thread::sleep(Duration::from_millis(100));
                insert(0)(c)
            })
            .await
        });
        tokio::task::spawn_blocking(move || gate.wait()).await.unwrap();
        let (a, b, c) = tokio::join!(
            writer.run(insert(1)),
            // Stands in for SQLITE_FULL and the like: SQLite ends the transaction itself.
            writer.run(|c| c.execute_batch("ROLLBACK").map(|()| ((), Vec::new())).map_err(error)),
            writer.run(insert(3)),
        );
        first.await.unwrap().unwrap();
        assert!(a.is_err() && b.is_err() && c.is_err(), "{a:?} {b:?} {c:?}");
        assert_eq!(count(&path), 1, "only the first group committed");
        writer.run(insert(4)).await.unwrap();
        assert_eq!(count(&path), 2, "the writer recovers for the next group");
    }

    #[tokio::test]
    async fn unjournaled_writes_keep_the_group_whole_whatever_they_do() {
        let (_dir, path, cache) = setup();
        let writer =
            Arc::new(Writer::start(open(&path, true, false).unwrap(), open(&path, true, false).unwrap(), cache));
        // A refusal before any change: nothing to undo, the rest of the group commits.
        let refused: Result<(), StoreError> =
            writer.run_with(Journal::CheckedFirst, |_| Err(StoreError::Conflict("n"))).await;
        assert!(matches!(refused, Err(StoreError::Conflict("n"))));
        writer.run_with(Journal::CheckedFirst, insert(1)).await.unwrap();
        assert_eq!(count(&path), 1);
        // A failure after a change cannot be undone alone: its whole group is rolled back, and
        // everyone in it is told so (never told of a success that was not kept).
        let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
        let held = gate.clone();
        let w = writer.clone();
        let first = tokio::spawn(async move {
            w.run(move |c| {
                held.wait();
                std::thread::sleep(Duration::from_millis(100));
                insert(10)(c)
            })
            .await
        });
        tokio::task::spawn_blocking(move || gate.wait()).await.unwrap();
        let (a, b, c) = tokio::join!(
            writer.run(insert(2)),
            writer.run_with(Journal::CheckedFirst, |c| {
                c.execute("INSERT INTO t (n) VALUES (3)", []).map_err(error)?;
                Err::<((), Vec<CacheKey>), _>(StoreError::Conflict("n"))
            }),
            writer.run(insert(4)),
        );
        first.await.unwrap().unwrap();
        assert!(a.is_err() && b.is_err() && c.is_err(), "{a:?} {b:?} {c:?}");
        assert_eq!(count(&path), 2, "only 1 and the first group's 10");
        writer.run(insert(5)).await.unwrap();
        assert_eq!(count(&path), 3);
    }

    #[tokio::test]
    async fn an_abandoned_read_gives_its_connection_back() {
        let (_dir, path, _cache) = setup();
        let readers = Arc::new(Readers::new(vec![open(&path, false, false).unwrap()]));
        let slow = readers.run(|c| {
            std::thread::sleep(Duration::from_millis(200));
            c.query_row("SELECT 1", [], |_| Ok(())).map_err(error)
        });
        assert!(tokio::time::timeout(Duration::from_millis(20), slow).await.is_err(), "the caller gave up");
        let again: Result<i64, StoreError> =
            readers.run(|c| c.query_row("SELECT 41 + 1", [], |r| r.get(0)).map_err(error)).await;
        assert_eq!(again.unwrap(), 42);
    }
}
