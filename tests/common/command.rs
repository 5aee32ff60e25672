//! Helpers for the command-job tests: the real python3, a job script and
//! config written into the test's directory, process liveness, log reading.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{TestDb, wait_for};

/// How long the command-job tests wait for anything.
pub const WAIT: Duration = Duration::from_secs(30);

/// The real python3 interpreter (not a wrapper script such as a version
/// manager's shim, which would be a shell between jobmgr and the job).
pub fn python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    let exe = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        exe.starts_with('/'),
        "python3 reports its executable: {exe:?}"
    );
    exe
}

/// Writes `script` into the test dir and a config with `job_toml` (where
/// `PY` and `SCRIPT` stand for the interpreter and the script path).
pub fn setup(db: &TestDb, script: &str, job_toml: &str) -> PathBuf {
    let script_path = db.dir.join("job.py");
    std::fs::write(&script_path, script).expect("write script");
    let toml = job_toml
        .replace("PY", &toml_str(&python()))
        .replace("SCRIPT", &toml_str(&script_path.display().to_string()))
        .replace("OUTDIR", &toml_str(&db.dir.display().to_string()));
    std::fs::write(db.dir.join("jobmgr.toml"), toml).expect("write config");
    script_path
}

pub fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("json string")
}

/// Whether `pid` is a live process (a zombie counts as gone).
pub fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

pub fn read_pids(path: &Path) -> Vec<i64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

pub fn logs(db: &TestDb, id: i64) -> Vec<(String, String, String)> {
    db.query(&format!(
        "SELECT level, coalesce(stage, ''), message FROM JobLog WHERE jobRunId = {id} ORDER BY timestamp, id"
    ))
    .into_iter()
    .map(|r| {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        (s(&r[0]), s(&r[1]), s(&r[2]))
    })
    .collect()
}

/// Starts a grandchild `sleep`, records both pids, then waits; with
/// `stubborn` it ignores SIGTERM.
pub fn sleeper(stubborn: bool) -> String {
    format!(
        r#"
import os, signal, subprocess, sys, time
if {stubborn}:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen(["/bin/sleep", "300"])
with open(os.path.join(sys.argv[1], "pids.tmp"), "w") as f:
    f.write("%d %d" % (os.getpid(), child.pid))
os.rename(os.path.join(sys.argv[1], "pids.tmp"), os.path.join(sys.argv[1], "pids"))
print('##jobmgr {{"stage": "Waiting"}}', flush=True)
time.sleep(300)
"#,
        stubborn = if stubborn { "True" } else { "False" }
    )
}

pub fn wait_pids(db: &TestDb) -> Pids {
    let file = db.dir.join("pids");
    wait_for("the job to record its pids", WAIT, || {
        read_pids(&file).len() == 2
    });
    let pids = Pids(read_pids(&file));
    assert!(pids.iter().all(|p| alive(*p)), "both processes run");
    pids
}

/// A job's pids; whatever still runs when the test ends (a failed test)
/// is killed, so one failure does not leave processes behind.
pub struct Pids(pub Vec<i64>);

impl std::ops::Deref for Pids {
    type Target = Vec<i64>;
    fn deref(&self) -> &Vec<i64> {
        &self.0
    }
}

impl Drop for Pids {
    fn drop(&mut self) {
        for pid in self.0.iter().filter(|p| alive(**p)) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}
