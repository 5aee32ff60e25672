//! `backup-database`: an online copy of the live database, page by page,
//! to a path that is not one of the files SQLite or jobmgr keep beside it.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;

use crate::context::{JobError, database_companions};
use crate::job::LogLevel;
use crate::registry::{JobType, ParamKind, ParamSpec};

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
            let db = ctx.database_path();
            refuse_reserved(db, dest)?;
            if dest.symlink_metadata().is_ok() {
                return Err(JobError::new(format!(
                    "{} already exists; choose a new path",
                    dest.display()
                )));
            }
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
            Ok(())
        }),
    }
}

/// The files a copy must never land on, with what each one is: a copy at
/// `<db>-journal` is taken by SQLite for a hot journal and every new
/// connection waits on it; one at `-wal` or `-shm` corrupts the live
/// state; the lock and token files belong to the worker and the server.
fn reserved(db: &Path) -> Vec<(PathBuf, &'static str)> {
    let mut files = vec![(db.to_path_buf(), "the live database itself")];
    files.extend(database_companions(db));
    files.push((crate::runner::lock_path(db), "the worker's lock file"));
    files.push((
        crate::web::auth::token_path(db),
        "the web server's token file",
    ));
    files
}

/// Fails when `dest` names one of the [`reserved`] files, however it is
/// spelled: both sides are compared with their directories resolved
/// (`.`, `..`, symlinked directories). SQLite keeps its companions beside
/// the database's real file, jobmgr beside the path as given; both count.
fn refuse_reserved(db: &Path, dest: &Path) -> Result<(), JobError> {
    let dest_real = resolve(dest).map_err(|e| {
        JobError::new(format!(
            "{}: cannot resolve its directory: {e}",
            dest.display()
        ))
    })?;
    for db_form in &resolve(db).unwrap_or_default() {
        for (file, what) in reserved(db_form) {
            if dest_real.contains(&file) {
                return Err(JobError::new(format!(
                    "{} is {what}; choose another path",
                    dest.display()
                )));
            }
        }
    }
    Ok(())
}

/// `path` with its directory canonicalised and its last component kept as
/// it is, plus the fully resolved path when `path` itself exists (a
/// symlink to a reserved file).
fn resolve(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "not a file name"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut out = vec![std::fs::canonicalize(dir)?.join(name)];
    out.extend(std::fs::canonicalize(path));
    Ok(out)
}
