//! The WebSocket endpoint with a real tungstenite client: the snapshot,
//! live run events from a worker in another process and from the CLI, the
//! log-follow socket, the upgrade's security checks, and a client that
//! never reads being resynchronised or dropped while another keeps up.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::http::{next_json, request, wait_message};
use common::{Serve, TestDb, wait_for};
use serde_json::{Value, json};
use std::net::TcpStream;
use tungstenite::WebSocket;

const WAIT: Duration = Duration::from_secs(20);

/// A server without a worker, and a client past its snapshot.
fn live(db: &TestDb) -> (Serve, WebSocket<TcpStream>) {
    let s = db.spawn_serve(&["--no-worker"]);
    let mut ws = s.api.ws("/ws");
    assert_eq!(next_json(&mut ws).expect("snapshot")["type"], "snapshot");
    (s, ws)
}

/// A flood of changes: 12 transactions of 1,000 bulky runs each, about
/// 24 MB of run events, far more than socket buffers and the per-client
/// queue hold.
fn flood(db: &TestDb) {
    for _ in 0..12 {
        bulky_runs(db, 1000, 2);
    }
}

fn is_run(m: &Value, id: i64) -> bool {
    m["type"] == "run" && m["run"]["id"] == id
}

#[test]
fn snapshot_on_connect() {
    let db = TestDb::new("wssnap");
    let s = db.spawn_serve(&["--no-worker"]);
    let id = db.enqueue("demo-known-total", &["count=7"]);
    let mut ws = s.api.ws("/ws");
    let snap = next_json(&mut ws).expect("snapshot");
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["worker"]["state"], "NONE");
    assert_eq!(snap["worker"]["supervised"], false);
    assert_eq!(snap["stats"]["counts"]["byStatus"]["QUEUED"], 1);
    assert!(snap["stats"]["throughput"]["lastMinute"].is_number());
    let active = snap["active"].as_array().expect("active");
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["id"], id);
    assert_eq!(active[0]["parameters"]["count"], 7);
    assert_eq!(active[0]["progressText"], "Queued");
}

#[test]
fn a_supervised_worker_run_streams_progress() {
    let db = TestDb::new("wsprogress");
    let s = db.spawn_serve(&[]);
    let mut ws = s.api.ws("/ws");
    assert_eq!(next_json(&mut ws).expect("snapshot")["type"], "snapshot");
    wait_message(&mut ws, "the worker RUNNING", WAIT, |m| {
        m["type"] == "worker"
            && m["worker"]["state"] == "RUNNING"
            && m["worker"]["supervised"] == true
    });
    let r = s.api.post(
        "/api/jobs",
        &json!({"jobName": "demo-known-total", "parameters": {"count": 40, "delay_ms": 40}}),
    );
    assert_eq!(r.status, 201);
    let id = r.json()["run"]["id"].as_i64().expect("id");
    let mut progress = Vec::new();
    let mut texts = Vec::new();
    let done = wait_message(&mut ws, "the run to complete", WAIT, |m| {
        if is_run(m, id) {
            progress.push(m["run"]["entitiesProcessed"].as_i64().unwrap_or(-1));
            texts.push(m["run"]["progressText"].as_str().unwrap_or("").to_string());
        }
        is_run(m, id) && m["run"]["status"] == "COMPLETED"
    });
    assert_eq!(done["run"]["entitiesProcessed"], 40);
    let mid: Vec<i64> = progress
        .iter()
        .copied()
        .filter(|p| *p > 0 && *p < 40)
        .collect();
    assert!(
        !mid.is_empty(),
        "progress between start and end: {progress:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows: {progress:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Processing items (") && t.ends_with('%')),
        "{texts:?}"
    );
    wait_message(&mut ws, "stats counting the completed run", WAIT, |m| {
        m["type"] == "stats" && m["stats"]["counts"]["byStatus"]["COMPLETED"] == 1
    });
}

