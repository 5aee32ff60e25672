//! `jobmgr bench` keeps working: every scenario runs on a small N and
//! reports the documented JSON fields (speed itself is never asserted).

mod common;

use common::TestDb;
use serde_json::Value;

/// One JSON value per printed line.
fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs `scenarios` at `n` and checks the fields every row carries; the
/// rows, once their modes are `modes`. The scenarios are split over three
/// tests so that they run side by side (most of them wait on fsync).
fn run_scenarios(name: &str, n: &str, scenarios: &[&str], modes: &[&str]) -> Vec<Value> {
    let db = TestDb::new(name);
    let mut args = vec![
        "bench",
        "--json",
        "--n",
        n,
        "--backlog",
        "500",
        "--history-lines",
        "1000",
    ];
    args.extend_from_slice(scenarios);
    let rows = json_lines(&db.ok(&args));
    let got: Vec<&str> = rows.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(got, modes);
    for r in &rows {
        for key in [
            "n",
            "workers",
            "seconds",
            "rate",
            "synchronous",
            "maxrss_kb",
        ] {
            assert!(!r[key].is_null(), "{key} missing in {r}");
        }
        assert_eq!(r["synchronous"], "FULL");
    }
    // CPU per item is reported for the enqueue and process modes (it can
    // be 0 at this tiny N: the clock ticks in hundredths of a second).
    for r in rows.iter().filter(|r| {
        let m = r["mode"].as_str().unwrap();
        m.starts_with("enqueue") || m.starts_with("process")
    }) {
        assert!(r["cpu_us"].as_f64().is_some_and(|c| c >= 0.0), "{r}");
    }
    // Temporary databases are removed; only the directory's own files remain.
    let left: Vec<_> = std::fs::read_dir(&db.dir).unwrap().collect();
    assert!(left.is_empty(), "bench left {left:?}");
    rows
}

