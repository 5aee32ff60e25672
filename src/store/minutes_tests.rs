//! The charts' rollup: the writer's hand count and the V19 triggers agree,
//! the cascade of cancelled waiting runs is counted, the back-fill counts
//! the runs a V17 file had, quantiles interpolate, and the reads find their
//! rows through the primary key and the finish index.

use refinery::Target;
use rusqlite::Connection;

use super::*;
use crate::job::JobStatus;
use crate::store::batch::{self, Batch, Claimant, FinishRecord, ProgressRecord, ResolveWaiting};
use crate::store::migrate::embedded;
use crate::store::{Store, TestFile, open_connection, open_writer_connection};

const ME: Claimant = Claimant { worker_id: 1 };

/// Every row of `RunMinute`, all columns, in key order.
fn rows(conn: &Connection) -> Vec<Vec<i64>> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT minute, completed, failed, cancelled, timed, durationSumMs, {BUCKET_COLUMNS} \
             FROM RunMinute ORDER BY jobName, minute"
        ))
        .unwrap();
    stmt.query_map([], |r| (0..6 + BUCKETS).map(|i| r.get(i)).collect())
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// A file with worker 1 and RUNNING runs of type `a` that started at
/// `start + offsets[i]` ms; returns the writer connection.
fn running(file: &TestFile, start: Timestamp, offsets: &[i64]) -> Connection {
    let db = file.db();
    Store::open(&db).unwrap();
    let conn = open_writer_connection(&db).unwrap();
    conn.execute(
        "INSERT INTO Worker (id, hostname, pid, version, state, startedAt, heartbeatAt) \
         VALUES (1, 'h', 1, 'v', 'RUNNING', 'x', 'x')",
        [],
    )
    .unwrap();
    for off in offsets {
        conn.execute(
            "INSERT INTO JobRun (jobName, status, createdAt, updatedAt, workerId, startedAt) \
             VALUES ('a', 'RUNNING', 'x', 'x', 1, ?1)",
            [start.plus_ms(*off).to_text()],
        )
        .unwrap();
    }
    conn
}

fn record(id: i64, status: JobStatus, started: Timestamp) -> FinishRecord {
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
        job_name: "a".into(),
        started: Some(started),
    }
}

#[test]
fn the_writer_counts_what_the_triggers_count() {
    let start = Timestamp::parse("2030-01-01T00:00:00.000Z").unwrap();
    let end = start.plus_ms(70_000);
    // Durations 70 s, 69.99 s, ..., 3 ms: buckets all along the histogram.
    let offsets = [0, 10, 9_000, 40_000, 65_000, 69_000, 69_990, 69_997];
    let statuses = [
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Completed,
        JobStatus::Cancelled,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Completed,
        JobStatus::Completed,
    ];
    let by_writer = TestFile::new("minutes-writer");
    let mut w = running(&by_writer, start, &offsets);
    let finishes = (0..offsets.len())
        .map(|i| record(i as i64 + 1, statuses[i], start.plus_ms(offsets[i])))
        .collect();
    let b = Batch {
        finishes,
        ..Batch::default()
    };
    batch::commit(&mut w, &ME, &b, end).unwrap();

    let by_triggers = TestFile::new("minutes-triggers");
    running(&by_triggers, start, &offsets);
    let plain = open_connection(&by_triggers.db()).unwrap();
    for (i, s) in statuses.iter().enumerate() {
        plain
            .execute(
                "UPDATE JobRun SET status = ?2, finishedAt = ?3 WHERE id = ?1",
                rusqlite::params![i as i64 + 1, s.as_str(), end.to_text()],
            )
            .unwrap();
    }
    let got = rows(&w);
    assert_eq!(got, rows(&plain));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][0], minute_of(end));
    assert_eq!(&got[0][1..5], &[5, 2, 1, 8]);
    assert_eq!(got[0][5], offsets.iter().map(|o| 70_000 - o).sum::<i64>());
}

