//! Backups named by time and kept in a bounded number, so that a schedule
//! can run `backup-database` every night: `{time}` in the path becomes the
//! run's time (`20261201T021500.123Z`, which sorts like the time itself),
//! and `keep = N` removes the oldest files of that same pattern after a
//! backup succeeded, leaving the newest N. Only names the pattern could
//! have produced are ever removed.

use std::path::{Path, PathBuf};

use crate::clock::Timestamp;
use crate::context::JobError;

/// The placeholder replaced by the run's time.
pub const TIME: &str = "{time}";

/// A `{time}` name: `YYYYMMDDTHHMMSS.mmmZ`.
const STAMP_LEN: usize = 20;

/// The path with `{time}` replaced by `at`; the path itself without one.
pub fn expand(path: &str, at: Timestamp) -> PathBuf {
    PathBuf::from(path.replace(TIME, &stamp(at)))
}

fn stamp(at: Timestamp) -> String {
    // 2026-12-01T02:15:00.123Z → 20261201T021500.123Z
    at.to_text().replace(['-', ':'], "")
}

/// Removes the oldest backups of `pattern` beyond the newest `keep`;
/// returns the removed paths. A pattern without `{time}` (or with it in a
/// directory name) names one file and has nothing to rotate.
pub fn rotate(pattern: &str, keep: usize) -> Result<Vec<PathBuf>, JobError> {
    let path = Path::new(pattern);
    let (dir, name) = match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        (Some(d), Some(n)) if n.contains(TIME) && !d.to_string_lossy().contains(TIME) => (d, n),
        _ => return Ok(Vec::new()),
    };
    let (prefix, suffix) = name.split_once(TIME).unwrap_or((name, ""));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let entries = std::fs::read_dir(dir).map_err(|e| {
        JobError::new(format!(
            "cannot list {} to keep {keep} backups: {e}",
            dir.display()
        ))
    })?;
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let stamp = n.strip_prefix(prefix)?.strip_suffix(suffix)?;
            is_stamp(stamp).then(|| (stamp.to_string(), e.path()))
        })
        .collect();
    found.sort();
    let excess = found.len().saturating_sub(keep);
    let mut removed = Vec::with_capacity(excess);
    for (_, p) in found.into_iter().take(excess) {
        std::fs::remove_file(&p).map_err(|e| {
            JobError::new(format!("cannot remove the old backup {}: {e}", p.display()))
        })?;
        removed.push(p);
    }
    Ok(removed)
}

/// Whether `s` is a name `{time}` could have become.
fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == STAMP_LEN
        && b.iter().enumerate().all(|(i, c)| match i {
            8 => *c == b'T',
            15 => *c == b'.',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_sorts_and_only_its_own_names_are_rotated() {
        let at = Timestamp::parse("2026-12-01T02:15:00.123Z").unwrap();
        assert_eq!(
            expand("/b/jobmgr-{time}.db", at),
            PathBuf::from("/b/jobmgr-20261201T021500.123Z.db")
        );
        let dir = std::env::temp_dir().join(format!("jobmgr-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let names = [
            "jobmgr-20261129T021500.000Z.db",
            "jobmgr-20261130T021500.000Z.db",
            "jobmgr-20261201T021500.000Z.db",
            // Not the pattern's: never removed.
            "jobmgr-latest.db",
            "jobmgr-20261128T021500.000Z.db.new",
            "other-20261101T021500.000Z.db",
        ];
        for n in names {
            std::fs::write(dir.join(n), b"x").unwrap();
        }
        let pattern = dir.join("jobmgr-{time}.db");
        let removed = rotate(pattern.to_str().unwrap(), 2).unwrap();
        assert_eq!(removed, [dir.join(names[0])]);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left.len(), 5, "{left:?}");
        assert!(
            rotate(dir.join("fixed.db").to_str().unwrap(), 1)
                .unwrap()
                .is_empty()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
