//! Unit tests of the storage layer's internals: the hot queries' plans,
//! the WAL write layer, and the read-only pool a worker's jobs read through.
//! (What users see of the store is tested through the CLI, HTTP and the
//! SQLite file in `tests/`.)

pub(crate) mod plans;
mod readers;
mod wal;
