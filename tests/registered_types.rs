//! A program with its own Rust job type runs jobmgr's command line with
//! `jobmgr::run_with`: the config file is read over its types, so
//! `[policies.X]` for a Rust-only type (not a command of the file) is
//! accepted by `check-config` and applied by the commands, while plain
//! `jobmgr` (the built-ins only) reports the same file's type unknown.

mod common;

use std::ffi::OsString;
use std::sync::Arc;

use common::TestDb;
use jobmgr::jobs::builtin_registry;
use jobmgr::registry::{JobType, ParamKind, ParamSpec, Registry};

const CONFIG: &str = "[policies.rescore-users]\npriority = 7\ntimeout_secs = 60\nunique = [\"batch\"]\n\n\
[policies.rescore-users.retry]\nmax_attempts = 3\n";

/// The built-ins plus a Rust job type of the program's own.
fn program_types() -> Registry {
    let mut r = builtin_registry();
    r.register(JobType {
        name: "rescore-users".into(),
        description: "Recomputes every user's score.".into(),
        params: vec![ParamSpec::new("batch", ParamKind::Integer).default(500)],
        retry_safe: true,
        handler: Arc::new(|_| Ok(())),
    });
    r
}

fn args(db: &TestDb, rest: &[&str]) -> Vec<OsString> {
    let mut all: Vec<OsString> = vec!["jobmgr".into(), "--db".into(), db.path.clone().into()];
    all.extend(rest.iter().map(OsString::from));
    all
}

#[test]
fn a_policy_for_a_rust_only_type_is_accepted_and_applied_when_the_type_is_registered() {
    let db = TestDb::new("registered-types");
    db.ok(&["migrate"]);
    std::fs::write(db.dir.join("jobmgr.toml"), CONFIG).expect("write config");

    // The built-ins alone do not know the type: check-config says so.
    let err = db.fails(&["check-config"]);
    assert!(
        err.contains("policies.rescore-users: 'rescore-users' is not a job type"),
        "{err}"
    );
    assert_eq!(jobmgr::run(args(&db, &["check-config"])).ok(), Some(1));

    // The program that registers it: the file is valid and applied.
    let code = jobmgr::run_with(args(&db, &["check-config"]), program_types());
    assert_eq!(code.ok(), Some(0));
    let code = jobmgr::run_with(args(&db, &["enqueue", "rescore-users"]), program_types());
    assert_eq!(code.ok(), Some(0));
    // The file's priority, and its unique key (the second is the same run).
    let code = jobmgr::run_with(args(&db, &["enqueue", "rescore-users"]), program_types());
    assert_eq!(code.ok(), Some(0));
    assert_eq!(
        db.query("SELECT jobName, priority, uniqueKey IS NOT NULL FROM JobRun"),
        vec![vec![
            serde_json::json!("rescore-users"),
            serde_json::json!(7),
            serde_json::json!(1)
        ]]
    );
}
