//! `jobmgr restore BACKUP`: a round trip (backup, more runs, restore: the
//! runs from before are back, the later ones gone, the old file kept
//! beside it), and each refusal, after which nothing has changed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TestDb, wait_for};

/// Enqueues `n` demo runs; returns their ids.
fn enqueue(db: &TestDb, n: usize) -> Vec<i64> {
    (0..n)
        .map(|_| db.enqueue("demo-known-total", &["count=1", "delay_ms=0"]))
        .collect()
}

fn run_ids(path: &Path) -> Vec<i64> {
    common::query_at(path, "SELECT id FROM JobRun ORDER BY id")
        .into_iter()
        .filter_map(|r| r[0].as_i64())
        .collect()
}

/// The files in the test directory, by name.
fn files(db: &TestDb) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&db.dir)
        .expect("read test dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A database with three finished runs and a backup of it.
fn with_backup(name: &str) -> (TestDb, PathBuf, Vec<i64>) {
    let db = TestDb::new(name);
    let before = enqueue(&db, 3);
    let mut worker = db.spawn_worker(&[]);
    wait_for("the runs to complete", Duration::from_secs(60), || {
        db.scalar("SELECT count(*) FROM JobRun WHERE status = 'COMPLETED'") == "3"
    });
    worker.signal("TERM");
    assert_eq!(worker.wait_exit(Duration::from_secs(30)), Some(0));
    let backup = db.dir.join("backup.db");
    db.ok(&["backup", backup.to_str().expect("UTF-8 path")]);
    (db, backup, before)
}

#[test]
fn backup_more_runs_restore_brings_back_the_runs_from_before() {
    let (db, backup, before) = with_backup("restore-trip");
    let later = enqueue(&db, 2);
    // A worker runs them and is killed: its WAL keeps commits the file
    // does not have yet (the restore must fold them into the kept file,
    // not leave them beside the restored one), and its lock file a
    // high-water mark above the backup's newest run.
    let worker = db.spawn_worker(&[]);
    wait_for(
        "the later runs to complete",
        Duration::from_secs(60),
        || db.scalar("SELECT count(*) FROM JobRun WHERE status = 'COMPLETED'") == "5",
    );
    drop(worker);
    let wal = PathBuf::from(format!("{}-wal", db.path.display()));
    // (Any connection opened now would fold the WAL in when it closes.)
    assert!(
        std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0),
        "a WAL left behind"
    );
    let out = db.ok(&["restore", backup.to_str().expect("UTF-8 path")]);
    assert!(out.contains("restored"), "{out}");
    assert!(out.contains("3 runs"), "{out}");
    let kept_line = out
        .lines()
        .find_map(|l| l.strip_prefix("the previous database is kept as "))
        .expect("names the kept file");
    let kept = PathBuf::from(kept_line);
    assert!(
        kept.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("jobmgr.db.before-restore-")),
        "{out}"
    );

    assert_eq!(run_ids(&db.path), before);
    for id in &later {
        assert!(!run_ids(&db.path).contains(id));
    }
    // The kept file has everything, later runs included, and no stale WAL
    // sits beside either file.
    assert_eq!(run_ids(&kept).len(), 5);
    assert!(!common::exists(&wal));
    assert!(!common::exists(&PathBuf::from(format!("{kept_line}-wal"))));
    assert_eq!(db.scalar("PRAGMA integrity_check"), "ok");
    // The restored file is what jobmgr uses from now on.
    let check = db.ok(&["check"]);
    assert!(!check.contains("WARNING"), "{check}");
    let status = db.ok(&["status"]);
    assert!(!status.contains("WARNING"), "{status}");
    let again = db.enqueue("demo-known-total", &[]);
    assert!(again > *before.last().expect("runs"));
}

