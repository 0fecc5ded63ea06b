//! A SQLite VFS that is the platform's default VFS in every way but one: it writes a
//! transaction's WAL frames to the file in one system call per 128 KiB, where SQLite makes two
//! per frame (per page).
//!
//! Why: SQLite writes each WAL frame as two `pwrite`s, its 24-byte header and its page. A
//! Kairos booking commit touches about 36 pages (the rightmost leaf of each table and index it
//! inserts into), so 72 `pwrite`s per commit, which measured 26% of the writer thread's time
//! under `bench/http.sh`. The same bytes as one write cost a third as much (`pwrite` × 72:
//! 75–85 µs; one write of the same 146 KiB: 27 µs, on the benchmark machine). SQLite has no
//! option for this and no crate offers it, hence this small shim.
//!
//! Why it is safe: nothing SQLite or another connection can observe changes.
//! - Frames are gathered in memory only while SQLite appends them in order. The moment the frame
//!   that ends a commit (its header's "database size" field is non-zero) is complete, the
//!   gathered bytes are written, inside that same `xWrite` call: a failure is reported to SQLite
//!   there, as SQLite's own write would have been, and the transaction fails.
//! - SQLite publishes a commit to readers (the WAL index header) only after its frames have been
//!   written, and `COMMIT` returns after that, so readers and crash recovery see exactly what
//!   they would have seen.
//! - Every other use of the WAL file (a read, a sync, the size, truncation, closing, any file
//!   control) first writes what is gathered; so does a write that is not the next append (SQLite
//!   rewriting a frame of the same transaction, or starting the WAL over), which then goes
//!   straight to the file, so writes reach the file in the order SQLite made them.
//! - A process that dies with frames gathered loses only an uncommitted transaction, exactly as
//!   if it had died between two of SQLite's own writes.
//!
//! - Nothing gathered outlives the connection's hold on the WAL: before it releases the WAL's
//!   write lock (after a commit, or a rollback that left spilled frames gathered), what is
//!   gathered is written, so it can never land on frames another connection writes next.
//!
//! Only WAL files and database files are wrapped (a database file only to see that lock and the
//! moment a commit is published); journals and temporary files are the default VFS's own
//! objects, untouched.
//!
//! This is the workspace's only crate with `unsafe` code: a VFS is a table of C callbacks
//! handed raw pointers. Each `unsafe` block says why it is sound.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::ffi;

/// The name the VFS is registered under, to pass to `Connection::open_with_flags_and_vfs`.
pub const NAME: &str = "kairos-wal-batch";
const NAME_C: &CStr = c"kairos-wal-batch";

/// Gathered bytes past which a batch is written at the next frame boundary even without a
/// commit (a transaction larger than this spills to the WAL before it commits).
const MAX_BATCH: usize = 4 << 20;
/// The most the default (unix) VFS writes in one call: it masks a write's length to 17 bits, so
/// a batch goes in pieces of at most this (about 31 frames of 4 KiB pages each).
const MAX_WRITE: usize = 0x1_ffff;
/// The WAL file header's size, and a frame header's.
const WAL_HEADER: i64 = 32;
const FRAME_HEADER: i64 = 24;

/// Registers the VFS (once per process; later calls return the first outcome) and returns its
/// name. It is not made the default: connections choose it by name.
pub fn register() -> Result<&'static str, String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED.get_or_init(install).clone().map(|()| NAME)
}

/// Write calls the VFS has made to WAL files, and the frame writes they stood for (SQLite's own
/// calls), since the process started. Tests and metrics read the ratio.
pub fn counters() -> Counters {
    Counters { file_writes: FILE_WRITES.load(Ordering::Relaxed), sqlite_writes: SQLITE_WRITES.load(Ordering::Relaxed) }
}

/// See [`counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Writes that reached the WAL file (one per batch, or one per write passed straight on).
    pub file_writes: u64,
    /// Writes SQLite asked for.
    pub sqlite_writes: u64,
}

