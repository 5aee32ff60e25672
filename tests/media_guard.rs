//! media-metadata-batch against files that try to fool or stall it,
//! through the CLI, a worker process and the SQLite file: a cancel in the
//! middle of a huge (sparse) file, the per-file hash cap, a FIFO, a
//! symbolic link or another file swapped in after the scan, and a root on
//! /proc.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{TestDb, Worker, poll_until, wait_for};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(30);
/// A sparse file: 20 GB that costs no disk, and minutes to hash.
const HUGE: u64 = 20_000_000_000;

fn sparse(path: &Path, len: u64) {
    let f = std::fs::File::create(path).expect("create sparse file");
    f.set_len(len).expect("extend sparse file");
}

fn outcome(db: &TestDb, id: i64) -> Value {
    serde_json::from_str(&db.scalar(&format!(
        "SELECT outcomeSummary FROM JobRun WHERE id = {id}"
    )))
    .expect("outcome json")
}

/// Bytes the process has read through read(2) and friends so far.
fn bytes_read(w: &Worker) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/io", w.child.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until run `id` is in `stage`.
fn wait_stage(db: &TestDb, id: i64, stage: &str) {
    wait_for(&format!("run {id} to reach stage {stage}"), WAIT, || {
        db.scalar(&format!("SELECT currentStage FROM JobRun WHERE id = {id}")) == stage
    });
}

