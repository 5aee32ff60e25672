//! Signals to process groups: SIGTERM/SIGKILL for cancel and timeout, and
//! the SIGKILL that recovery sends to a group a dead worker left behind,
//! after checking that the group still belongs to that run.

use std::io;

/// Signal numbers jobmgr sends.
pub use libc::{SIGKILL, SIGTERM};

/// Sends `sig` to every process in group `pgid`. Ok(false) when the group
/// no longer exists.
pub fn signal_group(pgid: i32, sig: i32) -> io::Result<bool> {
    // kill(-1) would signal every process we may signal, kill(0) our own
    // group: neither can ever be a job's group.
    if pgid <= 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal process group {pgid}"),
        ));
    }
    match raw_kill(-pgid, sig) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The one unsafe call: std has no way to signal a process group.
#[allow(unsafe_code)]
fn raw_kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes two integers, reads and writes none of our
    // memory, and reports failure through errno, which we read at once.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Kills the group a run of a dead worker left, if it is still there and
/// still that run's: some process in it must carry `JOBMGR_RUN_ID=<run_id>`
/// in its environment, so a recycled group id of an unrelated program is
/// never hit. Returns whether a group was killed.
pub fn kill_orphaned_group(pgid: i64, run_id: i64) -> bool {
    let Ok(pgid) = i32::try_from(pgid) else {
        return false;
    };
    if pgid <= 1 || !group_belongs_to_run(pgid, run_id) {
        return false;
    }
    match signal_group(pgid, SIGKILL) {
        Ok(killed) => killed,
        Err(e) => {
            log::warn!("kill process group {pgid} of run {run_id}: {e}");
            false
        }
    }
}

fn group_belongs_to_run(pgid: i32, run_id: i64) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    let marker = format!("JOBMGR_RUN_ID={run_id}");
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| process_group_of(*pid) == Some(pgid))
        .any(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()))
                .unwrap_or(false)
        })
}

/// The process group of `pid` from /proc/PID/stat (field 5; the command
/// name before it is in parentheses and may contain spaces).
fn process_group_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(2)?.parse().ok()
}

/// The conventional name of a signal, for "killed by signal 9 (SIGKILL)".
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => "unknown signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_signals_everyone_or_ourselves() {
        assert!(signal_group(1, SIGTERM).is_err());
        assert!(signal_group(0, SIGTERM).is_err());
        assert!(signal_group(-5, SIGTERM).is_err());
        assert!(!kill_orphaned_group(0, 1));
    }

    #[test]
    fn reads_our_own_process_group() {
        let me = std::process::id() as i32;
        assert!(process_group_of(me).is_some_and(|g| g > 0));
        assert_eq!(signal_name(9), "SIGKILL");
    }
}
