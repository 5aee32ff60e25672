//! Starting a command job's program: argv from the declaration with
//! parameter values as whole elements (no shell, no splicing), a cleared
//! environment with only the allowlist, the fixed values and the run's
//! identity, stdin closed, and its own process group so the whole tree can
//! be signalled. std and SQLite open every descriptor with O_CLOEXEC, but
//! the worker itself may have inherited descriptors without it (a CI
//! runner's jobserver pipe, a terminal multiplexer's fds); those are marked
//! close-on-exec in the child just before exec, so the program gets only
//! fds 0-2.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

use super::{Arg, CommandSpec, param_env_name};

/// Who the run is, as the program sees it in its environment.
pub struct RunIdentity<'a> {
    pub run_id: i64,
    pub job_name: &'a str,
    pub attempt: i64,
    pub params: &'a Map<String, Value>,
}

/// A parameter value as text: strings as they are, numbers in decimal,
/// booleans as `true`/`false`.
pub fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The argv after the program, with placeholders replaced. Refuses a value
/// that would read as an option; the parameter check refuses it earlier,
/// this guards runs enqueued before the config changed.
pub fn arguments(spec: &CommandSpec, params: &Map<String, Value>) -> Result<Vec<String>, String> {
    spec.args
        .iter()
        .map(|a| match a {
            Arg::Literal(s) => Ok(s.clone()),
            Arg::Param(name) => {
                let text = params
                    .get(name)
                    .and_then(value_text)
                    .ok_or_else(|| format!("parameter '{name}' has no value for the command line"))?;
                if text.starts_with('-') && !spec.dash_params.iter().any(|p| p == name) {
                    return Err(format!(
                        "parameter '{name}': must not start with '-' (it is passed as a command argument)"
                    ));
                }
                Ok(text)
            }
        })
        .collect()
}

/// Finds a bare program name in the worker's PATH (the program's own
/// environment may not have PATH at all).
pub fn resolve_program(program: &str) -> Result<PathBuf, String> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|c| is_executable(c))
        .ok_or_else(|| format!("program '{program}' not found in the worker's PATH"))
}

fn is_executable(p: &Path) -> bool {
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The environment of the program: allowlisted variables from the worker,
/// the fixed ones, then jobmgr's own (which win).
pub fn environment(spec: &CommandSpec, who: &RunIdentity<'_>) -> Vec<(String, OsString)> {
    let mut env: Vec<(String, OsString)> = Vec::new();
    for name in &spec.pass_env {
        if let Some(v) = std::env::var_os(name) {
            env.push((name.clone(), v));
        }
    }
    for (k, v) in &spec.set_env {
        env.push((k.clone(), v.into()));
    }
    env.push(("JOBMGR_RUN_ID".into(), who.run_id.to_string().into()));
    env.push(("JOBMGR_JOB_NAME".into(), who.job_name.into()));
    env.push(("JOBMGR_ATTEMPT".into(), who.attempt.to_string().into()));
    for (name, v) in who.params {
        if let Some(text) = value_text(v) {
            env.push((param_env_name(name), text.into()));
        }
    }
    env
}

/// The configured process, ready to spawn.
pub fn command(
    spec: &CommandSpec,
    program: &Path,
    args: &[String],
    env: Vec<(String, OsString)>,
) -> Command {
    let mut c = Command::new(program);
    c.args(args)
        .env_clear()
        .envs(env)
        .current_dir(&spec.workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    prepare_child(&mut c);
    c
}

/// Most descriptors the fallback marks when `close_range` is missing.
const FALLBACK_MAX_FD: i32 = 65_536;

/// Marks every descriptor above 2 close-on-exec in the child (marking
/// instead of closing keeps std's own CLOEXEC error pipe working), and
/// gives it back the huge-page setting jobmgr inherited.
#[allow(unsafe_code)]
pub(crate) fn prepare_child(c: &mut Command) {
    let hook = || {
        crate::memory::restore_in_child();
        // close_range(2) with CLOSE_RANGE_CLOEXEC (Linux 5.11+); older
        // kernels get a loop of fcntl calls, both async-signal-safe.
        // SAFETY: plain syscalls on integers; no allocation, no locks, no
        // memory of the parent is touched between fork and exec.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        if rc != 0 {
            for fd in 3..FALLBACK_MAX_FD {
                // SAFETY: as above; EBADF for unused numbers is ignored.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
        Ok(())
    };
    // SAFETY: the hook only makes async-signal-safe syscalls (see above).
    unsafe { c.pre_exec(hook) };
}
