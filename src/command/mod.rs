//! Command jobs: a job type whose work is an external program declared in
//! the config file. This module owns the declaration ([`CommandSpec`]);
//! `spawn` starts the program (own process group, no shell, cleared
//! environment), `output` reads its stdout/stderr in bounded lines,
//! `protocol` parses progress lines, `supervise` drives one run, and `kill`
//! signals process groups, including ones left by a dead worker.

pub mod kill;
pub mod output;
pub mod protocol;
pub mod spawn;
mod supervise;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::registry::Handler;

/// The placeholder that stands for a whole parameter value in argv:
/// `{param:NAME}`, alone in its element.
pub(crate) const PLACEHOLDER_OPEN: &str = "{param:";

/// One argv element after the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Passed as written.
    Literal(String),
    /// Replaced by the parameter's whole value (never spliced into text).
    Param(String),
}

impl Arg {
    /// Parses one argv element of the config: `{param:NAME}` is a
    /// placeholder; a placeholder mixed with other text is refused, because
    /// it would splice a value into a string.
    pub fn parse(element: &str) -> Result<Arg, String> {
        if let Some(name) = element
            .strip_prefix(PLACEHOLDER_OPEN)
            .and_then(|rest| rest.strip_suffix('}'))
        {
            if name.is_empty() || name.contains(['{', '}']) {
                return Err(format!("'{element}' is not a valid placeholder"));
            }
            return Ok(Arg::Param(name.to_string()));
        }
        if element.contains(PLACEHOLDER_OPEN) {
            return Err(format!(
                "'{element}' mixes a placeholder with text; a placeholder must be a whole \
                 argument, e.g. [\"--input\", \"{{param:input}}\"]"
            ));
        }
        Ok(Arg::Literal(element.to_string()))
    }
}

/// How to run one command job type.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// argv\[0\]: an absolute path, or a name looked up in the worker's PATH.
    pub program: String,
    pub args: Vec<Arg>,
    /// Parameters whose values may start with `-` in argv (`allow_dash`).
    pub dash_params: Vec<String>,
    /// The working directory of the program.
    pub workdir: PathBuf,
    /// Names of worker environment variables passed through.
    pub pass_env: Vec<String>,
    /// Fixed environment variables.
    pub set_env: Vec<(String, String)>,
    /// Killed (SIGTERM, then SIGKILL) after this long.
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL on cancel or timeout.
    pub grace: Duration,
    /// Most output lines logged per run.
    pub max_log_lines: u64,
}

impl CommandSpec {
    /// The parameter names argv refers to.
    pub fn argv_params(&self) -> impl Iterator<Item = &str> {
        self.args.iter().filter_map(|a| match a {
            Arg::Param(p) => Some(p.as_str()),
            Arg::Literal(_) => None,
        })
    }
}

/// The environment variable that carries parameter `name`:
/// `JOBMGR_PARAM_` + the name uppercased, other characters as `_`.
pub fn param_env_name(name: &str) -> String {
    let mut out = String::from("JOBMGR_PARAM_");
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    out
}

/// Process groups of programs running now in this process, so a worker
/// that exits without waiting for them (abandoned after the grace period,
/// or declared dead) kills them instead of leaving them behind.
static LIVE_GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn live_groups() -> std::sync::MutexGuard<'static, BTreeSet<i32>> {
    // Plain data: a panic elsewhere cannot leave it inconsistent.
    LIVE_GROUPS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends SIGKILL to every command job's group still running here.
pub fn kill_live_groups() {
    let groups: Vec<i32> = live_groups().iter().copied().collect();
    for pgid in groups {
        match kill::signal_group(pgid, kill::SIGKILL) {
            Ok(true) => log::warn!("killed process group {pgid} of an unfinished command job"),
            Ok(false) => {}
            Err(e) => log::warn!("kill process group {pgid}: {e}"),
        }
    }
}

/// The handler that runs `spec` for each run of its job type.
pub fn handler(spec: CommandSpec) -> Handler {
    let spec = Arc::new(spec);
    Arc::new(move |ctx| supervise::run(ctx, &spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_whole_elements_only() {
        assert_eq!(Arg::parse("{param:limit}"), Ok(Arg::Param("limit".into())));
        assert_eq!(Arg::parse("--limit"), Ok(Arg::Literal("--limit".into())));
        assert_eq!(
            Arg::parse("{literal}"),
            Ok(Arg::Literal("{literal}".into()))
        );
        assert!(Arg::parse("--limit={param:limit}").is_err());
        assert!(Arg::parse("{param:}").is_err());
    }

    #[test]
    fn env_names_are_uppercased() {
        assert_eq!(param_env_name("max-items"), "JOBMGR_PARAM_MAX_ITEMS");
        assert_eq!(param_env_name("path"), "JOBMGR_PARAM_PATH");
    }
}
