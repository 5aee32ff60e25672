//! Writing a commit's log lines, fenced like every write of the worker,
//! without a look-up per run where the commit already knows the answer:
//! the lines of a run that ends in the same commit are written after its
//! finish, whose fenced UPDATE has then told whether the run was still
//! this worker's (nothing else writes inside the transaction). Only the
//! lines of runs that go on (or are retried or requeued) ask, once per run.

use std::collections::HashSet;

use rusqlite::Transaction;

use super::{Claimant, FinishRecord, LogRecord, Ownership};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::store::multirow::{self, Family};

/// Inserts up to 128 log lines per statement.
static LOG_INSERT: Family = Family::new(128, |n| {
    format!(
        "INSERT INTO JobLog (jobRunId, level, stage, message, context, timestamp, attempt) \
         VALUES {}",
        multirow::values(n, 7, 1)
    )
});

/// A commit's lines, split by when they are written.
pub(super) struct Lines<'a> {
    /// Lines of runs that do not end in this commit: written first, each
    /// run's ownership asked.
    early: Vec<&'a LogRecord>,
    /// Lines of runs this commit ends: written after the finishes.
    late: Vec<&'a LogRecord>,
    written: usize,
}

impl<'a> Lines<'a> {
    /// Splits `logs` by whether their run is among `ends`.
    pub(super) fn split(logs: &'a [LogRecord], ends: &[&FinishRecord]) -> Lines<'a> {
        let ending: HashSet<i64> = ends.iter().map(|f| f.progress.run_id).collect();
        let (late, early) = logs.iter().partition(|l| ending.contains(&l.run_id));
        Lines {
            early,
            late,
            written: 0,
        }
    }

    /// Writes the lines of runs that go on, those this worker still owns.
    pub(super) fn write_early(
        &mut self,
        tx: &Transaction<'_>,
        me: &Claimant,
        owned: &mut Ownership,
    ) -> Result<()> {
        let mut kept = Vec::with_capacity(self.early.len());
        for l in &self.early {
            if owned.owns(tx, me, l.run_id)? {
                kept.push(*l);
            }
        }
        self.written += insert(tx, &kept)?;
        Ok(())
    }

    /// After the finishes: writes the lines of the ended runs whose finish
    /// was not refused (`refused`: the runs the fenced finishes found owned
    /// by nobody), and counts every line written.
    pub(super) fn write_late(mut self, tx: &Transaction<'_>, refused: &[i64]) -> Result<()> {
        let kept: Vec<&LogRecord> = if refused.is_empty() {
            std::mem::take(&mut self.late)
        } else {
            let refused: HashSet<i64> = refused.iter().copied().collect();
            self.late
                .iter()
                .copied()
                .filter(|l| !refused.contains(&l.run_id))
                .collect()
        };
        self.written += insert(tx, &kept)?;
        crate::store::stats::count_log_lines(tx, self.written)
    }
}

/// Inserts `lines` as they are; returns how many.
fn insert(tx: &Transaction<'_>, lines: &[&LogRecord]) -> Result<usize> {
    // Lines of one batch mostly share their millisecond: format it once.
    let mut stamps: Vec<String> = Vec::with_capacity(lines.len());
    let mut last = Timestamp(i64::MIN);
    for l in lines {
        let text = match stamps.last() {
            Some(t) if last == l.timestamp => t.clone(),
            _ => l.timestamp.to_text(),
        };
        last = l.timestamp;
        stamps.push(text);
    }
    let levels: Vec<&str> = lines.iter().map(|l| l.level.as_str()).collect();
    let mut at = 0;
    for chunk in LOG_INSERT.chunks(lines) {
        let mut stmt = tx
            .prepare_cached(LOG_INSERT.sql(chunk.len()))
            .map_err(Error::db("write log lines"))?;
        let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * 7);
        for ((l, stamp), level) in chunk.iter().zip(&stamps[at..]).zip(&levels[at..]) {
            args.extend_from_slice(&[
                &l.run_id as &dyn rusqlite::ToSql,
                level,
                &l.stage,
                &l.message,
                &l.context,
                stamp,
                &l.attempt,
            ]);
        }
        at += chunk.len();
        stmt.execute(args.as_slice())
            .map_err(Error::db("write log lines"))?;
    }
    Ok(lines.len())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::clock::Timestamp;

    fn line(run_id: i64, message: &str) -> LogRecord {
        LogRecord {
            run_id,
            level: LogLevel::Info,
            stage: None,
            message: message.into(),
            context: Some("{}".into()),
            timestamp: Timestamp::now(),
            attempt: 1,
        }
    }

    fn finish(run_id: i64) -> FinishRecord {
        FinishRecord {
            progress: ProgressRecord {
                run_id,
                stage: None,
                processed: 1,
                total: Some(1),
                unit: None,
                outcome: "{}".into(),
            },
            status: JobStatus::Completed,
            error: None,
            error_context: None,
            job_name: "a".into(),
            started: None,
        }
    }

    /// Lines of runs that end in the commit are kept by their finish's
    /// fence, the others by a look-up: either way a run another process
    /// resolved gets no line, and is reported.
    #[test]
    fn lines_are_written_only_for_runs_this_worker_still_owns() {
        let super::super::Claimed {
            file: _file,
            mut conn,
            other,
            me,
        } = super::super::claimed("batch-logs", 4);
        // Another process resolves run 2 (which ends in the commit) and
        // run 4 (which goes on).
        other
            .execute(
                "UPDATE JobRun SET status = 'FAILED', error = 'worker lost' WHERE id IN (2, 4)",
                [],
            )
            .unwrap();
        let batch = Batch {
            logs: vec![
                line(1, "one"),
                line(2, "two"),
                line(3, "three"),
                line(4, "four"),
                line(1, "one again"),
            ],
            finishes: vec![finish(1), finish(2)],
            ..Batch::default()
        };
        let got = commit(&mut conn, &me, &batch, Timestamp::now()).unwrap();
        assert_eq!(got.fenced, vec![2, 4]);
        let lines: Vec<(i64, String)> = conn
            .prepare("SELECT jobRunId, message FROM JobLog ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut by_run = lines.clone();
        by_run.sort_by_key(|(run, _)| *run);
        assert_eq!(
            by_run,
            [
                (1, "one".into()),
                (1, "one again".into()),
                (3, "three".into())
            ],
            "{lines:?}"
        );
        let counted = crate::store::stats::counter(&conn, "log_lines").unwrap();
        assert_eq!(counted, 3);
    }
}
