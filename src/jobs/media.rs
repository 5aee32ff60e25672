//! `media-metadata-batch`: keeps the `MediaFile` table in step with a
//! directory. Phase 1 walks it (unknown total), phase 2 reads each new or
//! changed file (size, mtime, SHA-256, media type, image size) with a known
//! total, phase 3 removes rows of files that are gone. Unchanged files
//! (same size and mtime) are skipped without reading them, so a second run
//! over an unchanged directory changes nothing.
//!
//! What it will not be fooled by (see [`mediafs`]): a root on a pseudo file
//! system such as /proc is refused, and one met during the walk (on another
//! device) is skipped; a file replaced after the scan by a symbolic link, a
//! FIFO or another file is skipped with the reason; a file is never read
//! past its size, at most `max_hash_bytes` of it is hashed, and a cancel is
//! seen between chunks of one file, not only between files.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;

use super::imagehead;
use super::mediafs::{self, FileId, HashError};
use crate::context::{JobContext, JobError};
use crate::job::LogLevel;
use crate::media::{Known, MediaRow};
use crate::registry::{JobType, ParamKind, ParamSpec};

/// Files written or deleted per transaction: each batch is one message to
/// the worker's writer and one short transaction there.
const BATCH: usize = 500;
/// Default of `max_hash_bytes`: 1 GiB, seconds of reading and hashing at
/// most, so a directory of large videos is recorded in minutes rather than
/// hours, while the hash of every photo and most clips covers the whole file.
const DEFAULT_MAX_HASH_BYTES: i64 = 1 << 30;

const COUNTERS: [&str; 6] = [
    "inserts", "updates", "deletes", "skipped", "partial", "errors",
];

/// A regular file the scan found, as it was then.
struct Found {
    path: PathBuf,
    text: String,
    id: FileId,
    size: i64,
    mtime: String,
}

/// The job type.
pub fn media_metadata_batch() -> JobType {
    JobType {
        name: "media-metadata-batch".into(),
        description: "Scans a directory and records each file's size, modification time, \
                      SHA-256, media type (from its magic bytes) and, for PNG, JPEG, GIF and \
                      WebP, width and height in the MediaFile table; removes rows of files \
                      that are gone. Unchanged files are skipped."
            .into(),
        params: vec![
            ParamSpec::new("path", ParamKind::Path).required().help(
                "The directory to scan (recursively; symbolic links are not followed, \
                     pseudo file systems such as /proc are refused or skipped).",
            ),
            ParamSpec::new("max_hash_bytes", ParamKind::Integer)
                .default(DEFAULT_MAX_HASH_BYTES)
                .range(0, i64::MAX)
                .help(
                    "Bytes of each file hashed at most. A larger file's hash covers only its \
                     first max_hash_bytes bytes: its MediaFile.hashedBytes is less than its \
                     size, and the run counts it as partial and logs it.",
                ),
        ],
        // Safe to run again: it converges on the directory's state.
        retry_safe: true,
        handler: Arc::new(run),
    }
}

