//! `backup-database` on the files around it: destinations that SQLite or
//! jobmgr use are refused with the reason, nothing it did not create is
//! removed or replaced, and a large database is copied while other
//! connections commit, with progress that only moves forward.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{TestDb, wait_for};

const WAIT: Duration = Duration::from_secs(60);

fn error_of(db: &TestDb, id: i64) -> String {
    db.scalar(&format!("SELECT error FROM JobRun WHERE id = {id}"))
}

/// Names in the test directory that a backup's temporary file would have.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read test dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("backup-tmp") || n.ends_with(".partial"))
        .collect()
}

#[test]
fn destinations_sqlite_or_jobmgr_use_are_refused_with_the_reason() {
    let db = TestDb::new("backup-reserved");
    db.ok(&["migrate"]);
    let w = db.spawn_worker(&["--concurrency", "1"]);
    let first = db.enqueue("demo-known-total", &["count=1", "delay_ms=0"]);
    db.wait_status(first, "COMPLETED", WAIT);
    let d = db.path.to_str().unwrap().to_string();
    let sub = db.dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let link = db.dir.join("link");
    std::os::unix::fs::symlink(&db.dir, &link).unwrap();
    let dotted = format!("{}/../jobmgr.db-wal", sub.display());
    let linked = format!("{}/jobmgr.db-journal", link.display());
    let journal = "the database's rollback journal name: SQLite would take a file there \
                   for an interrupted transaction, and every connection would wait on it";
    let cases: Vec<(String, &str)> = vec![
        (format!("{d}-journal"), journal),
        (
            format!("{d}-wal"),
            "the database's write-ahead log, which holds its latest commits",
        ),
        (format!("{d}-shm"), "the database's shared-memory index"),
        (format!("{d}.lock"), "the worker's lock file"),
        (format!("{d}.token"), "the web server's token file"),
        (d.clone(), "the live database itself"),
        (
            dotted,
            "the database's write-ahead log, which holds its latest commits",
        ),
        (linked, journal),
    ];
    let lock_len = || std::fs::metadata(format!("{d}.lock")).map(|m| m.len());
    // The lock file holds the worker's high-water mark (a few bytes, of
    // a fixed length); a copy that landed there would be pages long.
    let lock_before = lock_len().ok();
    assert!(lock_before.is_some_and(|n| n < 4096), "{lock_before:?}");
    for (dest, what) in &cases {
        let id = db.enqueue("backup-database", &[&format!("path={dest}")]);
        db.wait_status(id, "FAILED", WAIT);
        assert_eq!(
            error_of(&db, id),
            format!("{dest} is {what}; choose another path")
        );
    }
    assert!(!Path::new(&format!("{d}-journal")).exists());
    assert!(!Path::new(&format!("{d}.token")).exists());
    assert_eq!(lock_len().ok(), lock_before);
    assert_eq!(temp_files(&db.dir), Vec::<String>::new());
    // The database still answers at once, and a new worker still starts.
    let start = Instant::now();
    db.ok(&["status"]);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    drop(w);
    let _w = db.spawn_worker(&["--concurrency", "1"]);
    let id = db.enqueue("demo-known-total", &["count=1", "delay_ms=0"]);
    db.wait_status(id, "COMPLETED", WAIT);
}

#[test]
fn an_existing_partial_file_and_an_existing_destination_are_left_untouched() {
    let db = TestDb::new("backup-partial");
    db.ok(&["migrate"]);
    let dest = db.dir.join("copy.db");
    let partial = db.dir.join("copy.db.partial");
    std::fs::write(&partial, b"someone else's file").unwrap();
    let id = db.enqueue("backup-database", &[&format!("path={}", dest.display())]);
    let _w = db.spawn_worker(&["--concurrency", "1"]);
    db.wait_status(id, "COMPLETED", WAIT);
    assert_eq!(std::fs::read(&partial).unwrap(), b"someone else's file");
    let copy = rusqlite::Connection::open(&dest).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");

    // A dangling symlink counts as existing: the copy must not land at
    // its target either.
    let target = db.dir.join("target.db");
    let link = db.dir.join("link.db");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let id = db.enqueue("backup-database", &[&format!("path={}", link.display())]);
    db.wait_status(id, "FAILED", WAIT);
    assert_eq!(
        error_of(&db, id),
        format!("{} already exists; choose a new path", link.display())
    );
    assert!(!target.exists());
    std::fs::remove_file(&partial).unwrap();
    assert_eq!(temp_files(&db.dir), Vec::<String>::new());
}

/// Pages of 4 KiB in 1 MiB blobs: `mb` MiB of data, written in one
/// transaction before jobmgr opens the file.
fn build_big_database(path: &Path, mb: i64) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("CREATE TABLE Big (b BLOB); CREATE TABLE Churn (x INTEGER);")
        .unwrap();
    c.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
         INSERT INTO Big SELECT zeroblob(1048576) FROM n",
        [mb],
    )
    .unwrap();
}

/// Commits one row at a time from this process until `stop`; returns how
/// many commits it made.
fn churn(path: &Path, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    let path = path.to_path_buf();
    thread::spawn(move || {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        let mut n = 0;
        // A commit per poll (every 20 ms) until told to stop.
        common::poll_until(Duration::from_secs(600), || {
            c.execute("INSERT INTO Churn (x) VALUES (?1)", [n as i64])
                .unwrap();
            n += 1;
            stop.load(Ordering::Relaxed)
        });
        n
    })
}

