//! `jobmgr restore BACKUP`: the engine does the work
//! ([`crate::manager::restore`]); this says what it did.

use std::path::Path;

use super::output::{outln, print_json};
use crate::error::Result;
use crate::manager::restore::restore;

/// Restores `backup` over `db` and reports it.
pub fn run(db: &Path, backup: &Path, json: bool) -> Result<i32> {
    let r = restore(db, backup)?;
    if json {
        print_json(&r);
        return Ok(0);
    }
    outln!(
        "restored {} from {}: {} runs, the newest run id {}",
        r.database.display(),
        r.backup.display(),
        r.runs,
        r.newest_run_id
    );
    match &r.kept {
        Some(k) => outln!("the previous database is kept as {}", k.display()),
        None => outln!("there was no database there before"),
    }
    if !r.migrations_to_apply.is_empty() {
        outln!(
            "the backup is from an older jobmgr: the next start applies {}",
            r.migrations_to_apply.join(", ")
        );
    }
    outln!(
        "the high-water mark in the lock file was cleared (the restored file is older on purpose)"
    );
    Ok(0)
}
