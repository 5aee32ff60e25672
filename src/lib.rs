//! jobmgr: runs, watches and controls the background jobs of a single host,
//! with one SQLite file as the single source of truth.
#![forbid(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod job;
pub mod jobs;
pub mod maintenance;
pub mod manager;
pub mod registry;
pub mod runner;
pub mod store;
pub mod worker;

pub use error::{Error, Result};
pub use runner::context::{JobContext, JobError};
