//! Deleting old history: the storage side of the `prune-history` job (the
//! copy of `backup-database` is in [`super::backup`]).

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
