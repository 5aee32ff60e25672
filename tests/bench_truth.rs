//! `jobmgr bench` tells the truth about itself: `--n` is honoured by the
//! one-commit-per-run scenarios, `--help` names every scenario, `--rounds`
//! prints the p50 and p95 medians beside p99, and `progress` reports the
//! coalesced write as well as the increment.

mod common;

use common::TestDb;
use serde_json::Value;

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn row<'a>(rows: &'a [Value], mode: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["mode"] == mode)
        .unwrap_or_else(|| panic!("no {mode} row in {rows:?}"))
}

/// 13 runs by 8 callers: the old split gave each caller 13 / 8 = 1, and
/// enqueued 8. (Above 10,000, which `enqueue` and `raw-1-per-tx` took at
/// most before, would cost 20,000 fsyncs: too slow for a test.)
#[test]
fn the_one_commit_per_run_scenarios_honour_n() {
    let db = TestDb::new("bench-n");
    let out = db.ok(&[
        "bench",
        "--json",
        "--n",
        "13",
        "enqueue",
        "enqueue-concurrent",
    ]);
    let rows = json_lines(&out);
    for mode in ["enqueue", "enqueue-concurrent"] {
        assert_eq!(row(&rows, mode)["n"], 13, "{mode}");
    }
    // Every run was enqueued once: one commit each for the lone caller.
    assert_eq!(row(&rows, "enqueue")["per_commit"], 1.0);
    // And every one of the 13 concurrent ones is in the scenario's count.
    assert!(
        row(&rows, "enqueue-concurrent")["per_commit"]
            .as_f64()
            .unwrap()
            >= 1.0
    );
}

#[test]
fn help_lists_every_scenario() {
    let db = TestDb::new("bench-help");
    // The refusal of an unknown name lists the scenarios the bench knows.
    let err = db.fails(&["bench", "no-such-scenario"]);
    let known = err
        .split("; scenarios: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no scenario list in {err}"));
    let names: Vec<&str> = known.trim().split(", ").collect();
    assert!(names.len() >= 15, "{names:?}");
    let help = db.ok(&["bench", "--help"]);
    for name in names {
        assert!(
            help.contains(&format!(" {name},")) || help.contains(&format!(" {name}\n")),
            "{name} missing from bench --help:\n{help}"
        );
    }
}

#[test]
fn rounds_print_p50_and_p95_medians_too() {
    let db = TestDb::new("bench-rounds-pct");
    let out = db.ok(&["--json", "bench", "--rounds", "2", "--n", "20", "ws"]);
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 2, "{out}");
    for r in &rows {
        let (p50, p95, p99) = (
            r["lat_p50_ms_median"].as_f64(),
            r["lat_p95_ms_median"].as_f64(),
            r["lat_p99_ms_median"].as_f64(),
        );
        assert!(p50.is_some() && p50 <= p95 && p95 <= p99, "{r}");
    }
    let table = db.ok(&["bench", "--rounds", "2", "--n", "20", "progress"]);
    let header = table.lines().next().unwrap_or_default();
    for col in ["p50 ms", "p95 ms", "p99 ms"] {
        assert!(header.contains(col), "{col} missing: {header}");
    }
}

#[test]
fn progress_reports_the_coalesced_write_and_synchronous_as_read() {
    let db = TestDb::new("bench-progress");
    let out = db.ok(&["bench", "--json", "--n", "100", "progress"]);
    let rows = json_lines(&out);
    let inc = row(&rows, "progress");
    assert!(inc["rate"].as_f64().unwrap() > 0.0, "{inc}");
    let write = row(&rows, "progress-write");
    assert_eq!(write["n"], 100, "{write}");
    let (p50, p99) = (write["lat_p50_ms"].as_f64(), write["lat_p99_ms"].as_f64());
    assert!(p50.unwrap() > 0.0 && p50 <= p99, "{write}");
    assert!(
        write["note"]
            .as_str()
            .unwrap()
            .contains("µs per run with 100 runs"),
        "{write}"
    );
    for r in &rows {
        assert_eq!(r["synchronous"], "FULL", "{r}");
    }
}

