//! Live updates follow a commit by another process through the WAL
//! wake-up, not only through the change watcher's `PRAGMA data_version`
//! poll: with the poll stretched to ten minutes (a test-only variable),
//! every commit still reaches a WebSocket client. How fast is measured by
//! `jobmgr bench ws`, not here.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::TestDb;
use common::http::{next_json, wait_message};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

#[test]
fn a_commit_by_another_process_reaches_a_socket_without_the_poll() {
    let db = TestDb::new("livewake");
    let id = db.enqueue("demo-known-total", &["count=7"]);
    let mut cmd = db.cmd();
    cmd.env("JOBMGR_TEST_WATCH_POLL_MS", "600000").args([
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--no-worker",
    ]);
    let log = db.dir.join(format!(
        "serve-wake-{}.log",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let s = db.spawn_server(cmd, log);
    let mut ws = s.api.ws("/ws");
    assert_eq!(next_json(&mut ws).expect("snapshot")["type"], "snapshot");
    let conn = db.conn();
    // Each change right after the previous one arrived: a poll every ten
    // minutes would deliver none of them within the deadline.
    for k in 1..=5i64 {
        conn.execute(
            "UPDATE JobRun SET entitiesProcessed = ?2, \
             updatedAt = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
            (id, k),
        )
        .expect("update progress");
        wait_message(
            &mut ws,
            &format!("progress {k} of run {id}"),
            Duration::from_secs(60),
            |m| m["type"] == "run" && m["run"]["id"] == id && m["run"]["entitiesProcessed"] == k,
        );
    }
}
