//! Recording finished runs: many per UPDATE statement, each fenced by the
//! worker's id and the run still being RUNNING; and putting a run back in
//! the queue for another attempt.

use std::collections::HashMap;

use rusqlite::{Transaction, params};

use super::{Claimant, FinishRecord, Ownership};
use crate::error::{Error, Result};
use crate::job::JobStatus;
use crate::store::multirow::{self, Family};
use crate::store::{counts, minutes, stats};

/// Finishes up to 256 runs per UPDATE statement, each with its own values.
pub(super) static FINISH: Family = Family::new(256, finish_sql);

/// Finishes up to 256 runs that end alike (same status, progress and
/// error) per UPDATE statement: an `IN` list of their ids.
static FINISH_ALIKE: Family = Family::new(256, finish_alike_sql);

/// Runs that end alike, from this many on, are finished by the `IN` list
/// of [`FINISH_ALIKE`] rather than each with its own values: short runs of
/// one type mostly end alike (a total of 1, one item done, `{}`).
const ALIKE_FROM: usize = 8;

/// What a finish writes besides the run's id: runs equal in it end alike.
type Values<'a> = (
    JobStatus,
    Option<&'a str>,
    i64,
    Option<i64>,
    Option<&'a str>,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
);

fn values_of(f: &FinishRecord) -> Values<'_> {
    let p = &f.progress;
    (
        f.status,
        p.stage.as_deref(),
        p.processed,
        p.total,
        p.unit.as_deref(),
        p.outcome.as_str(),
        f.error.as_deref(),
        f.error_context.as_deref(),
    )
}

/// Records the finished runs `ends` (none QUEUED), fenced like every
/// write: only rows still RUNNING under this worker change. Runs that end
/// alike share an `IN`-list UPDATE, the others go many per UPDATE … FROM
/// (VALUES …); either way the statement journal the constraints need is
/// paid once per statement, not once per run. Then counts the runs
/// finished, once for the commit.
pub(super) fn write_ends(
    tx: &Transaction<'_>,
    me: &Claimant,
    owned: &mut Ownership,
    ends: &[&FinishRecord],
    now: &str,
) -> Result<()> {
    let mut groups: HashMap<Values<'_>, Vec<&FinishRecord>> = HashMap::new();
    for f in ends {
        groups.entry(values_of(f)).or_default().push(*f);
    }
    let mut finished = Vec::with_capacity(ends.len());
    let mut each = Vec::new();
    for (values, runs) in &groups {
        if runs.len() < ALIKE_FROM {
            each.extend_from_slice(runs);
            continue;
        }
        for chunk in FINISH_ALIKE.chunks(runs) {
            let changed = finish_alike(tx, me, values, chunk, now)?;
            settle(tx, me, owned, chunk, changed, now, &mut finished)?;
        }
    }
    // In run order, as before there were groups.
    each.sort_by_key(|f| f.progress.run_id);
    for chunk in FINISH.chunks(&each) {
        let changed = finish_each(tx, me, chunk, now)?;
        settle(tx, me, owned, chunk, changed, now, &mut finished)?;
    }
    count_finished(tx, &finished, now)
}

fn finish_alike(
    tx: &Transaction<'_>,
    me: &Claimant,
    v: &Values<'_>,
    runs: &[&FinishRecord],
    now: &str,
) -> Result<usize> {
    let status = v.0.as_str();
    let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(10 + runs.len());
    args.extend_from_slice(&[
        &now as &dyn rusqlite::ToSql,
        &me.worker_id,
        &status,
        &v.1,
        &v.2,
        &v.3,
        &v.4,
        &v.5,
        &v.6,
        &v.7,
    ]);
    args.extend(
        runs.iter()
            .map(|f| &f.progress.run_id as &dyn rusqlite::ToSql),
    );
    tx.prepare_cached(FINISH_ALIKE.sql(runs.len()))
        .and_then(|mut stmt| stmt.execute(args.as_slice()))
        .map_err(Error::db("finish runs"))
}

fn finish_each(
    tx: &Transaction<'_>,
    me: &Claimant,
    ends: &[&FinishRecord],
    now: &str,
) -> Result<usize> {
    let statuses: Vec<&str> = ends.iter().map(|f| f.status.as_str()).collect();
    let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(2 + ends.len() * 9);
    args.push(&now);
    args.push(&me.worker_id);
    for (f, status) in ends.iter().zip(&statuses) {
        let p = &f.progress;
        args.extend_from_slice(&[
            &p.run_id as &dyn rusqlite::ToSql,
            status,
            &p.stage,
            &p.processed,
            &p.total,
            &p.unit,
            &p.outcome,
            &f.error,
            &f.error_context,
        ]);
    }
    tx.prepare_cached(FINISH.sql(ends.len()))
        .and_then(|mut stmt| stmt.execute(args.as_slice()))
        .map_err(Error::db("finish runs"))
}

