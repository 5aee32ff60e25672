//! `jobmgr bench`: measures jobmgr on the user's own disk, scenario by
//! scenario, each on a fresh temporary database next to `--db`, and prints a
//! table or one JSON object per line.

mod api_enqueue;
mod drain;
mod footprint;
mod jobtypes;
mod policies;
mod progress;
mod real;
mod rounds;
mod scenarios;
mod schedules;
mod web;

pub use drain::latency_client;
pub use rounds::run as run_rounds;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};

/// Every scenario, in the order `jobmgr bench` runs them.
pub const SCENARIOS: [&str; 18] = [
    "raw",
    "enqueue",
    "enqueue-concurrent",
    "enqueue-bulk",
    "process",
    "process-backlog",
    "process-history",
    "process-scheduled",
    "process-policies",
    "process-real",
    "latency",
    "logs",
    "progress",
    "ws",
    "api",
    "api-enqueue",
    "footprint",
    "schedules",
];

/// Runs per scenario without `--n`.
pub const DEFAULT_N: usize = 100_000;
/// Runs without `--n` in the scenarios that pay one fsync per run
/// (`raw-1-per-tx`, `enqueue`, `enqueue-concurrent`, `api-enqueue`), so
/// that a plain `jobmgr bench` takes seconds there, not minutes.
pub const SINGLE_DEFAULT_N: usize = 10_000;

/// The scenario names, for `bench --help`: made from [`SCENARIOS`], so
/// that a new scenario cannot be missing there.
pub fn scenarios_help() -> String {
    format!("Scenarios to run (all when none): {}", SCENARIOS.join(", "))
}

/// Options of one bench invocation.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The user's database path: temporary databases go beside it.
    pub db: PathBuf,
    /// Runs (or lines) per scenario: `--n`, or [`DEFAULT_N`].
    pub n: usize,
    /// `--n` as given: the scenarios that commit once per run use it as
    /// it is, and [`SINGLE_DEFAULT_N`] without it.
    pub n_given: Option<usize>,
    /// Runs queued behind in `process-backlog`, finished runs in `process-history`.
    pub backlog: usize,
    /// Log lines in `process-history`.
    pub history_lines: usize,
}

/// One measured figure.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Measurement {
    pub mode: String,
    pub n: usize,
    pub workers: usize,
    pub seconds: f64,
    pub rate: f64,
    /// The scenario's database connections' `synchronous`, as SQLite
    /// reports it.
    pub synchronous: String,
    /// Peak resident memory: of the bench process, or in `footprint` of
    /// the child process measured.
    pub maxrss_kb: u64,
    /// `footprint`: the measured child's resident memory at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_kb: Option<u64>,
    /// `footprint`: the binary's size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_ratio: Option<f64>,
    /// Runs (or log lines) per transaction the worker or the enqueue
    /// path committed: group commit at work, or a disk too slow for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_commit: Option<f64>,
    /// Bytes written to the WAL per run (frames with their 24-byte
    /// headers), and the same in frames: pages written per run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_bytes: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_pages: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat_p95_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat_p99_ms: Option<f64>,
    /// CPU time (user + system, all threads) per run or line, in
    /// microseconds: steadier than wall time on a shared machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Measurement {
    /// Sets `cpu_us` from the CPU time used since `since`.
    fn with_cpu(mut self, since: f64) -> Measurement {
        if self.n > 0 {
            self.cpu_us = Some((cpu_seconds() - since) * 1e6 / self.n as f64);
        }
        self
    }

    /// Sets `per_commit` from the commits counted since `since`.
    fn with_commits(mut self, since: u64) -> Measurement {
        let commits = crate::store::commits().saturating_sub(since);
        if commits > 0 {
            self.per_commit = Some(self.n as f64 / commits as f64);
        }
        self
    }

    /// Sets `wal_bytes` and `wal_pages` from the WAL bytes written since
    /// `since`, for pages of `page_size` bytes.
    fn with_wal(mut self, since: u64, page_size: i64) -> Measurement {
        if self.n > 0 {
            let bytes = crate::store::wal_bytes().saturating_sub(since) as f64 / self.n as f64;
            self.wal_bytes = Some(bytes);
            self.wal_pages = Some(bytes / (page_size + 24) as f64);
        }
        self
    }

    fn new(mode: &str, n: usize, workers: usize, took: Duration) -> Measurement {
        let seconds = took.as_secs_f64();
        Measurement {
            mode: mode.into(),
            n,
            workers,
            seconds,
            rate: if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            },
            maxrss_kb: max_rss_kb(),
            ..Measurement::default()
        }
    }
}

/// Runs the named scenarios (all when empty) and prints each result as it
/// is measured.
pub fn run(names: &[String], opts: &BenchOptions, json: bool) -> Result<()> {
    check_names(names)?;
    let selected: Vec<&str> = if names.is_empty() {
        SCENARIOS.to_vec()
    } else {
        names.iter().map(String::as_str).collect()
    };
    if !json {
        print_header();
    }
    let mut ctx = scenarios::Ctx::new(opts)?;
    for name in selected {
        for m in ctx.run(name)? {
            print(&m, json);
        }
    }
    Ok(())
}

