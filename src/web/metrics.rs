//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4),
//! written by hand. Served behind the token on the main address, and
//! without one on the `--metrics-bind` address, whose server answers
//! nothing else. Labels are job types, statuses and schedule names only:
//! never run ids or parameters, so the series stay few.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::atomic::Ordering;

use tiny_http::{Method, Request};

use super::Ctx;
use super::http::{Reply, Req, error_reply, reply, split_url};
use crate::checkpointer::Checkpoints;
use crate::error::Result;
use crate::manager::{Metrics, WritePath};
use crate::store::stats::BUCKETS_MS;
use crate::worker::{VERSION, WriterLoad};

/// The content type Prometheus asks for.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The unfinished statuses `jobmgr_runs` reports.
const UNFINISHED: [&str; 4] = ["SCHEDULED", "WAITING", "QUEUED", "RUNNING"];

/// `GET /metrics` (behind the token on the main address).
pub fn metrics(ctx: &Ctx, _req: &Req) -> Result<Reply> {
    scrape(ctx)
}

fn scrape(ctx: &Ctx) -> Result<Reply> {
    let m = ctx.manager.metrics()?;
    let clients = ctx.hub.len() + ctx.followers.load(Ordering::Relaxed);
    let jobs: Vec<String> = ctx
        .manager
        .registry()
        .infos()
        .into_iter()
        .map(|i| i.name)
        .collect();
    let text = render(&m, &jobs, clients);
    Ok(reply(200, CONTENT_TYPE, text.into_bytes()))
}

/// Answers one request on the `--metrics-bind` address: `GET /metrics`
/// without a token, 404 or 405 for anything else. No Host check: the
/// address exists to be scraped under whatever name the scraper uses, and
/// it only reads.
pub fn handle_scrape(ctx: &Ctx, request: Request) {
    let (path, _) = split_url(request.url());
    let answer = if path != "/metrics" {
        error_reply(404, "not_found", "only /metrics is served here")
    } else if *request.method() != Method::Get {
        error_reply(405, "method_not_allowed", "method not allowed")
    } else {
        scrape(ctx).unwrap_or_else(|e| super::http::error_from(&e))
    };
    if let Err(e) = request.respond(answer) {
        log::debug!("answer /metrics: {e}");
    }
}