static FILE_WRITES: AtomicU64 = AtomicU64::new(0);
static SQLITE_WRITES: AtomicU64 = AtomicU64::new(0);

/// The default VFS, which does the real work; set once by [`install`].
static DEFAULT: OnceLock<Vfs> = OnceLock::new();

/// A VFS pointer that may be shared: SQLite's VFS objects are immutable once registered and
/// live for the whole process.
struct Vfs(*mut ffi::sqlite3_vfs);
// SAFETY: the pointee is never written after registration and outlives every thread.
unsafe impl Send for Vfs {}
// SAFETY: as above; SQLite calls VFS methods from any thread.
unsafe impl Sync for Vfs {}

fn install() -> Result<(), String> {
    // SAFETY: `sqlite3_vfs_find(NULL)` initialises SQLite if needed and returns the default
    // VFS, or null; it takes no pointer from us.
    let default = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
    if default.is_null() {
        return Err("SQLite has no default VFS".into());
    }
    // SAFETY: a registered VFS is valid for the life of the process and not written to.
    let mut ours = unsafe { ptr::read(default) };
    let Ok(theirs) = usize::try_from(ours.szOsFile) else {
        return Err("the default VFS reports a negative file size".into());
    };
    let Ok(size) = c_int::try_from(INNER_OFFSET + theirs) else {
        return Err("the default VFS's file objects are too large to wrap".into());
    };
    let _ = DEFAULT.set(Vfs(default));
    // Everything but opening files is the default VFS's, called with our VFS object, which
    // carries the same `pAppData` and `mxPathname`: the same precedent as SQLite's own
    // multiplexor shim, which copies the default VFS the same way.
    ours.szOsFile = size;
    ours.zName = NAME_C.as_ptr();
    ours.pNext = ptr::null_mut();
    ours.xOpen = Some(open);
    let ours = Box::leak(Box::new(ours));
    // SAFETY: `ours` is leaked, so it lives as long as SQLite may use it; registering is
    // thread-safe in SQLite's default (serialized) threading mode.
    let rc = unsafe { ffi::sqlite3_vfs_register(ours, 0) };
    if rc == ffi::SQLITE_OK { Ok(()) } else { Err(format!("could not register the {NAME} VFS (SQLite error {rc})")) }
}

/// A WAL file: the default VFS's file object lives in the same allocation, after this header.
#[repr(C)]
struct WalFile {
    /// Must come first: SQLite sees a `*mut sqlite3_file`.
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    /// The database file this WAL belongs to, while both are open.
    db: *mut DbFile,
    batch: Batch,
}

/// A database file: the default VFS's, seen through so that its WAL's gathered frames are
/// written before the WAL write lock is released and before a commit is published.
#[repr(C)]
struct DbFile {
    /// Must come first: SQLite sees a `*mut sqlite3_file`.
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    /// Its open WAL file, if any.
    wal: *mut WalFile,
}

/// Where the default VFS's file object starts inside ours (SQLite's allocations are 8-byte
/// aligned, and so is this offset).
const INNER_OFFSET: usize = {
    let (wal, db) = (std::mem::size_of::<WalFile>(), std::mem::size_of::<DbFile>());
    (if wal > db { wal } else { db }).next_multiple_of(8)
};
const _: () = assert!(std::mem::align_of::<WalFile>() <= 8 && std::mem::align_of::<DbFile>() <= 8);
/// The WAL index lock a writer holds for its whole transaction (SQLite's `WAL_WRITE_LOCK`).
const WAL_WRITE_LOCK: c_int = 0;

