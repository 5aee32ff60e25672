//! Command jobs from the config file, through the CLI and the database:
//! parameters arrive byte for byte without a shell, the environment is the
//! allowlist only, only fds 0-2 are open, the progress protocol reaches
//! JobRun, output is bounded, and exit codes and signals become the error.
//! (Stopping programs is in `command_stop.rs`.)

mod common;

use std::path::PathBuf;

use common::command::{WAIT, logs, python, setup, toml_str};
use common::{TestDb, Worker};
use serde_json::Value;

/// Starts a worker whose environment holds a secret the jobs must not see.
fn worker_with_secret(db: &TestDb) -> Worker {
    let mut cmd = db.cmd();
    cmd.arg("worker").env("SECRET_TOKEN", "hunter2");
    db.spawn_worker_cmd(cmd, "worker.log")
}

const PROBE: &str = r#"
import json, os, sys
out = os.path.join(sys.argv[1], os.environ["JOBMGR_RUN_ID"])
with open("/proc/self/cmdline", "rb") as f:
    cmdline = f.read()
with open("/proc/self/environ", "rb") as f:
    environ = f.read()
with open(out + ".cmdline", "wb") as f:
    f.write(cmdline)
with open(out + ".environ", "wb") as f:
    f.write(environ)
fds = []
for fd in range(1024):
    try:
        os.fstat(fd)
        fds.append(fd)
    except OSError:
        pass
ppid = os.getppid()
def thp(pid):
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("THP_enabled:"):
                return line.split()[1]
    return None
info = {
    "thp": thp("self"),
    "parent_thp": thp(ppid),
    "fds": fds,
    "parent_exe": os.readlink("/proc/%d/exe" % ppid),
    "pid": os.getpid(),
    "pgid": os.getpgid(0),
    "stdin": os.readlink("/proc/self/fd/0"),
    "cwd": os.getcwd(),
}
with open(out + ".json", "w") as f:
    json.dump(info, f)
"#;

/// This process's `THP_enabled` (what a worker it starts inherits).
fn thp_enabled() -> Value {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("THP_enabled:").map(|v| v.trim().to_string()))
        })
        .map_or(Value::Null, Value::String)
}

const PROBE_TOML: &str = r#"
[jobs.probe]
description = "writes what it received"
command = [PY, SCRIPT, OUTDIR, "{param:value}", "--flag", "{param:value}"]
env = ["PATH"]
set_env = { FIXED = "yes" }

[jobs.probe.parameters.value]
type = "string"
required = true

[jobs.probe.parameters.note]
type = "string"
default = "-not-in-argv"
"#;

#[test]
fn hostile_values_arrive_byte_for_byte_without_a_shell() {
    let db = TestDb::new("cmd-hostile");
    setup(&db, PROBE, PROBE_TOML);
    let values = [
        "; id",
        "$(id)",
        "`id` && rm -rf /",
        "it's \"quoted\" \\ back",
        "line one\nline two\r\n",
        "ünïcødé ✓ 日本語 🚀",
        "*",
        "  spaces  ",
        "",
    ];
    let ids: Vec<i64> = values
        .iter()
        .map(|v| db.enqueue("probe", &[&format!("value={v}")]))
        .collect();
    let _w = worker_with_secret(&db);
    for id in &ids {
        db.wait_status(*id, "COMPLETED", WAIT);
    }
    let bin = std::fs::canonicalize(common::BIN).expect("binary path");
    for (id, v) in ids.iter().zip(values) {
        let base = db.dir.join(id.to_string());
        let cmdline = std::fs::read(base.with_extension("cmdline")).expect("cmdline");
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let outdir = db.dir.display().to_string();
        let expected: Vec<&[u8]> = vec![
            outdir.as_bytes(),
            v.as_bytes(),
            b"--flag",
            v.as_bytes(),
            b"",
        ];
        assert_eq!(&args[2..], &expected[..], "argv of run {id} for {v:?}");

        let environ = std::fs::read(base.with_extension("environ")).expect("environ");
        let mut env: Vec<(String, Vec<u8>)> = environ
            .split(|b| *b == 0)
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let eq = kv.iter().position(|b| *b == b'=').expect("NAME=value");
                (
                    String::from_utf8_lossy(&kv[..eq]).into_owned(),
                    kv[eq + 1..].to_vec(),
                )
            })
            .collect();
        env.sort();
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "FIXED",
                "JOBMGR_ATTEMPT",
                "JOBMGR_JOB_NAME",
                "JOBMGR_PARAM_NOTE",
                "JOBMGR_PARAM_VALUE",
                "JOBMGR_RUN_ID",
                "PATH"
            ],
            "only the allowlist, the fixed values and jobmgr's own (no SECRET_TOKEN)"
        );
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("JOBMGR_PARAM_VALUE").as_deref(), Some(v.as_bytes()));
        assert_eq!(
            get("JOBMGR_PARAM_NOTE").as_deref(),
            Some(&b"-not-in-argv"[..])
        );
        assert_eq!(get("JOBMGR_RUN_ID"), Some(id.to_string().into_bytes()));
        assert_eq!(get("JOBMGR_JOB_NAME").as_deref(), Some(&b"probe"[..]));
        assert_eq!(get("JOBMGR_ATTEMPT").as_deref(), Some(&b"1"[..]));

        let info: Value =
            serde_json::from_slice(&std::fs::read(base.with_extension("json")).expect("json"))
                .expect("probe json");
        assert_eq!(
            PathBuf::from(info["parent_exe"].as_str().unwrap_or_default()),
            bin,
            "the program's parent is jobmgr itself: no shell in between"
        );
        assert_eq!(
            info["fds"],
            serde_json::json!([0, 1, 2]),
            "only fds 0-2 are open"
        );
        assert_eq!(
            info["pgid"], info["pid"],
            "the program leads its own process group"
        );
        assert_eq!(info["stdin"], "/dev/null");
        // jobmgr runs without transparent huge pages; the program gets the
        // setting jobmgr inherited back.
        assert_eq!(info["parent_thp"], "0", "jobmgr opted out of huge pages");
        assert_eq!(info["thp"], thp_enabled(), "the program's huge-page flag");
        let dir = std::fs::canonicalize(&db.dir).expect("test dir");
        assert_eq!(
            info["cwd"].as_str().map(PathBuf::from),
            Some(dir),
            "the default working directory is the config file's"
        );
    }
}

