//! jobmgr: runs, watches and controls the background jobs of a single host,
//! with one SQLite file as the single source of truth.
// One audited exception: the supervisor signals its own child (supervisor.rs).
#![deny(unsafe_code)]

pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod events;
pub mod job;
pub mod jobs;
pub mod maintenance;
pub mod manager;
pub mod registry;
pub mod runner;
pub mod store;
pub mod supervisor;
pub mod watcher;
pub mod web;
pub mod worker;

pub use error::{Error, Result};
pub use runner::context::{JobContext, JobError};
