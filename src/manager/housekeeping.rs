//! What the worker's housekeeping last did, for `jobmgr status`, `GET
//! /api/worker` and the page: retention's last report (what it keeps, when
//! it ran, what it removed), and the disk guard, with the free space read
//! now (the stored threshold is the worker's).

use serde::Serialize;

use super::Manager;
use crate::config::DISK_FREE_MIN_MB;
use crate::error::Result;
use crate::maintenance::disk::{self, DiskReport};
use crate::maintenance::retention::{self, RetentionReport};
use crate::store::housekeeping;

/// The housekeeping status.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Housekeeping {
    /// Retention's last run; None when no worker has run it yet.
    pub retention: Option<RetentionReport>,
    pub disk: DiskStatus,
}

/// The disk guard as it stands now.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskStatus {
    /// Free space is below the threshold now.
    pub low: bool,
    pub free_bytes: u64,
    /// The worker's threshold (the default before any worker looked); 0 off.
    pub threshold_bytes: u64,
    /// What the worker's guard last recorded, if it ever looked.
    pub worker: Option<DiskReport>,
}

impl Manager {
    /// What the worker's housekeeping last did, and the free space now.
    pub fn housekeeping(&self) -> Result<Housekeeping> {
        let rows = housekeeping::all(&*self.store.conn()?)?;
        let report = |name: &str| rows.iter().find(|r| r.name == name).map(|r| &r.report);
        let retention = report(retention::NAME).and_then(|t| serde_json::from_str(t).ok());
        let worker: Option<DiskReport> =
            report(disk::NAME).and_then(|t| serde_json::from_str(t).ok());
        let threshold_bytes = worker
            .as_ref()
            .map(|w| w.threshold_bytes)
            .unwrap_or(DISK_FREE_MIN_MB * 1024 * 1024);
        let free_bytes = disk::free_bytes(self.store.path())?;
        Ok(Housekeeping {
            retention,
            disk: DiskStatus {
                low: free_bytes < threshold_bytes,
                free_bytes,
                threshold_bytes,
                worker,
            },
        })
    }
}