#[test]
fn a_cli_enqueue_shows_up_live() {
    let db = TestDb::new("wscli");
    let (_s, mut ws) = live(&db);
    let id = db.enqueue("demo-unknown-total", &["count=3"]);
    let m = wait_message(&mut ws, "the CLI's run", WAIT, |m| is_run(m, id));
    assert_eq!(m["run"]["status"], "QUEUED");
    assert_eq!(m["run"]["triggeredBy"], "cli");
    db.ok(&["cancel", &id.to_string()]);
    let m = wait_message(&mut ws, "the cancellation", WAIT, |m| {
        is_run(m, id) && m["run"]["status"] == "CANCELLED"
    });
    assert!(m["run"]["finishedAt"].is_string());
}

#[test]
fn a_worker_started_by_hand_shows_up_live() {
    let db = TestDb::new("wshand");
    let (_s, mut ws) = live(&db);
    let _w = db.spawn_worker(&[]);
    let m = wait_message(&mut ws, "the hand-started worker", WAIT, |m| {
        m["type"] == "worker" && m["worker"]["state"] == "RUNNING"
    });
    assert_eq!(m["worker"]["supervised"], false);
    let hb = m["worker"]["worker"]["heartbeatAt"].clone();
    wait_message(&mut ws, "a heartbeat", WAIT, |m| {
        m["type"] == "worker" && m["worker"]["worker"]["heartbeatAt"] != hb
    });
}

#[test]
fn the_follow_socket_sends_lines_then_end() {
    let db = TestDb::new("wsfollow");
    let s = db.spawn_serve(&[]);
    let r = s.api.post(
        "/api/jobs",
        &json!({"jobName": "demo-known-total", "parameters": {"count": 30, "delay_ms": 30}}),
    );
    let id = r.json()["run"]["id"].as_i64().expect("id");
    let mut ws = s.api.ws(&format!("/ws?follow={id}"));
    let mut ids = Vec::new();
    let mut messages = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no end within {WAIT:?}");
        let m = next_json(&mut ws).expect("socket stays open until end");
        if m["type"] == "end" {
            assert_eq!(m["runId"], id);
            break;
        }
        assert_eq!(m["type"], "log");
        assert_eq!(m["runId"], id);
        for l in m["lines"].as_array().expect("lines") {
            ids.push(l["id"].as_i64().expect("line id"));
            messages.push(l["message"].as_str().unwrap_or("").to_string());
        }
    }
    assert_eq!(
        s.api.ok(&format!("/api/jobs/{id}"))["run"]["status"],
        "COMPLETED"
    );
    let all = s.api.ok(&format!("/api/jobs/{id}/logs?limit=1000"));
    let expected: Vec<i64> = all["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["id"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(ids, expected, "every line once, in order, before end");
    assert!(messages.iter().any(|m| m.contains("done: 30 items")));
    assert!(next_json(&mut ws).is_none(), "the socket closes after end");

    // Following from a cursor sends only the later lines, then end at once.
    let mut ws = s.api.ws(&format!(
        "/ws?follow={id}&after={}",
        expected[expected.len() - 2]
    ));
    let m = next_json(&mut ws).expect("log");
    assert_eq!(m["lines"].as_array().map(Vec::len), Some(1));
    assert_eq!(next_json(&mut ws).expect("end")["type"], "end");
}

