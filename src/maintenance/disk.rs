//! `disk-guard`: warns before the database's file system fills up. SQLite
//! refuses every write once the disk is full, and the worker with it. The
//! guard looks at the free space at each housekeeping tick and logs once
//! when it falls below `[retention] disk_free_min_mb` and once when it
//! recovers; each crossing (and its first look) is stored, so `jobmgr
//! status` and the page can show the warning.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ticker::{Counts, Task, Tick};
use crate::error::{Error, Result};
use crate::store::{self, Connection, housekeeping};

/// The name of the task and of its row in `Housekeeping`.
pub const NAME: &str = "disk";

/// What the guard last saw, as stored and shown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DiskReport {
    /// Free space is below the threshold.
    pub low: bool,
    pub free_bytes: u64,
    /// 0: the guard is off.
    pub threshold_bytes: u64,
    /// When free space crossed the threshold last (either way).
    pub since: String,
    pub checked_at: String,
}

/// The disk guard of one worker.
pub struct DiskGuard {
    db: PathBuf,
    conn: Option<Connection>,
    threshold_bytes: u64,
    worker_id: i64,
    last: Option<bool>,
    /// Told when free space falls below the threshold (`disk_low`).
    notifiers: Vec<crate::notify::Notifier>,
}

impl DiskGuard {
    /// A guard warning below `min_mb` MiB free beside `db`, and telling
    /// `notifiers` that want `disk_low`.
    pub fn new(
        db: PathBuf,
        min_mb: u64,
        worker_id: i64,
        notifiers: Vec<crate::notify::Notifier>,
    ) -> DiskGuard {
        DiskGuard {
            db,
            conn: None,
            threshold_bytes: min_mb.saturating_mul(1024 * 1024),
            worker_id,
            last: None,
            notifiers,
        }
    }
}

impl Task for DiskGuard {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(&mut self, tick: &Tick) -> Result<Counts> {
        let free = free_bytes(&self.db)?;
        let low = free < self.threshold_bytes;
        if self.last == Some(low) {
            return Ok(Counts::new());
        }
        let mb = |b: u64| b / (1024 * 1024);
        if low {
            log::warn!(
                "disk: only {} MiB free on the file system of {} (warning below {} MiB); \
                 SQLite refuses writes when it is full: free space or lower [retention] \
                 finished_days",
                mb(free),
                self.db.display(),
                mb(self.threshold_bytes)
            );
        } else if self.last == Some(true) {
            log::info!(
                "disk: {} MiB free again on the file system of {} (warning below {} MiB)",
                mb(free),
                self.db.display(),
                mb(self.threshold_bytes)
            );
        }
        let now = tick.now.to_text();
        let report = DiskReport {
            low,
            free_bytes: free,
            threshold_bytes: self.threshold_bytes,
            since: now.clone(),
            checked_at: now.clone(),
        };
        if self.conn.is_none() {
            self.conn = Some(store::open_connection(&self.db)?);
        }
        // A crossing below the threshold is queued for the notifiers in
        // the same transaction as the report that records it.
        let facts = match low {
            true => vec![crate::notify::disk_low(
                free,
                self.threshold_bytes,
                &now,
                &self.db.display().to_string(),
            )],
            false => Vec::new(),
        };
        if let Some(conn) = self.conn.as_mut() {
            let text = serde_json::to_string(&report).unwrap_or_else(|_| "{}".into());
            let (id, notifiers) = (self.worker_id, &self.notifiers);
            store::write_on(conn, "record disk report", |tx| {
                housekeeping::put_in(tx, NAME, id, &now, &text)?;
                crate::notify::queue(tx, notifiers, &facts, tick.now)?;
                Ok(())
            })?;
        }
        self.last = Some(low);
        Ok(Counts::from([(if low { "low" } else { "ok" }, 1)]))
    }
}

/// Bytes an unprivileged user may still write on the file system that
/// holds `db` (its directory, so a missing file is no error).
pub fn free_bytes(db: &Path) -> Result<u64> {
    let dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let f = File::open(dir).map_err(Error::io("open database directory", dir))?;
    statvfs_free(&f).map_err(Error::io("read free disk space", dir))
}

/// `fstatvfs(2)`: std has no call for free space, and one call does not
/// justify a new dependency.
#[allow(unsafe_code)]
fn statvfs_free(f: &File) -> io::Result<u64> {
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct;
    // fstatvfs only writes into the struct it is given, which lives across
    // the call, and the descriptor is borrowed from `f`, open throughout.
    let (rc, s) = unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        let rc = libc::fstatvfs(f.as_raw_fd(), &mut s);
        (rc, s)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}
