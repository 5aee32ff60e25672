//! Recording finished runs: many per UPDATE statement, each fenced by the
//! worker's id and the run still being RUNNING; and putting a run back in
//! the queue for another attempt.

use rusqlite::{Transaction, params};

use super::{Claimant, FinishRecord, Ownership};
use crate::error::{Error, Result};
use crate::job::JobStatus;
use crate::store::multirow::{self, Family};
use crate::store::{counts, minutes, stats};

/// Finishes up to 256 runs per UPDATE statement.
pub(super) static FINISH: Family = Family::new(256, finish_sql);

/// Records many finished runs with one UPDATE … FROM (VALUES …): the
/// statement journal the JobRunCount triggers need is then paid once per
/// chunk, not once per run. Fenced like every write: only rows still
/// RUNNING under this worker change.
pub(super) fn write_ends(
    tx: &Transaction<'_>,
    me: &Claimant,
    owned: &mut Ownership,
    ends: &[&FinishRecord],
    now: &str,
) -> Result<()> {
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
    let changed = tx
        .prepare_cached(FINISH.sql(ends.len()))
        .and_then(|mut stmt| stmt.execute(args.as_slice()))
        .map_err(Error::db("finish runs"))?;
    for f in ends {
        // Either way the run is no longer ours: later lines are refused.
        owned.0.insert(f.progress.run_id, false);
    }
    if changed == ends.len() {
        return count_finished(tx, ends, now);
    }
    // Some runs were resolved by another process meanwhile (fencing); find
    // which, the rare way: ours now carry this commit's time.
    let mut finished = Vec::with_capacity(changed);
    for f in ends {
        if finished_by_me(tx, me, f, now)? {
            finished.push(*f);
        } else {
            owned.1.push(f.progress.run_id);
        }
    }
    count_finished(tx, &finished, now)
}

/// Counts the runs this statement finished, per status and in the metrics'
/// and the charts' rollups (one UPSERT per job type each), when the
/// connection's triggers are off.
fn count_finished(tx: &Transaction<'_>, finished: &[&FinishRecord], now: &str) -> Result<()> {
    if !counts::by_hand(tx)? {
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
        let file = crate::store::TestFile::new("batch");
        let db = file.db();
        Store::open(&db).unwrap();
        let mut conn = crate::store::open_writer_connection(&db).unwrap();
        // Another process, with triggers on like every connection but the
        // bulk writers'.
        let other = crate::store::open_connection(&db).unwrap();
        other
            .execute_batch(
                "INSERT INTO Worker (id, hostname, pid, version, state, startedAt, heartbeatAt) \
             VALUES (1, 'h', 1, 'v', 'RUNNING', 'x', 'x');
             INSERT INTO JobRun (jobName, status, createdAt, updatedAt) VALUES
               ('a', 'QUEUED', 'x', 'x'), ('a', 'QUEUED', 'x', 'x'), ('a', 'QUEUED', 'x', 'x');",
            )
            .unwrap();
        let me = Claimant { worker_id: 1 };
        let claim = Batch {
            claim: 3,
            ..Batch::default()
        };
        let got = commit(&mut conn, &me, &claim, Timestamp::now()).unwrap();
        assert_eq!(got.claimed.len(), 3);
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
}
