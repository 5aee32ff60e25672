//! The connection pool: how its connections are made and how many it keeps.
//! Every SQLite connection parses the whole schema before its first
//! statement (about 1.6 ms for this one), so the pool opens none it does not
//! need, and its first one is the connection the open checked the file
//! with.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;

use super::Connection;
use crate::error::{Error, Result};

/// Makes the pool's connections: hands out `first`, a connection already
/// open and configured, before opening any.
pub struct Connections {
    make: SqliteConnectionManager,
    first: Mutex<Option<Connection>>,
}

impl Connections {
    /// Connections made by `make`, the first of them `first` when given.
    pub(super) fn new(make: SqliteConnectionManager, first: Option<Connection>) -> Connections {
        Connections {
            make,
            first: Mutex::new(first),
        }
    }
}

impl r2d2::ManageConnection for Connections {
    type Connection = Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> rusqlite::Result<Connection> {
        // Only `take` runs under the lock, which cannot panic; a poisoned
        // lock still holds a sound value.
        let first = self
            .first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match first {
            Some(conn) => Ok(conn),
            None => self.make.connect(),
        }
    }

    fn is_valid(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        self.make.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        self.make.has_broken(conn)
    }
}

/// A pool of up to 8 connections made by `make`. None is kept open for its
/// own sake (`min_idle` 0): with r2d2's default every idle connection
/// up to the maximum is opened in the background, and with one kept idle
/// the first checkout of the only connection (the migration check at
/// start) opens a second; both parse the schema on the cores `serve` starts
/// its threads on. A connection once opened stays until it has been idle
/// for 10 minutes (r2d2's default), however old it is (a SQLite connection
/// does not go stale like a network one), so only a request after such a
/// pause waits for one to open.
pub(super) fn build(path: &Path, make: Connections) -> Result<r2d2::Pool<Connections>> {
    r2d2::Pool::builder()
        .max_size(8)
        .min_idle(Some(0))
        .max_lifetime(None)
        // r2d2 checks every checked-out connection by preparing and
        // running `SELECT 1` (r2d2_sqlite's `is_valid`): a SQLite
        // connection does not go stale like a network one, and the
        // check cost every API read and every change the watcher looks
        // at a statement compiled from scratch.
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(15))
        .build(make)
        .map_err(|e| Error::Open {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}
