//! `backup-database`: an online copy of the live database, page by page,
//! to a path that is not one of the files SQLite or jobmgr keep beside it.

use std::sync::Arc;

use serde_json::json;

use crate::context::JobError;
use crate::job::LogLevel;
use crate::manager::check_backup_destination;
use crate::registry::{JobType, ParamKind, ParamSpec};

/// The job type.
pub fn backup_database() -> JobType {
    JobType {
        name: "backup-database".into(),
        description: "Copies the live database to `path` with SQLite's online backup, \
                      reporting progress by pages. Refuses to overwrite an existing file; \
                      `{time}` in the name and `keep` make it fit a nightly schedule."
            .into(),
        params: vec![
            ParamSpec::new("path", ParamKind::Path).required().help(
                "Where to write the copy (must not exist yet). `{time}` in the file name \
                 becomes the run's time (20261201T021500.123Z), so each run writes a new file.",
            ),
            ParamSpec::new("keep", ParamKind::Integer)
                .range(1, 10_000)
                .help(
                    "With `{time}` in the name: after a backup, remove the oldest files of \
                     that name beyond this many (unset: keep all).",
                ),
        ],
        retry_safe: true,
        handler: Arc::new(|ctx| {
            let pattern = ctx.param_str("path")?;
            let dest = &super::backup_rotation::expand(pattern, crate::clock::now());
            check_backup_destination(ctx.database_path(), dest)?;
            ctx.stage("Copying pages");
            // A read, however big: one read transaction on a connection of
            // its own, which never takes the write lock.
            let pages = ctx
                .backup_to(
                    dest,
                    |done, total| {
                        ctx.set_total(total, "pages");
                        ctx.set_progress(done);
                    },
                    || !ctx.is_cancelled(),
                )
                .map_err(|e| {
                    if ctx.is_cancelled() {
                        JobError::Cancelled
                    } else {
                        e
                    }
                })?;
            ctx.outcome("pages", pages);
            ctx.log_with(
                LogLevel::Info,
                &format!("backup written to {}", dest.display()),
                json!({"path": dest.display().to_string(), "pages": pages}),
            );
            if let Some(keep) = ctx.param_i64_opt("keep") {
                let removed = super::backup_rotation::rotate(pattern, keep as usize)?;
                ctx.outcome("removed", removed.len() as i64);
                for old in removed {
                    ctx.log(
                        LogLevel::Info,
                        &format!("removed the old backup {}", old.display()),
                    );
                }
            }
            Ok(())
        }),
    }
}
