//! One run of a command job, on its executor thread: start the program,
//! turn its output into log lines and progress, stop it on cancel or
//! timeout (SIGTERM to the group, SIGKILL after the grace period), and turn
//! its end into the run's result.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, bounded};
use serde_json::json;

use super::CommandSpec;
use super::kill::{self, SIGKILL, SIGTERM};
use super::output::{self, Event, Stream};
use super::protocol::{self, Command, Parsed};
use super::spawn::{self, RunIdentity};
use crate::config;
use crate::context::{JobContext, JobError};
use crate::job::LogLevel;

/// How often the child, the cancel flag and the timeout are looked at
/// while no output arrives.
const TICK: Duration = Duration::from_millis(50);
/// How long output may stay open after the program exited and its group
/// was killed (a descendant that left the group could hold it forever).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// Lines of output waiting for the supervisor before readers block.
const LINE_QUEUE: usize = 1024;
/// Longest stderr line quoted in a failed run's error.
const TAIL_LINE_CHARS: usize = 500;

/// Why jobmgr is stopping the program.
#[derive(Debug, Clone, Copy, PartialEq)]
enum StopReason {
    Cancel,
    Timeout,
}

struct Stopping {
    reason: StopReason,
    kill_at: Instant,
    killed: bool,
}

/// The state of one run while its program runs.
struct Supervisor<'a> {
    ctx: &'a JobContext,
    spec: &'a CommandSpec,
    pgid: i32,
    logged: u64,
    dropped: u64,
    stderr_tail: VecDeque<String>,
}

/// Runs the program for `ctx`'s run and waits for it.
pub fn run(ctx: &JobContext, spec: &CommandSpec) -> Result<(), JobError> {
    let who = RunIdentity {
        run_id: ctx.run_id(),
        job_name: ctx.job_name(),
        attempt: ctx.attempt(),
        params: ctx.params(),
    };
    let args = spawn::arguments(spec, ctx.params()).map_err(JobError::new)?;
    let program = spawn::resolve_program(&spec.program).map_err(JobError::new)?;
    let mut cmd = spawn::command(spec, &program, &args, spawn::environment(spec, &who));
    let mut child = cmd
        .spawn()
        .map_err(|e| JobError::new(format!("cannot start {}: {e}", program.display())))?;
    let pgid = child.id() as i32;
    let _live = LiveGroup::enter(pgid);
    record_pgid(ctx, pgid);
    ctx.log_with(
        LogLevel::Info,
        &format!("started {} (pid {pgid})", program.display()),
        json!({"event": "command-start", "pid": pgid, "program": program.display().to_string(), "args": args}),
    );
    let (tx, rx) = bounded(LINE_QUEUE);
    let mut open = 0;
    for (stream, reader) in [
        (
            Stream::Stdout,
            child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn std::io::Read + Send>),
        ),
        (
            Stream::Stderr,
            child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn std::io::Read + Send>),
        ),
    ] {
        if let Some(r) = reader {
            // A reader thread that cannot start leaves its pipe unread;
            // the program would block on it, so stop it at once.
            if let Err(e) =
                output::spawn_reader(stream, r, tx.clone(), config::COMMAND_MAX_LINE_BYTES)
            {
                let _ = kill::signal_group(pgid, SIGKILL);
                let _ = child.wait();
                return Err(JobError::new(format!("start output reader: {e}")));
            }
            open += 1;
        }
    }
    drop(tx);
    let mut sup = Supervisor {
        ctx,
        spec,
        pgid,
        logged: 0,
        dropped: 0,
        stderr_tail: VecDeque::new(),
    };
    let started = Instant::now();
    let (status, stop) = sup.watch(&mut child, &rx, open, started);
    if sup.dropped > 0 {
        ctx.log_with(
            LogLevel::Warning,
            &format!(
                "{} more output lines dropped (limit of {} lines per run)",
                sup.dropped, spec.max_log_lines
            ),
            json!({"event": "output-capped", "dropped": sup.dropped, "limit": spec.max_log_lines}),
        );
    }
    sup.result(status, stop, started.elapsed())
}

