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
    /// Something jobmgr itself got wrong (a thread gone, an answer lost):
    /// not the caller's fault, and not a state to resolve by retrying.
    Internal(String),
}

/// The classes callers branch on. [`ErrorClass::http_status`],
/// [`ErrorClass::exit_code`] and [`ErrorClass::code`] are the one mapping
/// from an error to what the HTTP API and the CLI answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request is wrong: fix it before trying again.
    Invalid,
    /// The run, worker or route does not exist.
    NotFound,
    /// The action does not fit the object's current state.
    Conflict,
    /// The database is locked past the busy timeout: try again later.
    Busy,
    /// The disk (or the file's quota) is full: free space, then retry.
    DiskFull,
    /// Anything else: a database, file, config or jobmgr failure.
    Internal,
}

impl ErrorClass {
    /// Every class, for tests and documentation.
    pub const ALL: [ErrorClass; 6] = [
        ErrorClass::Invalid,
        ErrorClass::NotFound,
        ErrorClass::Conflict,
        ErrorClass::Busy,
        ErrorClass::DiskFull,
        ErrorClass::Internal,
    ];

    /// The class's stable name (`"class"` in the API's errors).
    pub fn code(self) -> &'static str {
        match self {
            ErrorClass::Invalid => "invalid_input",
            ErrorClass::NotFound => "not_found",
            ErrorClass::Conflict => "conflict",
            ErrorClass::Busy => "busy",
            ErrorClass::DiskFull => "disk_full",
            ErrorClass::Internal => "internal_error",
        }
    }

    /// The HTTP status of the class.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorClass::Invalid => 400,
            ErrorClass::NotFound => 404,
            ErrorClass::Conflict => 409,
            // Service Unavailable: the same request may succeed later.
            ErrorClass::Busy => 503,
            // Insufficient Storage: the request was fine, the disk is not.
            ErrorClass::DiskFull => 507,
            ErrorClass::Internal => 500,
        }
    }

    /// The CLI's exit status for the class. 1 stays the generic failure
    /// (scripts written for "non-zero is failure" see no change), and 2
    /// is what clap already answers for a malformed command line.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorClass::Internal => 1,
            ErrorClass::Invalid => 2,
            ErrorClass::NotFound => 3,
            ErrorClass::Conflict => 4,
            ErrorClass::Busy => 5,
            ErrorClass::DiskFull => 6,
        }
    }
}

/// Shorthand used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The class of this error: what the caller can do about it.
    pub fn class(&self) -> ErrorClass {
        match self {
            _ if self.is_disk_full() => ErrorClass::DiskFull,
            _ if self.is_busy() => ErrorClass::Busy,
            Error::NotFound { .. } => ErrorClass::NotFound,
            Error::UnknownJobType { .. } | Error::InvalidParameter { .. } | Error::Invalid(_) => {
                ErrorClass::Invalid
            }
            Error::Conflict(_) | Error::WorkerRunning(_) => ErrorClass::Conflict,
            Error::Db { .. }
            | Error::Open { .. }
            | Error::Io { .. }
            | Error::Config(_)
            | Error::Internal(_) => ErrorClass::Internal,
        }
    }

    /// A stable machine-readable code (HTTP API, `--json` errors): the
    /// class's code, or a finer one within the class where callers have
    /// come to rely on it (`unknown_job_type`, `worker_running`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            _ if self.is_disk_full() => "disk_full",
            _ if self.is_busy() => "busy",
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
            Error::Internal(_) => "internal_error",
        }
    }

    /// The HTTP status of the error's class.
    pub fn http_status(&self) -> u16 {
        self.class().http_status()
    }

    /// The CLI's exit status for the error's class.
    pub fn exit_code(&self) -> i32 {
        self.class().exit_code()
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
    /// every caller of a failed round with it. Every error keeps its class
    /// and message (a full disk stays a full disk); the few that cannot be
    /// copied (rusqlite's other errors) become internal errors with the
    /// same message, never a conflict the caller would take as its fault.
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Db {
                op,
                source: rusqlite::Error::SqliteFailure(e, m),
            } => Error::Db {
                op,
                source: rusqlite::Error::SqliteFailure(*e, m.clone()),
            },
            Error::Io { op, path, source } => Error::Io {
                op,
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Open { path, message } => Error::Open {
                path: path.clone(),
                message: message.clone(),
            },
            Error::NotFound { what, id } => Error::NotFound {
                what,
                id: id.clone(),
            },
            Error::UnknownJobType { name, suggestion } => Error::UnknownJobType {
                name: name.clone(),
                suggestion: suggestion.clone(),
            },
            Error::InvalidParameter { name, message } => Error::InvalidParameter {
                name: name.clone(),
                message: message.clone(),
            },
            Error::Invalid(m) => Error::Invalid(m.clone()),
            Error::Conflict(m) => Error::Conflict(m.clone()),
            Error::WorkerRunning(m) => Error::WorkerRunning(m.clone()),
            Error::Config(m) => Error::Config(m.clone()),
            Error::Db { .. } | Error::Internal(_) => Error::Internal(self.to_string()),
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
            Error::Invalid(m)
            | Error::Conflict(m)
            | Error::WorkerRunning(m)
            | Error::Internal(m) => f.write_str(m),
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
mod tests;
