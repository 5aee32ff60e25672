//! The job-type config file through the CLI: where it is found,
//! `check-config` reporting every problem with its place and a "did you
//! mean", the worker refusing an invalid file, built-ins switched off, and
//! parameter rules (pattern, range) enforced at enqueue.

mod common;

use std::time::Duration;

use common::TestDb;
use serde_json::Value;

fn write_config(db: &TestDb, text: &str) {
    std::fs::write(db.dir.join("jobmgr.toml"), text).expect("write config");
}

const GOOD: &str = r#"
[builtins]
demos = false

[jobs.feed-presort]
description = "Sorts a JSONL feed"
command = ["/bin/true", "--input", "{param:input}", "--key", "{param:key}"]
env = ["PATH"]
timeout_secs = 600

[jobs.feed-presort.parameters.input]
type = "path"
required = true
help = "The JSONL file"

[jobs.feed-presort.parameters.key]
type = "string"
default = "id"
pattern = "[a-z_]+"

[jobs.feed-presort.parameters.limit]
type = "integer"
default = 100
min = 1
max = 1000
"#;

#[test]
fn no_config_file_means_builtins_only() {
    let db = TestDb::new("cfg-none");
    let out = db.ok(&["check-config"]);
    assert!(
        out.ends_with("jobmgr.toml: no config file; built-in job types only"),
        "{out}"
    );
    let types = db.ok(&["--json", "job-types"]);
    assert!(types.contains("\"demo-known-total\""));
    assert!(types.contains("\"media-metadata-batch\""));
}

#[test]
fn an_explicit_missing_file_is_an_error() {
    let db = TestDb::new("cfg-missing");
    let missing = db.dir.join("nope.toml");
    let err = db.fails(&[
        "--config",
        missing.to_str().unwrap_or_default(),
        "check-config",
    ]);
    assert!(
        err.contains("read config file") && err.contains("nope.toml"),
        "{err}"
    );
    let err = db.fails(&["--config", missing.to_str().unwrap_or_default(), "worker"]);
    assert!(err.contains("nope.toml"), "{err}");
}

#[test]
fn a_valid_file_adds_command_jobs_and_turns_demos_off() {
    let db = TestDb::new("cfg-good");
    write_config(&db, GOOD);
    let out = db.ok(&["check-config"]);
    assert!(
        out.contains(": ok (1 command job type(s): feed-presort;"),
        "{out}"
    );
    let types: Value = serde_json::from_str(&db.ok(&["--json", "job-types"])).expect("json");
    let names: Vec<&str> = types
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"feed-presort"));
    assert!(names.contains(&"prune-history"));
    assert!(!names.iter().any(|n| n.starts_with("demo-")), "{names:?}");
    let presort = types
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == "feed-presort"))
        .cloned()
        .unwrap_or_default();
    let key = presort["parameters"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "key"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(key["pattern"], "[a-z_]+");
    assert_eq!(key["allowDash"], false);
    assert_eq!(key["default"], "id");
}

#[test]
fn enqueue_enforces_pattern_range_and_required() {
    let db = TestDb::new("cfg-enqueue");
    write_config(&db, GOOD);
    let err = db.fails(&[
        "enqueue",
        "feed-presort",
        "-p",
        "input=/x",
        "-p",
        "key=Bad Key",
    ]);
    assert!(
        err.contains("parameter 'key': must match the pattern [a-z_]+, got \"Bad Key\""),
        "{err}"
    );
    // The pattern is anchored: a matching part is not enough.
    let err = db.fails(&[
        "enqueue",
        "feed-presort",
        "-p",
        "input=/x",
        "-p",
        "key=ok;id",
    ]);
    assert!(
        err.contains("parameter 'key': must match the pattern"),
        "{err}"
    );
    let err = db.fails(&[
        "enqueue",
        "feed-presort",
        "-p",
        "input=/x",
        "-p",
        "limit=5000",
    ]);
    assert!(
        err.contains("parameter 'limit': must be at most 1000, got 5000"),
        "{err}"
    );
    let err = db.fails(&["enqueue", "feed-presort"]);
    assert!(err.contains("parameter 'input': is required"), "{err}");
    let err = db.fails(&["enqueue", "demo-known-total"]);
    assert!(err.contains("unknown job type 'demo-known-total'"), "{err}");
    db.enqueue("feed-presort", &["input=/x", "key=user_id"]);
}

