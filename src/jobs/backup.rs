//! `backup-database`: an online copy of the live database, page by page.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use crate::job::LogLevel;
use crate::registry::{JobType, ParamKind, ParamSpec};
use crate::runner::context::JobError;
use crate::store;
use crate::store::retention;

/// The job type.
pub fn backup_database() -> JobType {
    JobType {
        name: "backup-database".into(),
        description: "Copies the live database to `path` with SQLite's online backup, \
                      reporting progress by pages. Refuses to overwrite an existing file."
            .into(),
        params: vec![
            ParamSpec::new("path", ParamKind::Path)
                .required()
                .help("Where to write the copy (must not exist yet)."),
        ],
        retry_safe: true,
        handler: Arc::new(|ctx| {
            let dest = Path::new(ctx.param_str("path")?);
            if dest.exists() {
                return Err(JobError::new(format!(
                    "{} already exists; choose a new path",
                    dest.display()
                )));
            }
            let src = store::open_connection(ctx.store().path())?;
            ctx.stage("Copying pages");
            let pages = retention::backup_to(
                &src,
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
                    JobError::from(e)
                }
            })?;
            ctx.outcome("pages", pages);
            ctx.log_with(
                LogLevel::Info,
                &format!("backup written to {}", dest.display()),
                json!({"path": dest.display().to_string(), "pages": pages}),
            );
            Ok(())
        }),
    }
}
