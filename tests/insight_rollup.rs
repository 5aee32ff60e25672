//! The charts' per-minute rollup (`RunMinute`, V19) and `GET /api/insight`:
//! the counts match the runs a real worker drained (read from the SQLite
//! file and from the API), a status change from a plain connection (a CLI
//! cancel) is counted by the trigger, the window's buckets follow the test
//! clock, and a bad window is refused with a JSON message. `GET /api/stats`
//! (read from the rollup) and `GET /api/errors` say exactly what a count of
//! the runs says at every minute edge and window start.

mod common;

use std::time::Duration;

use common::clock::{DrivenClock, timestamp_text as text};
use common::{TestDb, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);
/// A moment no test run is near (a Tuesday, 07:08:09 UTC).
const T_MS: i64 = 1_935_817_689_000;
const MINUTE: i64 = 60_000;

/// The rollup's finished and failed runs of `job`, summed over all minutes.
fn rollup(db: &TestDb, job: &str) -> (i64, i64, i64, i64) {
    let row = db.query(&format!(
        "SELECT coalesce(sum(completed), 0), coalesce(sum(failed), 0), \
         coalesce(sum(cancelled), 0), coalesce(sum(timed), 0) FROM RunMinute \
         WHERE jobName = '{job}'"
    ));
    let n = |i: usize| row[0][i].as_i64().unwrap_or(-1);
    (n(0), n(1), n(2), n(3))
}

/// The row of `job` in an insight answer.
fn type_row<'a>(v: &'a Value, job: &str) -> &'a Value {
    v["types"]
        .as_array()
        .and_then(|t| t.iter().find(|r| r["job"] == job))
        .unwrap_or_else(|| panic!("no row for {job} in {v}"))
}

fn sum(series: &Value, key: &str) -> i64 {
    series
        .as_array()
        .map(|s| s.iter().map(|p| p[key].as_i64().unwrap_or(0)).sum())
        .unwrap_or(0)
}

#[test]
fn a_worker_drain_is_counted_per_minute_and_answered_by_the_api() {
    let db = TestDb::new("insight-drain");
    db.ok(&["migrate"]);
    for _ in 0..6 {
        db.enqueue("demo-known-total", &["count=2", "delay_ms=0"]);
    }
    let failing: Vec<i64> = (0..3)
        .map(|_| db.enqueue("demo-multi-phase", &["count=3", "delay_ms=0", "fail_at=2"]))
        .collect();
    let mut worker = db.spawn_worker(&[]);
    wait_for("all nine runs to finish", WAIT, || {
        db.scalar("SELECT count(*) FROM JobRun WHERE finishedAt IS NOT NULL") == "9"
    });
    assert_eq!(db.status_of(failing[0]), "FAILED");
    worker.signal("TERM");
    worker.wait_exit(WAIT);
    // The worker's writer counts by hand, with triggers off.
    assert_eq!(rollup(&db, "demo-known-total"), (6, 0, 0, 6));
    assert_eq!(rollup(&db, "demo-multi-phase"), (0, 3, 0, 3));
    let durations = db.scalar(
        "SELECT sum(CAST(round((unixepoch(finishedAt, 'subsec') - unixepoch(startedAt, 'subsec')) \
         * 1000) AS INTEGER)) FROM JobRun",
    );
    assert_eq!(
        db.scalar("SELECT sum(durationSumMs) FROM RunMinute"),
        durations
    );

    let s = db.spawn_serve(&["--no-worker"]);
    for window in ["hour", "day", "week"] {
        let v = s.api.ok(&format!("/api/insight?window={window}"));
        assert_eq!(v["window"], window);
        assert_eq!(sum(&v["series"], "finished"), 9, "{window}: {v}");
        assert_eq!(sum(&v["series"], "failed"), 3, "{window}: {v}");
        let ok = type_row(&v, "demo-known-total");
        assert_eq!(
            (ok["runs"].as_i64(), ok["failures"].as_i64()),
            (Some(6), Some(0))
        );
        assert_eq!(ok["failureRate"], 0.0);
        assert!(ok["p50Ms"].as_i64().is_some(), "{ok}");
        let bad = type_row(&v, "demo-multi-phase");
        assert_eq!(
            (bad["runs"].as_i64(), bad["failures"].as_i64()),
            (Some(3), Some(3))
        );
        assert_eq!(bad["failureRate"], 1.0);
        let newest = db.scalar(
            "SELECT max(id) FROM JobRun WHERE jobName = 'demo-multi-phase' \
             AND finishedAt = (SELECT max(finishedAt) FROM JobRun \
             WHERE jobName = 'demo-multi-phase')",
        );
        assert_eq!(bad["lastRun"]["id"].to_string(), newest, "{bad}");
        assert_eq!(bad["lastRun"]["status"], "FAILED");
    }
    let buckets = |w: &str| {
        s.api.ok(&format!("/api/insight?window={w}"))["series"]
            .as_array()
            .map(Vec::len)
    };
    assert_eq!(buckets("hour"), Some(60));
    assert_eq!(buckets("day"), Some(96));
    assert_eq!(buckets("week"), Some(168));
}

