//! The job status table ([`JobStatus::TRANSITIONS`]) checked against the
//! statements that change a run's status: each store function that moves
//! runs is run on a run in every status, and must change exactly the runs
//! its table rows allow, to exactly the status they name; together they
//! must cover the table. A `WHERE` clause that drifts from the table, or a
//! table row no statement performs, fails here.

use std::collections::HashSet;

use rusqlite::Connection;

use super::batch::{self, Batch, Claimant, FinishRecord, ProgressRecord};
use super::runs::{self, OrphanRun};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::job::JobStatus::{self, *};

const ME: Claimant = Claimant { worker_id: 1 };
const NOW: &str = "2030-01-01T00:00:00.000Z";

type Move = fn(&mut Connection, i64) -> Result<()>;
/// The table rows a statement performs.
type Rows = Vec<(JobStatus, JobStatus)>;

fn finish(conn: &mut Connection, id: i64, status: JobStatus) -> Result<()> {
    let b = Batch {
        finishes: vec![finish_record(id, status)],
        ..Batch::default()
    };
    batch::commit(conn, &ME, &b, Timestamp::now()).map(|_| ())
}

fn finish_record(id: i64, status: JobStatus) -> FinishRecord {
    FinishRecord {
        progress: ProgressRecord {
            run_id: id,
            stage: None,
            processed: 0,
            total: None,
            unit: None,
            outcome: "{}".into(),
        },
        status,
        error: None,
        error_context: None,
        job_name: "noop".into(),
        started: None,
    }
}

/// Makes run `id` wait for a new run in `status`, then resolves.
fn waits_for(conn: &mut Connection, id: i64, status: JobStatus) -> Result<()> {
    conn.execute(
        "INSERT INTO JobRun (jobName, status, createdAt, updatedAt) VALUES ('b', ?1, ?2, ?2)",
        [status.as_str(), NOW],
    )
    .expect("insert the run waited for");
    let dep = conn.last_insert_rowid();
    conn.execute(
        "INSERT INTO JobRunDependency (runId, dependsOn) VALUES (?1, ?2)",
        [id, dep],
    )
    .expect("insert the dependency");
    in_tx(conn, |tx| {
        super::deps::resolve_waiting(tx, NOW).map(|_| true)
    })
}

/// [`waits_for`], resolved only for the runs waiting for the one that ended.
fn waits_for_after(conn: &mut Connection, id: i64, status: JobStatus) -> Result<()> {
    conn.execute(
        "INSERT INTO JobRun (jobName, status, createdAt, updatedAt) VALUES ('b', ?1, ?2, ?2)",
        [status.as_str(), NOW],
    )
    .expect("insert the run waited for");
    let dep = conn.last_insert_rowid();
    conn.execute(
        "INSERT INTO JobRunDependency (runId, dependsOn) VALUES (?1, ?2)",
        [id, dep],
    )
    .expect("insert the dependency");
    in_tx(conn, |tx| {
        let mut ended = super::deps::Ended::default();
        match status {
            JobStatus::Completed => ended.completed.push(dep),
            _ => ended.not_completed.push(dep),
        }
        super::deps::resolve_waiting_after(tx, NOW, &ended).map(|_| true)
    })
}

fn orphan(id: i64) -> OrphanRun {
    OrphanRun {
        id,
        job_name: "a".into(),
        worker_id: Some(ME.worker_id),
        cancel_requested: false,
        pgid: None,
    }
}

fn in_tx(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<bool>,
) -> Result<()> {
    let tx = conn
        .transaction()
        .map_err(crate::error::Error::db("begin"))?;
    f(&tx)?;
    tx.commit().map_err(crate::error::Error::db("commit"))
}

