//! A thin layer over SQLite's default VFS that coalesces the writes of WAL
//! frames into one system call.
//!
//! SQLite writes each WAL frame with two `pwrite` calls (a 24-byte header,
//! then the page), so an enqueue's commit of 6 pages costs 13 system calls
//! before its fsync, and a worker's commit of 300 pages about 600. On a
//! virtual machine each call costs microseconds. This layer keeps
//! consecutive writes to a WAL file in a buffer and hands them to the real
//! file in one call before anything could observe them:
//! - before the WAL file is synced, read, sized, truncated, closed or sent a
//!   file control;
//! - before its connection changes a lock on, or fences, the shared-memory
//!   wal-index. That is the only way frames become visible to any other
//!   connection: SQLite publishes a commit in the wal-index only after
//!   writing its frames (and, with `synchronous=FULL`, after syncing them).
//!
//! Every reader therefore sees exactly the bytes it would have seen without
//! the buffer, and durability is unchanged: a commit is acknowledged after
//! its sync, and the sync comes after the flush. A write error (a full
//! disk) is reported by the call that flushes, normally the commit's sync,
//! which fails the commit as the write itself would have.
//!
//! A connection is used by one thread at a time, and a WAL file belongs to
//! one connection, so the buffer needs no lock.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;
use std::sync::Once;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use rusqlite::ffi;

/// A buffer larger than this is written out before it grows further. The
/// unix VFS writes at most 128 KiB - 1 bytes per call (it masks the length
/// with 0x1ffff), so this stays below that.
const PENDING_MAX: usize = 120 * 1024;

/// Bytes this process's connections have written to WAL files: what
/// `jobmgr bench` reports per enqueued run. One relaxed add per write call.
static WAL_BYTES: AtomicU64 = AtomicU64::new(0);

/// How many bytes this process has written to WAL files.
pub fn wal_bytes() -> u64 {
    WAL_BYTES.load(Ordering::Relaxed)
}

/// The VFS this layer wraps (SQLite's default, "unix" on Linux).
static REAL_VFS: AtomicPtr<ffi::sqlite3_vfs> = AtomicPtr::new(ptr::null_mut());

/// One open file: SQLite's header, then the real VFS's file, which lives in
/// the same allocation at `REAL_AT`.
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    is_wal: bool,
    /// WAL bytes written but not yet handed to the real file, and where
    /// they start.
    pending: Vec<u8>,
    pending_at: i64,
    /// A main database file's open WAL, or a WAL's main database file (so a
    /// wal-index lock change on the first can flush the second).
    peer: *mut File,
}

/// Where the real file starts inside SQLite's allocation (8-byte aligned).
const REAL_AT: usize = (size_of::<File>() + 7) & !7;

/// Registers the layer as the process's default VFS, once. Connections
/// opened afterwards (the pool's, the writer's, the bench's) all use it.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_vfs_find initializes SQLite and returns a VFS
        // that lives for the whole process; the copy registered here is
        // leaked, so it lives as long.
        unsafe {
            let real = ffi::sqlite3_vfs_find(ptr::null());
            if real.is_null() {
                log::warn!("no default SQLite VFS; WAL writes are not coalesced");
                return;
            }
            REAL_VFS.store(real, Ordering::Release);
            // A copy of the real VFS: every method but xOpen is the real
            // one, which ignores the VFS pointer it is given or reads the
            // copied fields.
            let mut vfs = ptr::read(real);
            vfs.szOsFile = (REAL_AT + (*real).szOsFile as usize) as c_int;
            vfs.zName = c"jobmgr".as_ptr();
            vfs.pNext = ptr::null_mut();
            vfs.xOpen = Some(x_open);
            let vfs = Box::leak(Box::new(vfs));
            let rc = ffi::sqlite3_vfs_register(vfs, 1);
            if rc != ffi::SQLITE_OK {
                log::warn!("registering the WAL-coalescing VFS failed ({rc})");
            }
        }
    });
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite hands over szOsFile bytes for `file`; the real file
    // goes at REAL_AT. SQLite calls xClose only when pMethods is set, so it
    // stays null until the real open succeeded and File is written.
    unsafe {
        (*file).pMethods = ptr::null();
        let real_vfs = REAL_VFS.load(Ordering::Acquire);
        let real = file.cast::<u8>().add(REAL_AT).cast::<ffi::sqlite3_file>();
        let Some(open) = (*real_vfs).xOpen else {
            return ffi::SQLITE_CANTOPEN;
        };
        let rc = open(real_vfs, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            if let Some(close) = (*real).pMethods.as_ref().and_then(|m| m.xClose) {
                close(real);
            }
            return rc;
        }
        let version = (*(*real).pMethods).iVersion;
        let this = file.cast::<File>();
        ptr::write(
            this,
            File {
                base: ffi::sqlite3_file {
                    pMethods: methods_for(version),
                },
                real,
                is_wal: flags & ffi::SQLITE_OPEN_WAL != 0,
                pending: Vec::new(),
                pending_at: 0,
                peer: ptr::null_mut(),
            },
        );
        if (*this).is_wal && !name.is_null() {
            // The pager opens its WAL with a name SQLite can map back to
            // the main database file, which this layer opened too.
            let main = ffi::sqlite3_database_file_object(name).cast::<File>();
            if !main.is_null() && is_ours((*main).base.pMethods) {
                (*main).peer = this;
                (*this).peer = main;
            }
        }
        ffi::SQLITE_OK
    }
}