#[test]
fn the_write_scenarios_report_the_documented_fields() {
    let rows = run_scenarios(
        "bench",
        "300",
        &[
            "raw",
            "enqueue",
            "enqueue-concurrent",
            "enqueue-bulk",
            "process",
            "process-backlog",
            "process-history",
            "logs",
            "progress",
        ],
        &[
            "raw-1-per-tx",
            "raw-1000-per-tx",
            "enqueue",
            "enqueue-concurrent",
            "enqueue-bulk",
            "process",
            "process",
            "process-backlog",
            "process-history",
            "logs",
            "progress",
            "progress-write",
        ],
    );
    let process: Vec<&Value> = rows.iter().filter(|r| r["mode"] == "process").collect();
    assert_eq!(process[0]["workers"], 1);
    assert_eq!(process[1]["workers"], 4);
    assert_eq!(process[0]["n"], 300);
    assert!(rows.iter().find(|r| r["mode"] == "enqueue").unwrap()["raw_ratio"].is_number());
    // Runs per commit: one acknowledged enqueue is one commit, a bulk
    // enqueue is one transaction, and the worker commits each run once at
    // most (a claim and a finish can share a transaction).
    let per = |mode: &str| {
        rows.iter().find(|r| r["mode"] == mode).unwrap()["per_commit"]
            .as_f64()
            .unwrap_or_else(|| panic!("per_commit missing for {mode}"))
    };
    assert_eq!(per("enqueue"), 1.0);
    assert_eq!(per("enqueue-bulk"), 300.0);
    assert!(per("enqueue-concurrent") >= 1.0);
    // Where the concurrent callers' rounds spend their time; a lone
    // caller's rounds never wait for company, so it gets no such figure.
    let note = |mode: &str| {
        rows.iter().find(|r| r["mode"] == mode).unwrap()["note"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // The commit's parts: the wait for the write lock, the COMMIT statement
    // (the sync) and the answers.
    let round = regex::Regex::new(
        r"; a round: gather \d+ µs, commit ([1-9]\d*) µs \(waiting for the write lock (\d+), its COMMIT statement ([1-9]\d*), answering the callers (\d+)\)$",
    )
    .unwrap();
    let concurrent = note("enqueue-concurrent");
    let parts = round
        .captures(&concurrent)
        .unwrap_or_else(|| panic!("{concurrent}"));
    let part = |i: usize| parts[i].parse::<u64>().unwrap();
    assert!(part(2) + part(3) + part(4) <= part(1) + 2, "{concurrent}");
    assert!(!note("enqueue").contains("a round"), "{}", note("enqueue"));
    for p in &process {
        let per = p["per_commit"].as_f64().unwrap();
        assert!((0.5..=300.0).contains(&per), "{p}");
    }
}

#[test]
fn the_latency_and_scheduled_scenarios_report_the_documented_fields() {
    let rows = run_scenarios(
        "bench-lat",
        "50",
        &["process-scheduled", "latency"],
        &["process-scheduled", "latency"],
    );
    let latency = rows.iter().find(|r| r["mode"] == "latency").unwrap();
    assert!(latency["lat_p50_ms"].as_f64().unwrap() <= latency["lat_p99_ms"].as_f64().unwrap());
}

#[test]
fn the_http_scenarios_report_the_documented_fields() {
    let rows = run_scenarios(
        "bench-web",
        "20",
        &["ws", "api"],
        &[
            "ws",
            "ws",
            "api-list",
            "api-by-status",
            "api-by-type",
            "api-search",
            "api-page-2",
            "api-details",
            "api-logs",
            "api-stats",
            "api-errors",
            "api-insight-day",
            "api-insight-week",
        ],
    );
    for r in &rows {
        assert!(r["lat_p50_ms"].as_f64().is_some(), "{r}");
    }
}

/// `footprint` measures real `serve` and `worker` children and the binary.
#[test]
fn footprint_measures_the_serve_and_worker_processes_and_the_binary() {
    let db = TestDb::new("bench-footprint");
    let out = db.ok(&["bench", "--json", "--n", "300", "footprint"]);
    let rows = json_lines(&out);
    let row = |mode: &str| {
        rows.iter()
            .find(|r| r["mode"] == mode)
            .unwrap_or_else(|| panic!("no {mode} row in {out}"))
    };
    let modes: Vec<&str> = rows.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(
        modes,
        [
            "serve-start",
            "serve-idle",
            "worker-idle",
            "worker-process",
            "binary"
        ]
    );
    let start = row("serve-start");
    assert_eq!(start["n"], 5);
    let (p50, p99) = (start["lat_p50_ms"].as_f64(), start["lat_p99_ms"].as_f64());
    assert!(p50.unwrap() > 0.0 && p50 <= p99, "{start}");
    assert!(start["maxrss_kb"].as_u64().unwrap() > 0, "{start}");
    // Idle figures are the children's: resident now, and their peak.
    for mode in ["serve-idle", "worker-idle"] {
        let r = row(mode);
        let rss = r["rss_kb"].as_u64().unwrap();
        assert!(rss > 0 && rss <= r["maxrss_kb"].as_u64().unwrap(), "{r}");
    }
    // The same worker process drained the 300 runs: its peak is at least
    // what it held when idle.
    let busy = row("worker-process");
    assert_eq!(busy["n"], 300);
    assert!(busy["rate"].as_f64().unwrap() > 0.0, "{busy}");
    assert!(
        busy["maxrss_kb"].as_u64().unwrap() >= row("worker-idle")["rss_kb"].as_u64().unwrap(),
        "{busy}"
    );
    let size = std::fs::metadata(env!("CARGO_BIN_EXE_jobmgr"))
        .unwrap()
        .len();
    assert_eq!(row("binary")["size_kb"], size / 1024);
    let left: Vec<_> = std::fs::read_dir(&db.dir).unwrap().collect();
    assert!(left.is_empty(), "bench left {left:?}");
}

#[test]
fn an_unknown_scenario_is_refused_with_a_suggestion() {
    let db = TestDb::new("bench-bad");
    let err = db.fails(&["bench", "proces"]);
    assert!(
        err.trim()
            .starts_with("jobmgr: unknown scenario 'proces' (did you mean 'process'?)"),
        "{err}"
    );
}

#[test]
fn rounds_print_the_median_and_spread_of_each_figure() {
    let db = TestDb::new("bench-rounds");
    let out = db.ok(&[
        "--json",
        "bench",
        "--rounds",
        "3",
        "--n",
        "200",
        "raw",
        "enqueue-bulk",
    ]);
    let rows = json_lines(&out);
    let modes: Vec<&str> = rows.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["raw-1-per-tx", "raw-1000-per-tx", "enqueue-bulk"]);
    for r in &rows {
        assert_eq!(r["rounds"], 3, "{r}");
        assert_eq!(r["build"], "this");
        let (min, med, max) = (
            r["rate_min"].as_f64().unwrap(),
            r["rate_median"].as_f64().unwrap(),
            r["rate_max"].as_f64().unwrap(),
        );
        assert!(0.0 < min && min <= med && med <= max, "{r}");
        assert!(r["change_pct"].is_null());
    }
    assert!(rows[2]["raw_ratio_median"].as_f64().unwrap() > 0.0);
    assert!(rows[2]["cpu_us_median"].is_number());
}

#[test]
fn compare_measures_another_binary_in_alternation() {
    let db = TestDb::new("bench-compare");
    let out = db.ok(&[
        "--json",
        "bench",
        "--compare",
        common::BIN,
        "--rounds",
        "2",
        "--n",
        "200",
        "enqueue-bulk",
    ]);
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0]["build"], "this");
    assert_eq!(rows[1]["build"], common::BIN);
    for r in &rows {
        assert_eq!(r["mode"], "enqueue-bulk");
        assert_eq!(r["rounds"], 2);
    }
    assert!(rows[0]["change_pct"].is_null());
    let change = rows[1]["change_pct"].as_f64().unwrap();
    let expected =
        (rows[1]["rate_median"].as_f64().unwrap() / rows[0]["rate_median"].as_f64().unwrap() - 1.0)
            * 100.0;
    assert!((change - expected).abs() < 1e-6);

    let err = db.fails(&["bench", "--compare", "/no/such/jobmgr", "--n", "100", "raw"]);
    assert_eq!(
        err.trim(),
        "jobmgr: cannot run /no/such/jobmgr: No such file or directory (os error 2)"
    );
    let err = db.fails(&["bench", "--rounds", "0", "raw"]);
    assert!(err.contains("0 is not in 1..=100"), "{err}");
}
