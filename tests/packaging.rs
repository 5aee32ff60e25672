//! The server install: `packaging/install.sh` places the binary and the
//! systemd unit, the units pass `systemd-analyze verify`, the stop timeout
//! leaves the worker its whole drain, and `jobmgr completions` gives shells
//! scripts that complete.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::TestDb;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/install.sh")
}

fn unit_file(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("packaging/systemd")
            .join(name),
    )
    .expect("read the unit")
}

fn unit_text() -> String {
    unit_file("jobmgr.service")
}

/// Runs the install script into the staging root `dest`.
fn install(dest: &Path, binary: &str, prefix: &str) -> Output {
    Command::new("sh")
        .arg(script())
        .arg(binary)
        .env("DESTDIR", dest)
        .env("PREFIX", prefix)
        .output()
        .expect("run install.sh")
}

#[test]
fn install_places_the_binary_and_a_unit_that_follows_the_prefix() {
    let db = TestDb::new("install");
    let dest = db.dir.join("root");
    let out = install(&dest, common::BIN, "/opt/jobmgr");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = dest.join("opt/jobmgr/bin/jobmgr");
    assert_eq!(
        std::fs::read(&bin).unwrap(),
        std::fs::read(common::BIN).unwrap()
    );
    let mode = std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    let unit = std::fs::read_to_string(dest.join("etc/systemd/system/jobmgr.service")).unwrap();
    assert!(
        unit.lines()
            .any(|l| l == "ExecStart=/opt/jobmgr/bin/jobmgr serve"),
        "{unit}"
    );
    // Nothing outside the staging root: no user, no systemctl.
    assert!(String::from_utf8_lossy(&out.stdout).contains("installed"));
}

#[test]
fn install_refuses_a_missing_binary_and_places_nothing() {
    let db = TestDb::new("install-missing");
    let dest = db.dir.join("root");
    let missing = db.dir.join("no-such-jobmgr");
    let out = install(&dest, missing.to_str().unwrap(), "/usr/local");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.trim().starts_with("install.sh: no executable at")
            && err.contains("cargo build --release"),
        "{err}"
    );
    assert!(!dest.exists());
}

/// `systemd-analyze verify` on `text` saved as `name`: clean (it reports
/// unknown keys and bad values on stderr but exits 0), or None when the
/// tool is missing.
fn verify(dir: &Path, name: &str, text: &str) -> Option<()> {
    Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .ok()?;
    let unit = dir.join(name);
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "{name}: {said}"
    );
    Some(())
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    let db = TestDb::new("unit-verify");
    // verify checks that ExecStart's program exists: point it at the
    // binary under test (and at any executable for litestream's).
    let jobmgr = unit_text().replace("/usr/local/bin/jobmgr", common::BIN);
    let litestream =
        unit_file("litestream-jobmgr.service").replace("/usr/local/bin/litestream", common::BIN);
    if verify(&db.dir, "jobmgr.service", &jobmgr)
        .and_then(|()| verify(&db.dir, "litestream-jobmgr.service", &litestream))
        .is_none()
    {
        eprintln!(
            "\n*** SKIPPED: systemd-analyze is not installed, the units were not verified ***\n"
        );
    }
}

/// Seconds in a systemd time span such as `90s`, `2min` or `90`.
fn seconds(span: &str) -> f64 {
    let span = span.trim();
    let digits: String = span.chars().take_while(char::is_ascii_digit).collect();
    let n: f64 = digits.parse().expect("a number");
    match &span[digits.len()..] {
        "" | "s" => n,
        "min" => n * 60.0,
        other => panic!("unexpected unit {other:?} in {span:?}"),
    }
}

#[test]
fn the_stop_timeout_outlasts_the_default_drain_and_sigterm_reaches_serve_alone() {
    let unit = unit_text();
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("the unit sets {key}"))
            .to_string()
    };
    let help = Command::new(common::BIN)
        .args(["worker", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let drain: f64 = help
        .lines()
        .find(|l| l.contains("--drain-timeout"))
        .and_then(|l| l.split("[default: ").nth(1))
        .and_then(|d| d.split(']').next())
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("worker --help shows the drain default:\n{help}"));
    // The drain, then the cancel grace (5 s) and a command's grace (10 s).
    assert!(
        seconds(&value("TimeoutStopSec")) > drain + 15.0,
        "TimeoutStopSec {} against a {drain} s drain",
        value("TimeoutStopSec")
    );
    // serve drains its worker itself; systemd must not signal the jobs.
    assert_eq!(value("KillMode"), "mixed");
    assert_eq!(value("User"), "jobmgr");
    assert_eq!(value("StateDirectory"), "jobmgr");
}

/// What bash's completion offers for the words typed so far.
fn bash_completes(words: &str) -> String {
    let script = format!(
        "source <(\"$0\" completions bash) || exit 1; COMP_WORDS=({words}); \
         COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); \
         _jobmgr jobmgr \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
         echo \"${{COMPREPLY[@]}}\""
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(common::BIN)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn completions_complete_subcommands_and_flags_in_bash() {
    assert_eq!(bash_completes("jobmgr enq"), "enqueue");
    let flags = bash_completes("jobmgr jobs --st");
    assert!(flags.split(' ').any(|f| f == "--status"), "{flags}");
}

#[test]
fn completions_exist_for_zsh_and_fish_and_refuse_an_unknown_shell() {
    let script = |shell: &str| {
        let out = Command::new(common::BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, zsh, _) = script("zsh");
    assert_eq!(code, Some(0));
    assert!(zsh.starts_with("#compdef jobmgr"), "{zsh}");
    let (code, fish, _) = script("fish");
    assert_eq!(code, Some(0));
    assert!(
        fish.contains("complete -c jobmgr") && fish.contains("enqueue"),
        "{fish}"
    );
    let (code, out, err) = script("tcsh");
    assert_eq!(code, Some(2));
    assert!(out.is_empty());
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}