/// Refuses an unknown scenario name, suggesting the closest.
pub fn check_names(names: &[String]) -> Result<()> {
    for n in names {
        if !SCENARIOS.contains(&n.as_str()) {
            let mut msg = format!("unknown scenario '{n}'");
            if let Some(s) = crate::error::suggest(n, SCENARIOS) {
                msg.push_str(&format!(" (did you mean '{s}'?)"));
            }
            msg.push_str(&format!("; scenarios: {}", SCENARIOS.join(", ")));
            return Err(Error::Invalid(msg));
        }
    }
    Ok(())
}

fn print_header() {
    println!(
        "{:<22} {:>9} {:>4} {:>9} {:>12} {:>7} {:>7} {:>9} {:>9} {:>9} {:>7} {:>9}",
        "mode",
        "n",
        "wrk",
        "seconds",
        "rate/s",
        "raw",
        "per tx",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "cpu µs",
        "rss KB"
    );
}

fn print(m: &Measurement, json: bool) {
    if json {
        println!("{}", serde_json::to_string(m).unwrap_or_default());
        return;
    }
    println!(
        "{:<22} {:>9} {:>4} {:>9.3} {:>12.0} {:>7} {:>7} {:>9} {:>9} {:>9} {:>7} {:>9}{}",
        m.mode,
        m.n,
        m.workers,
        m.seconds,
        m.rate,
        opt(m.raw_ratio, 2),
        opt(m.per_commit, 1),
        opt(m.lat_p50_ms, 2),
        opt(m.lat_p95_ms, 2),
        opt(m.lat_p99_ms, 2),
        opt(m.cpu_us, 1),
        m.maxrss_kb,
        m.note
            .as_deref()
            .map(|n| format!("  {n}"))
            .unwrap_or_default()
    );
}

/// `v` with `prec` decimals, or "-" when there is none.
fn opt(v: Option<f64>, prec: usize) -> String {
    v.map(|x| format!("{x:.prec$}"))
        .unwrap_or_else(|| "-".into())
}

/// This jobmgr's executable, which the scenarios start as `serve`, `worker`
/// or a latency client, and `--rounds` as the bench itself.
fn own_binary() -> Result<PathBuf> {
    std::env::current_exe().map_err(Error::io("find this executable", "."))
}

/// Peak resident memory of this process, from /proc (0 where unavailable).
pub fn max_rss_kb() -> u64 {
    proc_status_kb(None, "VmHWM:")
}

/// CPU time this process has used (user + system), in seconds.
pub fn cpu_seconds() -> f64 {
    proc_cpu_seconds(None)
}

/// CPU time process `pid` (this one when `None`) has used, user + system,
/// in seconds, from /proc (0 where unavailable).
fn proc_cpu_seconds(pid: Option<u32>) -> f64 {
    stat_cpu_seconds(&std::fs::read_to_string(proc_file(pid, "stat")).unwrap_or_default())
}

/// CPU seconds of process `pid`'s threads so far, summed by name with a
/// trailing `-N` dropped (`executor-0` and `executor-3` are `executor`).
fn thread_cpu_seconds(pid: u32) -> std::collections::HashMap<String, f64> {
    let mut by_name = std::collections::HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue;
        };
        let comm = comm.trim_end();
        let name = match comm.rsplit_once('-') {
            Some((base, n)) if n.bytes().all(|b| b.is_ascii_digit()) => base,
            _ => comm,
        };
        *by_name.entry(name.to_string()).or_insert(0.0) += stat_cpu_seconds(&stat);
    }
    by_name
}

/// utime + stime of a /proc `stat` line, in seconds.
fn stat_cpu_seconds(stat: &str) -> f64 {
    // Fields after the parenthesised command name; utime and stime are the
    // 12th and 13th of them, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// A `key: N kB` line of process `pid`'s (or this one's) /proc status.
fn proc_status_kb(pid: Option<u32>, key: &str) -> u64 {
    std::fs::read_to_string(proc_file(pid, "status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn proc_file(pid: Option<u32>, name: &str) -> PathBuf {
    match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}/{name}")),
        None => PathBuf::from(format!("/proc/self/{name}")),
    }
}

/// A directory for one scenario's database beside `db`, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `<dir of db>/.jobmgr-bench-<pid>-<name>`.
    pub fn beside(db: &Path, name: &str) -> Result<TempDir> {
        let parent = db
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = parent.join(format!(".jobmgr-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(Error::io("create bench directory", &dir))?;
        Ok(TempDir(dir))
    }

    /// The database path inside.
    pub fn db(&self) -> PathBuf {
        self.0.join("bench.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Percentile (0-100) of sorted milliseconds.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(idx.min(sorted.len() - 1)).copied()
}

impl BenchOptions {
    /// Runs in a scenario that commits once per run.
    pub fn single_n(&self) -> usize {
        self.n_given.unwrap_or(SINGLE_DEFAULT_N)
    }
}