/// Acknowledged `POST /api/jobs` against a real `serve` child: 1 and 8
/// keep-alive clients, without a worker and with one.
#[test]
fn api_enqueue_posts_from_one_and_eight_clients_with_and_without_a_worker() {
    let db = TestDb::new("bench-api-enqueue");
    let out = db.ok(&["bench", "--json", "--n", "20", "api-enqueue"]);
    let rows = json_lines(&out);
    let shape: Vec<(&str, u64)> = rows
        .iter()
        .map(|r| (r["mode"].as_str().unwrap(), r["workers"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        shape,
        [
            ("api-enqueue", 1),
            ("api-enqueue", 8),
            ("api-enqueue-worker", 1),
            ("api-enqueue-worker", 8)
        ]
    );
    for r in &rows {
        assert_eq!(r["n"], 20, "{r}");
        assert!(r["rate"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["raw_ratio"].as_f64().unwrap() > 0.0, "{r}");
        let (p50, p95, p99) = (
            r["lat_p50_ms"].as_f64(),
            r["lat_p95_ms"].as_f64(),
            r["lat_p99_ms"].as_f64(),
        );
        assert!(p50.unwrap() > 0.0 && p50 <= p95 && p95 <= p99, "{r}");
        assert_eq!(r["synchronous"], "FULL", "{r}");
        // The server's own group-commit counters (from its /metrics) say
        // how many POSTs shared a round: at least one, at most all 8.
        let note = r["note"].as_str().unwrap();
        let per_round: f64 = note
            .split_once("a round: ")
            .and_then(|(_, rest)| rest.split_once(" POSTs"))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or_else(|| panic!("no round in {note}"));
        let clients = r["workers"].as_f64().unwrap();
        assert!((1.0..=clients).contains(&per_round), "{note}");
        assert!(note.contains("cores allow at most"), "{note}");
        assert!(note.contains("(waiting for the write lock "), "{note}");
        assert!(note.contains(", its COMMIT statement "), "{note}");
        assert!(note.contains(", answering the callers "), "{note}");
    }
    // One client's floor: the HTTP round trip alone, next to raw's commit.
    let floor = rows[0]["note"].as_str().unwrap();
    assert!(floor.contains("HTTP alone (GET /healthz) p50"), "{floor}");
    assert!(floor.contains("× raw)"), "{floor}");
    // The serve children (and the worker one of them started) are gone
    // with their temporary databases.
    let left: Vec<_> = std::fs::read_dir(&db.dir).unwrap().collect();
    assert!(left.is_empty(), "bench left {left:?}");
}

/// The enqueue scenarios report the WAL they write per run: an enqueue
/// on its own writes at least its row's page and its index leaf; a bulk
/// enqueue shares pages between runs.
#[test]
fn enqueue_reports_wal_bytes_and_pages_per_run() {
    let db = TestDb::new("bench-wal");
    let out = db.ok(&["bench", "--json", "--n", "200", "enqueue", "enqueue-bulk"]);
    let rows = json_lines(&out);
    let one = row(&rows, "enqueue");
    let (bytes, pages) = (
        one["wal_bytes"].as_f64().unwrap(),
        one["wal_pages"].as_f64().unwrap(),
    );
    assert!((2.0..20.0).contains(&pages), "{one}");
    // Pages of 4096 bytes, each with its 24-byte frame header.
    assert!((bytes / pages - 4120.0).abs() < 1.0, "{one}");
    assert!(
        one["note"].as_str().unwrap().contains("pages) per run"),
        "{one}"
    );
    let bulk = row(&rows, "enqueue-bulk");
    assert!(bulk["wal_pages"].as_f64().unwrap() < 1.0, "{bulk}");
}
