//! The error type of jobmgr: typed where callers branch, with short
//! verb-noun context ("open database", "claim runs"), and one stable code per
//! kind that the CLI and the HTTP API both show.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong outside a job's own work.
#[derive(Debug)]
pub enum Error {
    /// A database operation failed; `op` says what jobmgr was doing.
    Db {
        op: &'static str,
        source: rusqlite::Error,
    },
    /// The database could not be opened or migrated.
    Open { path: PathBuf, message: String },
    /// A file operation failed.
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// No such job run, worker or other object.
    NotFound { what: &'static str, id: String },
    /// A job name that is not registered.
    UnknownJobType {
        name: String,
        suggestion: Option<String>,
    },
    /// A parameter that is missing, unknown or fails its declared type.
    InvalidParameter { name: String, message: String },
    /// Input that is malformed in some other way.
    Invalid(String),
    /// The action does not fit the object's current state.
    Conflict(String),
    /// Another worker holds this database.
    WorkerRunning(String),
    /// The configuration file is invalid.
    Config(String),
}

/// Shorthand used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A stable machine-readable code (HTTP API, `--json` errors).
    pub fn code(&self) -> &'static str {
        match self {
            _ if self.is_disk_full() => "disk_full",
            Error::Db { .. } => "database_error",
            Error::Open { .. } => "open_failed",
            Error::Io { .. } => "io_error",
            Error::NotFound { .. } => "not_found",
            Error::UnknownJobType { .. } => "unknown_job_type",
            Error::InvalidParameter { .. } => "invalid_parameter",
            Error::Invalid(_) => "invalid_input",
            Error::Conflict(_) => "conflict",
            Error::WorkerRunning(_) => "worker_running",
            Error::Config(_) => "invalid_config",
        }
    }

    /// The HTTP status that goes with [`Error::code`].
    pub fn http_status(&self) -> u16 {
        match self {
            Error::NotFound { .. } => 404,
            Error::UnknownJobType { .. } | Error::InvalidParameter { .. } | Error::Invalid(_) => {
                400
            }
            Error::Conflict(_) | Error::WorkerRunning(_) => 409,
            // Insufficient Storage: the request was fine, the disk is not.
            _ if self.is_disk_full() => 507,
            Error::Db { .. } | Error::Open { .. } | Error::Io { .. } | Error::Config(_) => 500,
        }
    }

    /// Wraps a rusqlite error with what jobmgr was doing.
    pub fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
        move |source| Error::Db { op, source }
    }

    /// Wraps an I/O error with the operation and path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    /// Whether this is SQLite reporting the disk (or the file's quota) full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Db { source: rusqlite::Error::SqliteFailure(e, _), .. }
            if e.code == rusqlite::ErrorCode::DiskFull)
    }

    /// The same error for one more caller: the enqueue group commit answers
    /// every caller of a failed round with it. SQLite's own failures keep
    /// their kind (a full disk stays a full disk); the rest, which rusqlite
    /// cannot copy, become a conflict with the same message.
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Db {
                op,
                source: rusqlite::Error::SqliteFailure(e, m),
            } => Error::Db {
                op,
                source: rusqlite::Error::SqliteFailure(*e, m.clone()),
            },
            Error::Invalid(m) => Error::Invalid(m.clone()),
            other => Error::Conflict(other.to_string()),
        }
    }

    /// Whether SQLite could not write for a reason that may pass: a full
    /// disk, an I/O error, a lock held past the busy timeout.
    pub fn is_refused_write(&self) -> bool {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, DiskFull, SystemIoFailure};
        matches!(self, Error::Db { source: rusqlite::Error::SqliteFailure(e, _), .. }
            if matches!(e.code, DiskFull | SystemIoFailure | DatabaseBusy | DatabaseLocked))
    }

    /// Whether this is SQLite reporting the database busy or locked.
    pub fn is_busy(&self) -> bool {
        matches!(self, Error::Db { source: rusqlite::Error::SqliteFailure(e, _), .. }
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Db { op, source } => write!(f, "{op}: {source}"),
            Error::Open { path, message } => {
                write!(f, "open database {}: {message}", path.display())
            }
            Error::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            Error::NotFound { what, id } => write!(f, "{what} {id} not found"),
            Error::UnknownJobType { name, suggestion } => {
                write!(f, "unknown job type '{name}'")?;
                match suggestion {
                    Some(s) => write!(f, " (did you mean '{s}'?)"),
                    None => write!(f, " (see 'jobmgr job-types')"),
                }
            }
            Error::InvalidParameter { name, message } => {
                write!(f, "parameter '{name}': {message}")
            }
            Error::Invalid(m) | Error::Conflict(m) | Error::WorkerRunning(m) => f.write_str(m),
            Error::Config(m) => write!(f, "invalid config: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Db { source, .. } => Some(source),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The closest candidate to `name` by edit distance, for "did you mean".
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 3.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_failure(code: i32) -> Error {
        Error::Db {
            op: "enqueue runs",
            source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        }
    }

    #[test]
    fn a_full_disk_is_reported_as_such_to_every_caller() {
        let full = sqlite_failure(rusqlite::ffi::SQLITE_FULL);
        assert_eq!((full.code(), full.http_status()), ("disk_full", 507));
        let copy = full.duplicate();
        assert_eq!((copy.code(), copy.http_status()), ("disk_full", 507));
        assert_eq!(copy.to_string(), full.to_string());
        let io = sqlite_failure(rusqlite::ffi::SQLITE_IOERR_WRITE).duplicate();
        assert_eq!((io.code(), io.http_status()), ("database_error", 500));
        assert!(full.is_refused_write() && io.is_refused_write());
        assert!(!sqlite_failure(rusqlite::ffi::SQLITE_CONSTRAINT).is_refused_write());
        let other = Error::Conflict("run ids are exhausted".into()).duplicate();
        assert_eq!(
            (other.code(), other.to_string().as_str()),
            ("conflict", "run ids are exhausted")
        );
    }

    #[test]
    fn suggests_close_names_only() {
        let names = ["demo-known-total", "demo-unknown-total", "prune-history"];
        assert_eq!(
            suggest("demo-known-totl", names).as_deref(),
            Some("demo-known-total")
        );
        assert_eq!(suggest("zzzzzzzzzzzzzzzzzzzzzzzz", names), None);
    }
}
