//! The change feed: a connection of its own that stays open, so `PRAGMA
//! data_version` tells whether any other connection (the worker process, a
//! CLI, the web server's pool) committed since the last look.

use std::path::Path;

use rusqlite::Connection;

use crate::error::Result;

/// A dedicated connection for noticing commits.
pub struct ChangeFeed {
    conn: Connection,
}

impl ChangeFeed {
    /// Opens the feed's own connection to the database at `path`.
    pub fn open(path: &Path) -> Result<ChangeFeed> {
        Ok(ChangeFeed {
            conn: super::open_connection(path)?,
        })
    }

    /// A number that changes whenever another connection commits.
    pub fn version(&self) -> Result<i64> {
        super::data_version(&self.conn)
    }
}