#[test]
fn a_cancel_from_the_cli_is_counted_by_the_trigger() {
    let db = TestDb::new("insight-cancel");
    db.ok(&["migrate"]);
    let id = db.enqueue("demo-known-total", &[]);
    let queued = db.enqueue("demo-known-total", &[]);
    db.ok(&["pause", "demo-known-total"]);
    db.ok(&["cancel", &id.to_string()]);
    assert_eq!(db.status_of(id), "CANCELLED");
    // Cancelled before it started: counted, without a duration.
    assert_eq!(rollup(&db, "demo-known-total"), (0, 0, 1, 0));
    let s = db.spawn_serve(&["--no-worker"]);
    let v = s.api.ok("/api/insight?window=hour");
    let row = type_row(&v, "demo-known-total");
    assert_eq!(row["runs"], 1, "{row}");
    assert_eq!(row["failures"], 0);
    assert_eq!(row["p50Ms"], Value::Null);
    assert_eq!(row["lastRun"]["id"], id);
    assert_eq!(row["lastRun"]["status"], "CANCELLED");
    assert_eq!(row["paused"], true);
    assert_eq!(row["queued"], 1);
    assert_eq!(db.status_of(queued), "QUEUED");
}

#[test]
fn the_window_buckets_follow_the_clock() {
    let db = TestDb::new("insight-clock");
    db.ok(&["migrate"]);
    let clock = DrivenClock::new(&db, T_MS);
    // Finished 0, 1, 5, 59 and 61 minutes before T, the last two failed,
    // each having taken 2 s; and one 3 days before.
    let ago = [0, 1, 5, 59, 61, 3 * 1440];
    let conn = db.conn();
    for (i, m) in ago.iter().enumerate() {
        let end = T_MS - m * MINUTE;
        let status = if i == 3 || i == 4 {
            "FAILED"
        } else {
            "COMPLETED"
        };
        conn.execute(
            "INSERT INTO JobRun (jobName, status, createdAt, updatedAt, startedAt, finishedAt) \
             VALUES ('demo-known-total', ?1, ?2, ?2, ?2, ?3)",
            rusqlite::params![status, text(end - 2_000), text(end)],
        )
        .expect("insert a finished run");
    }
    let mut serve = db.cmd();
    clock
        .apply(&mut serve)
        .args(["serve", "--bind", "127.0.0.1:0", "--no-worker"]);
    let log = db.dir.join("serve-clock.log");
    let s = db.spawn_server(serve, log);
    let series = |w: &str| s.api.ok(&format!("/api/insight?window={w}"));

    let hour = series("hour");
    // 60 minutes ending with T's: 07:09 is the end, 06:09 the start.
    assert_eq!(hour["from"], text(T_MS - 8_000 - 59 * MINUTE - 1_000));
    let pts = hour["series"].as_array().expect("series");
    let at = |i: usize| pts[i]["finished"].as_i64().unwrap_or(-1);
    assert_eq!((at(59), at(58), at(54), at(0)), (1, 1, 1, 1), "{hour}");
    assert_eq!(sum(&hour["series"], "finished"), 4);
    assert_eq!(sum(&hour["series"], "failed"), 1);
    let row = type_row(&hour, "demo-known-total");
    assert_eq!(row["runs"], 4);
    assert_eq!(row["failures"], 1);
    assert_eq!(row["failureRate"], 0.25);
    // 2 s runs, in the bucket of 1 s to 2.5 s: interpolated inside it.
    let p50 = row["p50Ms"].as_i64().expect("p50");
    assert!((1_000..=2_500).contains(&p50), "{row}");

    let day = series("day");
    assert_eq!(day["bucketMinutes"], 15);
    // T is 07:08: its bucket 07:00-07:15 is the last.
    let pts = day["series"].as_array().expect("series");
    assert_eq!(pts[95]["at"], text(T_MS - 8 * MINUTE - 9_000));
    assert_eq!(pts[95]["finished"], 3);
    // 59 and 61 minutes before (06:09 and 06:07) share 06:00-06:15.
    assert_eq!(pts[91]["finished"], 2);
    assert_eq!(pts[91]["failed"], 2);
    assert_eq!(sum(&day["series"], "finished"), 5);
    assert_eq!(sum(&series("week")["series"], "finished"), 6);

    // Two hours later the runs of the last hour have left it.
    clock.advance(120 * MINUTE);
    let later = series("hour");
    assert_eq!(sum(&later["series"], "finished"), 0, "{later}");
    assert_eq!(type_row(&later, "demo-known-total")["runs"], 0);
    assert_eq!(sum(&series("day")["series"], "finished"), 5);
}