/// Frames gathered for one write, and what is known of the file's layout.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// The file offset of `bytes[0]`.
    start: i64,
    /// The end of what has been written (or gathered) since the WAL last started over: a write
    /// before this point rewrites something, and goes straight to the file.
    appended_to: i64,
    /// A frame's size (its header and a page), once read from the WAL header; `None` until then,
    /// and while it cannot be known nothing is gathered.
    frame_size: Option<i64>,
    /// The offset of the next frame whose end has not been reached yet.
    next_frame: i64,
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(Vfs(default)) = DEFAULT.get() else { return ffi::SQLITE_ERROR };
    let default = *default;
    // SAFETY: `default` is the registered default VFS; its `xOpen` is always set.
    let Some(default_open) = (unsafe { (*default).xOpen }) else { return ffi::SQLITE_ERROR };
    let (is_wal, is_db) = (flags & ffi::SQLITE_OPEN_WAL != 0, flags & ffi::SQLITE_OPEN_MAIN_DB != 0);
    if !is_wal && !is_db {
        // Journals and temporary files are the default VFS's objects, in place: our allocation
        // is at least as large as they need.
        // SAFETY: SQLite's arguments, passed on unchanged, with the VFS they belong to.
        return unsafe { default_open(default, name, file, flags, out_flags) };
    }
    // SAFETY: `file` points to `szOsFile` bytes, INNER_OFFSET + the default VFS's size.
    let inner = unsafe { file.cast::<u8>().add(INNER_OFFSET) }.cast::<ffi::sqlite3_file>();
    // SAFETY: `inner` is inside the allocation; a null `pMethods` marks it not open yet.
    unsafe { (*inner).pMethods = ptr::null() };
    // SAFETY: as above, for the default VFS's own file object.
    let rc = unsafe { default_open(default, name, inner, flags, out_flags) };
    if rc != ffi::SQLITE_OK {
        // SQLite closes a file whose open failed only if `pMethods` is set: leave ours null,
        // and close the inner one if the default VFS left it half open.
        // SAFETY: `inner` lies inside SQLite's allocation for this file.
        let table = unsafe { (*inner).pMethods };
        // SAFETY: a non-null table is the default VFS's static one.
        if let Some(close) = unsafe { table.as_ref() }.and_then(|m| m.xClose) {
            // SAFETY: closing, once, what the default VFS left half open.
            unsafe { close(inner) };
        }
        // SAFETY: `file` is SQLite's allocation; a null table tells SQLite not to close it.
        unsafe { (*file).pMethods = ptr::null() };
        return rc;
    }
    if is_db {
        let db = DbFile { base: ffi::sqlite3_file { pMethods: &DB_METHODS }, inner, wal: ptr::null_mut() };
        // SAFETY: `file` is SQLite's allocation for this file, large and aligned enough for a
        // `DbFile`; it holds nothing to drop yet.
        unsafe { ptr::write(file.cast::<DbFile>(), db) };
        return ffi::SQLITE_OK;
    }
    // SAFETY: `name` is the WAL's name as SQLite passes it to xOpen, which this function is for.
    let db = unsafe { ffi::sqlite3_database_file_object(name) };
    // SAFETY: a database file SQLite opened; its methods table is read, not followed.
    let db = if !db.is_null() && ptr::eq(unsafe { (*db).pMethods }, &DB_METHODS) {
        db.cast::<DbFile>()
    } else {
        ptr::null_mut()
    };
    let wal = file.cast::<WalFile>();
    // SAFETY: `file` is SQLite's allocation for this file, large and aligned enough for a
    // `WalFile`; it holds nothing to drop yet.
    unsafe {
        ptr::write(
            wal,
            WalFile { base: ffi::sqlite3_file { pMethods: &WAL_METHODS }, inner, db, batch: Batch::default() },
        )
    };
    if !db.is_null() {
        // SAFETY: `db` is this connection's open database file, one of ours (checked above).
        unsafe { (*db).wal = wal };
    }
    ffi::SQLITE_OK
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

/// The `WalFile` behind a file pointer SQLite hands to `WAL_METHODS`.
///
/// # Safety
/// `file` must be a file opened by [`open`] as a WAL file and not closed, used by one thread at
/// a time (SQLite never shares one file object between threads at once).
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    // SAFETY: the caller's contract.
    unsafe { &mut *file.cast::<WalFile>() }
}

