//! The CLI against a real database file: enqueue, listing, details, cancel,
//! re-run, job types, and the errors bad input gets (with nothing written).

mod common;

use std::process::{Command, Stdio};

use common::TestDb;
use serde_json::Value;

fn run_count(db: &TestDb) -> i64 {
    db.scalar("SELECT count(*) FROM JobRun")
        .parse()
        .unwrap_or(-1)
}

#[test]
fn enqueue_stores_a_queued_run_with_typed_parameters() {
    let db = TestDb::new("enqueue");
    let id = db.enqueue("demo-known-total", &["count=5", "delay_ms=0"]);
    let rows = db.query(&format!(
        "SELECT jobName, status, parameters, priority, attempt, triggeredBy, createdAt, \
         entitiesProcessed, outcomeSummary FROM JobRun WHERE id = {id}"
    ));
    let r = &rows[0];
    assert_eq!(r[0], "demo-known-total");
    assert_eq!(r[1], "QUEUED");
    let params: Value = serde_json::from_str(r[2].as_str().unwrap()).unwrap();
    assert_eq!(params, serde_json::json!({"count": 5, "delay_ms": 0}));
    assert_eq!(r[3], 0);
    assert_eq!(r[4], 1);
    assert_eq!(r[5], "cli");
    let created = r[6].as_str().unwrap();
    assert_eq!(created.len(), 24, "{created}");
    assert!(
        created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    assert_eq!(r[7], 0);
    assert_eq!(r[8], "{}");
}

#[test]
fn defaults_fill_missing_parameters_and_priority_is_kept() {
    let db = TestDb::new("defaults");
    let id: i64 = db
        .ok(&["enqueue", "demo-unknown-total", "--priority", "-5"])
        .parse()
        .unwrap();
    assert_eq!(
        db.scalar(&format!("SELECT parameters FROM JobRun WHERE id = {id}")),
        r#"{"count":100,"delay_ms":50}"#
    );
    assert_eq!(
        db.scalar(&format!("SELECT priority FROM JobRun WHERE id = {id}")),
        "-5"
    );
}

#[test]
fn bad_input_is_refused_with_a_clear_message_and_nothing_written() {
    let db = TestDb::new("badinput");
    db.ok(&["migrate"]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["enqueue", "demo-known-totl"],
            "jobmgr: unknown job type 'demo-known-totl' (did you mean 'demo-known-total'?)",
        ),
        (
            &["enqueue", "demo-known-total", "-p", "count=abc"],
            "jobmgr: parameter 'count': expected an integer, got \"abc\"",
        ),
        (
            &["enqueue", "demo-known-total", "-p", "count=-1"],
            "jobmgr: parameter 'count': must be at least 0, got -1",
        ),
        (
            &["enqueue", "demo-known-total", "-p", "cuont=1"],
            "jobmgr: parameter 'cuont': unknown parameter for job type 'demo-known-total' (did you mean 'count'?)",
        ),
        (
            &["enqueue", "backup-database"],
            "jobmgr: parameter 'path': is required",
        ),
        (
            &["enqueue", "demo-known-total", "-p", "count"],
            "jobmgr: -p expects KEY=VALUE, got 'count'",
        ),
        (
            &["enqueue", "demo-known-total", "--priority", "5000"],
            "jobmgr: priority must be between -1000 and 1000, got 5000",
        ),
        (
            &["enqueue", "demo-multi-phase", "-p", "fail_mode=explode"],
            "jobmgr: parameter 'fail_mode': must be one of error, panic",
        ),
        (&["show", "999"], "jobmgr: job run 999 not found"),
        (&["cancel", "999"], "jobmgr: job run 999 not found"),
        (&["rerun", "999"], "jobmgr: job run 999 not found"),
        (&["logs", "999"], "jobmgr: job run 999 not found"),
        (
            &["jobs", "--status", "DONE"],
            "jobmgr: unknown status 'DONE' (expected one of SCHEDULED, WAITING, QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED)",
        ),
    ];
    for (args, expected) in cases {
        let err = db.fails(args);
        assert_eq!(err.trim(), *expected, "for {args:?}");
    }
    assert_eq!(run_count(&db), 0);
}

