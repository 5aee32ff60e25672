//! Queries on `MediaFile` for the media-metadata-batch job: what is known
//! under a directory, and batched inserts, updates and deletes (one
//! transaction per batch, never one per file).

use std::collections::HashMap;

use rusqlite::{Connection, Transaction, params};

use crate::error::{Error, Result};

pub use crate::media::{Known, MediaRow};

/// The end of the range of paths under `root`: `root/` up to `root0`
/// ('0' sorts right after '/'), so the UNIQUE index on path serves it.
fn range(root: &str) -> (String, String) {
    let root = root.trim_end_matches('/');
    (format!("{root}/"), format!("{root}0"))
}

/// Size, mtime and hashed bytes of every known file under `root`, by path.
pub fn known_under(conn: &Connection, root: &str) -> Result<HashMap<String, Known>> {
    let (lo, hi) = range(root);
    let mut stmt = conn
        .prepare_cached(
            "SELECT path, size, mtime, hashedBytes FROM MediaFile WHERE path >= ?1 AND path < ?2",
        )
        .map_err(Error::db("read media files"))?;
    let rows = stmt
        .query_map(params![lo, hi], |r| {
            let known = Known {
                size: r.get(1)?,
                mtime: r.get(2)?,
                hashed_bytes: r.get(3)?,
            };
            Ok((r.get(0)?, known))
        })
        .map_err(Error::db("read media files"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("read media files"))
}

/// Inserts new rows and replaces changed ones, in one transaction.
pub fn upsert(tx: &Transaction<'_>, rows: &[MediaRow], run_id: i64, now: &str) -> Result<()> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO MediaFile (path, size, mtime, hash, mediaType, width, height, jobRunId, \
             createdAt, updatedAt, hashedBytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10) \
             ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime = excluded.mtime, \
             hash = excluded.hash, mediaType = excluded.mediaType, width = excluded.width, \
             height = excluded.height, jobRunId = excluded.jobRunId, updatedAt = excluded.updatedAt, \
             hashedBytes = excluded.hashedBytes",
        )
        .map_err(Error::db("write media files"))?;
    for r in rows {
        stmt.execute(params![
            r.path,
            r.size,
            r.mtime,
            r.hash,
            r.media_type,
            r.width,
            r.height,
            run_id,
            now,
            r.hashed_bytes
        ])
        .map_err(Error::db("write media files"))?;
    }
    Ok(())
}

/// Deletes the rows of `paths`; returns how many went.
pub fn delete(tx: &Transaction<'_>, paths: &[String]) -> Result<usize> {
    let mut stmt = tx
        .prepare_cached("DELETE FROM MediaFile WHERE path = ?1")
        .map_err(Error::db("delete media files"))?;
    let mut n = 0;
    for p in paths {
        n += stmt.execute([p]).map_err(Error::db("delete media files"))?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_covers_exactly_the_directory() {
        let (lo, hi) = range("/data/media/");
        assert_eq!((lo.as_str(), hi.as_str()), ("/data/media/", "/data/media0"));
        for inside in ["/data/media/a.png", "/data/media/sub/b.gif"] {
            assert!(inside >= lo.as_str() && inside < hi.as_str(), "{inside}");
        }
        for outside in ["/data/media-old/a.png", "/data/media", "/data/mediab/x"] {
            assert!(
                !(outside >= lo.as_str() && outside < hi.as_str()),
                "{outside}"
            );
        }
    }
}
