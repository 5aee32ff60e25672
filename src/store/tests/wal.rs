//! jobmgr's connections write WAL frames through a layer that coalesces
//! them into one system call (`super::super::vfs`). These tests check that
//! nothing it holds back is ever seen, lost or written late: every commit
//! is visible to another connection and to another process (python3's own
//! SQLite) at once, a transaction larger than the page cache and than the
//! buffer commits whole, and a rolled-back transaction's frames never land
//! on top of frames another connection committed after it.

use std::process::Command;

use rusqlite::{Connection, params};

use crate::store::{Store, TestFile, open_connection};

/// A migrated database of the test's own.
fn migrated(name: &str) -> TestFile {
    let file = TestFile::new(name);
    Store::open(&file.db()).expect("open the test database");
    file
}

fn open(db: &TestFile) -> Connection {
    let conn = open_connection(&db.db()).unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS Scratch (id INTEGER PRIMARY KEY, v TEXT NOT NULL); \
         CREATE INDEX IF NOT EXISTS Scratch_v ON Scratch (v);",
    )
    .unwrap();
    conn
}

/// A value of `len` bytes that differs per row.
fn value(i: i64, len: usize) -> String {
    let seed = format!("{i:08}-");
    seed.repeat(len / seed.len() + 1)[..len].to_string()
}

fn insert(conn: &Connection, from: i64, n: i64, len: usize) {
    let mut stmt = conn
        .prepare_cached("INSERT INTO Scratch (id, v) VALUES (?1, ?2)")
        .unwrap();
    for i in from..from + n {
        stmt.execute(params![i, value(i, len)]).unwrap();
    }
}

/// What python3's SQLite, in another process, reads from the file:
/// integrity_check, the row count and the total length of the values, and
/// whether every value is the one its id was written with.
fn from_another_process(db: &TestFile) -> (String, i64, i64, bool) {
    let script = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
ok = c.execute("pragma integrity_check").fetchone()[0]
n, total = c.execute("select count(*), coalesce(sum(length(v)), 0) from Scratch").fetchone()
def value(i, n):
    s = "%08d-" % i
    return (s * (n // len(s) + 1))[:n]
good = all(v == value(i, len(v)) for i, v in c.execute("select id, v from Scratch"))
print(ok, n, total, good)
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(db.db())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    (
        f[0].to_string(),
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
        f[3] == "True",
    )
}

#[test]
fn every_commit_is_visible_to_another_connection_and_process_at_once() {
    let db = migrated("wal-visible");
    let writer = open(&db);
    let reader = open_connection(&db.db()).unwrap();
    let mut total = 0i64;
    // Sizes from one frame to far more than the buffer holds (120 KiB).
    for (i, len) in [10usize, 3_000, 5_000, 40_000, 200_000, 700_000, 1]
        .into_iter()
        .enumerate()
    {
        let i = i as i64;
        insert(&writer, i, 1, len);
        total += len as i64;
        let (n, sum, v): (i64, i64, String) = reader
            .query_row(
                "SELECT count(*), sum(length(v)), (SELECT v FROM Scratch WHERE id = ?1) FROM Scratch",
                [i],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((n, sum), (i + 1, total), "after commit {i}");
        assert_eq!(v, value(i, len), "row {i} as committed");
        let (ok, n, sum, good) = from_another_process(&db);
        assert_eq!(ok, "ok");
        assert_eq!((n, sum), (i + 1, total), "python3 after commit {i}");
        assert!(good, "python3 reads every row as written");
    }
}

#[test]
fn a_transaction_larger_than_the_cache_commits_whole() {
    let db = migrated("wal-large");
    let mut conn = open(&db);
    // A small page cache makes SQLite spill pages into the WAL in the
    // middle of the transaction, and read some of them back.
    conn.pragma_update(None, "cache_size", 20).unwrap();
    let tx = conn.transaction().unwrap();
    insert(&tx, 0, 20_000, 300);
    tx.execute("UPDATE Scratch SET v = v || '' WHERE id % 7 = 0", [])
        .unwrap();
    tx.commit().unwrap();
    let (ok, n, sum, good) = from_another_process(&db);
    assert_eq!(
        (ok.as_str(), n, sum, good),
        ("ok", 20_000, 20_000 * 300, true)
    );
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    drop(conn);
    let (ok, n, _, good) = from_another_process(&db);
    assert_eq!((ok.as_str(), n, good), ("ok", 20_000, true));
}

#[test]
fn a_rolled_back_transaction_never_overwrites_a_later_commit() {
    let db = migrated("wal-rollback");
    let mut a = open(&db);
    let b = open_connection(&db.db()).unwrap();
    insert(&a, 0, 10, 100);
    // A small cache makes A spill frames into the WAL in the middle of its
    // transactions, which it then rolls back; B commits where those frames
    // went, and A writes again. Nothing of A's rolled-back transactions may
    // land on B's frames. (SQLite's rollback usually reads the WAL, which
    // writes out what is held back; a lock change does when it does not.)
    a.pragma_update(None, "cache_size", 10).unwrap();
    let mut expected = (10, 10 * 100);
    for k in 1..=24 {
        {
            let tx = a.transaction().unwrap();
            insert(&tx, 10_000 + k * 100, k, 3_000);
            tx.rollback().unwrap();
        }
        insert(&b, 1_000 + k, 1, 2_000);
        insert(&a, 2_000 + k, 1, 100);
        expected = (expected.0 + 2, expected.1 + 2_100);
    }
    drop(a);
    let (ok, n, sum, good) = from_another_process(&db);
    assert_eq!(ok, "ok");
    assert_eq!((n, sum), expected);
    assert!(good, "every row reads as written");
    drop(b);
    let (ok, n, _, good) = from_another_process(&db);
    assert_eq!((ok.as_str(), n, good), ("ok", expected.0, true));
}
