//! `--local`: the CLI prints times in the machine's zone with its offset,
//! the same choice as the page's time-zone switch; JSON stays UTC.

mod common;

use common::TestDb;

/// A zone without daylight saving, as a POSIX TZ rule, so the test needs
/// no time zone database: five and a half hours east of UTC.
const TZ: &str = "XST-05:30";

/// `db.ok(args)` with more environment variables.
fn ok_env(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut c = db.cmd();
    c.args(args).stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run jobmgr");
    assert!(out.status.success(), "jobmgr {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn created(db: &TestDb) -> String {
    let out = db.ok(&["show", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    v["createdAt"].as_str().expect("createdAt").to_string()
}

#[test]
fn local_prints_times_in_the_machines_zone_and_json_stays_utc() {
    let db = TestDb::new("cli-local");
    db.ok(&["enqueue", "demo-multi-phase"]);
    let utc = created(&db);
    assert!(utc.ends_with('Z'), "{utc}");
    let at = chrono::DateTime::parse_from_rfc3339(&utc).expect("a time");
    let local = (at + chrono::Duration::minutes(330))
        .format("%Y-%m-%d %H:%M:%S%.3f +05:30")
        .to_string();

    let plain = ok_env(&db, &["show", "1"], &[("TZ", TZ)]);
    assert!(plain.contains(&format!("created:     {utc}")), "{plain}");
    let shown = ok_env(&db, &["show", "1", "--local"], &[("TZ", TZ)]);
    assert!(shown.contains(&format!("created:     {local}")), "{shown}");
    let listed = ok_env(&db, &["jobs", "--local"], &[("TZ", TZ)]);
    assert!(listed.contains(&local), "{listed}");
    // The environment variable does the same, for a shell profile.
    let by_env = ok_env(&db, &["jobs"], &[("TZ", TZ), ("JOBMGR_LOCAL_TIME", "true")]);
    assert!(by_env.contains(&local), "{by_env}");
    let json = ok_env(&db, &["show", "1", "--local", "--json"], &[("TZ", TZ)]);
    assert!(json.contains(&utc), "{json}");
}