/// One of our file objects: the default VFS's file object lives inside it, opened.
trait Wrapper {
    fn inner(&self) -> *mut ffi::sqlite3_file;

    /// The default VFS's methods for the inner file.
    fn methods(&self) -> &'static ffi::sqlite3_io_methods {
        // SAFETY: `inner` points into this file's allocation, after our header.
        let table = unsafe { (*self.inner()).pMethods };
        // SAFETY: `inner` was opened successfully, so its table is the default VFS's static one.
        unsafe { &*table }
    }
}

impl Wrapper for WalFile {
    fn inner(&self) -> *mut ffi::sqlite3_file {
        self.inner
    }
}

impl Wrapper for DbFile {
    fn inner(&self) -> *mut ffi::sqlite3_file {
        self.inner
    }
}

impl WalFile {
    /// Writes the gathered frames, if any, in one call. The batch is emptied either way: after
    /// a failure SQLite abandons the transaction and writes its frames again.
    fn flush(&mut self) -> c_int {
        if self.batch.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        let mut bytes = std::mem::take(&mut self.batch.bytes);
        let mut rc = ffi::SQLITE_OK;
        let mut offset = self.batch.start;
        for chunk in bytes.chunks(MAX_WRITE) {
            rc = self.write_through(offset, chunk.as_ptr(), chunk.len());
            if rc != ffi::SQLITE_OK {
                break;
            }
            offset += chunk.len() as i64;
        }
        bytes.clear();
        self.batch.bytes = bytes; // keeps its capacity for the next batch
        rc
    }