#[test]
fn the_upgrade_checks_auth_origin_and_run() {
    let db = TestDb::new("wsguard");
    let s = db.spawn_serve(&["--no-worker"]);
    let a = &s.api;
    let bearer = format!("Bearer {}", a.token);
    let upgrade = |extra: &[(&str, &str)], path: &str| {
        let mut h = vec![
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        h.extend_from_slice(extra);
        request(&a.addr, "GET", path, &h, None)
    };
    assert_eq!(upgrade(&[], "/ws").status, 401);
    assert_eq!(
        upgrade(&[("Authorization", "Bearer nope")], "/ws").status,
        401
    );
    let r = upgrade(
        &[
            ("Authorization", &bearer),
            ("Origin", "http://evil.example"),
        ],
        "/ws",
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.error_code(), "forbidden_origin");
    assert_eq!(
        upgrade(&[("Authorization", &bearer)], "/ws?follow=999").status,
        404
    );
    assert_eq!(
        upgrade(&[("Authorization", &bearer)], "/ws?follow=abc").status,
        400
    );
    let plain = request(&a.addr, "GET", "/ws", &[("Authorization", &bearer)], None);
    assert_eq!(plain.status, 400);
    let own = format!("http://{}", a.addr);
    let ok = upgrade(&[("Authorization", &bearer), ("Origin", &own)], "/ws");
    assert_eq!(ok.status, 101);
    assert_eq!(
        ok.header("Sec-WebSocket-Accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
}

#[test]
fn a_client_that_never_reads_is_resynced_or_dropped_while_others_keep_up() {
    let db = TestDb::new("wsslow");
    let s = db.spawn_serve(&["--no-worker"]);
    let mut slow = s.api.ws("/ws");
    let mut fast = s.api.ws("/ws");
    assert_eq!(next_json(&mut fast).expect("snapshot")["type"], "snapshot");
    let seen = Arc::new(AtomicBool::new(false));
    let seen_by_reader = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut count = 0usize;
        let mut resyncs = 0usize;
        let mut marker = false;
        while let Some(m) = next_json(&mut fast) {
            count += 1;
            if m["type"] == "resync" {
                resyncs += 1;
            }
            if m["type"] == "run" && m["run"]["jobName"] == "demo-multi-phase" {
                marker = true;
                seen_by_reader.store(true, Ordering::SeqCst);
                break;
            }
        }
        (count, resyncs, marker)
    });
    flood(&db);
    // Markers come after the flood: the reading client must see one as a
    // run event. (A marker committed while the server was still digesting
    // the flood may be covered by a resync instead, so add one until seen.)
    wait_for("the reading client to get a marker run", WAIT, || {
        if seen.load(Ordering::SeqCst) {
            return true;
        }
        db.enqueue("demo-multi-phase", &[]);
        false
    });
    let Ok((count, resyncs, got_marker)) = reader.join() else {
        panic!("the reading client failed; server log:\n{}", s.log_text());
    };
    eprintln!("fast client: {count} messages, {resyncs} resyncs");
    assert!(got_marker, "saw {count} messages, {resyncs} resyncs");
    // The client that never read is told to resync, or cut off.
    let mut saw = "nothing";
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match next_json(&mut slow) {
            Some(m) if m["type"] == "resync" => {
                saw = "resync";
                break;
            }
            Some(_) => {}
            None => {
                saw = "closed";
                break;
            }
        }
    }
    eprintln!("slow client: {saw}");
    assert_ne!(
        saw, "nothing",
        "the slow client was neither resynced nor dropped"
    );
    assert_eq!(s.api.ok("/healthz")["ok"], true, "the server still answers");
}

/// The watcher finds changes without an index on `updatedAt`: by new ids,
/// among RUNNING runs, among finished ones, and by a run leaving the
/// RUNNING set for the queue, which this test provokes: a worker killed
/// with -9 leaves a retry-safe run RUNNING, and `cleanup-stalled` puts it
/// back in the queue.
#[test]
fn a_run_put_back_in_the_queue_shows_up_live() {
    let db = TestDb::new("wsrequeue");
    let (_s, mut ws) = live(&db);
    let id = db.enqueue("demo-known-total", &["count=1000", "delay_ms=50"]);
    let mut w = db.spawn_worker(&[]);
    wait_message(&mut ws, "the run started", WAIT, |m| {
        is_run(m, id) && m["run"]["status"] == "RUNNING"
    });
    // A newer run (still queued behind the first), so the first is not
    // found as the newest one either.
    let newer = db.enqueue("demo-known-total", &["count=1"]);
    wait_message(&mut ws, "the newer run", WAIT, |m| is_run(m, newer));
    w.signal("KILL");
    w.wait_exit(WAIT);
    db.ok(&["cleanup-stalled"]);
    let m = wait_message(&mut ws, "the run back in the queue", WAIT, |m| {
        is_run(m, id) && m["run"]["status"] == "QUEUED"
    });
    assert!(m["run"]["metadata"]["requeuedAfter"].is_string(), "{m}");
    db.ok(&["cancel", &id.to_string()]);
    wait_message(&mut ws, "the cancellation", WAIT, |m| {
        is_run(m, id) && m["run"]["status"] == "CANCELLED"
    });
}