/// The exposition text. `jobs` are the registered job types: each gets its
/// unfinished series (0 when it has no such run), so a queue that empties
/// shows 0 instead of vanishing.
pub fn render(m: &Metrics, jobs: &[String], websocket_clients: usize) -> String {
    let mut out = String::with_capacity(4096);
    family(
        &mut out,
        "jobmgr_runs_finished_total",
        "counter",
        "Runs that finished, by job type and final status.",
    );
    for r in &m.finished {
        sample(
            &mut out,
            "jobmgr_runs_finished_total",
            &[("job", &r.job), ("status", &r.status)],
            r.n as f64,
        );
    }
    family(
        &mut out,
        "jobmgr_retries_total",
        "counter",
        "Attempts that failed and were tried again (retry policies, lost workers' runs), by job type.",
    );
    for (job, n) in &m.retries {
        sample(&mut out, "jobmgr_retries_total", &[("job", job)], *n as f64);
    }

    // Unfinished runs per (job, status), every known job type included.
    let mut names: BTreeSet<&str> = jobs.iter().map(String::as_str).collect();
    names.extend(m.unfinished.iter().map(|u| u.job.as_str()));
    let found: BTreeMap<(&str, &str), &crate::store::stats::Unfinished> = m
        .unfinished
        .iter()
        .map(|u| ((u.job.as_str(), u.status.as_str()), u))
        .collect();
    family(
        &mut out,
        "jobmgr_runs",
        "gauge",
        "Runs not finished yet, by job type and status (SCHEDULED, WAITING, QUEUED, RUNNING).",
    );
    for job in &names {
        for status in UNFINISHED {
            let n = found.get(&(*job, status)).map_or(0, |u| u.n);
            sample(
                &mut out,
                "jobmgr_runs",
                &[("job", job), ("status", status)],
                n as f64,
            );
        }
    }
    family(
        &mut out,
        "jobmgr_oldest_queued_age_seconds",
        "gauge",
        "Seconds the oldest QUEUED run of a job type has waited (since it was due or created); 0 when none waits.",
    );
    for job in &names {
        let age = found
            .get(&(*job, "QUEUED"))
            .and_then(|u| crate::clock::Timestamp::parse(&u.oldest))
            .map_or(0.0, |t| (m.now.0 - t.0).max(0) as f64 / 1000.0);
        sample(
            &mut out,
            "jobmgr_oldest_queued_age_seconds",
            &[("job", job)],
            age,
        );
    }

    histogram(&mut out, m);
    write_path(&mut out, &m.writes);

    family(
        &mut out,
        "jobmgr_schedule_ticks_total",
        "counter",
        "Due times the scheduler decided, by schedule and outcome (the ScheduleTick ledger).",
    );
    for (schedule, outcome, n) in &m.schedule_ticks {
        sample(
            &mut out,
            "jobmgr_schedule_ticks_total",
            &[("schedule", schedule), ("outcome", outcome)],
            *n as f64,
        );
    }
    let plain: [(&str, &str, &str, f64); 7] = [
        (
            "jobmgr_worker_up",
            "gauge",
            "1 when a worker is RUNNING with a fresh heartbeat, else 0.",
            if m.worker_up { 1.0 } else { 0.0 },
        ),
        (
            "jobmgr_log_lines_total",
            "counter",
            "Log lines the runs have written.",
            m.log_lines as f64,
        ),
        (
            "jobmgr_websocket_clients",
            "gauge",
            "Live WebSocket clients of this server (the page's and log followers).",
            websocket_clients as f64,
        ),
        (
            "jobmgr_database_bytes",
            "gauge",
            "Size of the database file.",
            m.database_bytes as f64,
        ),
        (
            "jobmgr_wal_bytes",
            "gauge",
            "Size of the database's write-ahead log.",
            m.wal_bytes as f64,
        ),
        (
            "jobmgr_disk_free_bytes",
            "gauge",
            "Free space on the database's file system.",
            m.disk_free_bytes as f64,
        ),
        (
            "jobmgr_build_info",
            "gauge",
            "Always 1; the version of the jobmgr that answers is a label.",
            1.0,
        ),
    ];
    for (name, kind, help, value) in plain {
        family(&mut out, name, kind, help);
        let labels: &[(&str, &str)] = if name == "jobmgr_build_info" {
            &[("version", VERSION)]
        } else {
            &[]
        };
        sample(&mut out, name, labels, value);
        if name == "jobmgr_worker_up" {
            family(
                &mut out,
                "jobmgr_worker_heartbeat_age_seconds",
                "gauge",
                "Age of the active (or latest) worker's heartbeat; absent when there never was a worker.",
            );
            if let Some(age) = m.heartbeat_age_ms {
                sample(
                    &mut out,
                    "jobmgr_worker_heartbeat_age_seconds",
                    &[],
                    age as f64 / 1000.0,
                );
            }
        }
    }
    if let Some(load) = &m.writer {
        writer_load(&mut out, load);
    }
    if let Some((at, removed)) = m.retention {
        family(
            &mut out,
            "jobmgr_retention_last_run_timestamp_seconds",
            "gauge",
            "When retention last ran (Unix time).",
        );
        sample(
            &mut out,
            "jobmgr_retention_last_run_timestamp_seconds",
            &[],
            at.0 as f64 / 1000.0,
        );
        family(
            &mut out,
            "jobmgr_retention_last_runs_removed",
            "gauge",
            "Runs retention removed in its last pass.",
        );
        sample(
            &mut out,
            "jobmgr_retention_last_runs_removed",
            &[],
            removed as f64,
        );
    }
    out
}

/// The active (or latest) worker's writer thread, as of its last
/// heartbeat: the worker is a process of its own, and writes these into
/// its row. They start again from 0 with each new worker, which
/// Prometheus' `rate` reads as a counter reset.
fn writer_load(out: &mut String, w: &WriterLoad) {
    let seconds = |us: i64| us as f64 / 1e6;
    let figures: [(&str, &str, f64); 5] = [
        (
            "jobmgr_worker_writer_busy_seconds_total",
            "Time the worker's writer thread spent working rather than waiting for work; a rate near 1 means this single writer, not the jobs or the disk, sets how many runs a second finish.",
            seconds(w.busy_us),
        ),
        (
            "jobmgr_worker_writer_commits_total",
            "Transactions the worker's writer committed (claims, progress, log lines and finishes together).",
            w.commits as f64,
        ),
        (
            "jobmgr_worker_writer_commit_seconds_total",
            "Of the writer's busy time, time inside those transactions, BEGIN to COMMIT.",
            seconds(w.commit_us),
        ),
        (
            "jobmgr_worker_writer_lock_wait_seconds_total",
            "Of that, time waiting for the write lock another connection held (BEGIN IMMEDIATE).",
            seconds(w.lock_wait_us),
        ),
        (
            "jobmgr_worker_writer_sync_seconds_total",
            "Of that, time in the COMMIT statement alone: writing the WAL frames and syncing them.",
            seconds(w.sync_us),
        ),
    ];
    counters(out, &figures);
}