    fn write_through(&mut self, offset: i64, data: *const u8, len: usize) -> c_int {
        let Some(write) = self.methods().xWrite else { return ffi::SQLITE_IOERR_WRITE };
        let Ok(len) = c_int::try_from(len) else { return ffi::SQLITE_IOERR_WRITE };
        FILE_WRITES.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `data` points to `len` readable bytes (SQLite's buffer or our batch).
        unsafe { write(self.inner, data.cast::<c_void>(), len, offset) }
    }

    /// Reads the page size from the WAL header on disk, when SQLite appends to a WAL it did not
    /// start over in this connection.
    fn read_frame_size(&mut self) -> Option<i64> {
        let read = self.methods().xRead?;
        let mut header = [0u8; WAL_HEADER as usize];
        // SAFETY: `header` is writable for its length.
        let rc = unsafe { read(self.inner, header.as_mut_ptr().cast(), WAL_HEADER as c_int, 0) };
        if rc != ffi::SQLITE_OK {
            return None;
        }
        frame_size(&header)
    }

    fn write(&mut self, data: &[u8], offset: i64) -> c_int {
        SQLITE_WRITES.fetch_add(1, Ordering::Relaxed);
        let batch_end = self.batch.start + self.batch.bytes.len() as i64;
        if !self.batch.bytes.is_empty() && offset != batch_end {
            let rc = self.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        if offset == 0 {
            // SQLite starts the WAL over with a new header: appends begin again from the top.
            self.batch.appended_to = 0;
            self.batch.frame_size = frame_size(data);
        } else if self.batch.frame_size.is_none() && self.batch.bytes.is_empty() {
            self.batch.frame_size = self.read_frame_size();
        }
        let end = offset + data.len() as i64;
        let Some(frame) = self.batch.frame_size.filter(|_| offset >= self.batch.appended_to) else {
            // A rewrite of something already written (or a layout we cannot read): straight on.
            self.batch.appended_to = self.batch.appended_to.max(end);
            return self.write_through(offset, data.as_ptr(), data.len());
        };
        if self.batch.bytes.is_empty() {
            self.batch.start = offset;
            // The frame this write falls in (or the first, for the WAL header itself).
            self.batch.next_frame = WAL_HEADER + (offset - WAL_HEADER).max(0) / frame * frame;
        }
        self.batch.bytes.extend_from_slice(data);
        self.batch.appended_to = end;
        // Check each frame this write completed: the one that ends a commit sends the batch.
        let mut commit = false;
        while self.batch.next_frame + frame <= end {
            let header = self.batch.next_frame - self.batch.start;
            commit |= match usize::try_from(header) {
                // Bytes 4..8 of a frame header: the database size after a commit, else zero.
                Ok(at) => self.batch.bytes[at + 4..at + 8] != [0; 4],
                // The header was written before this batch began: assume the worst.
                Err(_) => true,
            };
            self.batch.next_frame += frame;
        }
        // A large batch goes at a frame boundary (or anywhere, if it never meets one): when is a
        // matter of speed only, as long as a commit never waits.
        let full = self.batch.bytes.len() >= MAX_BATCH
            && (self.batch.next_frame == end || self.batch.bytes.len() >= 2 * MAX_BATCH);
        if commit || full { self.flush() } else { ffi::SQLITE_OK }
    }
}

/// A frame's size from a WAL header: 24 bytes and the page size (big-endian at bytes 8..12,
/// where 1 means 65536).
fn frame_size(header: &[u8]) -> Option<i64> {
    let bytes: [u8; 4] = header.get(8..12)?.try_into().ok()?;
    let page = match u32::from_be_bytes(bytes) {
        1 => 65_536,
        p if p.is_power_of_two() && (512..=32_768).contains(&p) => i64::from(p),
        _ => return None,
    };
    Some(FRAME_HEADER + page)
}

unsafe extern "C" fn write(file: *mut ffi::sqlite3_file, data: *const c_void, amount: c_int, offset: i64) -> c_int {
    // SAFETY: SQLite calls this only on files `open` made, from one thread at a time.
    let wal = unsafe { wal(file) };
    let Ok(len) = usize::try_from(amount) else { return ffi::SQLITE_IOERR_WRITE };
    // SAFETY: SQLite passes `amount` readable bytes at `data`.
    let data = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    wal.write(data, offset)
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this only on files `open` made, once, from one thread.
    let wal = unsafe { wal(file) };
    let flushed = wal.flush();
    if !wal.db.is_null() {
        // SAFETY: the database file outlives its WAL file (SQLite closes the WAL first), and
        // unlinks itself from it if not.
        unsafe { (*wal.db).wal = ptr::null_mut() };
    }
    let closed = match wal.methods().xClose {
        // SAFETY: closing the inner file once, as SQLite closes ours once.
        Some(close) => unsafe { close(wal.inner) },
        None => ffi::SQLITE_OK,
    };
    // SAFETY: the batch was written by `open` and is dropped exactly once, here; SQLite frees
    // the allocation without touching it again.
    unsafe { ptr::drop_in_place(&mut wal.batch) };
    if flushed != ffi::SQLITE_OK { flushed } else { closed }
}

/// Defines a method that first writes the gathered frames, then does what the default VFS does.
macro_rules! after_flush {
    ($name:ident, $method:ident ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: SQLite calls this only on files `open` made, from one thread at a time.
            let wal = unsafe { wal(file) };
            let rc = wal.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            match wal.methods().$method {
                // SAFETY: SQLite's arguments, passed on to the inner file's own method.
                Some(method) => unsafe { method(wal.inner $(, $arg)*) },
                None => ffi::SQLITE_NOTFOUND,
            }
        }
    };
}

/// Defines a method that only does what the default VFS does, on a file `$file` (`wal` or
/// `db`) turns SQLite's pointer into.
macro_rules! pass {
    ($file:ident, $name:ident, $method:ident ($($arg:ident: $ty:ty),*) -> $ret:ty, $missing:expr) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> $ret {
            // SAFETY: SQLite calls this only on files `open` made, from one thread at a time.
            let file = unsafe { $file(file) };
            match file.methods().$method {
                // SAFETY: SQLite's arguments, passed on to the inner file's own method.
                Some(method) => unsafe { method(file.inner $(, $arg)*) },
                None => $missing,
            }
        }
    };
}

