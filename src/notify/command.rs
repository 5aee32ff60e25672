//! A `command = [...]` notifier: the program is run as command jobs are
//! (argv only, no shell, a cleared environment with only the `env`
//! allowlist and the event, stdin from /dev/null, its own process group,
//! only fds 0-2), and killed, group and all, past its timeout or when the
//! worker stops. Exit code 0 is a delivery; anything else is retried.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::command::kill::{SIGKILL, SIGTERM, signal_group};
use crate::command::spawn::{prepare_child, resolve_program};

/// `timeout_secs` when a command notifier leaves it out.
pub const TIMEOUT_SECS: u64 = 30;
/// Between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// The end of stderr kept for the error.
const STDERR_TAIL: usize = 2048;

/// How to run one command notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyCommand {
    /// The program as written, then its arguments.
    pub argv: Vec<String>,
    /// The config file's folder: the working directory, and what a
    /// relative program path is taken from.
    pub workdir: PathBuf,
    /// Variables passed through from the worker.
    pub pass_env: Vec<String>,
    pub timeout: Duration,
}

/// How a run of the program ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ran {
    Ok,
    Failed(String),
    /// The worker is stopping: the program was killed, and the attempt
    /// does not count.
    Interrupted,
}

/// Runs the program with `event_env` added to its environment.
pub fn run(cmd: &NotifyCommand, event_env: &[(String, String)], stop: &Receiver<()>) -> Ran {
    let Some((program, args)) = cmd.argv.split_first() else {
        return Ran::Failed("the command is empty".into());
    };
    let path = if program.contains('/') {
        cmd.workdir.join(program)
    } else {
        match resolve_program(program) {
            Ok(p) => p,
            Err(e) => return Ran::Failed(e),
        }
    };
    let mut c = Command::new(&path);
    c.args(args)
        .env_clear()
        .current_dir(&cmd.workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    for name in &cmd.pass_env {
        if let Some(v) = std::env::var_os(name) {
            c.env(name, v);
        }
    }
    c.envs(event_env.iter().map(|(k, v)| (k, v)));
    prepare_child(&mut c);
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => return Ran::Failed(format!("start {}: {e}", path.display())),
    };
    let pgid = i32::try_from(child.id()).unwrap_or(0);
    let stderr = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = s.read_to_end(&mut all);
            let from = all.len().saturating_sub(STDERR_TAIL);
            String::from_utf8_lossy(&all[from..]).trim().to_string()
        })
    });
    let started = Instant::now();
    let mut killed_at: Option<Instant> = None;
    let mut why: Option<Ran> = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) => {}
            Err(e) => {
                why = Some(Ran::Failed(format!("wait for {}: {e}", path.display())));
                break None;
            }
        }
        if killed_at.is_none() {
            if started.elapsed() >= cmd.timeout {
                why = Some(Ran::Failed(format!(
                    "timed out after {} s",
                    cmd.timeout.as_secs()
                )));
            } else if !matches!(
                stop.recv_timeout(Duration::from_millis(20)),
                Err(RecvTimeoutError::Timeout)
            ) {
                why = Some(Ran::Interrupted);
            }
            if why.is_some() {
                let _ = signal_group(pgid, SIGTERM);
                killed_at = Some(Instant::now());
            }
        } else {
            if killed_at.is_some_and(|t| t.elapsed() >= GRACE) {
                let _ = signal_group(pgid, SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Whatever the program left in its group goes with it (and lets go of
    // the stderr pipe).
    let _ = signal_group(pgid, SIGKILL);
    let tail = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    if let Some(why) = why {
        return why;
    }
    match status {
        Some(s) if s.success() => Ran::Ok,
        Some(s) => {
            let mut e = match s.code() {
                Some(code) => format!("exited with code {code}"),
                None => "killed by a signal".to_string(),
            };
            if !tail.is_empty() {
                e.push_str(&format!(": {tail}"));
            }
            Ran::Failed(e)
        }
        None => Ran::Failed("the program's status is unknown".into()),
    }
}
