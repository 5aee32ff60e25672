//! The pool a worker's jobs read through refuses writes, so the worker's
//! writer thread stays the one connection of the process that writes.

use crate::error::Result;
use crate::store::{Store, TestFile};

/// The pool the jobs read through refuses a write with SQLite's own error.
#[test]
fn the_readers_pool_refuses_writes() -> Result<()> {
    let file = TestFile::new("readers-only");
    let store = Store::open(&file.db())?;
    let readers = Store::open_readers(&file.db())?;
    let conn = readers.conn()?;
    let n: i64 = conn
        .query_row("SELECT count(*) FROM JobRun", [], |r| r.get(0))
        .expect("a reader reads");
    assert_eq!(n, 0);
    let refused = conn
        .execute(
            "INSERT INTO MediaFile (path, size, mtime, hash, mediaType, createdAt, updatedAt) \
             VALUES ('/x', 1, 'm', 'h', 't', 'c', 'u')",
            [],
        )
        .expect_err("a reader cannot write");
    assert!(
        refused.to_string().contains("readonly"),
        "unexpected error: {refused}"
    );
    drop(conn);
    let rows: i64 = store
        .conn()?
        .query_row("SELECT count(*) FROM MediaFile", [], |r| r.get(0))
        .expect("count media rows");
    assert_eq!(rows, 0);
    Ok(())
}