#[test]
fn a_bad_window_is_refused_with_a_message() {
    let db = TestDb::new("insight-bad");
    db.ok(&["migrate"]);
    let s = db.spawn_serve(&["--no-worker"]);
    for (path, says) in [
        (
            "/api/insight?window=month",
            "window must be one of hour, day, week, got 'month'",
        ),
        ("/api/insight?windw=day", "unknown parameter 'windw'"),
    ] {
        let r = s.api.get(path);
        assert_eq!(r.status, 400, "GET {path}: {}", r.text());
        assert_eq!(r.error_code(), "invalid_input", "{path}");
        assert!(r.text().contains(says), "GET {path}: {}", r.text());
    }
    let none = s.api.ok("/api/insight");
    assert_eq!(none["window"], "day");
}

#[test]
fn retention_drops_rollup_rows_older_than_eight_days() {
    let db = TestDb::new("insight-retention");
    db.ok(&["migrate"]);
    let now_min = db
        .scalar("SELECT unixepoch('now') / 60")
        .parse::<i64>()
        .expect("minute");
    let conn = db.conn();
    for (job, age_min) in [
        ("old", 8 * 1440 + 5),
        ("old", 9 * 1440),
        ("recent", 7 * 1440),
    ] {
        conn.execute(
            "INSERT INTO RunMinute (jobName, minute, completed) VALUES (?1, ?2, 1)",
            rusqlite::params![job, now_min - age_min],
        )
        .expect("insert a rollup row");
    }
    let mut worker = db.spawn_worker(&[]);
    let report = || db.scalar("SELECT report FROM Housekeeping WHERE name = 'retention'");
    wait_for(
        "retention's report of the old rollup rows dropped",
        WAIT,
        || report().contains("\"rollupRowsRemoved\":2"),
    );
    worker.signal("TERM");
    worker.wait_exit(WAIT);
    assert_eq!(
        db.scalar("SELECT count(*) FROM RunMinute WHERE jobName = 'old'"),
        "0"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM RunMinute WHERE jobName = 'recent'"),
        "1"
    );
}

