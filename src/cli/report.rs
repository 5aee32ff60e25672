//! What the operational commands print: the worker's status, the
//! housekeeping report and the notification outbox, recovery, the job
//! types, and `check-config`.

use super::output::{outln, print_json};
use crate::error::Result;
use crate::maintenance::Recovery;
use crate::manager::{Counts, NotifySummary, WorkerStatus};
use crate::registry::{ParamKind, Registry};
use crate::worker::human_ms;

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
            if let Some(load) = row.writer_summary() {
                outln!("  writer {load}");
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

/// The outbox's totals, and its newest undelivered failure.
pub fn notifications(s: &NotifySummary) {
    outln!(
        "notifications: {} pending, {} delivered, {} failed",
        s.pending,
        s.delivered,
        s.failed
    );
    if let Some(d) = &s.last_failure {
        outln!(
            "  last failure: {} of {} to '{}' ({}, attempt {}): {}",
            d.event,
            d.subject,
            d.notifier,
            d.status.as_str(),
            d.attempts,
            d.last_error.as_deref().unwrap_or("")
        );
    }
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
        super::output::when(&r.ran_at),
        r.runs_removed,
        r.log_lines_removed,
        r.audit_rows_removed,
        r.finished_runs,
        super::output::when(&r.next_run_at)
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
