//! Deleting old history: the storage side of the `prune-history` job (the
//! copy of `backup-database` is in [`super::backup`]) and of the worker's
//! retention (`maintenance::retention`): which finished runs are old, the
//! deletes in short transactions, and the file's pages for the vacuum.

use rusqlite::{Connection, params};

use crate::error::{Error, Result};

/// Finished runs created before `cutoff`: how many, and their log lines.
pub fn count_prunable(conn: &Connection, cutoff: &str) -> Result<(i64, i64)> {
    conn.query_row(
        "SELECT count(*), coalesce(sum((SELECT count(*) FROM JobLog l WHERE l.jobRunId = r.id)), 0) \
         FROM JobRun r WHERE r.finishedAt IS NOT NULL AND r.finishedAt < ?1 \
         AND r.status IN ('COMPLETED', 'FAILED', 'CANCELLED')",
        [cutoff],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .map_err(Error::db("count prunable runs"))
}

/// Deletes up to `limit` finished runs that ended before `cutoff`, with
/// their log lines, in one transaction. Returns (runs, log lines) deleted.
pub fn prune_batch(conn: &mut Connection, cutoff: &str, limit: usize) -> Result<(i64, i64)> {
    super::write_on(conn, "prune history", |tx| {
        tx.execute_batch("CREATE TEMP TABLE IF NOT EXISTS prune_ids (id INTEGER PRIMARY KEY)")
            .and_then(|_| tx.execute("DELETE FROM temp.prune_ids", []))
            .map_err(Error::db("prune history"))?;
        tx.execute(
            "INSERT INTO temp.prune_ids SELECT id FROM JobRun INDEXED BY JobRun_finished \
             WHERE finishedAt IS NOT NULL AND finishedAt < ?1 \
             AND status IN ('COMPLETED', 'FAILED', 'CANCELLED') LIMIT ?2",
            params![cutoff, limit as i64],
        )
        .map_err(Error::db("prune history"))?;
        let logs = tx
            .execute(
                "DELETE FROM JobLog WHERE jobRunId IN (SELECT id FROM temp.prune_ids)",
                [],
            )
            .map_err(Error::db("prune log lines"))?;
        let runs = tx
            .execute(
                "DELETE FROM JobRun WHERE id IN (SELECT id FROM temp.prune_ids)",
                [],
            )
            .map_err(Error::db("prune runs"))?;
        Ok((runs as i64, logs as i64))
    })
}

/// Retention's own connection: `synchronous=NORMAL`, so its commits do not
/// wait for an fsync while they hold the write lock (with FULL the fsync was
/// most of each delete's hold). Safe in WAL mode: NORMAL never corrupts the
/// file, and the next commit made with FULL (the worker's) syncs the WAL
/// with every frame before its own. Power lost before then can only undo a
/// few deletes, which the next pass makes again.
pub fn open_unsynced(db: &std::path::Path) -> Result<Connection> {
    let conn = super::open_connection(db)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(Error::db("configure retention connection"))?;
    Ok(conn)
}

/// Which finished runs a retention pass looks for.
#[derive(Debug, Clone, Copy)]
pub enum Finished<'a> {
    /// Completed and cancelled runs that finished before the cutoff.
    DoneBefore(&'a str),
    /// Failed runs that finished before the cutoff.
    FailedBefore(&'a str),
    /// Any finished run, oldest first (for `max_runs`, `max_database_mb`).
    Oldest,
}

/// Up to `limit` finished runs of `which`, oldest first, that finished at
/// or after `after` (the last batch's newest: a pass walks the index
/// forward instead of re-reading rows it skipped). A plain read; returns
/// each run's id and finish time.
pub fn finished_runs(
    conn: &Connection,
    which: Finished<'_>,
    after: &str,
    limit: usize,
) -> Result<Vec<(i64, String)>> {
    let (filter, cutoff) = match which {
        Finished::DoneBefore(c) => (
            "status IN ('COMPLETED', 'CANCELLED') AND finishedAt < ?3",
            c,
        ),
        Finished::FailedBefore(c) => ("status = 'FAILED' AND finishedAt < ?3", c),
        // Every timestamp sorts before this one.
        Finished::Oldest => (
            "status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND finishedAt < ?3",
            "9999",
        ),
    };
    let sql = format!(
        "SELECT id, finishedAt FROM JobRun INDEXED BY JobRun_finished \
         WHERE finishedAt IS NOT NULL AND finishedAt >= ?1 AND {filter} \
         ORDER BY finishedAt LIMIT ?2"
    );
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(Error::db("read old runs"))?;
    let rows = stmt
        .query_map(params![after, limit as i64, cutoff], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(Error::db("read old runs"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("read old runs"))
}

/// The runs of `ids` that are still finished, as a JSON array for
/// `json_each` (one bound parameter, however many ids).
const STILL_FINISHED: &str = "SELECT r.id FROM JobRun r WHERE r.id IN (SELECT value FROM json_each(?1)) \
     AND r.finishedAt IS NOT NULL AND r.status IN ('COMPLETED', 'FAILED', 'CANCELLED')";

fn id_list(ids: &[i64]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

/// Deletes up to `limit` log lines of the runs `ids` that are still
/// finished, in one short transaction. Returns how many went: fewer than
/// `limit` means none are left.
pub fn delete_logs_of(conn: &mut Connection, ids: &[i64], limit: usize) -> Result<usize> {
    let list = id_list(ids);
    super::write_on(conn, "delete old log lines", |tx| {
        tx.execute(
            &format!(
                "DELETE FROM JobLog WHERE id IN (SELECT id FROM JobLog \
                 WHERE jobRunId IN ({STILL_FINISHED}) LIMIT ?2)"
            ),
            params![list, limit as i64],
        )
        .map_err(Error::db("delete old log lines"))
    })
}

/// Deletes the runs `ids` that are still finished (with any log lines
/// left), in one short transaction. Returns (runs, log lines) deleted.
pub fn delete_runs(conn: &mut Connection, ids: &[i64]) -> Result<(usize, usize)> {
    let list = id_list(ids);
    super::write_on(conn, "delete old runs", |tx| {
        let logs = tx
            .execute(
                &format!("DELETE FROM JobLog WHERE jobRunId IN ({STILL_FINISHED})"),
                [&list],
            )
            .map_err(Error::db("delete old log lines"))?;
        let runs = tx
            .execute(
                &format!("DELETE FROM JobRun WHERE id IN ({STILL_FINISHED})"),
                [&list],
            )
            .map_err(Error::db("delete old runs"))?;
        Ok((runs, logs))
    })
}

/// Finished runs in the file, from the run counters (no scan).
pub fn finished_count(conn: &Connection) -> Result<u64> {
    conn.query_row(
        "SELECT coalesce(sum(n), 0) FROM JobRunCount \
         WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n.max(0) as u64)
    .map_err(Error::db("count finished runs"))
}

/// Whether any audit row is older than `cutoff`.
pub fn has_audit_before(conn: &Connection, cutoff: &str) -> Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM Audit WHERE at < ?1)",
        [cutoff],
        |r| r.get(0),
    )
    .map_err(Error::db("read old audit rows"))
}

/// Deletes up to `limit` audit rows older than `cutoff`, oldest first.
pub fn delete_audit_before(conn: &mut Connection, cutoff: &str, limit: usize) -> Result<usize> {
    super::write_on(conn, "delete old audit rows", |tx| {
        tx.execute(
            "DELETE FROM Audit WHERE id IN \
             (SELECT id FROM Audit WHERE at < ?1 ORDER BY at LIMIT ?2)",
            params![cutoff, limit as i64],
        )
        .map_err(Error::db("delete old audit rows"))
    })
}

/// The file's pages: (page size, pages, free pages) and its auto-vacuum
/// mode (0 none, 1 full, 2 incremental).
#[derive(Debug, Clone, Copy)]
pub struct Pages {
    pub page_size: u64,
    pub pages: u64,
    pub free: u64,
    pub auto_vacuum: i64,
}

impl Pages {
    /// The bytes rows and indexes take (free pages excluded).
    pub fn used_bytes(&self) -> u64 {
        self.pages.saturating_sub(self.free) * self.page_size
    }
}

/// Reads [`Pages`].
pub fn pages(conn: &Connection) -> Result<Pages> {
    let one = |pragma: &str| -> Result<i64> {
        conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
            .map_err(Error::db("read page counts"))
    };
    Ok(Pages {
        page_size: one("page_size")?.max(0) as u64,
        pages: one("page_count")?.max(0) as u64,
        free: one("freelist_count")?.max(0) as u64,
        auto_vacuum: one("auto_vacuum")?,
    })
}

/// Returns up to `pages` free pages to the file system (`PRAGMA
/// incremental_vacuum`, one short write transaction), then lets a passive
/// checkpoint copy the shortened file home (WAL mode truncates the file at
/// the checkpoint). Passive: it never waits for readers, so it cannot
/// fight Litestream, whose read lock it does not move past.
pub fn incremental_vacuum(conn: &Connection, pages: u64) -> Result<()> {
    // The pragma returns a row per page freed; stepping through them is
    // what does the work.
    let mut stmt = conn
        .prepare(&format!("PRAGMA incremental_vacuum({pages})"))
        .map_err(Error::db("vacuum free pages"))?;
    let mut rows = stmt.query([]).map_err(Error::db("vacuum free pages"))?;
    while rows
        .next()
        .map_err(Error::db("vacuum free pages"))?
        .is_some()
    {}
    Ok(())
}

/// A passive checkpoint (see [`incremental_vacuum`]), the one the
/// checkpointer runs.
pub fn checkpoint_passive(conn: &Connection) -> Result<()> {
    super::checkpoint::passive(conn).map(|_| ())
}
