//! How the process holds memory: glibc's arenas (which SQLite allocates
//! from) kept few, and no transparent huge pages. The binary allocates
//! through mimalloc (`main.rs`); this is what it and SQLite need of the
//! kernel and libc.

use std::sync::atomic::{AtomicI32, Ordering};

/// The huge-page setting the process inherited, for its children: -1
/// until [`setup`] reads it.
static INHERITED_THP_DISABLE: AtomicI32 = AtomicI32::new(-1);

/// Called first thing in `main`, before any other thread exists.
pub fn setup() {
    limit_malloc_arenas();
    no_huge_pages();
}

/// glibc gives each thread that allocates its own heap arena, and memory
/// freed by another thread stays in the arena that gave it. SQLite, whose
/// pooled connections move between threads, allocates there: two arenas
/// keep that small, at the same speed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; it runs before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// mimalloc reserves its memory in large aligned regions, which a kernel
/// with transparent huge pages set to `always` (or `madvise`, which
/// mimalloc asks for) backs with 2 MB pages as soon as one byte of them is
/// touched: idle `serve` and `worker` took 24 MB resident instead of 15,
/// and a busy worker 70 MB instead of 47. The process opts out; its
/// working set is too small for huge pages to save anything. Its children
/// get back what it inherited ([`restore_in_child`]).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn no_huge_pages() {
    // SAFETY: PR_GET/SET_THP_DISABLE read and set one flag of this process.
    unsafe {
        let inherited = libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0);
        if inherited >= 0 && libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 {
            INHERITED_THP_DISABLE.store(inherited, Ordering::Relaxed);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn no_huge_pages() {}

/// In a forked child before exec: gives the program the huge-page setting
/// jobmgr inherited (a command job may well want huge pages). Only a
/// syscall and an atomic load, so it is safe between fork and exec.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn restore_in_child() {
    let inherited = INHERITED_THP_DISABLE.load(Ordering::Relaxed);
    if inherited >= 0 {
        // SAFETY: a plain syscall on integers, async-signal-safe.
        unsafe {
            libc::prctl(
                libc::PR_SET_THP_DISABLE,
                inherited as libc::c_ulong,
                0,
                0,
                0,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn restore_in_child() {}