static METHODS_V1: ffi::sqlite3_io_methods = methods(1);
static METHODS_V2: ffi::sqlite3_io_methods = methods(2);
static METHODS_V3: ffi::sqlite3_io_methods = methods(3);

/// The same version as the real file's methods, so SQLite asks this layer
/// for shared memory or memory maps only when the real file has them.
fn methods_for(version: c_int) -> *const ffi::sqlite3_io_methods {
    match version {
        ..=1 => &METHODS_V1,
        2 => &METHODS_V2,
        _ => &METHODS_V3,
    }
}

fn is_ours(m: *const ffi::sqlite3_io_methods) -> bool {
    ptr::eq(m, &METHODS_V1) || ptr::eq(m, &METHODS_V2) || ptr::eq(m, &METHODS_V3)
}

const fn methods(version: c_int) -> ffi::sqlite3_io_methods {
    ffi::sqlite3_io_methods {
        iVersion: version,
        xClose: Some(x_close),
        xRead: Some(x_read),
        xWrite: Some(x_write),
        xTruncate: Some(x_truncate),
        xSync: Some(x_sync),
        xFileSize: Some(x_file_size),
        xLock: Some(x_lock),
        xUnlock: Some(x_unlock),
        xCheckReservedLock: Some(x_check_reserved_lock),
        xFileControl: Some(x_file_control),
        xSectorSize: Some(x_sector_size),
        xDeviceCharacteristics: Some(x_device_characteristics),
        xShmMap: Some(x_shm_map),
        xShmLock: Some(x_shm_lock),
        xShmBarrier: Some(x_shm_barrier),
        xShmUnmap: Some(x_shm_unmap),
        xFetch: Some(x_fetch),
        xUnfetch: Some(x_unfetch),
    }
}

/// The real file and its methods.
///
/// # Safety
/// `p` must be a file this layer opened and has not closed.
unsafe fn real(
    p: *mut ffi::sqlite3_file,
) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    // SAFETY: per the contract, `p` is a live File whose real file is open.
    unsafe {
        let real = (*p.cast::<File>()).real;
        (real, &*(*real).pMethods)
    }
}

/// Hands the pending WAL bytes to the real file.
///
/// # Safety
/// `p` must be a file this layer opened and has not closed.
unsafe fn flush(p: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: per the contract, `p` is live and used by one thread.
    unsafe {
        let file = &mut *p.cast::<File>();
        if file.pending.is_empty() {
            return ffi::SQLITE_OK;
        }
        let (real, m) = real(p);
        let Some(write) = m.xWrite else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let rc = write(
            real,
            file.pending.as_ptr().cast(),
            file.pending.len() as c_int,
            file.pending_at,
        );
        // On failure the frames are gone with the transaction, which fails
        // on this error; they must not be written later.
        file.pending.clear();
        rc
    }
}

