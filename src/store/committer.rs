//! Group commit for acknowledged enqueues: callers on many threads hand
//! their runs to one committer thread, which writes everything that is
//! waiting in one transaction and then answers each caller. An enqueue
//! returns only once its run is durable, yet concurrent callers share the
//! fsync instead of queueing for one each.

use std::path::Path;
use std::thread;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use rusqlite::Connection;

use super::runs::{NewRun, insert_runs};
use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// Most runs written in one shared transaction.
const MAX_BATCH_RUNS: usize = 100_000;

struct Request {
    runs: Vec<NewRun>,
    reply: Sender<Result<Vec<i64>>>,
}

/// The committer: a thread that owns one connection.
pub struct Committer {
    tx: Option<Sender<Request>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Committer {
    /// Starts the committer thread on its own connection to `path`.
    pub fn start(path: &Path) -> Result<Committer> {
        let conn = super::open_connection(path)?;
        let (tx, rx) = unbounded();
        let thread = thread::Builder::new()
            .name("committer".into())
            .spawn(move || serve(conn, rx))
            .map_err(Error::io("spawn committer", path))?;
        Ok(Committer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Inserts `runs` and returns their ids once they are committed.
    pub fn insert(&self, runs: Vec<NewRun>) -> Result<Vec<i64>> {
        let gone = || Error::Conflict("the enqueue committer has stopped".into());
        let (reply, answer) = bounded(1);
        self.tx
            .as_ref()
            .ok_or_else(gone)?
            .send(Request { runs, reply })
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        // Closing the channel ends the thread after what is queued.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: Connection, rx: Receiver<Request>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let mut total = batch[0].runs.len();
        while total < MAX_BATCH_RUNS {
            match rx.try_recv() {
                Ok(r) => {
                    total += r.runs.len();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let now = Timestamp::now().to_text();
        let result = super::write_on(&mut conn, "enqueue runs", |tx| {
            batch
                .iter()
                .map(|r| insert_runs(tx, &r.runs, &now))
                .collect::<Result<Vec<_>>>()
        });
        match result {
            Ok(ids) => {
                for (r, ids) in batch.into_iter().zip(ids) {
                    let _ = r.reply.send(Ok(ids));
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
}