fn run(ctx: &JobContext) -> Result<(), JobError> {
    let given = ctx.param_str("path")?;
    let cap = u64::try_from(ctx.param_i64("max_hash_bytes")?).unwrap_or(0);
    let root = std::fs::canonicalize(given)
        .map_err(|e| JobError::new(format!("cannot open directory {given}: {e}")))?;
    if !root.is_dir() {
        return Err(JobError::new(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    refuse_pseudo(&root)?;
    let root_text = root
        .to_str()
        .ok_or_else(|| JobError::new("the directory's path is not UTF-8"))?
        .to_string();
    for c in COUNTERS {
        ctx.outcome(c, 0);
    }

    ctx.stage("Scanning");
    let files = scan(ctx, &root)?;
    ctx.info(&format!("found {} files under {root_text}", files.len()));

    ctx.stage("Processing");
    ctx.set_total(files.len() as i64, "files");
    let known = ctx.media_known(&root_text)?;
    let mut seen: HashSet<&str> = HashSet::with_capacity(files.len());
    let mut pending: Vec<MediaRow> = Vec::with_capacity(BATCH);
    for found in &files {
        ctx.check_cancelled()?;
        seen.insert(&found.text);
        process(ctx, found, cap, &known, &mut pending)?;
        ctx.inc();
        if pending.len() >= BATCH {
            write(ctx, &mut pending)?;
        }
    }
    write(ctx, &mut pending)?;

    ctx.stage("Removing deleted files");
    let mut gone: Vec<String> = known
        .keys()
        .filter(|p| !seen.contains(p.as_str()))
        .cloned()
        .collect();
    gone.sort();
    ctx.set_total(gone.len() as i64, "files");
    for chunk in gone.chunks(BATCH) {
        ctx.check_cancelled()?;
        let n = ctx.delete_media(chunk.to_vec())?;
        ctx.outcome("deletes", n as i64);
        ctx.add(chunk.len() as i64);
    }
    ctx.info(&format!("{} rows of deleted files removed", gone.len()));
    Ok(())
}

/// Refuses a root on a pseudo file system outright rather than walking it
/// and skipping every file: nothing there is media, and a failed run says
/// so more clearly than an empty one.
fn refuse_pseudo(root: &Path) -> Result<(), JobError> {
    match mediafs::pseudo_fs(root) {
        Ok(None) => Ok(()),
        Ok(Some(fs)) => Err(JobError::new(format!(
            "{} is on a {fs} file system, whose files are kernel state, not media; \
             refusing to scan it",
            root.display()
        ))),
        Err(e) => Err(JobError::new(format!(
            "cannot open directory {}: {e}",
            root.display()
        ))),
    }
}

/// Phase 1: every regular file under `root`, sorted by path text.
fn scan(ctx: &JobContext, root: &Path) -> Result<Vec<Found>, JobError> {
    let root_dev = std::fs::metadata(root)
        .map_err(|e| JobError::new(format!("cannot open directory {}: {e}", root.display())))?
        .dev();
    let mut files = Vec::new();
    let mut dirs = vec![(root.to_path_buf(), root_dev)];
    while let Some((dir, dev)) = dirs.pop() {
        ctx.check_cancelled()?;
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                problem(
                    ctx,
                    &dir.display().to_string(),
                    &format!("cannot list directory: {e}"),
                );
                continue;
            }
        };
        let mut names: Vec<_> = entries.filter_map(|e| e.ok()).collect();
        names.sort_by_key(|e| e.file_name());
        for entry in names {
            let path = entry.path();
            // lstat: a symbolic link is seen as one, never followed.
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) => {
                    problem(
                        ctx,
                        &path.display().to_string(),
                        &format!("cannot read: {e}"),
                    );
                    continue;
                }
            };
            if meta.is_dir() {
                if meta.dev() == dev || !pseudo_mount(ctx, &path) {
                    dirs.push((path, meta.dev()));
                }
            } else if meta.is_file() {
                match path.to_str() {
                    Some(t) => {
                        let text = t.to_string();
                        files.push(Found {
                            id: FileId::of(&meta),
                            size: meta.len() as i64,
                            mtime: mediafs::mtime_text(&meta),
                            path,
                            text,
                        });
                        ctx.inc();
                    }
                    None => problem(ctx, &path.display().to_string(), "file name is not UTF-8"),
                }
            }
        }
    }
    files.sort_by(|a, b| a.text.cmp(&b.text));
    Ok(files)
}

/// Whether `dir`, a mount point met during the walk, is a pseudo file
/// system, logging that it is skipped (a scan of / must not read /proc).
fn pseudo_mount(ctx: &JobContext, dir: &Path) -> bool {
    let text = dir.display().to_string();
    match mediafs::pseudo_fs(dir) {
        Ok(None) => false,
        Ok(Some(fs)) => {
            ctx.log_with(
                LogLevel::Info,
                &format!("{text}: a {fs} file system; not scanned"),
                json!({"path": text, "skipped": fs}),
            );
            true
        }
        Err(e) => {
            problem(ctx, &text, &format!("cannot open directory: {e}"));
            true
        }
    }
}