#[test]
fn values_that_read_as_options_are_refused_for_argv_only() {
    let db = TestDb::new("cmd-dash");
    setup(&db, PROBE, PROBE_TOML);
    let err = db.fails(&["enqueue", "probe", "-p", "value=--rf"]);
    assert!(
        err.contains(
            "parameter 'value': must not start with '-' (it is passed as a command argument)"
        ),
        "{err}"
    );
    // `note` is not in argv: a leading dash is fine there.
    db.enqueue("probe", &["value=ok", "note=-x"]);

    let allowed = PROBE_TOML.replace("required = true", "required = true\nallow_dash = true");
    std::fs::write(
        db.dir.join("jobmgr.toml"),
        allowed
            .replace("PY", &toml_str(&python()))
            .replace("SCRIPT", "\"x.py\"")
            .replace("OUTDIR", "\"/tmp\""),
    )
    .expect("config");
    db.enqueue("probe", &["value=--rf"]);
}

const PROTOCOL: &str = r###"
import json, sys
def say(obj):
    print("##jobmgr " + json.dumps(obj), flush=True)
say({"stage": "Scanning"})
for i in range(3):
    say({"inc": 1})
print("plain output line", flush=True)
say({"stage": "Processing", "total": 40, "unit": "users"})
say({"progress": 30})
say({"inc": 2, "outcome": {"updates": 5, "inserts": 2}})
say({"outcome": {"updates": 1, "errors": 1}})
say({"log": "user 7 has no email", "level": "warning", "context": {"user": 7}})
print("##jobmgr {this is not json", flush=True)
print('##jobmgr {"stag": "typo"}', flush=True)
sys.stderr.write("a warning on stderr\n")
sys.stderr.flush()
"###;

