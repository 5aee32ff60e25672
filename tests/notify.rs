//! Notifications: `[[notify]]` entries, the outbox, and its delivery by
//! the worker to a webhook receiver running in the test (and to a
//! command), with retries on the driven clock and exactly one delivery
//! per event id across a `kill -9` of the worker.

mod common;
mod notify_support;

use std::collections::BTreeSet;

use common::clock::timestamp_text;
use common::{TestDb, wait_for};
use notify_support::{JOBS, Receiver, Reply, WAIT, outbox, setup, start_worker, webhook};
use serde_json::Value;

#[test]
fn a_run_that_fails_for_good_is_posted_once_and_an_attempt_that_is_retried_is_not() {
    let receiver = Receiver::start(&[]);
    let hook = webhook(
        &receiver,
        "\"run_failed\"",
        "jobs = [\"fails\", \"flaky\"]\npublic_url = \"http://jobs.example:8765/\"",
    );
    let (db, clock) = setup("notify-once", &hook);
    let worker = start_worker(&db, &clock);
    let flaky = db.enqueue("flaky", &[]);
    db.wait_status(flaky, "SCHEDULED", WAIT);
    let fails = db.enqueue("fails", &[]);
    db.wait_status(fails, "FAILED", WAIT);
    let got = receiver.wait_for(1, WAIT, "the failed run's POST");
    assert_eq!(
        got.len(),
        1,
        "one POST, none for the retried attempt: {got:#?}"
    );
    let post = &got[0];
    assert_eq!(
        (post.method.as_str(), post.path.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(post.headers["content-type"], "application/json");
    let b = &post.body;
    assert_eq!(b["event"], "run_failed");
    assert_eq!(b["runId"], fails);
    assert_eq!(b["job"], "fails");
    assert_eq!(b["status"], "FAILED");
    assert!(
        b["error"]
            .as_str()
            .is_some_and(|e| e.contains("exited with code 3") && e.contains("boom")),
        "{b}"
    );
    let url = format!("http://jobs.example:8765/admin/jobs#/runs/{fails}");
    assert_eq!(b["url"], url.as_str());
    let text = b["text"].as_str().unwrap_or("");
    assert!(
        text.contains(&format!("run {fails} (fails) failed: exited with code 3")),
        "{text}"
    );
    assert!(text.ends_with(&format!("<{url}|run {fails}>")), "{text}");
    let id = b["deliveryId"].as_i64().expect("deliveryId");
    assert_eq!(post.delivery(), id.to_string());
    assert_eq!(post.headers["idempotency-key"], format!("jobmgr-{id}"));
    wait_for("the delivery to be recorded", WAIT, || {
        outbox(&db).iter().any(|r| r[2] == "DELIVERED")
    });

    // Its last attempt fails an hour later: that one is posted.
    clock.advance(3_700_000);
    db.wait_status(flaky, "FAILED", WAIT);
    let got = receiver.wait_for(2, WAIT, "the retried run's POST once it gave up");
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[1].body["runId"], flaky);
    assert!(
        got[1].body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("gave up after 2 attempts")),
        "{}",
        got[1].body
    );
    drop(worker);
}

#[test]
fn a_receiver_that_answers_500_gets_it_again_after_the_backoff() {
    let receiver = Receiver::start(&[Reply::Status(500)]);
    let (db, clock) = setup("notify-retry", &webhook(&receiver, "\"run_failed\"", ""));
    let worker = start_worker(&db, &clock);
    let run = db.enqueue("fails", &[]);
    receiver.wait_for(1, WAIT, "the first POST");
    wait_for("the failed attempt to be recorded", WAIT, || {
        outbox(&db).first().is_some_and(|r| r[3] == 1)
    });
    let row = outbox(&db)[0].clone();
    assert_eq!(row[2], "PENDING");
    assert!(
        row[4]
            .as_str()
            .is_some_and(|e| e.contains("answered HTTP 500")),
        "{row:?}"
    );
    // The next attempt is due 10 s later on the clock, which stands still.
    assert_eq!(row[5], timestamp_text(clock.now_ms() + 10_000).as_str());
    assert_eq!(receiver.got().len(), 1);

    clock.advance(10_500);
    let got = receiver.wait_for(2, WAIT, "the second POST after the backoff");
    assert_eq!(got[0].delivery(), got[1].delivery(), "the same delivery id");
    assert_eq!(got[1].body["runId"], run);
    assert_eq!(got[1].body["attempt"], 2);
    wait_for("the delivery to be recorded", WAIT, || {
        outbox(&db)
            .first()
            .is_some_and(|r| r[2] == "DELIVERED" && r[3] == 2)
    });
    drop(worker);
}