/// `GET /api/stats` reads its windows from the rollup and the one partial
/// minute at each window's start from the history; what it says must be
/// what a count of the runs says, with runs on both sides of every minute
/// edge and of every window's start, as the clock moves across them, and
/// after a run in the window is deleted.
#[test]
fn the_stats_windows_are_exact_at_every_edge() {
    let db = TestDb::new("insight-stats-edges");
    db.ok(&["migrate"]);
    // T is 07:08:09.000; each window starts 09 s into a minute.
    let clock = DrivenClock::new(&db, T_MS);
    let statuses = ["COMPLETED", "FAILED", "CANCELLED"];
    let mut n = 0;
    {
        let conn = db.conn();
        for window in [MINUTE, 60 * MINUTE, 1440 * MINUTE] {
            let start = T_MS - window;
            let edge = start - start.rem_euclid(MINUTE);
            // Around the window's start, the minute it falls in, and the
            // minutes before and after; and the moments the clock moves to.
            for at in [
                edge - 1,
                edge,
                start - 1_000,
                start - 1,
                start,
                start + 1,
                start + 500,
                edge + MINUTE - 1,
                edge + MINUTE,
                edge + MINUTE + 1,
                start + 30_000,
                start + 59_999,
                start + 60_000,
            ] {
                n += 1;
                conn.execute(
                    "INSERT INTO JobRun (jobName, status, createdAt, updatedAt, startedAt, \
                     finishedAt) VALUES (?1, ?2, ?3, ?3, ?3, ?3)",
                    rusqlite::params![format!("edge-{}", n % 2), statuses[n % 3], text(at)],
                )
                .expect("insert a finished run");
            }
        }
    }
    let direct = |now: i64| {
        let conn = db.conn();
        let count = |ms: i64, only: &str| -> i64 {
            conn.query_row(
                "SELECT count(*) FROM JobRun WHERE finishedAt >= ?1 AND status LIKE ?2",
                rusqlite::params![text(now - ms), only],
                |r| r.get(0),
            )
            .expect("count runs")
        };
        (
            count(MINUTE, "%"),
            count(60 * MINUTE, "%"),
            count(1440 * MINUTE, "FAILED"),
        )
    };
    let mut serve = db.cmd();
    clock
        .apply(&mut serve)
        .args(["serve", "--bind", "127.0.0.1:0", "--no-worker"]);
    let s = db.spawn_server(serve, db.dir.join("serve-stats.log"));
    let stats = || {
        let v = s.api.ok("/api/stats");
        let field = |x: &Value| x.as_i64().unwrap_or(-1);
        (
            field(&v["throughput"]["lastMinute"]),
            field(&v["throughput"]["lastHour"]),
            field(&v["failedLast24h"]),
        )
    };
    // At T the last minute holds the 9 runs from its start on.
    assert_eq!(direct(T_MS).0, 9);
    // Through 1 ms and 0.5 s after T, half a minute, a window start on a
    // minute edge (T + 51 s), and a minute later.
    for step in [0, 1, 499, 500, 29_000, 20_999, 1, 1, 8_998, 1, 1, 9_000] {
        clock.advance(step);
        let now = clock.now_ms();
        assert_eq!(stats(), direct(now), "at {}", text(now));
    }
    // A deleted run leaves the counts, as it left a count of the history.
    clock.set(T_MS);
    let in_window = db.conn().query_row(
        "SELECT id FROM JobRun WHERE finishedAt > ?1 AND status = 'FAILED' ORDER BY id LIMIT 1",
        [text(T_MS - MINUTE)],
        |r| r.get::<_, i64>(0),
    );
    let id = in_window
        .expect("a FAILED run of the last minute")
        .to_string();
    let before = stats();
    db.ok(&["delete", &id]);
    assert_eq!(stats(), direct(T_MS));
    assert_eq!(stats(), (before.0 - 1, before.1 - 1, before.2 - 1));
}

/// `GET /api/errors` groups exactly the FAILED runs from the window's
/// start on (through the index of FAILED runs, V21).
#[test]
fn the_error_groups_hold_the_failed_runs_of_the_window_exactly() {
    let db = TestDb::new("insight-errors-edges");
    db.ok(&["migrate"]);
    let clock = DrivenClock::new(&db, T_MS);
    let start = T_MS - 60 * MINUTE;
    {
        let conn = db.conn();
        for (i, at) in [start - 1, start, start + 1, T_MS - 1, T_MS]
            .iter()
            .enumerate()
        {
            for status in ["FAILED", "COMPLETED"] {
                conn.execute(
                    "INSERT INTO JobRun (jobName, status, createdAt, updatedAt, startedAt, \
                     finishedAt, error) VALUES ('edge', ?1, ?2, ?2, ?2, ?2, ?3)",
                    rusqlite::params![status, text(*at), format!("timeout after {i} s")],
                )
                .expect("insert a finished run");
            }
        }
    }
    let mut serve = db.cmd();
    clock
        .apply(&mut serve)
        .args(["serve", "--bind", "127.0.0.1:0", "--no-worker"]);
    let s = db.spawn_server(serve, db.dir.join("serve-errors.log"));
    let e = s.api.ok("/api/errors?hours=1");
    let groups = e["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1, "{groups:?}");
    // The run 1 ms before the start is out; the newest message is shown.
    assert_eq!(groups[0]["count"], 4, "{groups:?}");
    assert_eq!(groups[0]["error"], "timeout after 4 s", "{groups:?}");
    assert_eq!(groups[0]["lastAt"], text(T_MS), "{groups:?}");
}