/// Samples run `id`'s `entitiesProcessed` until `stop`.
fn sample_progress(path: &Path, id: i64, stop: Arc<AtomicBool>) -> thread::JoinHandle<Vec<i64>> {
    let path = path.to_path_buf();
    thread::spawn(move || {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        let mut seen = Vec::new();
        common::poll_until(Duration::from_secs(600), || {
            let p: i64 = c
                .query_row(
                    "SELECT entitiesProcessed FROM JobRun WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .unwrap();
            if seen.last() != Some(&p) {
                seen.push(p);
            }
            stop.load(Ordering::Relaxed)
        });
        seen
    })
}

#[test]
fn a_large_backup_finishes_while_others_commit_and_a_cancelled_one_leaves_nothing() {
    let db = TestDb::new("backup-large");
    build_big_database(&db.path, 300);
    db.ok(&["migrate"]);
    let w = db.spawn_worker(&["--concurrency", "2"]);
    // A busy job beside the backup: the worker commits its progress too.
    let busy = db.enqueue("demo-known-total", &["count=100000", "delay_ms=5"]);
    db.wait_status(busy, "RUNNING", WAIT);
    let stop = Arc::new(AtomicBool::new(false));
    let churner = churn(&db.path, stop.clone());

    // Cancel: the worker is paused as soon as the copy has begun, so the
    // cancel request is in place before it copies further.
    let cancelled = db.dir.join("cancelled.db");
    let id = db.enqueue(
        "backup-database",
        &[&format!("path={}", cancelled.display())],
    );
    wait_for("the backup to start copying", WAIT, || {
        db.scalar(&format!(
            "SELECT entitiesProcessed > 0 FROM JobRun WHERE id = {id}"
        )) == "1"
    });
    // A worker paused inside a commit would hold the write lock for
    // everyone: the test takes the lock first, so the worker is at most
    // waiting for it when it is paused, then lets go.
    let holder = rusqlite::Connection::open(&db.path).unwrap();
    holder.busy_timeout(Duration::from_secs(10)).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    w.signal("STOP");
    holder.execute_batch("ROLLBACK").unwrap();
    db.ok(&["cancel", &id.to_string()]);
    let asked = Instant::now();
    w.signal("CONT");
    db.wait_status(id, "CANCELLED", WAIT);
    eprintln!("cancelled {:?} after the request", asked.elapsed());
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "cancel took {:?}",
        asked.elapsed()
    );
    assert!(!cancelled.exists());
    assert_eq!(temp_files(&db.dir), Vec::<String>::new());

    let dest = db.dir.join("copy.db");
    let started = Instant::now();
    let id = db.enqueue("backup-database", &[&format!("path={}", dest.display())]);
    let sampler_stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_progress(&db.path, id, sampler_stop.clone());
    db.wait_status(id, "COMPLETED", Duration::from_secs(150));
    let took = started.elapsed();
    sampler_stop.store(true, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    let commits = churner.join().unwrap();
    eprintln!(
        "300 MB backup took {took:?} while {commits} commits were made; progress samples: {samples:?}"
    );
    assert!(
        samples.windows(2).all(|p| p[0] <= p[1]),
        "progress went backwards: {samples:?}"
    );
    let r = &db.query(&format!(
        "SELECT entitiesProcessed, entitiesTotal FROM JobRun WHERE id = {id}"
    ))[0];
    assert_eq!(r[0], r[1]);
    assert!(r[1].as_i64().unwrap() > 75_000, "{r:?}");
    drop(w);
    let copy = rusqlite::Connection::open(&dest).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let blobs: i64 = copy
        .query_row("SELECT count(*) FROM Big", [], |r| r.get(0))
        .unwrap();
    assert_eq!(blobs, 300);
    drop(copy);
    assert_eq!(temp_files(&db.dir), Vec::<String>::new());
}

/// `jobmgr backup PATH`: the same copy as the job, from the command line,
/// with the same refusals.
#[test]
fn the_backup_command_copies_the_live_database_and_refuses_what_the_job_refuses() {
    let db = TestDb::new("backup-cli");
    let ids: Vec<i64> = (0..3)
        .map(|_| db.enqueue("demo-known-total", &["count=1"]))
        .collect();
    let dest = db.dir.join("copy.db");
    let out = db.ok(&["backup", dest.to_str().unwrap()]);
    assert!(
        out.starts_with(&format!("backup written to {} (", dest.display())),
        "{out}"
    );
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let copy = common::query_at(&dest, "SELECT id FROM JobRun ORDER BY id");
    let copied: Vec<i64> = copy.iter().map(|r| r[0].as_i64().unwrap()).collect();
    assert_eq!(copied, ids);
    assert_eq!(
        common::query_at(&dest, "PRAGMA integrity_check"),
        vec![vec![serde_json::Value::from("ok")]]
    );
    // The same refusals as the job, with exit 2 (invalid input).
    let wal = format!("{}-wal", db.path.display());
    for (path, says) in [
        (
            dest.display().to_string(),
            "already exists; choose a new path",
        ),
        (wal.clone(), "is the database's write-ahead log"),
    ] {
        let out = db.run(&["backup", &path]);
        assert_eq!(out.status.code(), Some(2), "{path}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{path}: {err}");
    }
    // A missing database is refused, not created.
    let missing = TestDb::new("backup-cli-missing");
    let out = missing.run(&["backup", missing.dir.join("c.db").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(!missing.path.exists());
}