/// Membership in the live-group set for as long as the run is supervised.
struct LiveGroup(i32);

impl LiveGroup {
    fn enter(pgid: i32) -> LiveGroup {
        super::live_groups().insert(pgid);
        LiveGroup(pgid)
    }
}

impl Drop for LiveGroup {
    fn drop(&mut self) {
        super::live_groups().remove(&self.0);
    }
}

/// The process group goes to the worker's writer, which records it with
/// its next commit (small, one per run: it rides in the group commit).
fn record_pgid(ctx: &JobContext, pgid: i32) {
    if ctx.worker_id().is_some() {
        ctx.record_pgid(pgid);
    }
}

impl Supervisor<'_> {
    /// Pumps output and watches the program until it has exited and its
    /// output is drained. Returns its status and why jobmgr stopped it.
    fn watch(
        &mut self,
        child: &mut Child,
        rx: &crossbeam_channel::Receiver<Event>,
        mut open: usize,
        started: Instant,
    ) -> (Option<ExitStatus>, Option<StopReason>) {
        let mut status: Option<ExitStatus> = None;
        let mut exited_at: Option<Instant> = None;
        let mut stopping: Option<Stopping> = None;
        let mut last_check: Option<Instant> = None;
        loop {
            // With both streams closed the channel is disconnected and
            // would return at once: wait the tick out instead of spinning
            // (a program may close its output and keep running).
            let event = if open > 0 {
                rx.recv_timeout(TICK)
            } else {
                std::thread::sleep(TICK);
                Err(RecvTimeoutError::Timeout)
            };
            match event {
                Ok(Event::Line(stream, line)) => self.line(stream, line),
                Ok(Event::Eof) => open = open.saturating_sub(1),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = 0,
            }
            if let Some(at) = exited_at {
                if open == 0 {
                    break;
                }
                if at.elapsed() >= DRAIN_AFTER_EXIT {
                    self.ctx
                        .warn("output still open after the program exited; stopped reading it");
                    break;
                }
                continue;
            }
            // Output can arrive much faster than the tick: look at the
            // child only every TICK, not once per line.
            if last_check.is_some_and(|t| t.elapsed() < TICK) {
                continue;
            }
            last_check = Some(Instant::now());
            match child.try_wait() {
                Ok(Some(s)) => {
                    status = Some(s);
                    exited_at = Some(Instant::now());
                    // Whatever the program left in its group goes with it.
                    let _ = kill::signal_group(self.pgid, SIGKILL);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    self.ctx.warn(&format!("cannot wait for the program: {e}"));
                    let _ = kill::signal_group(self.pgid, SIGKILL);
                    let _ = child.wait();
                    exited_at = Some(Instant::now());
                    continue;
                }
            }
            self.enforce(&mut stopping, started);
        }
        (status, stopping.map(|s| s.reason))
    }

    /// Starts or escalates stopping on cancel and timeout.
    fn enforce(&self, stopping: &mut Option<Stopping>, started: Instant) {
        match stopping {
            None => {
                let reason = if self.ctx.is_cancelled() {
                    StopReason::Cancel
                } else if self.spec.timeout.is_some_and(|t| started.elapsed() >= t) {
                    StopReason::Timeout
                } else {
                    return;
                };
                let why = match reason {
                    StopReason::Cancel => "cancel requested".to_string(),
                    StopReason::Timeout => self.timeout_text(),
                };
                self.ctx.log_with(
                    LogLevel::Warning,
                    &format!(
                        "{why}: sending SIGTERM to the process group, SIGKILL after {} s",
                        self.spec.grace.as_secs()
                    ),
                    json!({"event": "command-stop", "signal": "SIGTERM", "pgid": self.pgid}),
                );
                let _ = kill::signal_group(self.pgid, SIGTERM);
                *stopping = Some(Stopping {
                    reason,
                    kill_at: Instant::now() + self.spec.grace,
                    killed: false,
                });
            }
            Some(s) if !s.killed && Instant::now() >= s.kill_at => {
                self.ctx.log_with(
                    LogLevel::Warning,
                    "grace period over: sending SIGKILL to the process group",
                    json!({"event": "command-stop", "signal": "SIGKILL", "pgid": self.pgid}),
                );
                let _ = kill::signal_group(self.pgid, SIGKILL);
                s.killed = true;
            }
            Some(_) => {}
        }
    }

    fn timeout_text(&self) -> String {
        format!(
            "timed out after {} s",
            self.spec.timeout.map_or(0, |t| t.as_secs())
        )
    }

    /// Logs a line unless the run's cap is reached (then counts it).
    fn keep(&mut self, level: LogLevel, message: &str, context: Option<serde_json::Value>) {
        if self.logged >= self.spec.max_log_lines {
            self.dropped += 1;
            return;
        }
        self.logged += 1;
        match context {
            Some(c) => self.ctx.log_with(level, message, c),
            None => self.ctx.log(level, message),
        }
    }

    fn line(&mut self, stream: Stream, line: String) {
        if stream == Stream::Stderr {
            if self.stderr_tail.len() == config::COMMAND_STDERR_TAIL {
                self.stderr_tail.pop_front();
            }
            self.stderr_tail
                .push_back(line.chars().take(TAIL_LINE_CHARS).collect());
            self.keep(LogLevel::Warning, &line, None);
            return;
        }
        match protocol::parse(&line) {
            Parsed::Text => self.keep(LogLevel::Info, &line, None),
            Parsed::Malformed(why) => {
                self.keep(LogLevel::Info, &line, None);
                self.keep(
                    LogLevel::Warning,
                    &format!("malformed progress line kept as text: {why}"),
                    Some(json!({"event": "protocol-error", "reason": why})),
                );
            }
            Parsed::Commands(cmds) => {
                for c in cmds {
                    self.apply(c);
                }
            }
        }
    }

    fn apply(&mut self, c: Command) {
        match c {
            Command::Stage(s) => self.ctx.stage(&s),
            Command::Total { total, unit } => self.ctx.set_total(total, &unit),
            Command::Progress(n) => self.ctx.set_progress(n),
            Command::Inc(n) => self.ctx.add(n),
            Command::Outcome(list) => {
                for (k, n) in list {
                    self.ctx.outcome(&k, n);
                }
            }
            Command::Log {
                level,
                message,
                context,
            } => self.keep(level, &message, context),
        }
    }

    /// The run's result from how the program ended.
    fn result(
        &self,
        status: Option<ExitStatus>,
        stop: Option<StopReason>,
        took: Duration,
    ) -> Result<(), JobError> {
        let tail: Vec<&String> = self.stderr_tail.iter().collect();
        match stop {
            Some(StopReason::Cancel) => return Err(JobError::Cancelled),
            Some(StopReason::Timeout) => {
                let secs = self.spec.timeout.map_or(0, |t| t.as_secs());
                return Err(JobError::new(self.timeout_text())
                    .with_context(json!({"timeoutSecs": secs, "stderrTail": tail})));
            }
            None => {}
        }
        let Some(status) = status else {
            return Err(JobError::new("the program's exit status is unknown"));
        };
        let took = format!("{:.1} s", took.as_secs_f64());
        if status.success() {
            self.ctx
                .info(&format!("program exited with code 0 after {took}"));
            return Ok(());
        }
        let (head, context) = match (status.code(), status.signal()) {
            (Some(code), _) => (
                format!("exited with code {code}"),
                json!({"exitCode": code, "stderrTail": tail}),
            ),
            (None, Some(sig)) => (
                format!("killed by signal {sig} ({})", kill::signal_name(sig)),
                json!({"signal": sig, "signalName": kill::signal_name(sig), "stderrTail": tail}),
            ),
            (None, None) => (
                format!("ended abnormally ({status})"),
                json!({"stderrTail": tail}),
            ),
        };
        let mut message = head;
        for l in &tail {
            message.push('\n');
            message.push_str(l);
        }
        Err(JobError::new(message).with_context(context))
    }
}