/// Flushes the WAL of a main database file before its connection touches
/// the wal-index. SQLite always writes (and under `synchronous=FULL` syncs)
/// a commit's frames before publishing it there, so what is pending here
/// is a rolled-back transaction's frames or, under a weaker `synchronous`,
/// frames about to be published: either way they must reach the file
/// first. A failure cannot be reported through a lock change; it is
/// logged, and this always returns `SQLITE_OK`.
unsafe fn flush_peer(p: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: `p` is a live File; its peer is live while linked (unlinked
    // in x_close).
    unsafe {
        let peer = (*p.cast::<File>()).peer;
        if !peer.is_null() && (*peer).is_wal {
            let rc = flush(peer.cast());
            if rc != ffi::SQLITE_OK {
                log::error!("writing WAL frames failed ({rc})");
            }
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_close(p: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes a file once; File was written by x_open.
    unsafe {
        let f = p.cast::<File>();
        let flushed = flush(p);
        let peer = (*f).peer;
        if !peer.is_null() {
            (*peer).peer = ptr::null_mut();
        }
        let (real, m) = real(p);
        let rc = m.xClose.map_or(ffi::SQLITE_OK, |close| close(real));
        ptr::drop_in_place(f);
        (*p).pMethods = ptr::null();
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            rc
        }
    }
}

/// Defines an I/O method that hands its arguments to the real file's
/// method of the same name (`$missing` when the real file has none). With
/// `flush`, pending WAL bytes are written out first, so the real method sees
/// the file as SQLite wrote it; with `flush_peer`, a main database file's
/// WAL is, before a wal-index change.
macro_rules! delegate {
    ($name:ident => $method:ident ($($arg:ident: $ty:ty),*) or $missing:expr $(, $before:ident)?) => {
        unsafe extern "C" fn $name(p: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: SQLite passes a file this layer opened and has not
            // closed; the real method gets the same arguments.
            unsafe {
                $(
                    let rc = $before(p);
                    if rc != ffi::SQLITE_OK {
                        return rc;
                    }
                )?
                let (real, m) = real(p);
                m.$method.map_or($missing, |method| method(real $(, $arg)*))
            }
        }
    };
}

delegate!(x_read => xRead(buf: *mut c_void, amt: c_int, off: i64) or ffi::SQLITE_IOERR_READ, flush);
delegate!(x_truncate => xTruncate(size: i64) or ffi::SQLITE_IOERR_TRUNCATE, flush);
delegate!(x_sync => xSync(flags: c_int) or ffi::SQLITE_IOERR_FSYNC, flush);
delegate!(x_file_size => xFileSize(size: *mut i64) or ffi::SQLITE_IOERR_FSTAT, flush);
delegate!(x_file_control => xFileControl(op: c_int, arg: *mut c_void) or ffi::SQLITE_NOTFOUND, flush);
delegate!(x_lock => xLock(level: c_int) or ffi::SQLITE_IOERR_LOCK);
delegate!(x_unlock => xUnlock(level: c_int) or ffi::SQLITE_IOERR_UNLOCK);
delegate!(x_check_reserved_lock => xCheckReservedLock(out: *mut c_int) or ffi::SQLITE_IOERR_CHECKRESERVEDLOCK);
delegate!(x_sector_size => xSectorSize() or 4096);
delegate!(x_device_characteristics => xDeviceCharacteristics() or 0);
delegate!(x_shm_map => xShmMap(region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) or ffi::SQLITE_IOERR_SHMMAP);
delegate!(x_shm_lock => xShmLock(offset: c_int, n: c_int, flags: c_int) or ffi::SQLITE_IOERR_SHMLOCK, flush_peer);
delegate!(x_shm_unmap => xShmUnmap(delete: c_int) or ffi::SQLITE_OK, flush_peer);
delegate!(x_unfetch => xUnfetch(off: i64, page: *mut c_void) or ffi::SQLITE_OK);

unsafe extern "C" fn x_write(
    p: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    off: i64,
) -> c_int {
    // SAFETY: `p` is live and used by one thread; `buf` holds `amt` bytes.
    unsafe {
        let f = p.cast::<File>();
        let n = amt.max(0) as usize;
        if (*f).is_wal {
            WAL_BYTES.fetch_add(n as u64, Ordering::Relaxed);
            let file = &mut *f;
            let follows =
                !file.pending.is_empty() && off == file.pending_at + file.pending.len() as i64;
            if !follows || file.pending.len() + n > PENDING_MAX {
                let rc = flush(p);
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
            }
            if n <= PENDING_MAX {
                let file = &mut *f;
                if file.pending.is_empty() {
                    file.pending_at = off;
                }
                file.pending
                    .extend_from_slice(std::slice::from_raw_parts(buf.cast::<u8>(), n));
                return ffi::SQLITE_OK;
            }
        }
        let (real, m) = real(p);
        m.xWrite
            .map_or(ffi::SQLITE_IOERR_WRITE, |write| write(real, buf, amt, off))
    }
}

unsafe extern "C" fn x_shm_barrier(p: *mut ffi::sqlite3_file) {
    // SAFETY: `p` is live.
    unsafe {
        flush_peer(p);
        let (real, m) = real(p);
        if let Some(barrier) = m.xShmBarrier {
            barrier(real);
        }
    }
}

unsafe extern "C" fn x_fetch(
    p: *mut ffi::sqlite3_file,
    off: i64,
    amt: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: `p` is live; SQLite calls this only for version-3 files.
    unsafe {
        let (real, m) = real(p);
        match m.xFetch {
            Some(fetch) => fetch(real, off, amt, out),
            None => {
                *out = ptr::null_mut();
                ffi::SQLITE_OK
            }
        }
    }
}
