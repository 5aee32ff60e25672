//! The test-driven clock: the time is whatever a test last wrote into a
//! file. Read on every look, which costs a file read; only tests run on it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};

use super::Timestamp;
use crate::error::{Error, Result};

/// A clock read from a file.
#[derive(Debug)]
pub(super) struct Driven {
    path: PathBuf,
    /// The last time read. A test that rewrites the file in place (not by
    /// renaming a new one over it) can be caught between the truncation and
    /// the write: such a read keeps this time rather than failing.
    last: AtomicI64,
}

impl Driven {
    /// A clock on `path`, which must hold a time now: a test that got the
    /// file wrong hears it at start, not as a clock standing at 0.
    pub(super) fn open(path: &Path) -> Result<Driven> {
        let text = std::fs::read_to_string(path).map_err(Error::io("read test clock", path))?;
        let t = parse(&text).ok_or_else(|| {
            Error::Invalid(format!(
                "test clock {}: {:?} is neither milliseconds since the epoch nor a time \
                 like 2031-05-06T07:08:09.000Z",
                path.display(),
                text.trim()
            ))
        })?;
        Ok(Driven {
            path: path.to_path_buf(),
            last: AtomicI64::new(t.0),
        })
    }

    /// The file's time now, or the last one read if it cannot be read.
    pub(super) fn now(&self) -> Timestamp {
        match std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| parse(&s))
        {
            Some(t) => {
                self.last.store(t.0, Ordering::Release);
                t
            }
            None => Timestamp(self.last.load(Ordering::Acquire)),
        }
    }

    /// The file the time is read from.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

/// Milliseconds since the epoch, or the text form of a timestamp.
fn parse(text: &str) -> Option<Timestamp> {
    let t = text.trim();
    match t.parse::<i64>() {
        Ok(ms) => Some(Timestamp(ms)),
        Err(_) => Timestamp::parse(t),
    }
}
