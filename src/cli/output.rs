//! Text and JSON output of the CLI, and the one writer it goes through.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::job::{JobRun, LogLine};
use crate::worker::WorkerRow;

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

/// Whether text output shows times in the local zone (`--local`).
static LOCAL_TIME: AtomicBool = AtomicBool::new(false);

/// Sets the zone of the times text output prints: local or UTC.
pub fn set_local_time(local: bool) {
    LOCAL_TIME.store(local, Ordering::Relaxed);
}

/// A stored time (`2026-12-01T20:00:00.000Z`) as text output shows it: as
/// stored, its `Z` saying UTC, or with `--local` in this machine's zone
/// with its offset (`2026-12-01 21:00:00.000 +01:00`), the same choice the
/// page's time-zone switch makes. Text that is not a time is left as is.
pub fn when(stored: &str) -> String {
    if !LOCAL_TIME.load(Ordering::Relaxed) {
        return stored.to_string();
    }
    match chrono::DateTime::parse_from_rfc3339(stored) {
        Ok(t) => t
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S%.3f %:z")
            .to_string(),
        Err(_) => stored.to_string(),
    }
}

/// [`when`] of an optional time, "-" when there is none.
pub fn when_opt(stored: Option<&str>) -> String {
    stored.map_or_else(|| "-".to_string(), when)
}

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
    // A local time carries its offset: six characters more than UTC's.
    let w = if LOCAL_TIME.load(Ordering::Relaxed) {
        30
    } else {
        24
    };
    outln!(
        "{:>7}  {:<9}  {:<20}  {:<w$}  {:<38}  ERROR",
        "ID",
        "STATUS",
        "JOB",
        "CREATED",
        "PROGRESS"
    );
    for r in runs {
        outln!(
            "{:>7}  {:<9}  {:<20}  {:<w$}  {:<38}  {}",
            r.id,
            r.status.as_str(),
            cut(&r.job_name, 20),
            when(&r.created_at),
            cut(&r.progress_text(), 38),
            cut(r.error.as_deref().unwrap_or(""), 60)
        );
    }
}

/// One run, field by field.
pub fn run_details(r: &JobRun, worker: Option<&WorkerRow>) {
    let opt = |v: &Option<String>| when_opt(v.as_deref());
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
    outln!("  created:     {}", when(&r.created_at));
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
            when_opt(a.started_at.as_deref()),
            when(&a.finished_at),
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
    if LOCAL_TIME.load(Ordering::Relaxed) {
        let mut local = l.clone();
        local.timestamp = when(&l.timestamp);
        outln!("{}", local.to_text());
        return;
    }
    outln!("{}", l.to_text());
}