#[test]
fn each_event_is_delivered_once_per_id_across_a_kill_of_the_worker() {
    // The first POST is held unanswered: the worker dies mid-delivery.
    let receiver = Receiver::start(&[Reply::Hold]);
    let (db, clock) = setup("notify-kill", &webhook(&receiver, "\"run_failed\"", ""));
    let mut worker = start_worker(&db, &clock);
    let first = db.enqueue("fails", &[]);
    receiver.wait_for(1, WAIT, "the first POST (held)");
    worker.signal("KILL");
    worker.wait_exit(WAIT);
    assert_eq!(outbox(&db)[0][2], "PENDING", "nothing was recorded");

    // A new worker delivers it again, under the same id.
    let mut worker = start_worker(&db, &clock);
    let got = receiver.wait_for(2, WAIT, "the POST again from the next worker");
    assert_eq!(got[0].delivery(), got[1].delivery());
    wait_for("the delivery to be recorded", WAIT, || {
        outbox(&db).first().is_some_and(|r| r[2] == "DELIVERED")
    });
    // Killed after the delivery was recorded: the next worker sends it no
    // more. A second event, delivered after it, shows it had the chance.
    worker.signal("KILL");
    worker.wait_exit(WAIT);
    let worker = start_worker(&db, &clock);
    let second = db.enqueue("fails", &[]);
    let got = receiver.wait_for(3, WAIT, "the second event's POST");
    // Give a wrongly repeated first delivery the time to show up behind it.
    wait_for("the second delivery to be recorded", WAIT, || {
        outbox(&db).iter().filter(|r| r[2] == "DELIVERED").count() == 2
    });
    let got = if receiver.got().len() > got.len() {
        receiver.got()
    } else {
        got
    };
    let runs: Vec<i64> = got
        .iter()
        .filter_map(|g| g.body["runId"].as_i64())
        .collect();
    assert_eq!(runs, [first, first, second], "{got:#?}");
    let ids: BTreeSet<String> = got.iter().map(|g| g.delivery()).collect();
    assert_eq!(ids.len(), 2, "one delivery id per event: {got:#?}");
    drop(worker);
}

#[test]
fn a_command_notifier_gets_the_event_in_its_environment() {
    let notify = r#"
[[notify]]
name = "script"
on = ["run_failed"]
command = ["sh", "-c", "env > env.tmp && mv env.tmp env.txt"]
env = ["PATH"]
timeout_secs = 20
"#;
    let (db, clock) = setup("notify-cmd", notify);
    let worker = start_worker(&db, &clock);
    let run = db.enqueue("fails", &[]);
    let out = db.dir.join("env.txt");
    wait_for(
        "the command notifier to write its environment",
        WAIT,
        || out.exists(),
    );
    let env = std::fs::read_to_string(&out).expect("read env.txt");
    let var = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
    };
    assert_eq!(var("JOBMGR_EVENT").as_deref(), Some("run_failed"), "{env}");
    assert_eq!(var("JOBMGR_RUN_ID"), Some(run.to_string()));
    assert_eq!(var("JOBMGR_JOB_NAME").as_deref(), Some("fails"));
    assert!(
        var("JOBMGR_ERROR").is_some_and(|e| e.contains("exited with code 3")),
        "{env}"
    );
    assert_eq!(var("JOBMGR_NOTIFIER").as_deref(), Some("script"));
    assert!(var("JOBMGR_DELIVERY_ID").is_some());
    assert!(var("PATH").is_some(), "the allowlisted PATH: {env}");
    assert!(
        var("JOBMGR_TEST_CLOCK_FILE").is_none(),
        "the rest is cleared: {env}"
    );
    assert!(var("HOME").is_none(), "{env}");
    wait_for("the delivery to be recorded", WAIT, || {
        outbox(&db).first().is_some_and(|r| r[2] == "DELIVERED")
    });
    drop(worker);
}

