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

impl JobWrite {
    /// The write that runs `f` in one transaction (see [`JobWrite::apply`])
    /// and the channel its result comes back on: for a job, and for the
    /// worker's scheduler, which records its decisions the same way.
    pub(crate) fn new<T: Send + 'static>(
        op: &'static str,
        f: impl FnOnce(&store::Transaction<'_>) -> crate::error::Result<T> + Send + 'static,
    ) -> (
        JobWrite,
        crossbeam_channel::Receiver<crate::error::Result<T>>,
    ) {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let write = JobWrite(Box::new(move |conn| {
            let _ = reply.send(store::write_on(conn, op, f));
        }));
        (write, answer)
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
        let (write, answer) = JobWrite::new(op, f);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{RunInfo, RunShared};
    use crate::store::{Store, TestFile};

    fn context(file: &TestFile) -> (JobContext, crossbeam_channel::Receiver<Msg>) {
        let store = Store::open(&file.db()).unwrap();
        store
            .conn()
            .unwrap()
            .execute_batch(
                "INSERT INTO JobRun (jobName, status, createdAt, updatedAt) \
                 VALUES ('t', 'RUNNING', 'x', 'x')",
            )
            .unwrap();
        let (tx, rx) = crossbeam_channel::bounded(4);
        let info = RunInfo {
            id: 1,
            job_name: "t".into(),
            attempt: 1,
            parameters: Default::default(),
            worker_id: Some(1),
        };
        let readers = Store::open_readers(&file.db()).unwrap();
        (JobContext::new(info, RunShared::new(1), tx, readers), rx)
    }

    fn row(path: &str) -> MediaRow {
        MediaRow {
            path: path.into(),
            size: 1,
            mtime: "m".into(),
            hash: "h".into(),
            media_type: "t".into(),
            width: None,
            height: None,
            hashed_bytes: 1,
        }
    }

    /// Media rows are written by whoever holds the writer's end (here a
    /// stand-in for the writer thread), and read back through the readers.
    #[test]
    fn media_rows_go_through_the_writer_s_channel() {
        let file = TestFile::new("jobwrite-through");
        let (ctx, rx) = context(&file);
        let db = file.db();
        let writer = std::thread::spawn(move || {
            let mut conn = store::open_writer_connection(&db).unwrap();
            let mut applied = 0;
            for m in rx {
                if let Msg::Apply(w) = m {
                    w.apply(&mut conn);
                    applied += 1;
                }
            }
            applied
        });
        ctx.write_media(vec![row("/m/a"), row("/m/b")]).unwrap();
        assert_eq!(ctx.delete_media(vec!["/m/a".into()]).unwrap(), 1);
        let known = ctx.media_known("/m").unwrap();
        assert_eq!(known.keys().collect::<Vec<_>>(), ["/m/b"]);
        drop(ctx);
        assert_eq!(writer.join().unwrap(), 2);
    }

    /// A job whose writer is gone gets an error instead of waiting forever.
    #[test]
    fn a_write_after_the_writer_stopped_fails_with_the_reason() {
        let file = TestFile::new("jobwrite-gone");
        let (ctx, rx) = context(&file);
        drop(rx);
        let e = ctx.write_media(vec![row("/m/a")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "write media files: the worker's writer has stopped"
        );
    }
}