#[test]
fn restore_refuses_while_a_worker_or_a_server_uses_the_database() {
    let (db, backup, _) = with_backup("restore-busy");
    let backup = backup.to_str().expect("UTF-8 path").to_string();
    let unchanged = |db: &TestDb, files_before: &[String]| {
        assert_eq!(
            files(db)
                .iter()
                .filter(|f| f.contains("before-restore"))
                .count(),
            0
        );
        assert_eq!(
            files(db)
                .iter()
                .filter(|f| !f.ends_with(".log"))
                .cloned()
                .collect::<Vec<_>>(),
            files_before
                .iter()
                .filter(|f| !f.ends_with(".log"))
                .cloned()
                .collect::<Vec<_>>()
        );
    };

    let mut worker = db.spawn_worker(&[]);
    wait_for("the worker to run", Duration::from_secs(30), || {
        db.scalar("SELECT count(*) FROM Worker WHERE state = 'RUNNING'") == "1"
    });
    let files_before = files(&db);
    let out = db.run(&["restore", &backup]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("a worker is using"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    unchanged(&db, &files_before);
    worker.signal("TERM");
    assert_eq!(worker.wait_exit(Duration::from_secs(30)), Some(0));

    // A server without a worker holds no lock file, only connections.
    let serve = db.spawn_serve(&["--no-worker"]);
    serve.api.ok("/api/worker");
    let files_before = files(&db);
    let out = db.run(&["restore", &backup]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("is open in another process"), "{err}");
    unchanged(&db, &files_before);
    drop(serve);

    // So does any other program with the file open.
    let mut sqlite = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
             c.execute('SELECT count(*) FROM JobRun').fetchall(); print('open', flush=True); \
             sys.stdin.read()",
        ])
        .arg(&db.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(sqlite.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("read");
    assert_eq!(line.trim(), "open");
    let err = db.fails(&["restore", &backup]);
    assert!(err.contains("is open in another process"), "{err}");
    drop(sqlite.stdin.take());
    let _ = sqlite.wait();
    // Once everyone has gone, it works.
    db.ok(&["restore", &backup]);
}

#[test]
fn restore_refuses_bad_backups_and_changes_nothing() {
    let (db, backup, before) = with_backup("restore-bad");
    let later = enqueue(&db, 1);
    let all = run_ids(&db.path);
    assert_eq!(all.len(), before.len() + later.len());
    let refuse = |path: &Path, expected: &str| {
        let files_before = files(&db);
        let out = db.run(&["restore", path.to_str().expect("UTF-8 path")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(expected), "expected {expected:?} in {err}");
        assert_eq!(files(&db), files_before, "{err}");
        assert_eq!(run_ids(&db.path), all);
    };

    refuse(&db.dir.join("missing.db"), "missing.db: no such file");
    refuse(&db.dir, "is not a file");
    refuse(&db.path, "is the database itself");

    let text = db.dir.join("notes.txt");
    std::fs::write(
        &text,
        "not a database at all, just some words\n".repeat(200),
    )
    .expect("write");
    refuse(&text, "is not a usable SQLite database");

    let other = db.dir.join("other.db");
    rusqlite::Connection::open(&other)
        .and_then(|c| c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);"))
        .expect("make another database");
    refuse(&other, "is not a jobmgr database");

    let newer = db.dir.join("newer.db");
    std::fs::copy(&backup, &newer).expect("copy");
    rusqlite::Connection::open(&newer)
        .and_then(|c| {
            c.execute(
                "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
                 VALUES (999, 'from_the_future', '2031-01-01', '1')",
                [],
            )
        })
        .expect("add a migration from the future");
    refuse(&newer, "V999__from_the_future");

    // A corrupt copy: a page in the middle overwritten with noise.
    let corrupt = db.dir.join("corrupt.db");
    let mut bytes = std::fs::read(&backup).expect("read backup");
    let page = 4096;
    assert!(bytes.len() > 4 * page, "{} bytes", bytes.len());
    for (i, b) in bytes[2 * page..3 * page].iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    std::fs::write(&corrupt, &bytes).expect("write corrupt copy");
    let files_before = files(&db);
    let out = db.run(&["restore", corrupt.to_str().expect("UTF-8 path")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("integrity check") || err.contains("not a usable SQLite database"),
        "{err}"
    );
    assert_eq!(files(&db), files_before);
    assert_eq!(run_ids(&db.path), all);
}

#[test]
fn a_backup_from_an_older_jobmgr_is_restored_and_migrated_at_the_next_start() {
    let (db, backup, before) = with_backup("restore-older");
    // The backup as a jobmgr before version 11 wrote it: without what V11
    // and every later migration made.
    let older = db.dir.join("older.db");
    std::fs::copy(&backup, &older).expect("copy");
    rusqlite::Connection::open(&older)
        .and_then(|c| {
            c.execute_batch(
                "DROP VIEW JobRunCount; DROP TRIGGER JobRun_count_insert; \
                 DROP TRIGGER JobRun_count_delete; ALTER TABLE JobRunCounter RENAME TO JobRunCount; \
                 DELETE FROM JobRunCount WHERE status = 'GAPS'; \
                 INSERT INTO JobRunCount (status, n) SELECT 'ALL', count(*) FROM JobRun; \
                 CREATE TRIGGER JobRun_count_insert AFTER INSERT ON JobRun \
                 BEGIN UPDATE JobRunCount SET n = n + 1 WHERE status = 'ALL'; END; \
                 CREATE TRIGGER JobRun_count_delete AFTER DELETE ON JobRun \
                 BEGIN UPDATE JobRunCount SET n = n - 1 WHERE status = 'ALL'; END; \
                 DROP INDEX JobRun_status_id; CREATE INDEX JobRun_status_id ON JobRun (status, id); \
                 DROP TABLE Housekeeping; DROP INDEX MediaFile_run; \
                 DROP TRIGGER JobRun_stat_finish; DROP TRIGGER JobRun_stat_insert_finished; \
                 DROP TRIGGER JobLog_stat_insert; DROP TRIGGER ScheduleTick_stat_insert; \
                 DROP TABLE JobStat; DROP TABLE MetricCounter; DROP TABLE ScheduleTickStat; \
                 DROP TRIGGER JobRunAttempt_stat_insert; DROP TABLE RetryStat; \
                 DROP TABLE JobRunAttempt; ALTER TABLE JobLog DROP COLUMN attempt; \
                 DROP INDEX JobRun_queue_type; DROP TABLE JobTypePause; \
                 DROP INDEX JobRun_unique; ALTER TABLE JobRun DROP COLUMN uniqueKey; \
                 DROP INDEX JobRunDependency_on; DROP TABLE JobRunDependency; \
                 DROP TABLE NotifyOutbox; DROP TABLE NotifyCursor; DROP TABLE BulkAction; \
                 DROP TRIGGER JobRun_minute_finish; DROP TRIGGER JobRun_minute_insert_finished; \
                 DROP INDEX JobRun_failed; DROP TRIGGER JobRun_minute_delete; \
                 DROP TABLE RunMinute; ALTER TABLE Worker DROP COLUMN writerBusyUs; \
                 ALTER TABLE Worker DROP COLUMN writerCommits; \
                 ALTER TABLE Worker DROP COLUMN writerCommitUs; \
                 ALTER TABLE Worker DROP COLUMN writerLockWaitUs; \
                 ALTER TABLE Worker DROP COLUMN writerSyncUs; \
                 CREATE INDEX JobRun_queue ON JobRun (priority DESC, id) WHERE status = 'QUEUED'; \
                 DELETE FROM refinery_schema_history WHERE version >= 11;",
            )
        })
        .expect("make the backup older");
    let out = db.ok(&["restore", older.to_str().expect("UTF-8 path")]);
    assert!(
        out.contains("the next start applies V11__housekeeping"),
        "{out}"
    );
    let status = db.ok(&["status"]);
    assert!(status.contains("runs: 3"), "{status}");
    assert_eq!(run_ids(&db.path), before);
    let check = db.ok(&["check"]);
    assert!(check.contains("all checks passed"), "{check}");
}