#[test]
fn an_unreadable_database_is_a_one_line_error() {
    let db = TestDb::new("unreadable");
    std::fs::write(
        &db.path,
        b"this is not a database, just some text padding it out....",
    )
    .unwrap();
    let err = db.fails(&["status"]);
    assert!(
        err.starts_with("jobmgr: open database") && err.contains("not a database"),
        "{err}"
    );
    let missing_dir = db.dir.join("no/such/dir/x.db");
    let out = std::process::Command::new(common::BIN)
        .args(["--db", missing_dir.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not exist"), "{err}");
    // The garbage file is left exactly as it was.
    assert!(
        std::fs::read(&db.path)
            .unwrap()
            .starts_with(b"this is not a database")
    );
}

#[test]
fn cancel_queued_run_is_immediate_and_finished_runs_refuse() {
    let db = TestDb::new("cancel");
    let id = db.enqueue("demo-known-total", &[]);
    assert_eq!(
        db.ok(&["cancel", &id.to_string()]),
        format!("run {id} cancelled")
    );
    assert_eq!(db.status_of(id), "CANCELLED");
    assert!(
        !db.scalar(&format!("SELECT finishedAt FROM JobRun WHERE id = {id}"))
            .is_empty()
    );
    let err = db.fails(&["cancel", &id.to_string()]);
    assert_eq!(
        err.trim(),
        format!("jobmgr: run {id} is CANCELLED and can no longer be cancelled")
    );
}

#[test]
fn rerun_copies_parameters_and_points_back() {
    let db = TestDb::new("rerun");
    let id = db.enqueue("demo-multi-phase", &["count=3", "fail_at=2"]);
    let err = db.fails(&["rerun", &id.to_string()]);
    assert!(err.contains("is QUEUED; only finished runs"), "{err}");
    db.ok(&["cancel", &id.to_string()]);
    let new: i64 = db.ok(&["rerun", &id.to_string()]).parse().unwrap();
    assert_ne!(new, id);
    let rows = db.query(&format!(
        "SELECT status, rerunOfId, parameters, jobName FROM JobRun WHERE id = {new}"
    ));
    assert_eq!(rows[0][0], "QUEUED");
    assert_eq!(rows[0][1], id);
    assert_eq!(
        rows[0][2],
        db.scalar(&format!("SELECT parameters FROM JobRun WHERE id = {id}"))
    );
    assert_eq!(rows[0][3], "demo-multi-phase");
}

#[test]
fn listing_and_details_in_text_and_json() {
    let db = TestDb::new("listing");
    let a = db.enqueue("demo-known-total", &["count=7"]);
    let b = db.enqueue("demo-unknown-total", &[]);
    db.ok(&["cancel", &b.to_string()]);

    let all: Value = serde_json::from_str(&db.ok(&["--json", "jobs"])).unwrap();
    let ids: Vec<i64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![b, a], "newest first");

    let cancelled: Value =
        serde_json::from_str(&db.ok(&["jobs", "--status", "cancelled", "--json"])).unwrap();
    assert_eq!(cancelled.as_array().unwrap().len(), 1);
    assert_eq!(cancelled[0]["id"], b);
    // Several statuses at once.
    let both: Value =
        serde_json::from_str(&db.ok(&["jobs", "--status", "QUEUED,cancelled", "--json"])).unwrap();
    let ids: Vec<i64> = both
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![b, a]);
    let err = db.fails(&["jobs", "--status", "FAILED,DONE"]);
    assert!(err.contains("unknown status 'DONE'"), "{err}");

    let by_name: Value =
        serde_json::from_str(&db.ok(&["jobs", "--name", "demo-known-total", "--json"])).unwrap();
    assert_eq!(by_name[0]["id"], a);

    let page2: Value =
        serde_json::from_str(&db.ok(&["jobs", "--before", &b.to_string(), "--json"])).unwrap();
    assert_eq!(page2.as_array().unwrap().len(), 1);
    assert_eq!(page2[0]["id"], a);

    let search: Value =
        serde_json::from_str(&db.ok(&["jobs", "-q", "\"count\":7", "--json"])).unwrap();
    assert_eq!(search.as_array().unwrap().len(), 1);

    let text = db.ok(&["jobs"]);
    assert!(
        text.contains("demo-known-total") && text.contains("CANCELLED"),
        "{text}"
    );
    assert!(text.contains("Queued"), "{text}");

    let show: Value = serde_json::from_str(&db.ok(&["show", &a.to_string(), "--json"])).unwrap();
    assert_eq!(show["jobName"], "demo-known-total");
    assert_eq!(show["parameters"]["count"], 7);
    assert_eq!(show["status"], "QUEUED");

    let status: Value = serde_json::from_str(&db.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["counts"]["byStatus"]["QUEUED"], 1);
    assert_eq!(status["counts"]["byStatus"]["CANCELLED"], 1);
    assert_eq!(status["worker"]["state"], "NONE");
}

#[test]
fn job_types_lists_declared_parameters() {
    let db = TestDb::new("types");
    let types: Value = serde_json::from_str(&db.ok(&["job-types", "--json"])).unwrap();
    let names: Vec<&str> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for n in [
        "backup-database",
        "demo-known-total",
        "demo-multi-phase",
        "demo-unknown-total",
        "prune-history",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let demo = types
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "demo-known-total")
        .unwrap();
    assert!(demo["description"].as_str().unwrap().starts_with("Demo"));
    assert_eq!(demo["parameters"][0]["name"], "count");
    assert_eq!(demo["parameters"][0]["type"], "integer");
    assert_eq!(demo["parameters"][0]["default"], 100);
    let text = db.ok(&["job-types"]);
    assert!(text.contains("-p older_than_days=<integer>"), "{text}");
}