fn warnings(db: &TestDb, id: i64) -> Vec<String> {
    db.query(&format!(
        "SELECT message FROM JobLog WHERE jobRunId = {id} AND level = 'warning' ORDER BY id"
    ))
    .into_iter()
    .map(|r| r[0].as_str().unwrap_or_default().to_string())
    .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_cancel_stops_the_hash_of_a_huge_file() {
    let db = TestDb::new("media-cancel");
    let media = db.dir.join("media");
    std::fs::create_dir_all(&media).expect("mkdir");
    sparse(&media.join("huge.bin"), HUGE);
    let id = db.enqueue(
        "media-metadata-batch",
        &[
            &format!("path={}", media.display()),
            "max_hash_bytes=30000000000",
        ],
    );
    let w = db.spawn_worker(&[]);
    wait_stage(&db, id, "Processing");
    wait_for("the worker to be reading the file", WAIT, || {
        bytes_read(&w) > 20_000_000
    });
    db.ok(&["cancel", &id.to_string()]);
    // Well under the minutes the whole file takes; generous for a loaded
    // machine.
    db.wait_status(id, "CANCELLED", Duration::from_secs(15));
    let read = bytes_read(&w);
    assert!(read < HUGE / 2, "read {read} bytes of a {HUGE}-byte file");
    assert_eq!(db.scalar("SELECT count(*) FROM MediaFile"), "0");
}

#[test]
fn files_over_the_cap_are_hashed_in_part_and_say_so() {
    let db = TestDb::new("media-cap");
    let media = db.dir.join("media");
    std::fs::create_dir_all(&media).expect("mkdir");
    let big: Vec<u8> = (0..100u8).collect();
    std::fs::write(media.join("big.bin"), &big).expect("write");
    std::fs::write(media.join("small.txt"), b"tiny\n").expect("write");
    let root = std::fs::canonicalize(&media).expect("canonical");
    let big_path = root.join("big.bin").display().to_string();
    let row = |name: &str| {
        db.query(&format!(
            "SELECT size, hashedBytes, hash FROM MediaFile WHERE path = '{}'",
            root.join(name).display()
        ))
        .into_iter()
        .next()
        .expect("a MediaFile row")
    };
    let run = |cap: Option<&str>| {
        let path = format!("path={}", media.display());
        let mut params = vec![path.as_str()];
        params.extend(cap);
        let id = db.enqueue("media-metadata-batch", &params);
        db.wait_status(id, "COMPLETED", WAIT);
        id
    };
    let _w = db.spawn_worker(&[]);

    let capped = run(Some("max_hash_bytes=10"));
    assert_eq!(
        outcome(&db, capped),
        json!({"inserts": 2, "updates": 0, "deletes": 0, "skipped": 0, "partial": 1, "errors": 0})
    );
    assert_eq!(
        row("big.bin"),
        vec![json!(100), json!(10), json!(sha256_hex(&big[..10]))]
    );
    assert_eq!(
        row("small.txt"),
        vec![json!(5), json!(5), json!(sha256_hex(b"tiny\n"))]
    );
    let info = db.scalar(&format!(
        "SELECT message FROM JobLog WHERE jobRunId = {capped} AND message LIKE '%hashed the first%'"
    ));
    assert_eq!(
        info,
        format!("{big_path}: hashed the first 10 of 100 bytes (max_hash_bytes)")
    );

    // The default cap covers the whole file: the partial row is read again.
    let whole = run(None);
    assert_eq!(
        outcome(&db, whole),
        json!({"inserts": 0, "updates": 1, "deletes": 0, "skipped": 1, "partial": 0, "errors": 0})
    );
    assert_eq!(
        row("big.bin"),
        vec![json!(100), json!(100), json!(sha256_hex(&big))]
    );
    // A lower cap later does not throw the whole hash away.
    let again = run(Some("max_hash_bytes=10"));
    assert_eq!(outcome(&db, again)["skipped"], 2);
    assert_eq!(row("big.bin")[1], json!(100));

    let err = db.fails(&[
        "enqueue",
        "media-metadata-batch",
        "-p",
        "path=/tmp",
        "-p",
        "max_hash_bytes=-1",
    ]);
    assert_eq!(
        err.trim(),
        "jobmgr: parameter 'max_hash_bytes': must be at least 0, got -1"
    );
}

#[test]
fn a_fifo_link_or_other_file_swapped_in_after_the_scan_is_skipped() {
    let db = TestDb::new("media-swap");
    let media = db.dir.join("media");
    std::fs::create_dir_all(&media).expect("mkdir");
    // Sorted first: the job is still reading it when the others are swapped.
    sparse(&media.join("a-slow.bin"), HUGE);
    for name in ["b-fifo", "c-link", "d-other"] {
        std::fs::write(media.join(name), b"scanned as a regular file").expect("write");
    }
    std::fs::write(db.dir.join("secret.txt"), b"outside the directory").expect("write");
    let id = db.enqueue(
        "media-metadata-batch",
        &[
            &format!("path={}", media.display()),
            "max_hash_bytes=30000000000",
        ],
    );
    let w = db.spawn_worker(&[]);
    wait_stage(&db, id, "Processing");
    wait_for("the worker to be reading a-slow.bin", WAIT, || {
        bytes_read(&w) > 20_000_000
    });

    let swap = |name: &str, make: &dyn Fn(&Path)| {
        let tmp = db.dir.join(format!("{name}.new"));
        make(&tmp);
        std::fs::rename(&tmp, media.join(name)).expect("swap in");
    };
    swap("b-fifo", &|p| {
        let made = Command::new("mkfifo").arg(p).status().expect("run mkfifo");
        assert!(made.success(), "mkfifo failed");
    });
    swap("c-link", &|p| {
        std::os::unix::fs::symlink(db.dir.join("secret.txt"), p).expect("symlink");
    });
    swap("d-other", &|p| {
        std::fs::write(p, b"a different file").expect("write");
    });
    // Now let the job past the slow file: it shrinks under the reader.
    std::fs::File::options()
        .write(true)
        .open(media.join("a-slow.bin"))
        .and_then(|f| f.set_len(0))
        .expect("truncate");

    db.wait_status(id, "COMPLETED", WAIT);
    let root = std::fs::canonicalize(&media).expect("canonical");
    let p = |name: &str| root.join(name).display().to_string();
    assert_eq!(
        warnings(&db, id),
        [
            format!("{}: shrank while it was read; skipped", p("a-slow.bin")),
            format!(
                "{}: is now a FIFO instead of a regular file; skipped",
                p("b-fifo")
            ),
            format!("{}: is now a symbolic link; not followed", p("c-link")),
            format!(
                "{}: was replaced by another file since the scan; skipped",
                p("d-other")
            ),
        ]
    );
    assert_eq!(outcome(&db, id)["errors"], 4);
    assert_eq!(db.scalar("SELECT count(*) FROM MediaFile"), "0");
}

#[test]
fn a_root_on_proc_is_refused_at_once() {
    let db = TestDb::new("media-proc");
    let id = db.enqueue("media-metadata-batch", &["path=/proc"]);
    let _w = db.spawn_worker(&[]);
    assert!(
        poll_until(WAIT, || db.status_of(id) == "FAILED"),
        "run on /proc is {} after {WAIT:?}\n{}",
        db.status_of(id),
        db.log_tails()
    );
    assert_eq!(
        db.scalar(&format!("SELECT error FROM JobRun WHERE id = {id}")),
        "/proc is on a proc file system, whose files are kernel state, not media; \
         refusing to scan it"
    );
    assert_eq!(db.scalar("SELECT count(*) FROM MediaFile"), "0");
}

/// A pseudo file system mounted below the scanned directory (devpts or
/// mqueue under /dev, on any Linux) is skipped with a line naming it; the
/// rest of the directory is scanned.
#[test]
fn a_pseudo_file_system_met_during_the_walk_is_skipped() {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    // Field 5 is the mount point; the type follows the " - " separator.
    let below_dev: Vec<(String, String)> = mounts
        .lines()
        .filter_map(|l| {
            let point = l.split(' ').nth(4)?;
            let fs = l.split(" - ").nth(1)?.split(' ').next()?;
            let pseudo = matches!(fs, "devpts" | "mqueue");
            (pseudo && point.starts_with("/dev/")).then(|| (point.to_string(), fs.to_string()))
        })
        .collect();
    assert!(
        !below_dev.is_empty(),
        "no devpts or mqueue mount under /dev in:\n{mounts}"
    );
    let db = TestDb::new("media-mount");
    let id = db.enqueue("media-metadata-batch", &["path=/dev"]);
    let _w = db.spawn_worker(&[]);
    db.wait_status(id, "COMPLETED", WAIT);
    let infos: Vec<String> = db
        .query(&format!(
            "SELECT message FROM JobLog WHERE jobRunId = {id} AND message LIKE '%not scanned'"
        ))
        .into_iter()
        .map(|r| r[0].as_str().unwrap_or_default().to_string())
        .collect();
    for (point, fs) in &below_dev {
        let line = format!("{point}: a {fs} file system; not scanned");
        assert!(infos.contains(&line), "{line:?} not in {infos:?}");
    }
}
