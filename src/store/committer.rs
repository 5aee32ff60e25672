//! Group commit for acknowledged enqueues. A caller that finds the commit
//! lock free becomes the leader: it writes its own runs, then everything
//! other callers queued meanwhile, one transaction per round, until the
//! queue is empty. A caller that finds the lock taken queues its runs and
//! waits for the leader's answer. An enqueue returns only once its run is
//! durable; a lone caller pays no thread hand-off, and concurrent callers
//! share one fsync per round.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, TryLockError};

use crossbeam_channel::{Sender, bounded};
use rusqlite::Connection;

use super::runs::{NewRun, insert_runs};
use crate::clock::Timestamp;
use crate::error::{Error, Result};

struct Request {
    runs: Vec<NewRun>,
    reply: Sender<Result<Vec<i64>>>,
}

/// The shared commit path of one process.
pub struct Committer {
    queue: Mutex<Vec<Request>>,
    conn: Mutex<Connection>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding either lock leaves consistent data behind: the
    // queue is a list, and the connection rolls back its open transaction.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Committer {
    /// A committer with its own connection to `path`.
    pub fn start(path: &Path) -> Result<Committer> {
        Ok(Committer {
            queue: Mutex::new(Vec::new()),
            conn: Mutex::new(super::open_writer_connection(path)?),
        })
    }

    /// Inserts `runs` and returns their ids once they are committed.
    pub fn insert(&self, runs: Vec<NewRun>) -> Result<Vec<i64>> {
        let (reply, answer) = bounded(1);
        lock(&self.queue).push(Request { runs, reply });
        self.try_lead();
        answer
            .recv()
            .map_err(|_| Error::Conflict("enqueue was not answered".into()))?
    }

    /// Leads while the lock is free and requests are queued. A leader looks
    /// at the queue once more after releasing the lock, so a request queued
    /// while it was finishing is never left without a leader: either that
    /// caller finds the lock free, or the leader holding it sees the request.
    fn try_lead(&self) {
        loop {
            let mut conn = match self.conn.try_lock() {
                Ok(c) => c,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            loop {
                let batch = std::mem::take(&mut *lock(&self.queue));
                if batch.is_empty() {
                    break;
                }
                commit(&mut conn, batch);
            }
            drop(conn);
            if lock(&self.queue).is_empty() {
                return;
            }
        }
    }
}

fn commit(conn: &mut Connection, batch: Vec<Request>) {
    let now = Timestamp::now().to_text();
    // Every caller's runs in one list, so that they share multi-row
    // statements; each caller then gets its own slice of the ids.
    let all: Vec<&NewRun> = batch.iter().flat_map(|r| &r.runs).collect();
    let result = super::write_on(conn, "enqueue runs", |tx| insert_runs(tx, &all, &now));
    match result {
        Ok(ids) => {
            let mut ids = ids.into_iter();
            for r in batch {
                let mine: Vec<i64> = ids.by_ref().take(r.runs.len()).collect();
                let _ = r.reply.send(Ok(mine));
            }
        }
        Err(e) => {
            let msg = e.to_string();
            for r in batch {
                let _ = r.reply.send(Err(Error::Conflict(msg.clone())));
            }
        }
    }
}