after_flush!(read, xRead(data: *mut c_void, amount: c_int, offset: i64));
after_flush!(truncate, xTruncate(size: i64));
after_flush!(sync, xSync(flags: c_int));
after_flush!(file_size, xFileSize(size: *mut i64));
after_flush!(file_control, xFileControl(op: c_int, arg: *mut c_void));
pass!(wal, lock, xLock(level: c_int) -> c_int, ffi::SQLITE_OK);
pass!(wal, unlock, xUnlock(level: c_int) -> c_int, ffi::SQLITE_OK);
pass!(wal, check_reserved_lock, xCheckReservedLock(out: *mut c_int) -> c_int, ffi::SQLITE_OK);
pass!(wal, sector_size, xSectorSize() -> c_int, 4096);
pass!(wal, device_characteristics, xDeviceCharacteristics() -> c_int, 0);
pass!(wal, shm_map, xShmMap(page: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int, ffi::SQLITE_IOERR_SHMMAP);
pass!(wal, shm_lock, xShmLock(offset: c_int, n: c_int, flags: c_int) -> c_int, ffi::SQLITE_IOERR_SHMLOCK);
pass!(wal, shm_unmap, xShmUnmap(delete: c_int) -> c_int, ffi::SQLITE_OK);
pass!(wal, fetch, xFetch(offset: i64, amount: c_int, out: *mut *mut c_void) -> c_int, ffi::SQLITE_OK);
pass!(wal, unfetch, xUnfetch(offset: i64, page: *mut c_void) -> c_int, ffi::SQLITE_OK);
pass!(wal, shm_barrier, xShmBarrier() -> (), ());

static DB_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(db_close),
    xRead: Some(db_read),
    xWrite: Some(db_write),
    xTruncate: Some(db_truncate),
    xSync: Some(db_sync),
    xFileSize: Some(db_file_size),
    xLock: Some(db_lock),
    xUnlock: Some(db_unlock),
    xCheckReservedLock: Some(db_check_reserved_lock),
    xFileControl: Some(db_file_control),
    xSectorSize: Some(db_sector_size),
    xDeviceCharacteristics: Some(db_device_characteristics),
    xShmMap: Some(db_shm_map),
    xShmLock: Some(db_shm_lock),
    xShmBarrier: Some(db_shm_barrier),
    xShmUnmap: Some(db_shm_unmap),
    xFetch: Some(db_fetch),
    xUnfetch: Some(db_unfetch),
};

/// The `DbFile` behind a file pointer SQLite hands to `DB_METHODS`.
///
/// # Safety
/// As [`wal`], for a database file opened by [`open`].
unsafe fn db<'a>(file: *mut ffi::sqlite3_file) -> &'a mut DbFile {
    // SAFETY: the caller's contract.
    unsafe { &mut *file.cast::<DbFile>() }
}

impl DbFile {
    /// Writes what its WAL has gathered. After a commit nothing is (the commit frame sent it);
    /// after a rollback it is frames past the WAL's end, which SQLite would have written
    /// already, and which must not wait until after another connection has written there.
    fn flush_wal(&mut self) -> c_int {
        if self.wal.is_null() {
            return ffi::SQLITE_OK;
        }
        // SAFETY: the WAL unlinks itself when closed, so a non-null `wal` is open; both files
        // belong to one connection, used by one thread at a time, and no WAL method is running.
        unsafe { (*self.wal).flush() }
    }
}

