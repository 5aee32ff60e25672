//! The narrow data methods of [`JobContext`]: what a job may read and write
//! of jobmgr's own tables, named by intent, instead of the pool.
//!
//! Which way each write goes, and why:
//! - small and frequent (a command run's process group, the media job's
//!   rows in batches of a few hundred): through the worker's writer thread,
//!   the process's single writing connection. The process group rides in
//!   the next group commit ([`Msg::Pgid`]); a batch of media rows is one
//!   short transaction of its own on the writer's connection
//!   ([`Msg::Apply`]), and the job waits for its result as it waited for
//!   its own commit before.
//! - big and rare (`prune-history`): one engine function with its own
//!   connection and one short transaction per small batch, so a large
//!   delete never sits inside the writer's loop. The writer waits for the
//!   lock at most one batch, as it waits for any other process.
//! - reads (what is known under a directory, how much is prunable, a
//!   backup's pages) go through [`store::Store::open_readers`] connections or a
//!   read-only connection of their own: they never take the write lock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{JobContext, JobError, Msg};
use crate::clock::Timestamp;
use crate::media::{Known, MediaRow};
use crate::store::{self, Connection, backup, media, retention};

/// A write a job asked for, carried to the writer thread and applied there
/// on its connection; the result goes back to the waiting job.
pub struct JobWrite(Box<dyn FnOnce(&mut Connection) + Send>);

impl JobWrite {
    /// Applies the write in one IMMEDIATE transaction on `conn` (the
    /// writer's) and answers the job. The writer's connection has triggers
    /// off ([`store::open_writer_connection`]); the tables written this way
    /// (`MediaFile`) have none.
    pub fn apply(self, conn: &mut Connection) {
        (self.0)(conn)
    }
}

impl std::fmt::Debug for JobWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobWrite")
    }
}

impl JobContext {
    /// Runs `f` in one transaction on the writer's connection and waits
    /// for its result.
    fn through_writer<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&store::Transaction<'_>) -> crate::error::Result<T> + Send + 'static,
    ) -> Result<T, JobError> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let write = JobWrite(Box::new(move |conn| {
            let _ = reply.send(store::write_on(conn, op, f));
        }));
        let gone = || JobError::new(format!("{op}: the worker's writer has stopped"));
        self.tx.send(Msg::Apply(write)).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?.map_err(JobError::from)
    }

    /// Records the process group of this run's command, so that recovery
    /// can stop it if the worker dies. Goes with the writer's next commit,
    /// fenced like every write for the run.
    pub fn record_pgid(&self, pgid: i32) {
        let _ = self.tx.send(Msg::Pgid {
            run_id: self.info.id,
            pgid: i64::from(pgid),
        });
    }

    /// Size, mtime and hashed bytes of every recorded file under `root`.
    pub fn media_known(&self, root: &str) -> Result<HashMap<String, Known>, JobError> {
        Ok(media::known_under(&*self.readers.conn()?, root)?)
    }

    /// Inserts or replaces `rows` in `MediaFile`, in one transaction on
    /// the writer's connection.
    pub fn write_media(&self, rows: Vec<MediaRow>) -> Result<(), JobError> {
        let (run_id, now) = (self.info.id, Timestamp::now().to_text());
        self.through_writer("write media files", move |tx| {
            media::upsert(tx, &rows, run_id, &now)
        })
    }

    /// Deletes the `MediaFile` rows of `paths`; returns how many went.
    pub fn delete_media(&self, paths: Vec<String>) -> Result<usize, JobError> {
        self.through_writer("delete media files", move |tx| media::delete(tx, &paths))
    }

    /// Finished runs that ended before `cutoff`, and their log lines.
    pub fn count_prunable(&self, cutoff: &str) -> Result<(i64, i64), JobError> {
        Ok(retention::count_prunable(&*self.readers.conn()?, cutoff)?)
    }

    /// Deletes finished runs that ended before `cutoff` with their log
    /// lines, `per_batch` runs per transaction, calling `after(runs, lines)`
    /// after each batch (which may stop it with an error). Big and rare: on
    /// a connection of its own (see the module header).
    pub fn prune_history(
        &self,
        cutoff: &str,
        per_batch: usize,
        mut after: impl FnMut(i64, i64) -> Result<(), JobError>,
    ) -> Result<(), JobError> {
        let mut conn = store::open_connection(self.readers.path())?;
        loop {
            let (runs, lines) = retention::prune_batch(&mut conn, cutoff, per_batch)?;
            if runs == 0 {
                return Ok(());
            }
            after(runs, lines)?;
        }
    }

    /// Copies the live database to `dest` (see [`backup::backup_to`]) in
    /// one read transaction on a connection of its own.
    pub fn backup_to(
        &self,
        dest: &Path,
        progress: impl FnMut(i64, i64),
        keep_going: impl Fn() -> bool,
    ) -> Result<i64, JobError> {
        Ok(backup::backup_database(
            self.readers.path(),
            dest,
            progress,
            keep_going,
        )?)
    }

    /// The database file's path (to tell which paths a job must not touch).
    pub fn database_path(&self) -> &Path {
        self.readers.path()
    }
}

/// The files SQLite keeps beside the database `db`, with what each is.
pub fn database_companions(db: &Path) -> [(PathBuf, &'static str); 3] {
    backup::companion_files(db)
}
