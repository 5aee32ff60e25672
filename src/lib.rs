//! jobmgr: runs, watches and controls the background jobs of a single host,
//! with one SQLite file as the single source of truth.
// `deny`, not `forbid`: small functions opt out, each with SAFETY
// comments: `command::kill::raw_kill` (std cannot signal a process group)
// and `command::spawn::prepare_child` (std cannot stop a child from
// inheriting descriptors the worker itself inherited without CLOEXEC).
// A third, `supervisor::send_sigterm`, signals the worker `jobmgr serve` started;
// a fourth, `web::set_send_timeout`, sets a socket option std has no setter
// for on a listener.
// Then `store::backup::rename_noreplace` (std cannot rename without replacing),
// `web::auth::effective_uid` (std cannot ask for the effective user) and
// `jobs::mediafs::fs_magic`, which asks fstatfs which file system a
// directory is on (std has no call for it).
// `maintenance::disk::statvfs_free` asks fstatvfs for the free space beside
// the database (std has no call for it either), and
// `store::restore::locked_elsewhere` asks fcntl(F_GETLK) whether another
// process holds SQLite's locks on the database (std cannot ask).
// `memory` sets glibc's arena count and the huge-page flag (std has no
// call for either), and restores the flag in spawned children.
// `store::vfs` is the one unsafe module: a layer over SQLite's C file API
// (a VFS) that coalesces WAL writes, which only FFI can provide.
#![deny(unsafe_code)]

// Public: what a Rust user registers jobs with (`registry`, `jobs`, `job`,
// `context`, `error`) and what `main` calls (`cli`). The rest is the
// crate's own, so the compiler reports what is no longer used; the tests
// reach it through the CLI, HTTP and the SQLite file, and in-process only
// through the small facade re-exported below.
pub(crate) mod app;
pub(crate) mod bench;
pub(crate) mod checkpointer;
pub(crate) mod cli;
pub(crate) mod clock;
pub(crate) mod command;
pub(crate) mod config;
pub mod context;
pub mod error;
pub(crate) mod events;
pub mod job;
pub(crate) mod jobfile;
pub mod jobs;
pub(crate) mod maintenance;
pub(crate) mod manager;
pub(crate) mod media;
/// What `main` sets up first: how the process holds memory.
pub mod memory;
pub(crate) mod notify;
pub mod policies;
pub(crate) mod query;
pub mod registry;
pub(crate) mod runner;
pub(crate) mod schedule;
pub(crate) mod store;
pub(crate) mod supervisor;
pub(crate) mod walwatch;
pub(crate) mod watcher;
pub(crate) mod web;
pub(crate) mod worker;

/// `jobmgr serve` in-process, for a program (or a test) that embeds the
/// admin server and stops it with [`Serve::close`].
pub use app::{Serve, ServeOptions};
/// The command line: what `main` runs.
pub use cli::{run, run_with};
/// The settings [`Serve::open`] takes: database, config file and timings.
pub use config::Settings;
pub use context::{JobContext, JobError};
pub use error::{Error, Result};

/// The README's Rust examples, compiled and run by `cargo test --doc` so
/// they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
