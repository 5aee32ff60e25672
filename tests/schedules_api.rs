//! The schedules HTTP API: create, show, replace, pause, run now and
//! delete through `jobmgr serve`, the preview of due times, and a clear
//! 4xx answer with a JSON message for every bad request.

mod common;
mod schedule_support;

use common::http::request;
use schedule_support::Setup;
use serde_json::{Value, json};

const T0: &str = "2027-01-04T00:00:00Z";
const FILE: &str =
    "[schedules.nightly]\njob = \"noop\"\ncron = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\n";

fn send(
    api: &common::http::Api,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> common::http::Resp {
    let auth = format!("Bearer {}", api.token);
    let text = body.map(|b| b.to_string());
    request(
        &api.addr,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        text.as_deref().map(str::as_bytes),
    )
}

#[test]
fn create_show_update_pause_run_delete() {
    let s = Setup::new("sched-api", T0, FILE);
    let cmd = s.cmd(&["serve", "--bind", "127.0.0.1:0", "--no-worker"]);
    let serve = s.db.spawn_server(cmd, s.db.dir.join("serve.log"));
    let api = &serve.api;

    let r = api.post(
        "/api/schedules",
        &json!({"name": "every-5", "job": "noop", "cron": "*/5 * * * *", "timezone": "America/New_York",
                "missed": "all", "maxCatchUp": 3, "overlap": "queue"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let v = &r.json()["schedule"];
    assert_eq!(v["name"], "every-5");
    assert_eq!(v["source"], "api");
    assert_eq!(v["missed"], "all");
    assert_eq!(v["maxCatchUp"], 3);
    assert_eq!(v["overlap"], "queue");
    assert_eq!(v["enabled"], true);
    assert_eq!(v["paused"], false);
    assert_eq!(v["nextDueAt"], "2027-01-04T00:05:00.000Z");
    assert_eq!(v["lastRun"], Value::Null);

    let list = api.ok("/api/schedules");
    let names: Vec<&str> = list["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nightly", "every-5"]);
    assert_eq!(list["schedules"][0]["source"], "file");

    let d = &api.ok("/api/schedules/every-5")["schedule"];
    assert_eq!(d["nextDueTimes"].as_array().unwrap().len(), 10);
    assert_eq!(
        d["nextDueTimes"][0],
        json!({"utc": "2027-01-04T00:05:00.000Z", "local": "2027-01-03 19:05:00 EST"})
    );
    assert_eq!(d["ledger"], json!([]));

    let r = send(
        api,
        "PUT",
        "/api/schedules/every-5",
        Some(&json!({"job": "noop", "cron": "0 * * * *"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["schedule"]["cron"], "0 * * * *");
    assert_eq!(r.json()["schedule"]["timezone"], "UTC");
    assert_eq!(
        r.json()["schedule"]["nextDueAt"],
        "2027-01-04T01:00:00.000Z"
    );

    let r = api.post("/api/schedules/every-5/pause", &json!({}));
    assert_eq!(
        (r.status, &r.json()["schedule"]["paused"]),
        (200, &json!(true))
    );
    let r = api.post("/api/schedules/nightly/pause", &json!({}));
    assert_eq!(r.status, 200, "a file schedule can be paused: {}", r.text());
    let r = api.post("/api/schedules/nightly/resume", &json!({}));
    assert_eq!(r.json()["schedule"]["paused"], false);

    let r = api.post("/api/schedules/nightly/run", &json!({}));
    assert_eq!(r.status, 201, "{}", r.text());
    let run = &r.json()["run"];
    assert_eq!(run["jobName"], "noop");
    assert_eq!(run["triggeredBy"], "schedule-now");
    let lr = &api.ok("/api/schedules/nightly")["schedule"]["lastRun"];
    assert_eq!(lr["id"], run["id"]);
    assert_eq!(lr["status"], "QUEUED");
    assert_eq!(lr["dueAt"], Value::Null);

    let r = send(api, "DELETE", "/api/schedules/every-5", None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(api.get("/api/schedules/every-5").status, 404);
    assert_eq!(
        s.db.scalar("SELECT group_concat(action, ' ') FROM (SELECT action FROM Audit ORDER BY id)"),
        "schedule.create schedule.update schedule.pause schedule.pause schedule.resume schedule.run schedule.delete"
    );

    let p = api.ok("/api/schedules/preview?cron=30%202%20*%20*%20*&timezone=Europe/Berlin&count=2");
    assert_eq!(
        p["dueTimes"],
        json!([
            {"utc": "2027-01-04T01:30:00.000Z", "local": "2027-01-04 02:30:00 CET"},
            {"utc": "2027-01-05T01:30:00.000Z", "local": "2027-01-05 02:30:00 CET"},
        ])
    );
}

fn error(r: &common::http::Resp) -> (u16, String) {
    (
        r.status,
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

#[test]
fn bad_requests_get_a_4xx_with_a_json_message() {
    let s = Setup::new("sched-api-4xx", T0, FILE);
    let cmd = s.cmd(&["serve", "--bind", "127.0.0.1:0", "--no-worker"]);
    let serve = s.db.spawn_server(cmd, s.db.dir.join("serve.log"));
    let api = &serve.api;
    let ok = json!({"name": "a", "job": "noop", "cron": "* * * * *"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            with("cron", json!("61 * * * *")),
            400,
            "cron: field 1 at column 1: minute '61'",
        ),
        (
            with("cron", json!("* * *")),
            400,
            "cron: column 1: has 3 fields",
        ),
        (
            with("cron", json!("0 0 30 2 *")),
            400,
            "cron: '0 0 30 2 *' never comes due",
        ),
        (
            with("timezone", json!("Europe/Berln")),
            400,
            "timezone: unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)",
        ),
        (
            with("job", json!("nooop")),
            400,
            "unknown job type 'nooop' (did you mean 'noop'?)",
        ),
        (
            with("missed", json!("later")),
            400,
            "missed: unknown value 'later'",
        ),
        (with("overlap", json!(3)), 400, "overlap: expected a string"),
        (
            with("maxCatchUp", json!(0)),
            400,
            "maxCatchUp: must be between 1 and 500, got 0",
        ),
        (
            with("enabled", json!("yes")),
            400,
            "enabled: expected true or false",
        ),
        (
            with("parameters", json!({"x": 1})),
            400,
            "parameter 'x': unknown parameter",
        ),
        (
            with("name", json!("no spaces")),
            400,
            "name: 'no spaces': a schedule name uses",
        ),
        (
            with("crn", json!("x")),
            400,
            "unknown field 'crn' (did you mean 'cron'?)",
        ),
        (
            json!({"name": "a", "job": "noop"}),
            400,
            "cron: is required",
        ),
        (json!([1]), 400, "request body must be a JSON object"),
        (
            with("name", json!("nightly")),
            409,
            "schedule nightly is declared in jobmgr.toml",
        ),
    ];
    for (body, status, message) in cases {
        let r = api.post("/api/schedules", &body);
        let (got, text) = error(&r);
        assert_eq!(got, status, "{body}: {}", r.text());
        assert!(text.starts_with(message), "{body}: {text}");
    }
    assert_eq!(api.post("/api/schedules", &ok).status, 201);
    assert_eq!(
        error(&api.post("/api/schedules", &ok)),
        (409, "schedule a already exists".into())
    );
    let r = send(api, "PUT", "/api/schedules/nightly", Some(&ok));
    assert_eq!(r.status, 409);
    assert!(
        error(&r).1.contains("edit it in jobmgr.toml"),
        "{}",
        r.text()
    );
    assert_eq!(
        send(api, "DELETE", "/api/schedules/nightly", None).status,
        409
    );
    assert_eq!(send(api, "DELETE", "/api/schedules/nope", None).status, 404);
    assert_eq!(
        error(&send(api, "PUT", "/api/schedules/nope", Some(&ok))).0,
        400,
        "a name differing from the path"
    );
    let r = send(
        api,
        "PUT",
        "/api/schedules/nope",
        Some(&json!({"job": "noop", "cron": "@daily"})),
    );
    assert_eq!(error(&r), (404, "schedule nope not found".into()));
    for p in ["run", "pause", "resume"] {
        assert_eq!(
            api.post(&format!("/api/schedules/nope/{p}"), &json!({}))
                .status,
            404
        );
    }
    let r = api.get("/api/schedules/preview?cron=30%2025%20*%20*%20*");
    assert_eq!(error(&r).0, 400);
    assert!(
        error(&r).1.contains("field 2 at column 4: hour '25'"),
        "{}",
        r.text()
    );
    assert_eq!(error(&api.get("/api/schedules/preview")).0, 400);
    assert_eq!(
        error(&api.get("/api/schedules/preview?cron=0%200%2030%202%20*")).0,
        400
    );
    assert_eq!(
        error(&api.get("/api/schedules/preview?cron=@daily&count=0")).0,
        400
    );
    assert_eq!(
        error(&api.get("/api/schedules/preview?cron=@daily&timezone=Nowhere")).0,
        400
    );
    // Unauthenticated and cross-origin changes are refused like the rest.
    let r = request(&api.addr, "GET", "/api/schedules", &[], None);
    assert_eq!(r.status, 401);
    let auth = format!("Bearer {}", api.token);
    let r = request(
        &api.addr,
        "DELETE",
        "/api/schedules/a",
        &[("Authorization", &auth), ("Origin", "http://evil.example")],
        None,
    );
    assert_eq!(r.status, 403);
}

/// A schedule created through the API while the worker runs is decided
/// without a restart; disabling it stops its due times; open pages hear
/// of every change.
#[test]
fn api_schedules_apply_to_the_running_worker_and_are_announced() {
    let s = Setup::new("sched-api-live", T0, "");
    let cmd = s.cmd(&["serve", "--bind", "127.0.0.1:0"]);
    let serve = s.db.spawn_server(cmd, s.db.dir.join("serve.log"));
    let api = &serve.api;
    let mut ws = api.ws("/ws");
    let body = json!({"name": "live", "job": "noop", "cron": "*/5 * * * *", "overlap": "allow"});
    assert_eq!(api.post("/api/schedules", &body).status, 201);
    common::http::wait_message(&mut ws, "a schedules event", schedule_support::WAIT, |m| {
        m["type"] == "schedules" && m["name"] == "live" && m["change"] == "created"
    });
    s.at("2027-01-04T00:05:01Z");
    s.wait_ticks("live", 1);
    assert_eq!(s.outcomes("live"), ["ENQUEUED"]);
    common::http::wait_message(&mut ws, "a decided event", schedule_support::WAIT, |m| {
        m["type"] == "schedules" && m["change"] == "decided"
    });
    let off = json!({"job": "noop", "cron": "*/5 * * * *", "enabled": false});
    assert_eq!(
        send(api, "PUT", "/api/schedules/live", Some(&off)).status,
        200
    );
    assert_eq!(
        api.ok("/api/schedules/live")["schedule"]["nextDueAt"],
        Value::Null
    );
    // A sentinel made after the edit shows the scheduler has looked past 00:10.
    let sentinel = json!({"name": "sentinel", "job": "noop", "cron": "*/10 * * * *"});
    assert_eq!(api.post("/api/schedules", &sentinel).status, 201);
    s.at("2027-01-04T00:10:01Z");
    s.wait_ticks("sentinel", 1);
    assert_eq!(s.ticks("live").len(), 1, "disabled: no due times");
}