/// Every store function that changes a run's status, with the table rows
/// it performs.
fn moves() -> Vec<(&'static str, Move, Rows)> {
    vec![
        (
            "batch claim",
            |c, _| {
                let b = Batch {
                    claim: 1,
                    ..Batch::default()
                };
                batch::commit(c, &ME, &b, Timestamp::now()).map(|_| ())
            },
            vec![(Queued, Running)],
        ),
        (
            "batch queue due",
            |c, _| {
                let b = Batch {
                    queue_due: true,
                    ..Batch::default()
                };
                let now = Timestamp::parse(NOW).expect("NOW parses");
                batch::commit(c, &ME, &b, now).map(|_| ())
            },
            vec![(Scheduled, Queued)],
        ),
        (
            "batch finish COMPLETED",
            |c, id| finish(c, id, Completed),
            vec![(Running, Completed)],
        ),
        (
            "batch finish FAILED",
            |c, id| finish(c, id, Failed),
            vec![(Running, Failed)],
        ),
        (
            "batch finish CANCELLED",
            |c, id| finish(c, id, Cancelled),
            vec![(Running, Cancelled)],
        ),
        (
            "batch requeue",
            |c, id| finish(c, id, Queued),
            vec![(Running, Queued)],
        ),
        (
            "batch retry",
            |c, id| {
                let finish = finish_record(id, Failed);
                let b = Batch {
                    retries: vec![batch::RetryRecord {
                        finish,
                        run_at: Timestamp::now(),
                        max_attempts: 3,
                    }],
                    ..Batch::default()
                };
                batch::commit(c, &ME, &b, Timestamp::now()).map(|_| ())
            },
            vec![(Running, Scheduled)],
        ),
        (
            "give_up",
            |c, id| {
                c.execute("UPDATE JobRun SET attempt = 2 WHERE id = ?1", [id])
                    .expect("make it a retry");
                in_tx(c, |tx| super::attempts::give_up(tx, id, NOW))
            },
            vec![(Scheduled, Failed)],
        ),
        (
            "resolve_waiting, its run completed",
            |c, id| waits_for(c, id, Completed),
            vec![(Waiting, Queued)],
        ),
        (
            "resolve_waiting, its run failed",
            |c, id| waits_for(c, id, Failed),
            vec![(Waiting, Cancelled)],
        ),
        (
            "resolve_waiting_after, its run completed",
            |c, id| waits_for_after(c, id, Completed),
            vec![(Waiting, Queued)],
        ),
        (
            "resolve_waiting_after, its run was cancelled",
            |c, id| waits_for_after(c, id, Cancelled),
            vec![(Waiting, Cancelled)],
        ),
        (
            "retry_now",
            |c, id| {
                c.execute("UPDATE JobRun SET attempt = 2 WHERE id = ?1", [id])
                    .expect("make it a retry");
                in_tx(c, |tx| super::attempts::retry_now(tx, id, NOW))
            },
            vec![],
        ),
        (
            "release",
            |c, id| batch::release(c, &ME, &[id], Timestamp::now()),
            vec![(Running, Queued)],
        ),
        (
            "cancel_queued",
            |c, id| in_tx(c, |tx| runs::cancel_queued(tx, id, NOW)),
            vec![
                (Queued, Cancelled),
                (Scheduled, Cancelled),
                (Waiting, Cancelled),
            ],
        ),
        (
            "request_cancel",
            |c, id| in_tx(c, |tx| runs::request_cancel(tx, id, NOW)),
            vec![],
        ),
        (
            "fail_orphan",
            |c, id| in_tx(c, |tx| runs::fail_orphan(tx, &orphan(id), "lost", NOW)),
            vec![(Running, Failed)],
        ),
        (
            "cancel_orphan",
            |c, id| in_tx(c, |tx| runs::cancel_orphan(tx, &orphan(id), "lost", NOW)),
            vec![(Running, Cancelled)],
        ),
        (
            "retry_orphan",
            |c, id| {
                in_tx(c, |tx| {
                    super::attempts::retry_orphan(tx, &orphan(id), "lost", NOW, 3, NOW)
                })
            },
            vec![(Running, Scheduled)],
        ),
        (
            "requeue_orphan",
            |c, id| in_tx(c, |tx| runs::requeue_orphan(tx, &orphan(id), "lost", NOW)),
            vec![(Running, Queued)],
        ),
        (
            "requeue",
            |c, id| in_tx(c, |tx| runs::requeue(tx, id, Some(ME.worker_id), None, NOW)),
            vec![(Running, Queued)],
        ),
    ]
}

/// A database with worker 1 and one run in `status` held by it.
fn run_in(file: &super::TestFile, status: JobStatus) -> (Connection, i64) {
    let db = file.db();
    super::Store::open(&db).expect("open store");
    let conn = super::open_writer_connection(&db).expect("writer connection");
    conn.execute(
        "INSERT INTO Worker (id, hostname, pid, version, state, startedAt, heartbeatAt) \
         VALUES (1, 'h', 1, 'v', 'RUNNING', ?1, ?1)",
        [NOW],
    )
    .expect("insert worker");
    conn.execute(
        "INSERT INTO JobRun (jobName, status, createdAt, updatedAt, workerId, runAt) \
         VALUES ('a', ?1, ?2, ?2, 1, ?2)",
        [status.as_str(), NOW],
    )
    .expect("insert run");
    let id = conn.last_insert_rowid();
    (conn, id)
}

fn status_of(conn: &Connection, id: i64) -> JobStatus {
    let text: String = conn
        .query_row("SELECT status FROM JobRun WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .expect("read status");
    JobStatus::parse(&text).expect("a known status")
}

#[test]
fn every_status_change_in_the_store_is_a_row_of_the_table() {
    let mut performed = HashSet::new();
    for (name, f, rows) in moves() {
        for &from in &JobStatus::ALL {
            let file = super::TestFile::new("transitions");
            let (mut conn, id) = run_in(&file, from);
            f(&mut conn, id).unwrap_or_else(|e| panic!("{name} on a {from} run: {e}"));
            let to = status_of(&conn, id);
            let expected = rows
                .iter()
                .find(|(a, _)| *a == from)
                .map_or(from, |(_, b)| *b);
            assert_eq!(to, expected, "{name} on a {from} run");
            if to != from {
                assert!(
                    from.can_become(to),
                    "{name} moved a run {from} → {to}, not in the table"
                );
                performed.insert((from, to));
            }
        }
    }
    let table: HashSet<_> = JobStatus::TRANSITIONS.into_iter().collect();
    assert_eq!(
        performed, table,
        "table rows no statement performs, or the reverse"
    );
}