#[test]
fn migrate_creates_the_schema_once() {
    let db = TestDb::new("migrate");
    let first = db.ok(&["migrate"]);
    assert!(first.contains("V1__init"), "{first}");
    assert_eq!(
        db.ok(&["migrate"]),
        format!("database {} is up to date", db.path.display())
    );
    let tables = db.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('JobRun', 'JobLog', 'Worker') ORDER BY name",
    );
    assert_eq!(tables.len(), 3);
    assert_eq!(db.scalar("PRAGMA journal_mode"), "wal");
}

/// Processes that start together on a new file (serve and a worker, or
/// several CLIs that create it) race to apply the same migrations; every one of them must
/// start, and the schema is applied once.
#[test]
fn processes_starting_together_on_a_new_file_all_migrate() {
    for round in 0..8 {
        let db = TestDb::new(&format!("migrate-race-{round}"));
        let children: Vec<_> = (0..10)
            .map(|_| {
                db.cmd()
                    .args(["enqueue", "demo-known-total"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn jobmgr")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(
            db.scalar("SELECT count(*) FROM refinery_schema_history"),
            db.scalar("SELECT count(DISTINCT version) FROM refinery_schema_history")
        );
        assert_eq!(
            db.scalar("SELECT count(*) FROM JobRunCount WHERE status = 'ALL'"),
            "1"
        );
    }
}

/// Adds `n` queued runs straight into the file (faster than `n` enqueues),
/// each with a 60-character error so that each line of `jobs` is long.
fn insert_runs(db: &TestDb, n: usize) {
    db.conn()
        .execute(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1) \
             INSERT INTO JobRun (jobName, status, createdAt, updatedAt, error) \
             SELECT 'demo-known-total', 'QUEUED', '2026-01-01T00:00:00.000Z', \
             '2026-01-01T00:00:00.000Z', hex(zeroblob(30)) FROM k",
            [n as i64],
        )
        .expect("insert runs");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_with_status_0() {
    let db = TestDb::new("pipe");
    db.ok(&["migrate"]);
    insert_runs(&db, 1000);
    // The real case: a 1000-row table (170 KB, far more than a pipe and
    // head's buffer hold) into `head -1`, which exits after the first
    // line; pipefail gives jobmgr's own status.
    let out = Command::new("bash")
        .arg("-c")
        .arg("set -o pipefail; \"$0\" --db \"$1\" jobs --limit 1000 | head -1")
        .arg(common::BIN)
        .arg(&db.path)
        .env_remove("JOBMGR_DB")
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "stderr: {stderr}");
    assert_eq!(out.status.code(), Some(0), "jobmgr's exit status");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("     ID  STATUS"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A pipe whose reader is gone before jobmgr writes at all, so even a
    // short output meets it.
    for args in [
        &["status"][..],
        &["job-types"],
        &["--json", "jobs"],
        &["show", "1"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = db
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run jobmgr");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "{args:?}: stderr: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
}

#[test]
fn reading_commands_refuse_a_missing_database_and_create_nothing() {
    let db = TestDb::new("missing");
    let typo = db.dir.join("jobmrg.db");
    let expected = format!(
        "jobmgr: open database {}: the database file does not exist (check --db; serve, \
         worker, enqueue and migrate create it)",
        typo.display()
    );
    let commands: &[&[&str]] = &[
        &["status"],
        &["jobs"],
        &["--json", "jobs"],
        &["show", "1"],
        &["logs", "1"],
        &["cancel", "1"],
        &["rerun", "1"],
        &["cleanup-stalled"],
    ];
    for args in commands {
        let out = Command::new(common::BIN)
            .arg("--db")
            .arg(&typo)
            .args(*args)
            .env_remove("JOBMGR_DB")
            .stdin(Stdio::null())
            .output()
            .expect("run jobmgr");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            expected,
            "{args:?}"
        );
    }
    // job-types reads no database: it still lists the built-ins.
    let out = Command::new(common::BIN)
        .arg("--db")
        .arg(&typo)
        .arg("job-types")
        .env_remove("JOBMGR_DB")
        .output()
        .expect("run jobmgr");
    assert!(out.status.success());
    let left: Vec<_> = std::fs::read_dir(&db.dir)
        .expect("list test dir")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert!(left.is_empty(), "files created: {left:?}");
    // Commands that create the database still do.
    let enqueued = Command::new(common::BIN)
        .arg("--db")
        .arg(&typo)
        .args(["enqueue", "demo-known-total"])
        .env_remove("JOBMGR_DB")
        .output()
        .expect("run jobmgr");
    assert!(enqueued.status.success());
    assert!(typo.exists());
}
