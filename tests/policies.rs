//! Run policies through the CLI and the SQLite file: `[policies.TYPE]` and
//! `[groups.NAME]` checked by `check-config` and shown by `job-types`, the
//! type's default priority, and retries with backoff on the clock the test
//! drives (no real waiting).

mod common;

use std::time::Duration;

use common::TestDb;
use serde_json::Value;

#[allow(dead_code)]
const WAIT: Duration = Duration::from_secs(60);

fn write_config(db: &TestDb, text: &str) {
    std::fs::write(db.dir.join("jobmgr.toml"), text).expect("write config");
}

const POLICIES: &str = r#"
[jobs.flaky]
command = ["/bin/sh", "-c", "exit 75"]

[groups.disk-heavy]
max_running = 1

[policies.flaky]
timeout_secs = 30
max_running = 2
group = "disk-heavy"
priority = 5

[policies.flaky.retry]
max_attempts = 5
backoff = "exponential"
initial_secs = 10
max_secs = 3600
on_exit_codes = [75]
"#;

#[test]
fn policies_are_checked_shown_and_give_the_default_priority() {
    let db = TestDb::new("pol-config");
    write_config(&db, POLICIES);
    let out = db.ok(&["check-config"]);
    assert!(out.contains("flaky"), "{out}");
    let text = db.ok(&["job-types"]);
    assert!(
        text.contains(
            "policy: timeout 30 s, at most 2 running, group disk-heavy, priority 5, \
             5 attempts, backoff 10 s doubling up to 3600 s"
        ),
        "{text}"
    );
    let json: Value = serde_json::from_str(&db.ok(&["--json", "job-types"])).expect("json");
    let flaky = json
        .as_array()
        .expect("an array")
        .iter()
        .find(|t| t["name"] == "flaky")
        .expect("flaky listed");
    assert_eq!(flaky["policy"]["maxRunning"], 2, "{flaky}");
    assert_eq!(flaky["policy"]["retry"]["onExitCodes"][0], 75, "{flaky}");
    let id = db.enqueue("flaky", &[]);
    assert_eq!(
        db.scalar(&format!("SELECT priority FROM JobRun WHERE id = {id}")),
        "5"
    );
    let id = db.ok(&["enqueue", "flaky", "--priority", "-2"]);
    assert_eq!(
        db.scalar(&format!("SELECT priority FROM JobRun WHERE id = {id}")),
        "-2"
    );
}

#[test]
fn check_config_reports_policy_problems_with_lines_and_suggestions() {
    let db = TestDb::new("pol-bad");
    write_config(
        &db,
        "[groups.disk]\nmax_running = 1\n\n[policies.demo-known-totl]\nmax_running = 1\n\n\
         [policies.prune-history]\ngroup = \"dsik\"\ntimeout_secs = 0\n\n\
         [policies.prune-history.retry]\nbackof = \"fixed\"\n",
    );
    let out = db.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "line 4: policies.demo-known-totl: 'demo-known-totl' is not a job type (did you mean 'demo-known-total'?)",
        "line 8: policies.prune-history.group: group 'dsik' is not declared in [groups] (did you mean 'disk'?)",
        "line 9: policies.prune-history.timeout_secs: must be a whole number of at least 1, got 0",
        "line 12: policies.prune-history.retry.backof: unknown key 'backof' (did you mean 'backoff'?)",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(err.contains("has 4 problem(s):"), "{err}");
    // The worker refuses such a file, like any invalid one.
    let out = db.run(&["enqueue", "prune-history"]);
    assert_ne!(out.status.code(), Some(0));
}