/// Counters without labels, each with its HELP.
fn counters(out: &mut String, figures: &[(&str, &str, f64)]) {
    for &(name, help, value) in figures {
        family(out, name, "counter", help);
        sample(out, name, &[], value);
    }
}

/// One figure of a kind of checkpoint.
type Figure = fn(&Checkpoints) -> f64;

/// The group commit's and the checkpoints' counters: this server
/// process's only, as their HELP says (the worker `serve` supervises is a
/// process of its own, whose writer and checkpoints are not here).
fn write_path(out: &mut String, w: &WritePath) {
    let seconds = |us: u64| us as f64 / 1e6;
    let c = &w.commit;
    let commit: [(&str, &str, f64); 7] = [
        (
            "jobmgr_commit_rounds_total",
            "Group-commit rounds (one transaction and one sync each) that committed this server process's enqueues.",
            c.rounds as f64,
        ),
        (
            "jobmgr_commit_requests_total",
            "Enqueue requests those rounds carried; divided by the rounds, how many requests shared each sync.",
            c.requests as f64,
        ),
        (
            "jobmgr_commit_gather_seconds_total",
            "Time this server process's group-commit leaders waited for more requests to join their round.",
            seconds(c.gather_us),
        ),
        (
            "jobmgr_commit_seconds_total",
            "Time this server process's group-commit rounds spent in their transaction, its sync included.",
            seconds(c.commit_us),
        ),
        (
            "jobmgr_commit_lock_wait_seconds_total",
            "Of that, time waiting for the write lock another connection held (BEGIN IMMEDIATE).",
            seconds(c.lock_us),
        ),
        (
            "jobmgr_commit_sync_seconds_total",
            "Of that, time in the COMMIT statement alone: writing the WAL frames and syncing them.",
            seconds(c.sync_us),
        ),
        (
            "jobmgr_commit_answer_seconds_total",
            "Of that, time waking the rounds' waiting callers with their answers.",
            seconds(c.answer_us),
        ),
    ];
    counters(out, &commit);
    let by = [("checkpointer", &w.checkpointer), ("fallback", &w.fallback)];
    let runs_help = format!(
        "WAL checkpoints this server process ran after its group commits, by who ran them: its \
         checkpointer thread, or the committing thread once the WAL passed {} frames (fallback).",
        crate::checkpointer::FALLBACK_FRAMES
    );
    let checkpoints: [(&str, &str, Figure); 3] = [
        ("jobmgr_checkpoints_total", &runs_help, |k| k.runs as f64),
        (
            "jobmgr_checkpoint_frames_total",
            "WAL frames those checkpoints copied into the database file.",
            |k| k.frames as f64,
        ),
        (
            "jobmgr_checkpoint_seconds_total",
            "Time those checkpoints took, the database file's sync included.",
            |k| k.micros as f64 / 1e6,
        ),
    ];
    for (name, help, value) in checkpoints {
        family(out, name, "counter", help);
        for (who, k) in by {
            sample(out, name, &[("by", who)], value(k));
        }
    }
}

/// `jobmgr_run_duration_seconds{job}`: every finished run with a duration,
/// whatever its status.
fn histogram(out: &mut String, m: &Metrics) {
    let name = "jobmgr_run_duration_seconds";
    family(
        out,
        name,
        "histogram",
        "How long finished runs took, from start to finish, by job type.",
    );
    let mut per_job: BTreeMap<&str, (i64, i64, [i64; 10])> = BTreeMap::new();
    for r in &m.finished {
        let e = per_job.entry(&r.job).or_insert((0, 0, [0; 10]));
        e.0 += r.timed;
        e.1 += r.duration_sum_ms;
        for (a, b) in e.2.iter_mut().zip(r.buckets) {
            *a += b;
        }
    }
    for (job, (count, sum_ms, buckets)) in per_job {
        for (ms, n) in BUCKETS_MS.iter().zip(buckets) {
            let le = (*ms as f64 / 1000.0).to_string();
            sample(
                out,
                &format!("{name}_bucket"),
                &[("job", job), ("le", &le)],
                n as f64,
            );
        }
        let bucket = format!("{name}_bucket");
        sample(out, &bucket, &[("job", job), ("le", "+Inf")], count as f64);
        sample(
            out,
            &format!("{name}_sum"),
            &[("job", job)],
            sum_ms as f64 / 1000.0,
        );
        sample(out, &format!("{name}_count"), &[("job", job)], count as f64);
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the format wants it: backslash, double quote and line
/// feed escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "m", &[("job", "a\"b\\c\nd")], 1.0);
        assert_eq!(out, "m{job=\"a\\\"b\\\\c\\nd\"} 1\n");
    }
}