/// After one finishing statement over `runs` that changed `changed` rows:
/// the runs are no longer this worker's either way (later lines are
/// refused), and those it finished join `finished`. When some were
/// resolved by another process meanwhile (fencing), finds which, the rare
/// way: ours now carry this commit's time.
fn settle<'a>(
    tx: &Transaction<'_>,
    me: &Claimant,
    owned: &mut Ownership,
    runs: &[&'a FinishRecord],
    changed: usize,
    now: &str,
    finished: &mut Vec<&'a FinishRecord>,
) -> Result<()> {
    for f in runs {
        owned.0.insert(f.progress.run_id, false);
    }
    if changed == runs.len() {
        finished.extend_from_slice(runs);
        return Ok(());
    }
    for f in runs {
        if finished_by_me(tx, me, f, now)? {
            finished.push(*f);
        } else {
            owned.1.push(f.progress.run_id);
        }
    }
    Ok(())
}

/// Counts the runs this commit finished, per status and in the metrics'
/// and the charts' rollups (one UPSERT per job type each), when the
/// connection's triggers are off.
fn count_finished(tx: &Transaction<'_>, finished: &[&FinishRecord], now: &str) -> Result<()> {
    if finished.is_empty() || !counts::by_hand(tx)? {
        return Ok(());
    }
    for status in JobStatus::ALL.into_iter().filter(|s| s.is_finished()) {
        let n = finished.iter().filter(|f| f.status == status).count();
        counts::add_finished(tx, status, n)?;
    }
    let rows = finished
        .iter()
        .map(|f| (f.job_name.as_str(), f.status.as_str(), f.started));
    stats::count_finished(tx, rows.clone(), now)?;
    minutes::count_finished(tx, rows, now)
}

fn finished_by_me(
    tx: &Transaction<'_>,
    me: &Claimant,
    f: &FinishRecord,
    now: &str,
) -> Result<bool> {
    tx.prepare_cached(
        "SELECT count(*) FROM JobRun WHERE id = ?1 AND workerId = ?2 AND status = ?3 \
         AND finishedAt = ?4",
    )
    .and_then(|mut s| {
        s.query_row(
            params![f.progress.run_id, me.worker_id, f.status.as_str(), now],
            |r| r.get::<_, i64>(0),
        )
    })
    .map(|n| n == 1)
    .map_err(Error::db("check finished runs"))
}

/// The UPDATE that finishes `n` runs ending alike: ?1 is `now`, ?2 the
/// worker id, ?3-?10 the values, then the ids. NOT INDEXED like the others.
fn finish_alike_sql(n: usize) -> String {
    format!(
        "UPDATE JobRun NOT INDEXED SET status = ?3, finishedAt = ?1, updatedAt = ?1, \
         currentStage = ?4, entitiesProcessed = ?5, entitiesTotal = ?6, entitiesUnit = ?7, \
         outcomeSummary = ?8, error = ?9, errorContext = ?10 \
         WHERE id IN ({}) AND workerId = ?2 AND status = 'RUNNING'",
        multirow::list(n, 11)
    )
}

/// The UPDATE that finishes `n` runs: ?1 is `now`, ?2 the worker id. NOT
/// INDEXED, like the claim's: each run is found by its id, never by a walk
/// of an index on its status.
fn finish_sql(n: usize) -> String {
    format!(
        "UPDATE JobRun NOT INDEXED SET status = v.column2, finishedAt = ?1, updatedAt = ?1, \
         currentStage = v.column3, entitiesProcessed = v.column4, entitiesTotal = v.column5, \
         entitiesUnit = v.column6, outcomeSummary = v.column7, error = v.column8, \
         errorContext = v.column9 FROM (VALUES {}) AS v \
         WHERE JobRun.id = v.column1 AND JobRun.workerId = ?2 AND JobRun.status = 'RUNNING'",
        multirow::values(n, 9, 3)
    )
}