const BAD: &str = r#"[builtins]
enabled = ["prune-histroy"]

[jobs.feed-presort]
comand = ["x"]
timeout_secs = "soon"

[jobs.feed-presort.parameters.limit]
type = "integr"
max_lenght = 3

[jobs.match-scores]
command = ["/usr/bin/python3", "--in={param:input}", "{param:missing}"]

[jobs.match-scores.parameters.input]
type = "path"
required = true
pattern = "("
"#;

#[test]
fn check_config_reports_every_problem_with_its_place() {
    let db = TestDb::new("cfg-bad");
    write_config(&db, BAD);
    let out = db.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "line 2: builtins.enabled: 'prune-histroy' is not a built-in job type (did you mean 'prune-history'?)",
        "line 5: jobs.feed-presort.comand: unknown key 'comand' (did you mean 'command'?)",
        "line 6: jobs.feed-presort.timeout_secs: expected an integer, got a string",
        "line 9: jobs.feed-presort.parameters.limit.type: unknown type 'integr' (did you mean 'integer'?)",
        "line 10: jobs.feed-presort.parameters.limit.max_lenght: unknown key 'max_lenght' (did you mean 'max_length'?)",
        "jobs.feed-presort.command: is required",
        "line 13: jobs.match-scores.command[1]: '--in={param:input}' mixes a placeholder with text",
        "line 13: jobs.match-scores.command[2]: placeholder names unknown parameter 'missing'",
        "line 18: jobs.match-scores.parameters.input.pattern: not a valid regular expression",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(err.contains("has 9 problem(s):"), "{err}");

    let json: Value = serde_json::from_str(&String::from_utf8_lossy(
        &db.run(&["--json", "check-config"]).stdout,
    ))
    .expect("json report");
    assert_eq!(json["valid"], false);
    assert_eq!(json["problems"].as_array().map(Vec::len), Some(9));
    assert_eq!(json["problems"][0]["location"], "builtins.enabled");
    assert_eq!(json["problems"][0]["line"], 2);
}

#[test]
fn a_toml_syntax_error_names_its_line() {
    let db = TestDb::new("cfg-syntax");
    write_config(&db, "[jobs.a]\ncommand = [\"x\"\n");
    let err = db.fails(&["check-config"]);
    assert!(err.contains("has 1 problem(s):\n  line "), "{err}");
}

#[test]
fn the_worker_refuses_an_invalid_file_and_says_why() {
    let db = TestDb::new("cfg-worker");
    write_config(&db, BAD);
    let mut w = db.spawn_worker(&[]);
    assert_eq!(w.wait_exit(Duration::from_secs(30)), Some(1));
    let log = w.log_text();
    assert!(log.contains("invalid config:"), "{log}");
    assert!(
        log.contains("unknown key 'comand' (did you mean 'command'?)"),
        "{log}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'Worker'"),
        "0"
    );
    // Reading and cancelling still work with a broken file.
    db.ok(&["status"]);
}

#[test]
fn the_config_is_found_through_the_environment_and_builtins_can_be_listed() {
    let db = TestDb::new("cfg-env");
    let other = db.dir.join("other.toml");
    std::fs::write(&other, "[builtins]\nenabled = [\"backup-database\"]\n").expect("write");
    let out = db
        .cmd()
        .args(["--json", "job-types"])
        .env("JOBMGR_CONFIG", &other)
        .output()
        .expect("run");
    assert!(out.status.success());
    let types: Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = types
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["backup-database"]);
}
