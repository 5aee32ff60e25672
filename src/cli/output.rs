//! Text and JSON output of the CLI, and the one writer it goes through.

use std::fmt;
use std::io::{self, Write};

use serde::Serialize;

use crate::error::Result;
use crate::job::{JobRun, LogLine};
use crate::maintenance::Recovery;
use crate::manager::{Counts, WorkerStatus};
use crate::registry::{ParamKind, Registry};
use crate::worker::{WorkerRow, human_ms};

/// Writes one line to stdout: every line the CLI prints goes through here
/// (by [`outln!`]), so a closed stdout is handled in this one place. When
/// the reader is gone (`jobmgr jobs | head -1`) nobody wants the rest: the
/// process exits at once, with status 0 and no message, as a reader that
/// stopped early expects. Exiting is right because every command prints
/// only after its work is done (a run is enqueued or cancelled before its
/// id is printed), and it spares threading an I/O error through every
/// printing function. Restoring SIGPIPE's default action instead would
/// give status 141 (a failure under `set -o pipefail`) and would kill
/// `serve` and `worker` whenever whatever reads their output goes away.
/// Any other write error (a full disk behind a redirect) exits with a
/// message and status 1.
pub fn line(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("jobmgr: write output: {e}");
            std::process::exit(1);
        }
    }
}

/// `println!` through [`line`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Prints `v` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => outln!("{s}"),
        Err(e) => eprintln!("jobmgr: encode JSON: {e}"),
    }
}

fn cut(s: &str, n: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        let mut t: String = one_line.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The history as a table.
pub fn run_table(runs: &[JobRun]) {
    if runs.is_empty() {
        outln!("no runs");
        return;
    }
    outln!(
        "{:>7}  {:<9}  {:<20}  {:<24}  {:<38}  ERROR",
        "ID",
        "STATUS",
        "JOB",
        "CREATED",
        "PROGRESS"
    );
    for r in runs {
        outln!(
            "{:>7}  {:<9}  {:<20}  {:<24}  {:<38}  {}",
            r.id,
            r.status.as_str(),
            cut(&r.job_name, 20),
            r.created_at,
            cut(&r.progress_text(), 38),
            cut(r.error.as_deref().unwrap_or(""), 60)
        );
    }
}

/// One run, field by field.
pub fn run_details(r: &JobRun, worker: Option<&WorkerRow>) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    outln!("run {}: {} ({})", r.id, r.job_name, r.status);
    outln!(
        "  parameters:  {}",
        serde_json::Value::Object(r.parameters.clone())
    );
    outln!("  priority:    {}   attempt: {}", r.priority, r.attempt);
    outln!("  triggered:   {}", r.triggered_by);
    if let Some(of) = r.rerun_of_id {
        outln!("  re-run of:   {of}");
    }
    outln!("  created:     {}", r.created_at);
    outln!("  started:     {}", opt(&r.started_at));
    outln!("  finished:    {}", opt(&r.finished_at));
    match (r.worker_id, worker) {
        (_, Some(w)) => outln!(
            "  worker:      {} (pid {} on {}, version {})",
            w.id,
            w.pid,
            w.hostname,
            w.version
        ),
        (Some(id), None) => outln!("  worker:      {id}"),
        (None, None) => {}
    }
    outln!("  progress:    {}", r.progress_text());
    outln!(
        "  outcome:     {}",
        serde_json::Value::Object(r.outcome_summary.clone())
    );
    if let Some(e) = &r.error {
        outln!("  error:       {e}");
    }
    if let Some(c) = &r.error_context {
        outln!("  context:     {c}");
    }
    if r.cancel_requested_at.is_some() && !r.status.is_finished() {
        outln!("  cancel requested at {}", opt(&r.cancel_requested_at));
    }
    outln!(
        "  metadata:    {}",
        serde_json::Value::Object(r.metadata.clone())
    );
}