/// Runs have no AUTOINCREMENT: once the newest run is deleted (a user's
/// DELETE, or retention pruning everything), the next run gets its id
/// again, and must still show up live.
#[test]
fn a_new_run_reusing_a_deleted_runs_id_shows_up_live() {
    let db = TestDb::new("wsreuse");
    let (_s, mut ws) = live(&db);
    let first = db.enqueue("demo-known-total", &["count=1"]);
    wait_message(&mut ws, "the first run", WAIT, |m| is_run(m, first));
    // Deleted and given again in one commit, so no look falls between.
    db.conn()
        .execute_batch(&format!(
            "BEGIN; DELETE FROM JobRun WHERE id = {first}; \
             INSERT INTO JobRun (jobName, status, parameters, createdAt, updatedAt, triggeredBy) \
             VALUES ('demo-known-total', 'QUEUED', '{{\"count\":2}}', \
                     strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'cli'); \
             COMMIT;"
        ))
        .expect("delete and insert");
    let again: i64 = db.scalar("SELECT max(id) FROM JobRun").parse().unwrap();
    assert_eq!(again, first, "the id is given again");
    let m = wait_message(&mut ws, "the run with the reused id", WAIT, |m| {
        is_run(m, again) && m["run"]["parameters"]["count"] == 2
    });
    assert_eq!(m["run"]["status"], "QUEUED");
}

/// Clients are shared out among several writer threads: every client
/// gets every change whichever writer holds it, and clients leaving one
/// writer do not stop the others' messages.
#[test]
fn every_live_client_gets_each_change_whichever_writer_has_it() {
    let db = TestDb::new("wswriters");
    let s = db.spawn_serve(&["--no-worker"]);
    let mut clients: Vec<_> = (0..5)
        .map(|_| {
            let mut ws = s.api.ws("/ws");
            assert_eq!(next_json(&mut ws).expect("snapshot")["type"], "snapshot");
            ws
        })
        .collect();
    wait_for("5 live clients", WAIT, || live_clients(&s) == 5.0);
    let id = db.enqueue("demo-unknown-total", &["count=3"]);
    for ws in clients.iter_mut() {
        wait_message(ws, "the queued run", WAIT, |m| is_run(m, id));
    }
    for mut ws in clients.drain(..2) {
        ws.close(None).expect("close");
        let _ = ws.flush();
    }
    wait_for("3 live clients", WAIT, || live_clients(&s) == 3.0);
    db.ok(&["cancel", &id.to_string()]);
    for ws in clients.iter_mut() {
        wait_message(ws, "the cancellation", WAIT, |m| {
            is_run(m, id) && m["run"]["status"] == "CANCELLED"
        });
    }
}

/// Live sockets the server counts (`jobmgr_websocket_clients`).
fn live_clients(s: &Serve) -> f64 {
    let text = s.api.get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix("jobmgr_websocket_clients "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1.0)
}

/// `n` queued runs of about `kb` KB each, in one transaction.
fn bulky_runs(db: &TestDb, n: usize, kb: usize) {
    let params = json!({ "padding": "x".repeat(kb * 1024) }).to_string();
    let mut c = db.conn();
    let tx = c.transaction().expect("tx");
    for _ in 0..n {
        tx.execute(
            "INSERT INTO JobRun (jobName, status, parameters, createdAt, updatedAt) \
             VALUES ('demo-known-total', 'QUEUED', ?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), \
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            [&params],
        )
        .expect("insert");
    }
    tx.commit().expect("commit");
}

/// A client that stops reading fills the socket buffers, and then the
/// server has bytes for it that its socket does not take. `--client-timeout`
/// bounds that: the client is dropped, instead of being held forever. Here
/// the one message is a snapshot of 200 bulky runs (about 20 MB, more than
/// loopback's buffers), so no queue overflows: the timeout is what drops
/// it. A connection that sends nothing (idle keep-alive included) is
/// closed after the same time.
#[test]
fn a_client_that_stops_reading_or_sending_is_disconnected_after_the_client_timeout() {
    let db = TestDb::new("wstimeout");
    let err = db.fails(&["serve", "--no-worker", "--client-timeout", "0"]);
    assert!(err.contains("0 is not in 1..=86400"), "{err}");
    let s = db.spawn_serve(&["--no-worker", "--client-timeout", "1"]);
    let mut silent = TcpStream::connect(&s.api.addr).expect("connect");
    silent.set_read_timeout(Some(WAIT)).expect("read timeout");
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = std::io::Read::read(&mut silent, &mut buf);
    assert!(
        matches!(n, Ok(0)) && started.elapsed() < WAIT,
        "a silent connection is closed by the server: {n:?}"
    );
    bulky_runs(&db, 200, 100);
    let slow = s.api.ws("/ws");
    let opened = Instant::now();
    assert_eq!(live_clients(&s), 1.0, "the stuck client counted");
    wait_for("the stuck client to be dropped", WAIT, || {
        live_clients(&s) == 0.0
    });
    assert!(
        opened.elapsed() >= Duration::from_millis(900),
        "dropped after the 1 s client timeout, not before: {:?}",
        opened.elapsed()
    );
    assert_eq!(s.api.ok("/healthz")["ok"], true, "the server still answers");
    drop(slow);
}