/// A file that could not be handled: a warning naming it, one error.
fn problem(ctx: &JobContext, path: &str, why: &str) {
    ctx.outcome("errors", 1);
    ctx.log_with(
        LogLevel::Warning,
        &format!("{path}: {why}"),
        json!({"path": path, "error": why}),
    );
}

/// Phase 2 for one file: skip it if unchanged, else read it into
/// `pending`. Only a cancel is an error; a file that cannot be read is a
/// problem logged and counted.
fn process(
    ctx: &JobContext,
    found: &Found,
    cap: u64,
    known: &HashMap<String, Known>,
    pending: &mut Vec<MediaRow>,
) -> Result<(), JobError> {
    let text = found.text.as_str();
    let before = known.get(text);
    // A row whose hash was capped lower than this run's cap is read again.
    let covers = (found.size as u64).min(cap) as i64;
    if before.is_some_and(|k| {
        k.size == found.size && k.mtime == found.mtime && k.hashed_bytes.is_none_or(|h| h >= covers)
    }) {
        ctx.outcome("skipped", 1);
        return Ok(());
    }
    let (mut file, meta) = match mediafs::open_scanned(&found.path, found.id) {
        Ok(opened) => opened,
        Err(why) => {
            problem(ctx, text, &why);
            return Ok(());
        }
    };
    let size = meta.len();
    let mtime = mediafs::mtime_text(&meta);
    let hashed = match mediafs::hash(&mut file, size, cap, || ctx.is_cancelled()) {
        Ok(h) => h,
        Err(HashError::Cancelled) => return Err(JobError::Cancelled),
        Err(HashError::Failed(why)) => {
            problem(ctx, text, &why);
            return Ok(());
        }
    };
    // Written to while it was read: the hash is of neither version.
    match file.metadata() {
        Ok(after) if after.len() == size && mediafs::mtime_text(&after) == mtime => {}
        Ok(_) => {
            problem(ctx, text, "changed while it was read; skipped");
            return Ok(());
        }
        Err(e) => {
            problem(ctx, text, &format!("cannot read: {e}"));
            return Ok(());
        }
    }
    let sniffed = match sniff(&hashed.head, size) {
        Ok(s) => s,
        Err(why) => {
            problem(ctx, text, &why);
            return Ok(());
        }
    };
    if hashed.hashed < size {
        ctx.outcome("partial", 1);
        ctx.log_with(
            LogLevel::Info,
            &format!(
                "{text}: hashed the first {} of {size} bytes (max_hash_bytes)",
                hashed.hashed
            ),
            json!({"path": text, "hashedBytes": hashed.hashed, "size": size}),
        );
    }
    let (width, height) = match sniffed.size {
        Some((w, h)) => (Some(i64::from(w)), Some(i64::from(h))),
        None => (None, None),
    };
    pending.push(MediaRow {
        path: text.to_string(),
        size: size as i64,
        mtime,
        hash: hashed.hash,
        media_type: sniffed.media_type.to_string(),
        width,
        height,
        hashed_bytes: hashed.hashed as i64,
    });
    let counter = if before.is_some() {
        "updates"
    } else {
        "inserts"
    };
    ctx.outcome(counter, 1);
    Ok(())
}

/// Media type and image size from the header of a file of `size` bytes.
fn sniff(head: &[u8], size: u64) -> Result<imagehead::Sniffed, String> {
    let media_type = imagehead::media_type(head);
    let more = size > head.len() as u64;
    let size = match imagehead::dimensions(media_type, head) {
        None => None,
        Some(Ok(size)) => Some(size),
        // The size lies beyond the bytes read: keep the file without it.
        Some(Err(imagehead::HeaderError::Truncated)) if more => None,
        Some(Err(e)) => return Err(format!("corrupt image: {e}")),
    };
    Ok(imagehead::Sniffed { media_type, size })
}

fn write(ctx: &JobContext, pending: &mut Vec<MediaRow>) -> Result<(), JobError> {
    if pending.is_empty() {
        return Ok(());
    }
    // The rows move to the writer; the buffer starts again at full size.
    let rows = std::mem::replace(pending, Vec::with_capacity(BATCH));
    ctx.write_media(rows)
}