/// The earlier attempts of a retried run, one line each.
pub fn attempts(list: &[crate::store::attempts::Attempt]) {
    if list.is_empty() {
        return;
    }
    outln!("  earlier attempts:");
    for a in list {
        outln!(
            "    {}: {} → {}: {}",
            a.attempt,
            a.started_at.as_deref().unwrap_or("-"),
            a.finished_at,
            a.error.as_deref().unwrap_or("-")
        );
    }
}

/// The runs a run waits for and those waiting for it.
pub fn links(after: &[crate::store::deps::Linked], by: &[crate::store::deps::Linked]) {
    let line = |l: &[crate::store::deps::Linked]| {
        l.iter()
            .map(|r| format!("{} ({}, {})", r.id, r.job_name, r.status))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !after.is_empty() {
        outln!("  after:       {}", line(after));
    }
    if !by.is_empty() {
        outln!("  waited for by: {}", line(by));
    }
}

/// One log line, as text or one JSON object per line.
pub fn log_line(l: &LogLine, json: bool) {
    if json {
        outln!("{}", serde_json::to_string(l).unwrap_or_default());
        return;
    }
    outln!("{}", l.to_text());
}

/// The worker and the counts.
pub fn status(w: &WorkerStatus, counts: &Counts) {
    match &w.worker {
        None => outln!("worker: none has ever run on this database"),
        Some(row) => {
            outln!(
                "worker: {} — id {}, pid {} on {}, version {}{}",
                w.state,
                row.id,
                row.pid,
                row.hostname,
                row.version,
                if w.version_drift {
                    format!(" (differs from this binary's {})", w.server_version)
                } else {
                    String::new()
                }
            );
            if let Some(age) = w.heartbeat_age_ms {
                outln!("  heartbeat {} ago", human_ms(age));
            }
            if let Some(up) = w.uptime_ms {
                outln!("  up {}", human_ms(up));
            }
            if let Some(over) = w.stopping_overdue_ms {
                outln!("  STOPPING for {} past its drain timeout", human_ms(over));
            }
        }
    }
    let parts: Vec<String> = counts
        .by_status
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    outln!("runs: {} ({})", counts.total, parts.join(", "));
}

/// What cleanup-stalled changed.
pub fn recovery(r: &Recovery) {
    for w in &r.dead_workers {
        outln!(
            "worker {} (pid {} on {}) declared dead",
            w.id,
            w.pid,
            w.hostname
        );
    }
    if r.runs.is_empty() {
        outln!("no stalled runs");
    }
    for run in &r.runs {
        outln!(
            "run {} ({}) → {}: {}",
            run.id,
            run.job_name,
            run.status,
            run.error
        );
    }
}

/// `jobmgr job-types`.
pub fn job_types(
    registry: &Registry,
    states: Option<&std::collections::HashMap<String, crate::manager::TypeState>>,
    json: bool,
) -> Result<i32> {
    let infos = registry.infos();
    if json {
        let mut list = serde_json::to_value(&infos).unwrap_or_default();
        if let (Some(states), Some(items)) = (states, list.as_array_mut()) {
            for item in items {
                let name = item["name"].as_str().unwrap_or_default().to_string();
                if let Some(s) = states.get(&name) {
                    item["paused"] = s.paused.into();
                    item["queued"] = s.queued.into();
                }
            }
        }
        print_json(&list);
        return Ok(0);
    }
    for t in infos {
        outln!("{}\n  {}", t.name, t.description);
        if let Some(s) = states.and_then(|m| m.get(&t.name)) {
            match s.paused {
                true => outln!("  PAUSED, {} queued run(s) waiting", s.queued),
                false if s.queued > 0 => outln!("  {} queued run(s)", s.queued),
                false => {}
            }
        }
        let policy = registry.policy(&t.name).summary();
        if !policy.is_empty() {
            outln!("  policy: {policy}");
        }
        for p in t.parameters {
            let kind = match &p.kind {
                ParamKind::Enum(c) => format!("one of {}", c.join("|")),
                ParamKind::String => "string".into(),
                ParamKind::Integer => "integer".into(),
                ParamKind::Boolean => "boolean".into(),
                ParamKind::Path => "path".into(),
            };
            let mut extra = Vec::new();
            if p.required {
                extra.push("required".to_string());
            }
            if let Some(d) = &p.default {
                extra.push(format!("default {d}"));
            }
            if let (Some(a), Some(b)) = (p.min, p.max) {
                extra.push(format!("{a}..={b}"));
            }
            if let Some(pat) = &p.pattern {
                extra.push(format!("pattern {}", pat.as_str()));
            }
            outln!(
                "  -p {}=<{kind}>  {} [{}]",
                p.name,
                p.help,
                extra.join(", ")
            );
        }
    }
    Ok(0)
}

/// `check-config`: every problem of the file, or what it declares.
pub fn check_config(c: &crate::jobfile::Checked, json: bool) -> Result<i32> {
    let ok = c.problems.is_empty();
    if json {
        let problems: Vec<_> = c
            .problems
            .iter()
            .map(|p| serde_json::json!({"location": p.location, "line": p.line, "message": p.message}))
            .collect();
        print_json(&serde_json::json!({
            "path": c.path.display().to_string(),
            "exists": c.exists,
            "valid": ok,
            "problems": problems,
            "commandJobs": c.command_jobs,
            "retention": c.retention,
        }));
    } else if !c.exists {
        outln!(
            "{}: no config file; built-in job types only",
            c.path.display()
        );
    } else if ok {
        let commands = if c.command_jobs.is_empty() {
            "no command job types".to_string()
        } else {
            format!(
                "{} command job type(s): {}",
                c.command_jobs.len(),
                c.command_jobs.join(", ")
            )
        };
        outln!(
            "{}: ok ({commands}; {} job types in all)",
            c.path.display(),
            c.registry.infos().len()
        );
    } else {
        eprintln!("{}", crate::jobfile::describe(c));
    }
    Ok(if ok { 0 } else { 1 })
}

/// Retention and the disk guard, under the status.
pub fn housekeeping(h: &crate::manager::Housekeeping) {
    let mb = |b: u64| b / (1024 * 1024);
    let d = &h.disk;
    if d.threshold_bytes == 0 {
        outln!("disk: {} MiB free (no warning threshold)", mb(d.free_bytes));
    } else if d.low {
        outln!(
            "WARNING: disk low: {} MiB free, below {} MiB; SQLite refuses writes when the disk is full",
            mb(d.free_bytes),
            mb(d.threshold_bytes)
        );
    } else {
        outln!(
            "disk: {} MiB free (warning below {} MiB)",
            mb(d.free_bytes),
            mb(d.threshold_bytes)
        );
    }
    let Some(r) = &h.retention else {
        outln!("retention: not run yet (the worker runs it at start, then hourly)");
        return;
    };
    match &r.settings {
        Some(s) if s.enabled => {
            let mut keeps = format!(
                "finished runs {} days, failed runs {} days",
                s.finished_days, s.failed_days
            );
            if let Some(n) = s.max_runs {
                keeps.push_str(&format!(", at most {n} runs"));
            }
            if let Some(n) = s.max_database_mb {
                keeps.push_str(&format!(", at most {n} MiB of data"));
            }
            outln!("retention: keeps {keeps}");
        }
        _ => outln!("retention: disabled (nothing is removed)"),
    }
    outln!(
        "  last run {}: removed {} runs, {} log lines, {} audit rows; {} finished runs kept; next {}",
        r.ran_at,
        r.runs_removed,
        r.log_lines_removed,
        r.audit_rows_removed,
        r.finished_runs,
        r.next_run_at
    );
    if let Some(why) = &r.stopped {
        outln!("  stopped early: {why}");
    }
    if r.auto_vacuum != "incremental" {
        outln!(
            "  the file's auto_vacuum is {}: freed space is reused but the file does not shrink \
             (see the README, Retention)",
            r.auto_vacuum
        );
    }
}
