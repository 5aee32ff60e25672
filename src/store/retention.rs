//! Deleting old history and copying the database: the storage side of the
//! `prune-history` and `backup-database` jobs.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::Backup;
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

/// Copies the live database to `dest` page by page with SQLite's online
/// backup, calling `progress(done, total)` between steps; `keep_going`
/// returning false aborts. The copy is written beside `dest` and renamed
/// into place only when complete.
pub fn backup_to(
    src: &Connection,
    dest: &Path,
    mut progress: impl FnMut(i64, i64),
    keep_going: impl Fn() -> bool,
) -> Result<i64> {
    let mut tmp = dest.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut dst = Connection::open(&tmp).map_err(|e| Error::Open {
        path: tmp.clone(),
        message: e.to_string(),
    })?;
    let pages = {
        let backup = Backup::new(src, &mut dst).map_err(Error::db("start backup"))?;
        loop {
            if !keep_going() {
                drop(backup);
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::Conflict("backup cancelled".into()));
            }
            let step = backup.step(256).map_err(Error::db("copy pages"))?;
            let p = backup.progress();
            let total = p.pagecount as i64;
            progress(total - p.remaining as i64, total);
            match step {
                rusqlite::backup::StepResult::Done => break total,
                rusqlite::backup::StepResult::More => {}
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    };
    drop(dst);
    std::fs::rename(&tmp, dest).map_err(Error::io("move backup into place", dest))?;
    Ok(pages)
}
