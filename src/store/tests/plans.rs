//! The hot queries use their indexes and sort nothing in a temporary
//! B-tree, on a freshly migrated database.

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::job::JobStatus;
use crate::store::arms::{Arms, QueueGroup};
use crate::store::batch::CLAIM_PLAN_SQL;
use crate::store::bulk::{Selection, batch_query};
use crate::store::logs::RUN_LOG_PLAN_SQL;
use crate::store::runs::{RunFilter, history_query};
use crate::store::{Store, TestFile, failures, insight, notify, open_connection, stats};

/// `EXPLAIN QUERY PLAN` of `sql`, one line per step.
pub(crate) fn explain(conn: &Connection, sql: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .map_err(Error::db("explain query"))?;
    // Placeholders are bound to NULL: the plan is chosen at prepare time.
    let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
    let rows = stmt
        .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
        .map_err(Error::db("explain query"))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Error::db("explain query"))
}

#[test]
fn hot_queries_use_indexes_and_sort_nothing() -> Result<()> {
    let file = TestFile::new("plans");
    Store::open(&file.db())?;
    let conn = open_connection(&file.db())?;
    // Two job types' queues, one with two priorities: three id-ordered
    // ranges of JobRun_queue_type (see `arms`).
    let groups = [("a", 0), ("a", -5), ("b", 0)].map(|(name, priority)| QueueGroup {
        name: name.into(),
        priority,
    });
    let history = |f: RunFilter| history_query(&RunFilter { limit: 50, ..f }, &groups).0;
    let cases = [
        ("claim: the queued types", CLAIM_PLAN_SQL.to_string(), "JobRun_queue_type"),
        ("run log", RUN_LOG_PLAN_SQL.to_string(), "JobLog_run_time"),
        ("history", history(RunFilter::default()), "JobRun"),
        (
            "history by status",
            history(RunFilter {
                statuses: vec![JobStatus::Failed],
                ..RunFilter::default()
            }),
            "JobRun_status_id",
        ),
        (
            "history of queued runs (V20: not in JobRun_status_id)",
            history(RunFilter {
                statuses: vec![JobStatus::Queued],
                before_id: Some(100),
                ..RunFilter::default()
            }),
            "JobRun_queue_type (jobName=? AND priority=? AND id<?)",
        ),
        (
            "history of queued and failed runs",
            history(RunFilter {
                statuses: vec![JobStatus::Queued, JobStatus::Failed],
                ..RunFilter::default()
            }),
            "JobRun_status_id (status=?)",
        ),
        (
            "history of queued runs of one type",
            history(RunFilter {
                statuses: vec![JobStatus::Queued],
                name: Some("a".into()),
                ..RunFilter::default()
            }),
            "JobRun_queue_type (jobName=? AND priority=?)",
        ),
        (
            "history of running runs",
            history(RunFilter {
                statuses: vec![JobStatus::Running],
                ..RunFilter::default()
            }),
            "JobRun_status_id (status=?)",
        ),
        (
            "history by job type",
            history(RunFilter {
                name: Some("x".into()),
                ..RunFilter::default()
            }),
            "JobRun_name_id",
        ),
        (
            "a worker's running runs (cancel requests, recovery)",
            "SELECT id FROM JobRun WHERE workerId = 1 AND status = 'RUNNING' \
             AND cancelRequestedAt IS NOT NULL"
                .into(),
            "JobRun_status_id",
        ),
        (
            "change watcher: RUNNING runs updated since",
            format!("SELECT * {}", insight::RUNNING_SINCE),
            "JobRun_status_id",
        ),
        (
            "change watcher: runs finished since",
            format!("SELECT * {}", insight::FINISHED_AFTER),
            "JobRun_finished",
        ),
        (
            // Every column it reads is in the index: no run is looked up.
            "failure groups: the window's FAILED runs (V22)",
            failures::FAILED_SINCE.into(),
            "USING COVERING INDEX JobRun_failed (finishedAt>?)",
        ),
        (
            "stats: FAILED runs of a partial minute (V21)",
            insight::FAILED_BETWEEN.into(),
            "JobRun_failed (finishedAt>? AND finishedAt<?)",
        ),
        (
            "stats: finished runs of a partial minute",
            insight::FINISHED_BETWEEN.into(),
            "JobRun_finished (finishedAt>? AND finishedAt<?)",
        ),
        (
            "stats: a type's whole minutes in the rollup",
            "SELECT sum(failed) FROM RunMinute WHERE jobName = ?1 AND minute >= ?2".into(),
            "PRIMARY KEY (jobName=? AND minute>?)",
        ),
        (
            "change watcher: runs added since",
            "SELECT * FROM JobRun WHERE id >= 5 ORDER BY id LIMIT 1000".into(),
            "INTEGER PRIMARY KEY",
        ),
        (
            "documented log query",
            "SELECT level, stage, message, context, timestamp FROM JobLog WHERE jobRunId = 123 ORDER BY timestamp".into(),
            "JobLog_run_time",
        ),
        (
            "latest run's log query",
            "SELECT * FROM JobLog WHERE jobRunId = (SELECT MAX(id) FROM JobRun) ORDER BY timestamp".into(),
            "JobLog_run_time",
        ),
    ];
    let queued = RunFilter {
        statuses: vec![JobStatus::Queued],
        ..RunFilter::default()
    };
    let bulk = Selection {
        filter: &queued,
        upto: 100,
        not_rerun: false,
    };
    let cases = cases.into_iter().chain([
        (
            "a bulk action's next batch of queued runs",
            batch_query(&bulk, 5, 100, &groups).0,
            "JobRun_queue_type (jobName=? AND priority=? AND id>? AND id<?)",
        ),
        (
            "the active panel's queued runs (oldest first)",
            format!(
                "{} ORDER BY id LIMIT 20",
                Arms {
                    head: "SELECT id",
                    filter: &queued,
                    extra: Vec::new(),
                    groups: Some(&groups),
                }
                .sql()
                .0
            ),
            "JobRun_queue_type (jobName=? AND priority=?)",
        ),
    ]);
    for (what, sql, index) in cases {
        let p = explain(&conn, &sql)?.join(" | ");
        assert!(p.contains(index), "{what} does not use {index}: {p}");
        assert!(!p.contains("TEMP B-TREE"), "{what} sorts: {p}");
    }
    // Bounded sorts: the compound's arms are each indexed, but what they
    // return is sorted (a count needs no order; the overdue check and the
    // unfinished counts sort what the unfinished runs give).
    let sorted = [
        (
            "history count of queued and failed runs",
            format!(
                "SELECT count(*) FROM ({} LIMIT 1001)",
                Arms {
                    head: "SELECT 1",
                    filter: &RunFilter {
                        statuses: vec![JobStatus::Queued, JobStatus::Failed],
                        ..RunFilter::default()
                    },
                    extra: Vec::new(),
                    groups: None,
                }
                .sql()
                .0
            ),
            ["JobRun_queue_type", "JobRun_status_id (status=?)"],
        ),
        (
            // Only the failures past the cursor, however many runs
            // completed since (the part of the order after the finish
            // time is sorted: runs that failed in the same millisecond).
            "notify: failed runs past the cursor",
            notify::FAILED_SINCE_SQL.into(),
            ["JobRun_failed (finishedAt>?)", "JobRun_failed"],
        ),
        (
            "notify: overdue runs",
            notify::OVERDUE_SQL.into(),
            ["JobRun_queue_type", "JobRun_status_id (status=?)"],
        ),
        (
            "jobmgr status: unfinished runs per type",
            stats::UNFINISHED_SQL.into(),
            ["JobRun_queue_type", "JobRun_status_id (status=?)"],
        ),
    ];
    for (what, sql, indexes) in sorted {
        let p = explain(&conn, &sql)?.join(" | ");
        for index in indexes {
            assert!(p.contains(index), "{what} does not use {index}: {p}");
        }
        assert!(
            !p.contains("SCAN JobRun |") && !p.ends_with("SCAN JobRun"),
            "{what} scans: {p}"
        );
    }
    Ok(())
}

/// A cached statement with a bound `LIMIT` runs again without being
/// compiled again (SQLite re-prepares one whose plan used a bound value,
/// and planned `LIMIT ?` by its value, unless the connection asks for
/// stable plans).
#[test]
fn a_bound_limit_does_not_recompile_a_cached_statement() -> Result<()> {
    let file = TestFile::new("qpsg");
    Store::open(&file.db())?;
    let conn = open_connection(&file.db())?;
    let sql = "SELECT id FROM JobRun WHERE id >= ?1 ORDER BY id LIMIT ?2";
    for limit in [1, 1000, 1] {
        let mut stmt = conn.prepare_cached(sql).map_err(Error::db("prepare"))?;
        let ids: Vec<i64> = stmt
            .query_map(rusqlite::params![0, limit], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(Error::db("query"))?;
        assert!(ids.is_empty());
    }
    let stmt = conn.prepare_cached(sql).map_err(Error::db("prepare"))?;
    assert_eq!(
        stmt.get_status(rusqlite::StatementStatus::RePrepare),
        0,
        "the statement was compiled again"
    );
    Ok(())
}
