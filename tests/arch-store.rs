//! One writer per worker process: the connections a worker's jobs read
//! through refuse writes (`PRAGMA query_only`), so every write a job makes
//! (a command's process group, the media job's rows and deletes) must reach
//! the database through the worker's writer thread, or through the engine
//! functions for big, rare work (prune, backup). These tests run all of
//! them at once in one worker and check that each write landed. (That the
//! readers' pool refuses writes is a unit test: src/store/tests/readers.rs.)

mod common;

use std::path::Path;

use common::command::{WAIT, setup};
use common::{TestDb, wait_for};
use serde_json::Value;

/// Writes its process group, then waits for the test's go file.
const HOLDER: &str = r#"
import os, sys, time
out = sys.argv[1]
with open(out + "/pgid.tmp", "w") as f:
    f.write(str(os.getpgid(0)))
os.rename(out + "/pgid.tmp", out + "/pgid")
deadline = time.time() + 60
while not os.path.exists(out + "/go") and time.time() < deadline:
    time.sleep(0.02)
"#;

fn outcome(db: &TestDb, id: i64) -> Value {
    serde_json::from_str(&db.scalar(&format!(
        "SELECT outcomeSummary FROM JobRun WHERE id = {id}"
    )))
    .expect("outcome summary is JSON")
}

fn error_of(db: &TestDb, id: i64) -> String {
    db.scalar(&format!(
        "SELECT coalesce(error, '') FROM JobRun WHERE id = {id}"
    ))
}

/// Waits for run `id` to be COMPLETED, showing its error if it failed.
fn completed(db: &TestDb, id: i64) {
    wait_for(&format!("run {id} to finish"), WAIT, || {
        matches!(
            db.status_of(id).as_str(),
            "COMPLETED" | "FAILED" | "CANCELLED"
        )
    });
    assert_eq!(
        (db.status_of(id), error_of(db, id)),
        ("COMPLETED".to_string(), String::new()),
        "run {id}"
    );
}

fn media_files(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).expect("create media dir");
    for i in 0..n {
        std::fs::write(dir.join(format!("f{i:04}.bin")), format!("file {i}"))
            .expect("write media file");
    }
}

#[test]
fn every_job_write_goes_through_the_worker_s_writer() {
    let db = TestDb::new("one-writer");
    // Retention off: it would remove the old run itself at worker start.
    setup(
        &db,
        HOLDER,
        "[jobs.holder]\ncommand = [PY, SCRIPT, OUTDIR]\n\n[retention]\nenabled = false\n",
    );
    db.ok(&["migrate"]);
    // An old finished run for prune-history to delete.
    let old = db.enqueue("demo-known-total", &["count=1", "delay_ms=0"]);
    db.ok(&["cancel", &old.to_string()]);
    db.conn()
        .execute(
            "UPDATE JobRun SET finishedAt = '2020-01-01T00:00:00.000Z' WHERE id = ?1",
            [old],
        )
        .expect("age the run");
    // More files than one batch of rows (500), so several writes go by.
    let media = db.dir.join("media");
    media_files(&media, 620);
    let media_path = format!("path={}", media.display());

    let _w = db.spawn_worker(&["--concurrency", "4"]);
    let holder = db.enqueue("holder", &[]);
    let pgid_file = db.dir.join("pgid");
    wait_for("the command to write its pgid", WAIT, || pgid_file.exists());
    let pgid = std::fs::read_to_string(&pgid_file).expect("read pgid");
    // Recorded while the command runs (what recovery needs after a crash).
    wait_for("the worker to record the process group", WAIT, || {
        db.scalar(&format!(
            "SELECT coalesce(json_extract(metadata, '$.pgid'), '') FROM JobRun WHERE id = {holder}"
        )) == pgid
    });

    let scan = db.enqueue("media-metadata-batch", &[&media_path]);
    let prune = db.enqueue("prune-history", &["older_than_days=30"]);
    let copy = db.dir.join("copy.db");
    let backup = db.enqueue("backup-database", &[&format!("path={}", copy.display())]);
    for id in [scan, prune, backup] {
        completed(&db, id);
    }
    assert_eq!(db.scalar("SELECT count(*) FROM MediaFile"), "620");
    assert_eq!(outcome(&db, scan)["inserts"], 620);
    assert_eq!(
        db.scalar(&format!("SELECT count(*) FROM JobRun WHERE id = {old}")),
        "0"
    );
    assert_eq!(outcome(&db, prune)["deletes"], 1);
    assert!(copy.exists(), "the backup was written");

    // Deletes go the same way.
    for i in 0..510 {
        std::fs::remove_file(media.join(format!("f{i:04}.bin"))).expect("remove media file");
    }
    let rescan = db.enqueue("media-metadata-batch", &[&media_path]);
    completed(&db, rescan);
    assert_eq!(outcome(&db, rescan)["deletes"], 510);
    assert_eq!(db.scalar("SELECT count(*) FROM MediaFile"), "110");

    std::fs::write(db.dir.join("go"), "").expect("write go file");
    completed(&db, holder);
}
