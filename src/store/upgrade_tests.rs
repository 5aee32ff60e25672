//! Upgrading a database that has history: V9 rebuilds `JobRun`, and must
//! keep every run, every log line and the counters, with foreign keys
//! intact (a DROP TABLE with foreign keys on would have deleted the log
//! lines through ON DELETE CASCADE).

use refinery::Target;
use rusqlite::Connection;

use super::migrate::embedded;
use super::{Store, TestFile, open_connection};

fn scalar(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn the_v9_rebuild_keeps_runs_logs_and_counters() {
    let file = TestFile::new("upgrade-v9");
    let mut conn = open_connection(&file.db()).unwrap();
    embedded::migrations::runner()
        .set_target(Target::Version(8))
        .run(&mut conn)
        .unwrap();
    conn.execute_batch(
        "INSERT INTO JobRun (id, jobName, status, createdAt, updatedAt, finishedAt) VALUES \
           (1, 'a', 'COMPLETED', 't', 't', 't'), (2, 'a', 'FAILED', 't', 't', 't'), \
           (3, 'a', 'QUEUED', 't', 't', NULL); \
         INSERT INTO JobRun (id, jobName, status, createdAt, updatedAt, rerunOfId) VALUES \
           (4, 'a', 'QUEUED', 't', 't', 2); \
         INSERT INTO JobLog (jobRunId, level, message, timestamp) VALUES \
           (1, 'info', 'one', 't'), (1, 'info', 'two', 't'), (2, 'error', 'three', 't');",
    )
    .unwrap();
    drop(conn);

    let store = Store::open(&file.db()).unwrap();
    let conn = store.conn().unwrap();
    assert_eq!(scalar(&conn, "SELECT count(*) FROM JobRun"), 4);
    assert_eq!(scalar(&conn, "SELECT count(*) FROM JobLog"), 3);
    assert_eq!(
        scalar(&conn, "SELECT rerunOfId FROM JobRun WHERE id = 4"),
        2
    );
    assert_eq!(
        scalar(&conn, "SELECT count(*) FROM pragma_foreign_key_check"),
        0
    );
    assert_eq!(
        scalar(&conn, "SELECT n FROM JobRunCount WHERE status = 'ALL'"),
        4
    );
    assert_eq!(
        scalar(
            &conn,
            "SELECT n FROM JobRunCount WHERE status = 'COMPLETED'"
        ),
        1
    );
    assert_eq!(
        scalar(
            &conn,
            "SELECT n FROM JobRunCount WHERE status = 'SCHEDULED'"
        ),
        0
    );
    // Foreign keys are back on for the pool's connections, and the log
    // lines still belong to the rebuilt table.
    assert_eq!(scalar(&conn, "PRAGMA foreign_keys"), 1);
    conn.execute("DELETE FROM JobRun WHERE id = 1", []).unwrap();
    assert_eq!(scalar(&conn, "SELECT count(*) FROM JobLog"), 1);
    // New ids continue after the old ones.
    conn.execute(
        "INSERT INTO JobRun (jobName, status, createdAt, updatedAt) VALUES ('a', 'QUEUED', 't', 't')",
        [],
    )
    .unwrap();
    assert_eq!(conn.last_insert_rowid(), 5);
}

/// V16 rewrites the status and level CHECKs as chains of equalities: the
/// text must really change (its `replace` matched), the rule must still
/// hold on the connections that read the new text, and the file stays
/// sound.
#[test]
fn the_v16_checks_are_equalities_and_still_refuse_bad_values() {
    let file = TestFile::new("upgrade-v16");
    let mut conn = open_connection(&file.db()).unwrap();
    embedded::migrations::runner()
        .set_target(Target::Version(15))
        .run(&mut conn)
        .unwrap();
    conn.execute_batch(
        "INSERT INTO JobRun (id, jobName, status, createdAt, updatedAt) VALUES (1, 'a', 'QUEUED', 't', 't'); \
         INSERT INTO JobLog (jobRunId, level, message, timestamp) VALUES (1, 'info', 'one', 't');",
    )
    .unwrap();
    let before = scalar(&conn, "PRAGMA schema_version");
    drop(conn);

    let store = Store::open(&file.db()).unwrap();
    let conn = store.conn().unwrap();
    assert!(scalar(&conn, "PRAGMA schema_version") > before);
    let text = |name: &str| -> String {
        conn.query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    };
    let (runs, logs) = (text("JobRun"), text("JobLog"));
    assert!(
        !runs.contains("status IN") && runs.contains("status = 'WAITING'"),
        "{runs}"
    );
    assert!(
        !logs.contains("level IN") && logs.contains("level = 'warning'"),
        "{logs}"
    );
    let refused = |sql: &str| {
        let e = conn.execute(sql, []).unwrap_err().to_string();
        assert!(e.contains("CHECK constraint failed"), "{sql}: {e}");
    };
    refused("UPDATE JobRun SET status = 'BOGUS' WHERE id = 1");
    refused(
        "INSERT INTO JobLog (jobRunId, level, message, timestamp) VALUES (1, 'loud', 'x', 't')",
    );
    conn.execute("UPDATE JobRun SET status = 'RUNNING' WHERE id = 1", [])
        .unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

/// V18 holds a unique key until `finishedAt` is set: a finished run that
/// lacks one (written by hand) gets its last update as `finishedAt`, so it
/// does not hold its key, and a live run still does.
#[test]
fn the_v18_unique_index_frees_the_keys_of_finished_runs() {
    let file = TestFile::new("upgrade-v18");
    let mut conn = open_connection(&file.db()).unwrap();
    embedded::migrations::runner()
        .set_target(Target::Version(17))
        .run(&mut conn)
        .unwrap();
    conn.execute_batch(
        "INSERT INTO JobRun (id, jobName, status, createdAt, updatedAt, uniqueKey) VALUES \
           (1, 'a', 'COMPLETED', 't', 'u1', 'done'), (2, 'a', 'QUEUED', 't', 't', 'live');",
    )
    .unwrap();
    drop(conn);

    let store = Store::open(&file.db()).unwrap();
    let conn = store.conn().unwrap();
    let finished: String = conn
        .query_row("SELECT finishedAt FROM JobRun WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(finished, "u1");
    let insert = |key: &str| {
        conn.execute(
            "INSERT INTO JobRun (jobName, status, createdAt, updatedAt, uniqueKey) \
             VALUES ('a', 'QUEUED', 't', 't', ?1)",
            [key],
        )
    };
    insert("done").expect("a finished run's key is free");
    assert!(insert("live").is_err(), "a queued run holds its key");
}

/// V20 takes QUEUED runs out of `JobRun_status_id` and counts the total as
/// the largest id minus the ids without a run: on a file with history and
/// gaps in its ids, the counters read as before and stay exact.
#[test]
fn the_v20_total_and_status_index_keep_what_they_said() {
    let file = TestFile::new("upgrade-v20");
    let mut conn = open_connection(&file.db()).unwrap();
    embedded::migrations::runner()
        .set_target(Target::Version(19))
        .run(&mut conn)
        .unwrap();
    conn.execute_batch(
        "INSERT INTO JobRun (id, jobName, status, createdAt, updatedAt, finishedAt) VALUES \
           (1, 'a', 'COMPLETED', 't', 't', 't'), (2, 'a', 'FAILED', 't', 't', 't'), \
           (5, 'a', 'QUEUED', 't', 't', NULL), (6, 'b', 'RUNNING', 't', 't', NULL), \
           (9, 'b', 'QUEUED', 't', 't', NULL);",
    )
    .unwrap();
    assert_eq!(
        scalar(&conn, "SELECT n FROM JobRunCount WHERE status = 'ALL'"),
        5
    );
    drop(conn);

    let store = Store::open(&file.db()).unwrap();
    let conn = store.conn().unwrap();
    let all = "SELECT n FROM JobRunCount WHERE status = 'ALL'";
    assert_eq!(scalar(&conn, all), 5);
    assert_eq!(
        scalar(&conn, "SELECT n FROM JobRunCounter WHERE status = 'GAPS'"),
        4
    );
    assert_eq!(
        scalar(&conn, "SELECT n FROM JobRunCount WHERE status = 'FAILED'"),
        1
    );
    // The index holds the RUNNING and finished runs, not the QUEUED ones.
    assert_eq!(
        scalar(
            &conn,
            "SELECT count(*) FROM JobRun INDEXED BY JobRun_status_id \
             WHERE status = 'RUNNING' OR status = 'COMPLETED' OR status = 'FAILED' \
                OR status = 'CANCELLED' OR status = 'SCHEDULED' OR status = 'WAITING'"
        ),
        3
    );
    // New ids continue after the old ones, and the total follows.
    conn.execute(
        "INSERT INTO JobRun (jobName, status, createdAt, updatedAt) VALUES ('a', 'QUEUED', 't', 't')",
        [],
    )
    .unwrap();
    assert_eq!(conn.last_insert_rowid(), 10);
    conn.execute("DELETE FROM JobRun WHERE id IN (2, 10)", [])
        .unwrap();
    assert_eq!(scalar(&conn, all), 4);
    assert_eq!(scalar(&conn, "SELECT count(*) FROM JobRun"), 4);
}