#[test]
fn waiting_runs_the_writer_cancels_are_counted() {
    let start = Timestamp::parse("2030-01-01T00:00:00.000Z").unwrap();
    let file = TestFile::new("minutes-cascade");
    let mut w = running(&file, start, &[0]);
    w.execute_batch(
        "INSERT INTO JobRun (id, jobName, status, createdAt, updatedAt) \
         VALUES (2, 'after', 'WAITING', 'x', 'x'); \
         INSERT INTO JobRunDependency (runId, dependsOn) VALUES (2, 1);",
    )
    .unwrap();
    let b = Batch {
        finishes: vec![record(1, JobStatus::Failed, start)],
        resolve_waiting: ResolveWaiting::After,
        ..Batch::default()
    };
    batch::commit(&mut w, &ME, &b, start.plus_ms(5)).unwrap();
    let cancelled: (i64, i64) = w
        .query_row(
            "SELECT cancelled, timed FROM RunMinute WHERE jobName = 'after'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(cancelled, (1, 0));
    let stat: i64 = w
        .query_row(
            "SELECT n FROM JobStat WHERE jobName = 'after' AND status = 'CANCELLED'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stat, 1);
}

#[test]
fn the_back_fill_counts_the_finished_runs_of_the_last_days() {
    let file = TestFile::new("minutes-backfill");
    let mut conn = open_connection(&file.db()).unwrap();
    embedded::migrations::runner()
        .set_target(Target::Version(17))
        .run(&mut conn)
        .unwrap();
    let now = Timestamp::now();
    let t = |ms: i64| now.plus_ms(ms).to_text();
    let runs = [
        ("a", "COMPLETED", Some(t(-120_000)), t(-119_000)),
        ("a", "COMPLETED", Some(t(-120_000)), t(-119_500)),
        ("a", "FAILED", Some(t(-3_600_000)), t(-3_599_990)),
        ("b", "CANCELLED", None, t(-60_000)),
        // Too old for the charts, and not finished.
        (
            "a",
            "COMPLETED",
            Some(t(-10 * 86_400_000)),
            t(-10 * 86_400_000),
        ),
    ];
    for (job, status, started, finished) in &runs {
        conn.execute(
            "INSERT INTO JobRun (jobName, status, createdAt, updatedAt, startedAt, finishedAt) \
             VALUES (?1, ?2, 'x', 'x', ?3, ?4)",
            rusqlite::params![job, status, started, finished],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO JobRun (jobName, status, createdAt, updatedAt) VALUES ('a', 'QUEUED', 'x', 'x')",
        [],
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&file.db()).unwrap();
    let conn = store.conn().unwrap();
    let total: (i64, i64, i64, i64, i64) = conn
        .query_row(
            "SELECT sum(completed), sum(failed), sum(cancelled), sum(timed), sum(durationSumMs) \
             FROM RunMinute",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(total, (2, 1, 1, 3, 1_000 + 500 + 10));
    let a = window(&conn, "a", 0, i64::MAX, i64::MAX).unwrap();
    assert_eq!(a.len(), 1);
    // 10 ms in the first bucket, 500 ms in the sixth, 1 s in the seventh.
    assert_eq!(a[0].1.buckets[..7], [1, 0, 0, 0, 0, 1, 1]);
    assert_eq!(types(&conn).unwrap(), ["a", "b"]);
}

#[test]
fn quantiles_interpolate_inside_a_bucket() {
    let mut f = Figures::default();
    assert_eq!(f.quantile_ms(0.5), None);
    // 10 runs between 1 s and 2.5 s.
    f.timed = 10;
    f.buckets[7] = 10;
    assert_eq!(f.quantile_ms(0.5), Some(1_750));
    assert_eq!(f.quantile_ms(0.95), Some(2_425));
    // One more bucket of slow runs pulls the p95 there.
    f.timed = 20;
    f.buckets[BUCKETS - 1] = 10;
    assert_eq!(f.quantile_ms(0.5), Some(2_500));
    assert_eq!(f.quantile_ms(0.95), Some(3_600_000));
}

#[test]
fn the_reads_seek_instead_of_scanning() {
    let file = TestFile::new("minutes-plans");
    let store = Store::open(&file.db()).unwrap();
    let conn = store.conn().unwrap();
    for sql in [
        "SELECT max(minute) FROM RunMinute WHERE jobName = 'a'",
        "SELECT jobName FROM RunMinute WHERE jobName > 'a' ORDER BY jobName LIMIT 1",
        "SELECT sum(completed) FROM RunMinute WHERE jobName = 'a' AND minute >= 1 AND minute < 5",
        "SELECT id FROM JobRun INDEXED BY JobRun_finished WHERE finishedAt IS NOT NULL \
         AND finishedAt >= 'a' AND finishedAt < 'b' AND jobName = 'x' \
         ORDER BY finishedAt DESC, id DESC LIMIT 1",
    ] {
        let plan = crate::store::tests::plans::explain(&conn, sql)
            .unwrap()
            .join(" | ");
        assert!(plan.contains("SEARCH"), "{sql}: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
    }
}