unsafe extern "C" fn db_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this only on files `open` made, once, from one thread.
    let db = unsafe { db(file) };
    if !db.wal.is_null() {
        // SAFETY: the WAL is open (it unlinks itself when closed); it must not reach back here.
        unsafe { (*db.wal).db = ptr::null_mut() };
    }
    match db.methods().xClose {
        // SAFETY: closing the inner file once, as SQLite closes ours once.
        Some(close) => unsafe { close(db.inner) },
        None => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn db_shm_lock(file: *mut ffi::sqlite3_file, offset: c_int, n: c_int, flags: c_int) -> c_int {
    // SAFETY: SQLite calls this only on files `open` made, from one thread at a time.
    let db = unsafe { db(file) };
    if flags & ffi::SQLITE_SHM_UNLOCK != 0 && offset <= WAL_WRITE_LOCK && WAL_WRITE_LOCK < offset + n {
        // Rolled-back frames only: a failure to write them loses nothing.
        let _ = db.flush_wal();
    }
    match db.methods().xShmLock {
        // SAFETY: SQLite's arguments, passed on to the inner file's own method.
        Some(lock) => unsafe { lock(db.inner, offset, n, flags) },
        None => ffi::SQLITE_IOERR_SHMLOCK,
    }
}

unsafe extern "C" fn db_shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: SQLite calls this only on files `open` made, from one thread at a time.
    let db = unsafe { db(file) };
    // SQLite publishes a commit right after this barrier. The commit frame has sent its batch
    // already, so there is nothing here but in a case SQLite's code does not have today.
    let _ = db.flush_wal();
    if let Some(barrier) = db.methods().xShmBarrier {
        // SAFETY: passed on to the inner file's own method.
        unsafe { barrier(db.inner) };
    }
}

pass!(db, db_read, xRead(data: *mut c_void, amount: c_int, offset: i64) -> c_int, ffi::SQLITE_IOERR_READ);
pass!(db, db_write, xWrite(data: *const c_void, amount: c_int, offset: i64) -> c_int, ffi::SQLITE_IOERR_WRITE);
pass!(db, db_truncate, xTruncate(size: i64) -> c_int, ffi::SQLITE_IOERR_TRUNCATE);
pass!(db, db_sync, xSync(flags: c_int) -> c_int, ffi::SQLITE_IOERR_FSYNC);
pass!(db, db_file_size, xFileSize(size: *mut i64) -> c_int, ffi::SQLITE_IOERR_FSTAT);
pass!(db, db_lock, xLock(level: c_int) -> c_int, ffi::SQLITE_IOERR_LOCK);
pass!(db, db_unlock, xUnlock(level: c_int) -> c_int, ffi::SQLITE_IOERR_UNLOCK);
pass!(db, db_check_reserved_lock, xCheckReservedLock(out: *mut c_int) -> c_int, ffi::SQLITE_IOERR_CHECKRESERVEDLOCK);
pass!(db, db_file_control, xFileControl(op: c_int, arg: *mut c_void) -> c_int, ffi::SQLITE_NOTFOUND);
pass!(db, db_sector_size, xSectorSize() -> c_int, 4096);
pass!(db, db_device_characteristics, xDeviceCharacteristics() -> c_int, 0);
pass!(db, db_shm_map, xShmMap(page: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int, ffi::SQLITE_IOERR_SHMMAP);
pass!(db, db_shm_unmap, xShmUnmap(delete: c_int) -> c_int, ffi::SQLITE_OK);
pass!(db, db_fetch, xFetch(offset: i64, amount: c_int, out: *mut *mut c_void) -> c_int, ffi::SQLITE_OK);
pass!(db, db_unfetch, xUnfetch(offset: i64, page: *mut c_void) -> c_int, ffi::SQLITE_OK);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_size_comes_from_the_wal_header() {
        let mut header = [0u8; 32];
        header[8..12].copy_from_slice(&4096u32.to_be_bytes());
        assert_eq!(frame_size(&header), Some(4120));
        header[8..12].copy_from_slice(&1u32.to_be_bytes());
        assert_eq!(frame_size(&header), Some(65_560));
        header[8..12].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(frame_size(&header), None, "not a power of two");
        assert_eq!(frame_size(&header[..10]), None, "too short");
    }
}