/// Gives a run back to the queue (the worker stopped before it started,
/// or its job asked to run again).
pub(super) fn write_requeue(
    tx: &Transaction<'_>,
    me: &Claimant,
    owned: &mut Ownership,
    f: &FinishRecord,
    now: &str,
) -> Result<()> {
    let id = f.progress.run_id;
    // Fenced: false means another process resolved the run meanwhile.
    let requeued =
        super::super::runs::requeue(tx, id, Some(me.worker_id), f.error.as_deref(), now)?;
    // Either way the run is no longer ours: later lines for it are refused.
    owned.0.insert(id, false);
    if !requeued {
        owned.1.push(id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::clock::Timestamp;
    use crate::store::Store;

    /// The claim's and the finish's updates find each run by its id, never
    /// by walking an index on the status (which, beside a long queue or a
    /// large history, costs a walk per listed run).
    #[test]
    fn the_claim_and_the_finish_find_their_runs_by_id() {
        let file = crate::store::TestFile::new("mark-plans");
        let store = Store::open(&file.db()).unwrap();
        let conn = store.conn().unwrap();
        for (what, sql) in [
            ("claim", super::super::claims::CLAIM_MARK.sql(3)),
            ("finish", super::FINISH.sql(3)),
            ("finish alike", super::FINISH_ALIKE.sql(4)),
        ] {
            let plan = crate::store::tests::plans::explain(&conn, sql)
                .unwrap()
                .join(" | ");
            assert!(plan.contains("INTEGER PRIMARY KEY"), "{what}: {plan}");
            assert!(!plan.contains("SCAN JobRun"), "{what}: {plan}");
            assert!(!plan.contains("INDEX JobRun_"), "{what}: {plan}");
        }
    }

    fn progress(run_id: i64) -> ProgressRecord {
        ProgressRecord {
            run_id,
            stage: None,
            processed: 1,
            total: Some(1),
            unit: None,
            outcome: "{}".into(),
        }
    }

    #[test]
    fn finishes_are_fenced_and_refusals_reported() {
        let super::super::Claimed {
            file: _file,
            mut conn,
            other,
            me,
        } = super::super::claimed("batch", 3);
        // Another process resolves run 2 meanwhile.
        other
            .execute(
                "UPDATE JobRun SET status = 'FAILED', error = 'worker lost' WHERE id = 2",
                [],
            )
            .unwrap();
        let finish = Batch {
            finishes: (1..=3)
                .map(|id| FinishRecord {
                    progress: progress(id),
                    status: JobStatus::Completed,
                    error: None,
                    error_context: None,
                    job_name: "noop".into(),
                    started: None,
                })
                .collect(),
            ..Batch::default()
        };
        let got = commit(&mut conn, &me, &finish, Timestamp::now()).unwrap();
        assert_eq!(got.fenced, vec![2]);
        let statuses: Vec<String> = conn
            .prepare("SELECT status FROM JobRun ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(statuses, ["COMPLETED", "FAILED", "COMPLETED"]);
        // Counted once each: the fenced finish of run 2 counts nothing.
        let counts: Vec<(String, i64)> = conn
            .prepare("SELECT status, n FROM JobRunCount ORDER BY status")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let expected = [
            ("ALL", 3),
            ("CANCELLED", 0),
            ("COMPLETED", 2),
            ("FAILED", 1),
            ("SCHEDULED", 0),
            ("WAITING", 0),
        ];
        assert_eq!(counts, expected.map(|(s, n)| (s.to_string(), n)).to_vec());
    }

    /// Runs that end alike share one `IN`-list UPDATE, the others go by
    /// their own values; in both, a run another process resolved is left
    /// alone, reported, and not counted.
    #[test]
    fn alike_and_other_finishes_are_fenced_alike() {
        let super::super::Claimed {
            file: _file,
            mut conn,
            other,
            me,
        } = super::super::claimed("batch-alike", 12);
        other
            .execute(
                "UPDATE JobRun SET status = 'FAILED', error = 'worker lost' WHERE id IN (2, 12)",
                [],
            )
            .unwrap();
        // Runs 1-11 end alike; run 12 processed 5 items.
        let finishes = (1..=12)
            .map(|id| {
                let mut p = progress(id);
                if id == 12 {
                    p.processed = 5;
                }
                FinishRecord {
                    progress: p,
                    status: JobStatus::Completed,
                    error: None,
                    error_context: None,
                    job_name: "noop".into(),
                    started: None,
                }
            })
            .collect();
        let finish = Batch {
            finishes,
            ..Batch::default()
        };
        let got = commit(&mut conn, &me, &finish, Timestamp::now()).unwrap();
        assert_eq!(got.fenced, vec![2, 12]);
        let rows: Vec<(String, i64, Option<i64>)> = conn
            .prepare("SELECT status, entitiesProcessed, entitiesTotal FROM JobRun ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for (i, row) in rows.iter().enumerate() {
            let expected = match i + 1 {
                2 | 12 => ("FAILED".to_string(), 0, None),
                _ => ("COMPLETED".to_string(), 1, Some(1)),
            };
            assert_eq!(*row, expected, "run {}", i + 1);
        }
        let n = |status: &str| -> i64 {
            conn.query_row(
                "SELECT n FROM JobRunCount WHERE status = ?1",
                [status],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!((n("COMPLETED"), n("FAILED")), (10, 2));
        let stats = crate::store::stats::job_stats(&conn).unwrap();
        let noop: Vec<i64> = stats
            .iter()
            .filter(|s| s.job == "noop")
            .map(|s| s.n)
            .collect();
        assert_eq!(noop, [10]);
    }
}