#[test]
fn progress_protocol_reaches_the_run_and_malformed_lines_stay_text() {
    let db = TestDb::new("cmd-protocol");
    setup(&db, PROTOCOL, "[jobs.proto]\ncommand = [PY, SCRIPT]\n");
    let id = db.enqueue("proto", &[]);
    let _w = db.spawn_worker(&[]);
    db.wait_status(id, "COMPLETED", WAIT);
    let row = &db.query(&format!(
        "SELECT currentStage, entitiesProcessed, entitiesTotal, entitiesUnit, outcomeSummary \
         FROM JobRun WHERE id = {id}"
    ))[0];
    assert_eq!(row[0], "Processing");
    assert_eq!(row[1], 32);
    assert_eq!(row[2], 40);
    assert_eq!(row[3], "users");
    let outcome: Value = serde_json::from_str(row[4].as_str().unwrap_or("{}")).expect("outcome");
    assert_eq!(
        outcome,
        serde_json::json!({"updates": 6, "inserts": 2, "errors": 1})
    );

    let lines = logs(&db, id);
    let has = |level: &str, stage: &str, msg: &str| {
        lines
            .iter()
            .any(|(l, s, m)| l == level && s == stage && m == msg)
    };
    assert!(has("info", "Scanning", "plain output line"), "{lines:#?}");
    assert!(
        has("warning", "Processing", "user 7 has no email"),
        "{lines:#?}"
    );
    assert!(
        has("info", "Processing", "##jobmgr {this is not json"),
        "{lines:#?}"
    );
    assert!(
        has("info", "Processing", r#"##jobmgr {"stag": "typo"}"#),
        "{lines:#?}"
    );
    assert!(
        has(
            "warning",
            "Processing",
            "malformed progress line kept as text: unknown key 'stag' (did you mean 'stage'?)"
        ),
        "{lines:#?}"
    );
    // stdout and stderr are read side by side: the stderr line carries the
    // stage current when it was read, which depends on that race.
    assert!(
        lines
            .iter()
            .any(|(l, _, m)| l == "warning" && m == "a warning on stderr"),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|(_, _, m)| m.contains(r#"{"inc": 1}"#)),
        "protocol lines are not logged"
    );
    let ctx = db.scalar(&format!(
        "SELECT context FROM JobLog WHERE jobRunId = {id} AND message = 'user 7 has no email'"
    ));
    assert_eq!(ctx, r#"{"user":7}"#);
}

const NOISY: &str = r#"
import sys
out = sys.stdout.buffer
out.write(b"x" * 20000 + b"\n")
out.write(b"bin \xff\xfe end\n")
for i in range(100):
    out.write(b"line %d\n" % i)
out.flush()
"#;

#[test]
fn long_binary_and_excess_output_is_bounded() {
    let db = TestDb::new("cmd-bounded");
    setup(
        &db,
        NOISY,
        "[jobs.noisy]\ncommand = [PY, SCRIPT]\nmax_log_lines = 50\n",
    );
    let id = db.enqueue("noisy", &[]);
    let _w = db.spawn_worker(&[]);
    db.wait_status(id, "COMPLETED", WAIT);
    let lines = logs(&db, id);
    let long = format!("{} …[line cut: 11808 more bytes]", "x".repeat(8192));
    assert!(
        lines.iter().any(|(l, _, m)| l == "info" && *m == long),
        "long line cut at 8 KiB"
    );
    assert!(
        lines
            .iter()
            .any(|(_, _, m)| m == "bin \u{fffd}\u{fffd} end"),
        "lossy UTF-8"
    );
    let kept = lines
        .iter()
        .filter(|(_, _, m)| m.starts_with("line "))
        .count();
    assert_eq!(
        kept, 48,
        "50 lines kept: the long one, the binary one and 48 more"
    );
    assert!(lines.iter().any(|(_, _, m)| m == "line 47"));
    assert!(!lines.iter().any(|(_, _, m)| m == "line 48"));
    assert!(
        lines.iter().any(|(l, _, m)| l == "warning"
            && m == "52 more output lines dropped (limit of 50 lines per run)"),
        "{lines:#?}"
    );
}

#[test]
fn a_program_that_closes_its_output_is_still_waited_for() {
    let db = TestDb::new("cmd-closed");
    let script = "import os, sys, time\nos.close(1)\nos.close(2)\ntime.sleep(0.5)\nos._exit(4)\n";
    setup(&db, script, "[jobs.quiet]\ncommand = [PY, SCRIPT]\n");
    let id = db.enqueue("quiet", &[]);
    let _w = db.spawn_worker(&[]);
    db.wait_status(id, "FAILED", WAIT);
    assert_eq!(
        db.scalar(&format!("SELECT error FROM JobRun WHERE id = {id}")),
        "exited with code 4"
    );
}

#[test]
fn exit_codes_and_signals_become_the_error() {
    let db = TestDb::new("cmd-exit");
    let script = r#"
import os, sys
if sys.argv[1] == "code":
    for i in range(15):
        sys.stderr.write("problem %d\n" % i)
    sys.exit(3)
os.kill(os.getpid(), 9)
"#;
    setup(
        &db,
        script,
        "[jobs.fail]\ncommand = [PY, SCRIPT, \"{param:how}\"]\n[jobs.fail.parameters.how]\ntype = \"enum\"\nchoices = [\"code\", \"signal\"]\nrequired = true\n",
    );
    let code = db.enqueue("fail", &["how=code"]);
    let signal = db.enqueue("fail", &["how=signal"]);
    let _w = db.spawn_worker(&[]);
    db.wait_status(code, "FAILED", WAIT);
    db.wait_status(signal, "FAILED", WAIT);
    let error = db.scalar(&format!("SELECT error FROM JobRun WHERE id = {code}"));
    let tail: Vec<String> = (5..15).map(|i| format!("problem {i}")).collect();
    assert_eq!(error, format!("exited with code 3\n{}", tail.join("\n")));
    let ctx: Value = serde_json::from_str(&db.scalar(&format!(
        "SELECT errorContext FROM JobRun WHERE id = {code}"
    )))
    .expect("errorContext");
    assert_eq!(ctx["exitCode"], 3);
    assert_eq!(ctx["stderrTail"].as_array().map(Vec::len), Some(10));
    assert_eq!(
        db.scalar(&format!("SELECT error FROM JobRun WHERE id = {signal}")),
        "killed by signal 9 (SIGKILL)"
    );
}