#[test]
fn check_config_reports_unknown_events_jobs_and_targets_with_their_lines() {
    let db = TestDb::new("notify-check");
    std::fs::write(
        db.dir.join("jobmgr.toml"),
        format!(
            "{JOBS}\n[[notify]]\non = [\"run_faild\"]\njobs = [\"fail\"]\nwebhook = \"http://127.0.0.1:9/\"\n\n\
             [[notify]]\non = [\"worker_dead\"]\nwebhook = \"http://127.0.0.1:9/\"\ncommand = [\"true\"]\n\n\
             [[notify]]\non = [\"disk_low\"]\n"
        ),
    )
    .expect("write config");
    let out = db.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "line 14: notify[0].on: unknown event 'run_faild' (did you mean 'run_failed'?)",
        "line 15: notify[0].jobs: 'fail' is not a job type (did you mean 'fails'?)",
        "line 21: notify[1].command: give either webhook or command, not both",
        "line 23: notify[2]: needs a target: webhook = \"https://...\" or command = [\"program\", ...]",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // The worker refuses to start on it.
    let err = db.fails(&["worker"]);
    assert!(err.contains("notify[0].on"), "{err}");
}

#[test]
fn recovery_queues_worker_dead_and_run_stalled_and_both_are_listed_then_delivered() {
    let receiver = Receiver::start(&[]);
    let hook = webhook(&receiver, "\"run_stalled\", \"worker_dead\"", "");
    let (db, clock) = setup("notify-recovery", &hook);
    let run = db.insert_stalled_run();
    // On the worker's clock, so the rows are due when the worker looks.
    let mut cleanup = db.cmd();
    clock.apply(&mut cleanup);
    assert!(
        cleanup
            .arg("cleanup-stalled")
            .status()
            .expect("cleanup-stalled")
            .success()
    );
    // Queued in the clean-up's own transaction, before any worker runs.
    let rows = outbox(&db);
    let events: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().unwrap_or("");
            (s(0), s(1), s(2))
        })
        .collect();
    let worker_id = db.scalar("SELECT id FROM Worker WHERE hostname = 'gone'");
    assert_eq!(
        events,
        [
            (
                "worker_dead",
                format!("worker:{worker_id}").as_str(),
                "PENDING"
            ),
            ("run_stalled", format!("run:{run}").as_str(), "PENDING"),
        ]
    );

    let listed: Value = serde_json::from_str(&db.ok(&["notifications", "--json"])).expect("JSON");
    assert_eq!(listed["counts"]["PENDING"], 2, "{listed}");
    assert_eq!(listed["deliveries"].as_array().map(Vec::len), Some(2));
    assert_eq!(listed["notifiers"][0]["name"], "ops");
    let text = db.ok(&["notifications"]);
    assert!(
        text.contains("deliveries: 2 pending, 0 delivered, 0 failed"),
        "{text}"
    );
    let err = db.fails(&["notifications", "--status", "pendng"]);
    assert!(
        err.contains("unknown delivery status 'pendng' (did you mean 'PENDING'?)"),
        "{err}"
    );

    let serve = db.spawn_serve(&["--no-worker"]);
    let page = serve.api.ok("/api/notifications?status=pending");
    assert_eq!(
        page["deliveries"].as_array().map(Vec::len),
        Some(2),
        "{page}"
    );
    assert_eq!(page["deliveries"][0]["event"], "run_stalled");
    let bad = serve.api.get("/api/notifications?status=sent");
    assert_eq!(
        (bad.status, bad.error_code().as_str()),
        (400, "invalid_input")
    );
    assert_eq!(serve.api.get("/api/notifications?limit=0").status, 400);
    let anonymous = common::http::request(&serve.api.addr, "GET", "/api/notifications", &[], None);
    assert_eq!(anonymous.status, 401, "the outbox needs the token");

    let worker = start_worker(&db, &clock);
    let got = receiver.wait_for(2, WAIT, "both recovery events");
    let mut events: Vec<&str> = got
        .iter()
        .filter_map(|g| g.body["event"].as_str())
        .collect();
    events.sort();
    assert_eq!(events, ["run_stalled", "worker_dead"]);
    let stalled = got
        .iter()
        .find(|g| g.body["event"] == "run_stalled")
        .expect("stalled");
    assert_eq!(stalled.body["runId"], run);
    assert!(
        stalled.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("worker lost")),
        "{}",
        stalled.body
    );
    wait_for("both deliveries to be recorded", WAIT, || {
        let page = serve.api.ok("/api/notifications?status=DELIVERED");
        page["deliveries"].as_array().map(Vec::len) == Some(2)
    });
    drop(worker);
}
