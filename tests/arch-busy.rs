//! A database another process holds locked: commands that only read answer
//! at once, and commands that write give up after the busy timeout with the
//! busy exit code (5) and SQLite's "database is locked", changing nothing.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{TestDb, exit_code};
use rusqlite::Connection;

/// Longer than the busy timeout (10 s) plus a slow start on a busy machine.
const GIVE_UP: Duration = Duration::from_secs(60);
/// Shorter than the busy timeout: a read that waited for the lock is late.
const READ_AT_ONCE: Duration = Duration::from_secs(8);

/// Takes the write lock the way another writer would, until dropped.
fn hold_write_lock(db: &TestDb) -> Connection {
    let conn = Connection::open(&db.path).expect("open the database");
    conn.execute_batch("BEGIN IMMEDIATE; UPDATE JobRunCounter SET n = n WHERE 0;")
        .expect("take the write lock");
    conn
}

fn spawn(db: &TestDb, args: &[&str]) -> Child {
    db.cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start jobmgr")
}

/// Waits for `child` to exit within `within`; its exit code and stderr.
fn finish(what: &str, mut child: Child, within: Duration) -> (i32, String) {
    let code = exit_code(&mut child, within);
    if code.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("collect output");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let code = code.unwrap_or_else(|| panic!("{what} still running after {within:?}: {stderr}"));
    (code, stderr)
}

#[test]
fn writes_on_a_locked_database_exit_busy_and_reads_answer_at_once() {
    let db = TestDb::new("busy-cli");
    let id = db.enqueue("demo-known-total", &["count=1"]);
    let lock = hold_write_lock(&db);

    let cancel = spawn(&db, &["cancel", &id.to_string()]);
    let enqueue = spawn(&db, &["enqueue", "demo-known-total"]);
    for args in [&["status"][..], &["show", &id.to_string()], &["jobs"]] {
        let t = Instant::now();
        let (code, stderr) = finish(&args.join(" "), spawn(&db, args), READ_AT_ONCE);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(t.elapsed() < READ_AT_ONCE, "{args:?} waited for the lock");
    }
    for (what, child, op) in [
        ("cancel", cancel, "cancel run"),
        ("enqueue", enqueue, "enqueue runs"),
    ] {
        let (code, stderr) = finish(what, child, GIVE_UP);
        assert_eq!(code, 5, "{what} exits with the busy code: {stderr}");
        assert!(
            stderr.contains(&format!("{op}: database is locked")),
            "{what}: {stderr}"
        );
    }
    drop(lock);

    // Nothing was written, and the same commands work once the lock is gone.
    assert_eq!(db.status_of(id), "QUEUED");
    assert_eq!(db.scalar("SELECT count(*) FROM JobRun"), "1");
    assert_eq!(db.scalar("SELECT count(*) FROM Audit"), "1");
    db.ok(&["cancel", &id.to_string()]);
    assert_eq!(db.status_of(id), "CANCELLED");
}

#[test]
fn a_migration_on_a_locked_database_exits_busy() {
    let db = TestDb::new("busy-migrate");
    // A database with a table of someone else's, not yet migrated.
    let lock = Connection::open(&db.path).expect("create the database");
    lock.execute_batch(
        "PRAGMA journal_mode = WAL; CREATE TABLE Other (x); BEGIN IMMEDIATE; INSERT INTO Other VALUES (1);",
    )
    .expect("take the write lock");
    let (code, stderr) = finish("migrate", spawn(&db, &["migrate"]), GIVE_UP);
    assert_eq!(code, 5, "{stderr}");
    assert!(
        stderr.contains("migrate database: database is locked"),
        "{stderr}"
    );
    drop(lock);
    db.ok(&["migrate"]);
    assert_eq!(db.scalar("SELECT count(*) FROM JobRun"), "0");
}
