//! The files jobmgr keeps beside the database: the token file is trusted
//! only when it is a private regular file of this user's, and the
//! database, its WAL files, the lock, the token and backups are created
//! mode 0600.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{TestDb, exit_code};

const WAIT: Duration = Duration::from_secs(30);

fn token_path(db: &TestDb) -> PathBuf {
    db.dir.join("jobmgr.db.token")
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Writes a well-formed token to `path` with `mode`.
fn plant_token(path: &Path, mode: u32) {
    std::fs::write(path, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs `jobmgr serve` on `db`, which must refuse to start: it must exit
/// non-zero within the deadline (a hang is a failure, and is killed).
/// Returns its stderr.
fn serve_refuses(db: &TestDb) -> String {
    let log = db.dir.join("refused-serve.log");
    let mut child = db
        .cmd()
        .args(["serve", "--bind", "127.0.0.1:0", "--no-worker"])
        .env_remove("JOBMGR_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let code = exit_code(&mut child, WAIT);
    if code.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        code.is_some_and(|c| c != 0),
        "serve should have refused to start within {WAIT:?} (exit {code:?}); stderr:\n{stderr}"
    );
    stderr
}

/// Whether this test runs as root, found from the owner of a file it
/// creates (std has no geteuid).
fn running_as_root(db: &TestDb) -> bool {
    let probe = db.dir.join("whoami");
    std::fs::write(&probe, b"").unwrap();
    std::fs::metadata(&probe).unwrap().uid() == 0
}

#[test]
fn a_token_file_open_to_other_users_is_refused_until_chmod_600() {
    let db = TestDb::new("token-mode");
    let path = token_path(&db);
    plant_token(&path, 0o644);
    let stderr = serve_refuses(&db);
    let p = path.display();
    assert!(
        stderr.contains(&format!(
            "{p} is open to other users (mode 0644); chmod 600 {p}"
        )),
        "{stderr}"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let s = db.spawn_serve(&["--no-worker"]);
    assert_eq!(s.api.token, "ab".repeat(32), "the fixed file is used");
}

#[test]
fn a_symlinked_token_file_is_refused_and_its_target_left_alone() {
    let db = TestDb::new("token-link");
    let target = db.dir.join("elsewhere");
    plant_token(&target, 0o644);
    let path = token_path(&db);
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let stderr = serve_refuses(&db);
    let p = path.display();
    assert!(
        stderr.contains(&format!(
            "{p} is a symbolic link; remove {p} and jobmgr creates a new token file"
        )),
        "{stderr}"
    );
    assert_eq!(mode(&target), 0o644, "nothing is changed through the link");
}

#[test]
fn a_fifo_as_token_file_fails_start_up_at_once() {
    let db = TestDb::new("token-fifo");
    let path = token_path(&db);
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    let stderr = serve_refuses(&db);
    let p = path.display();
    assert!(
        stderr.contains(&format!(
            "{p} is not a regular file; remove {p} and jobmgr creates a new token file"
        )),
        "{stderr}"
    );
}

#[test]
fn a_token_file_of_another_user_is_refused() {
    let db = TestDb::new("token-owner");
    if !running_as_root(&db) {
        eprintln!(
            "SKIPPED a_token_file_of_another_user_is_refused: giving a file to another \
             user needs root, and this test does not run as root"
        );
        return;
    }
    let path = token_path(&db);
    plant_token(&path, 0o600);
    std::os::unix::fs::chown(&path, Some(1), None).unwrap();
    let stderr = serve_refuses(&db);
    let p = path.display();
    assert!(
        stderr.contains(&format!(
            "{p} belongs to user 1, not to user 0 that runs jobmgr; remove {p} and jobmgr \
             creates a new token file"
        )),
        "{stderr}"
    );
}

#[test]
fn database_wal_shm_lock_token_and_backup_are_created_private() {
    let db = TestDb::new("modes");
    // The usual umask, so that only the modes jobmgr asks for protect the
    // files.
    let cmd = db.cmd_with_limits("umask 022", &["serve", "--bind", "127.0.0.1:0"]);
    let log = db.dir.join("serve.log");
    let _s = db.spawn_server(cmd, log);
    let copy = db.dir.join("copy.db");
    let id = db.enqueue("backup-database", &[&format!("path={}", copy.display())]);
    db.wait_status(id, "COMPLETED", WAIT);
    let d = db.path.display().to_string();
    for file in [
        d.clone(),
        format!("{d}-wal"),
        format!("{d}-shm"),
        format!("{d}.lock"),
        format!("{d}.token"),
        copy.display().to_string(),
    ] {
        assert_eq!(mode(Path::new(&file)), 0o600, "mode of {file}");
    }
}

#[test]
fn an_existing_database_open_to_others_gets_a_warning_and_keeps_its_mode() {
    let db = TestDb::new("modes-warn");
    db.ok(&["migrate"]);
    std::fs::set_permissions(&db.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = db.run(&["status"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let d = db.path.display();
    // SQLite gives the WAL files the database's mode, so whether they are
    // named too depends only on whether they exist when it looks.
    let warning = stderr
        .lines()
        .find(|l| l.contains("open to other users: "))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert!(
        warning.contains(&format!("open to other users: {d}"))
            && warning.contains("the database holds job parameters, logs and the audit trail")
            && warning.contains(&format!("to keep it private: chmod 600 {d}")),
        "{warning}"
    );
    assert_eq!(mode(&db.path), 0o644);
}
