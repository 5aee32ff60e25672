//! `GET /readyz`: ready only while a worker is RUNNING with a fresh
//! heartbeat on the schema this build expects; otherwise 503 with every
//! reason. It answers without a token, like `/healthz`.

mod common;

use std::time::Duration;

use common::http::{Resp, request};
use common::{TestDb, poll_until};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn readyz(addr: &str) -> Resp {
    request(addr, "GET", "/readyz", &[], None)
}

/// The reason codes of a 503, or None while the answer is 200.
fn reasons(r: &Resp) -> Option<Vec<String>> {
    (r.status != 200).then(|| {
        assert_eq!(r.status, 503, "{}", r.text());
        r.json()["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["code"].as_str().unwrap().to_string())
            .collect()
    })
}

/// Polls until `/readyz` gives `want` (None: ready); the last answer.
fn wait_ready(addr: &str, want: Option<&[&str]>) -> Resp {
    let mut last = None;
    let ok = poll_until(WAIT, || {
        let r = readyz(addr);
        let got = reasons(&r);
        let done = got
            .as_deref()
            .map(|v| v.iter().map(String::as_str).collect::<Vec<_>>())
            == want.map(<[&str]>::to_vec);
        last = Some(r);
        done
    });
    let last = last.unwrap();
    assert!(
        ok,
        "wanted {want:?}, last answer {} {}",
        last.status,
        last.text()
    );
    last
}

#[test]
fn ready_with_a_running_worker_and_not_without_one() {
    let db = TestDb::new("readyz");
    let mut s = db.spawn_serve(&[]);
    let r = wait_ready(&s.api.addr, None);
    let body = r.json();
    assert_eq!(body["ready"], Value::Bool(true));
    assert_eq!(body["workerState"], "RUNNING");
    assert!(body["heartbeatAgeMs"].as_i64().unwrap() >= 0);

    // The worker stops: not ready, and the answer says why.
    db.ok(&["worker", "stop"]);
    let r = wait_ready(&s.api.addr, Some(&["no_worker"]));
    assert_eq!(r.json()["ready"], Value::Bool(false));
    assert_eq!(r.json()["reasons"][0]["message"], "no worker is running");
    s.signal("TERM");
    s.wait_exit(WAIT);
}

#[test]
fn a_paused_worker_is_not_ready_until_it_beats_again() {
    let db = TestDb::new("readyz-stale");
    // Serve's sweep would declare the silent worker dead: keep it away.
    let mut cmd = db.cmd();
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--no-worker"]);
    let s = db.spawn_server_with_env(cmd, "JOBMGR_MAINTENANCE_MS", "3600000");
    let mut w = db.spawn_worker(&[]);
    wait_ready(&s.api.addr, None);
    w.signal("STOP");
    let r = wait_ready(&s.api.addr, Some(&["worker_stale"]));
    let message = r.json()["reasons"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("the worker's last heartbeat is "),
        "{message}"
    );
    w.signal("CONT");
    wait_ready(&s.api.addr, None);
    w.signal("TERM");
    assert_eq!(w.wait_exit(WAIT), Some(0));
}

#[test]
fn a_schema_this_build_does_not_expect_is_not_ready() {
    let db = TestDb::new("readyz-schema");
    let s = db.spawn_serve(&[]);
    wait_ready(&s.api.addr, None);
    // As if the newest migration had not been applied.
    db.conn()
        .execute(
            "DELETE FROM refinery_schema_history WHERE version = \
             (SELECT max(version) FROM refinery_schema_history)",
            [],
        )
        .unwrap();
    let r = wait_ready(&s.api.addr, Some(&["schema_behind"]));
    let message = r.json()["reasons"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("migrations not applied yet: V"),
        "{message}"
    );
    // A migration this build does not know (a newer jobmgr's).
    db.conn()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES (999, 'from_the_future', '2027-01-01T00:00:00Z', '1')",
            [],
        )
        .unwrap();
    wait_ready(&s.api.addr, Some(&["schema_behind", "schema_mismatch"]));
}
