//! The database as the CLI's own commands reach it through the engine:
//! opening it for the domain API, `migrate`, the high-water mark `status`
//! shows, and the read-only look-over of `jobmgr check`. The CLI names no
//! storage type; this module is its one door to them.

use std::path::Path;
use std::sync::Arc;

use super::Manager;
use crate::error::Result;
use crate::registry::Registry;
use crate::runner::lock_path;
use crate::runner::mark::{self, Comparison};
use crate::store::check::{CounterMismatch, SchemaReport};
use crate::store::{Store, check};

impl Manager {
    /// Opens (creating and migrating if needed) the database at `db` and
    /// builds the domain API over it.
    pub fn open(
        db: &Path,
        registry: Arc<Registry>,
        stale_after_ms: i64,
        drain_ms: i64,
    ) -> Result<Manager> {
        Ok(Manager::new(
            Store::open(db)?,
            registry,
            stale_after_ms,
            drain_ms,
        ))
    }

    /// The database file's path.
    pub fn database_path(&self) -> &Path {
        self.store.path()
    }

    /// The high-water mark in the lock file against the database.
    pub fn high_water(&self) -> Result<Comparison> {
        high_water(&self.store)
    }
}

fn high_water(store: &Store) -> Result<Comparison> {
    mark::compare(&*store.conn()?, &lock_path(store.path()))
}

/// Applies pending migrations to the database at `db` (creating it);
/// returns the versions applied.
pub fn migrate(db: &Path) -> Result<Vec<String>> {
    Store::open_unmigrated(db)?.migrate()
}

/// A database opened without migrating it, to be looked over: its schema
/// version is one of the things `jobmgr check` reports.
pub struct Checkup(Store);

impl Checkup {
    /// Opens the database at `db` as it is.
    pub fn open(db: &Path) -> Result<Checkup> {
        Store::open_unmigrated(db).map(Checkup)
    }

    /// What `PRAGMA integrity_check` finds wrong (empty when nothing).
    pub fn integrity(&self) -> Result<Vec<String>> {
        check::integrity(&*self.0.conn()?)
    }

    /// The migrations applied against the ones built in.
    pub fn schema(&self) -> Result<SchemaReport> {
        check::schema(&*self.0.conn()?)
    }

    /// How many run counters there are, and those that differ from the rows.
    pub fn counters(&self) -> Result<(usize, Vec<CounterMismatch>)> {
        check::counters(&mut *self.0.conn()?)
    }

    /// The high-water mark in the lock file against the database.
    pub fn high_water(&self) -> Result<Comparison> {
        high_water(&self.0)
    }
}
