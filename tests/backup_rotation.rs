//! Nightly backups by schedule: `{time}` in a `backup-database` path
//! names each copy after its run's time, and `keep` removes the oldest
//! copies of that name beyond the newest N, never another file. The
//! worker runs on a driven clock, so each run has its own time.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::TestDb;
use common::clock::DrivenClock;

const WAIT: Duration = Duration::from_secs(60);
/// 2031-05-06T07:08:09.000Z.
const T_MS: i64 = 1_935_817_689_000;

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("list backups")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    v.sort();
    v
}

#[test]
fn backups_named_by_time_keep_the_newest_n_and_nothing_else_is_removed() {
    let db = TestDb::new("backup-rotation");
    let dir = db.dir.join("backups");
    std::fs::create_dir(&dir).expect("backup dir");
    std::fs::write(dir.join("notes.txt"), b"mine").expect("a file of the user's");
    let clock = DrivenClock::new(&db, T_MS);
    let mut cmd = db.cmd();
    clock.apply(&mut cmd).arg("worker").stdin(Stdio::null());
    let _w = db.spawn_worker_cmd(cmd, "worker.log");
    let pattern = format!("path={}/jobmgr-{{time}}.db", dir.display());
    for night in 0..3 {
        let mut c = db.cmd();
        clock
            .apply(&mut c)
            .args(["enqueue", "backup-database", "-p", &pattern, "-p", "keep=2"]);
        let out = c.output().expect("enqueue");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id: i64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("run id");
        db.wait_status(id, "COMPLETED", WAIT);
        if night == 2 {
            assert_eq!(
                db.scalar(&format!(
                    "SELECT json_extract(outcomeSummary, '$.removed') FROM JobRun WHERE id = {id}"
                )),
                "1"
            );
        }
        clock.advance(86_400_000);
    }
    assert_eq!(
        names(&dir),
        [
            "jobmgr-20310507T070809.000Z.db",
            "jobmgr-20310508T070809.000Z.db",
            "notes.txt"
        ]
    );
    // Each copy is a whole database.
    let copy = rusqlite::Connection::open(dir.join("jobmgr-20310508T070809.000Z.db"))
        .expect("open the newest copy");
    let ok: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(ok, "ok");
}