/// One writer serves every live socket: a client that never reads is told
/// to resync and then dropped, and meanwhile, and after, a reading client
/// gets every change.
#[test]
fn a_slow_client_is_dropped_with_a_resync_while_another_keeps_receiving() {
    let db = TestDb::new("wsdrop");
    let s = db.spawn_serve(&["--no-worker"]);
    let mut slow = s.api.ws("/ws");
    let mut fast = s.api.ws("/ws");
    assert_eq!(next_json(&mut fast).expect("snapshot")["type"], "snapshot");
    assert_eq!(live_clients(&s), 2.0);
    let reading = Arc::new(AtomicBool::new(true));
    let still = reading.clone();
    let reader = std::thread::spawn(move || {
        let mut marker = false;
        while let Some(m) = next_json(&mut fast) {
            if m["type"] == "run" && m["run"]["jobName"] == "demo-multi-phase" {
                marker = true;
                break;
            }
        }
        still.store(false, Ordering::SeqCst);
        marker
    });
    // Changes until the slow client is dropped (its socket buffers, then
    // its queue twice over: a resync, then the drop).
    wait_for("the slow client to be dropped", WAIT, || {
        if live_clients(&s) <= 1.0 {
            return true;
        }
        bulky_runs(&db, 300, 2);
        false
    });
    assert!(
        reading.load(Ordering::SeqCst),
        "the reading client is still on"
    );
    assert_eq!(live_clients(&s), 1.0, "the reading client is still counted");
    db.enqueue("demo-multi-phase", &[]);
    let Ok(marker) = reader.join() else {
        panic!("the reading client failed; server log:\n{}", s.log_text());
    };
    assert!(
        marker,
        "the reading client got the change made after the drop"
    );
    // What the slow client was sent ends with a resync, then the close.
    let mut last = Value::Null;
    while let Some(m) = next_json(&mut slow) {
        last = m;
    }
    assert_eq!(last["type"], "resync", "the slow client's last message");
}

/// Opens a live WebSocket; its handshake's HTTP status (101 when it opened).
fn try_ws(api: &common::http::Api, path: &str) -> (u16, Option<WebSocket<TcpStream>>) {
    use tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}{path}", api.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", api.token).parse().unwrap(),
    );
    let stream = TcpStream::connect(&api.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    match tungstenite::client(req, stream) {
        Ok((ws, resp)) => (resp.status().as_u16(), Some(ws)),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            (resp.status().as_u16(), None)
        }
        Err(e) => panic!("handshake: {e}"),
    }
}

/// Each kind of socket has its cap (192), and clients holding all of them
/// still leave connections for plain requests.
#[test]
fn socket_caps_leave_room_for_plain_requests() {
    let db = TestDb::new("ws-caps");
    let s = db.spawn_serve(&["--no-worker"]);
    let id = db.enqueue("demo-known-total", &["count=1"]);
    let mut held = Vec::new();
    for path in ["/ws".to_string(), format!("/ws?follow={id}")] {
        for n in 0..192 {
            let (status, ws) = try_ws(&s.api, &path);
            assert_eq!(status, 101, "{path} socket {n}");
            held.extend(ws);
        }
        let (status, ws) = try_ws(&s.api, &path);
        assert_eq!(status, 503, "{path}: the 193rd socket");
        assert!(ws.is_none());
    }
    assert_eq!(held.len(), 384);
    let r = common::http::request(&s.api.addr, "GET", "/healthz", &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.api.ok("/api/worker")["state"], "NONE");
}
