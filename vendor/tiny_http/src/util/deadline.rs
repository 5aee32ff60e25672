//! jobmgr: a time limit for a whole request to arrive.
//!
//! The socket's read timeout only bounds each read, so a client sending one
//! byte just inside it, again and again, could hold a connection (and, for
//! a body read by a handler, a handler thread) for as long as it liked.
//! `DeadlineStream` sits under the connection's buffered reader: while a
//! deadline is set, each read waits at most until it, and past it fails
//! with `TimedOut`.

use std::io::{Error as IoError, ErrorKind, Read, Result as IoResult};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::RefinedTcpStream;

/// The deadline of the request being read, shared by its readers.
#[derive(Default)]
pub(crate) struct Deadline {
    at: Mutex<Option<Instant>>,
}

impl Deadline {
    /// Sets the deadline `after` from now, or clears it.
    pub(crate) fn set(&self, after: Option<Duration>) {
        *self.at.lock().unwrap() = after.map(|d| Instant::now() + d);
    }

    fn get(&self) -> Option<Instant> {
        *self.at.lock().unwrap()
    }
}

/// The reading half of a connection, held to its [`Deadline`].
pub(crate) struct DeadlineStream {
    inner: RefinedTcpStream,
    deadline: Arc<Deadline>,
    // the socket's own read timeout, restored when no deadline is set
    idle: Option<Duration>,
    // true while the socket's timeout is set from the deadline
    tuned: bool,
}

impl DeadlineStream {
    pub(crate) fn new(inner: RefinedTcpStream, deadline: Arc<Deadline>) -> DeadlineStream {
        let idle = inner.read_timeout().ok().flatten();
        DeadlineStream {
            inner,
            deadline,
            idle,
            tuned: false,
        }
    }

    pub(crate) fn get_mut(&mut self) -> &mut RefinedTcpStream {
        &mut self.inner
    }
}

fn timed_out() -> IoError {
    IoError::new(ErrorKind::TimedOut, "the request did not arrive in time")
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        let at = match self.deadline.get() {
            Some(at) => at,
            None => {
                if self.tuned {
                    self.inner.set_read_timeout(self.idle)?;
                    self.tuned = false;
                }
                return self.inner.read(buf);
            }
        };
        let now = Instant::now();
        if now >= at {
            return Err(timed_out());
        }
        let left = at - now;
        let wait = match self.idle {
            Some(idle) if idle < left => idle,
            _ => left,
        };
        self.inner.set_read_timeout(Some(wait))?;
        self.tuned = true;
        match self.inner.read(buf) {
            Err(e)
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
                    && Instant::now() >= at =>
            {
                Err(timed_out())
            }
            other => other,
        }
    }
}
