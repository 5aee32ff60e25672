//! `media-metadata-batch`: keeps the `MediaFile` table in step with a
//! directory. Phase 1 walks it (unknown total), phase 2 reads each new or
//! changed file (size, mtime, SHA-256, media type, image size) with a known
//! total, phase 3 removes rows of files that are gone. Unchanged files
//! (same size and mtime) are skipped without reading them, so a second run
//! over an unchanged directory changes nothing.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::imagehead;
use crate::clock::Timestamp;
use crate::job::LogLevel;
use crate::registry::{JobType, ParamKind, ParamSpec};
use crate::runner::context::{JobContext, JobError};
use crate::store::media::{self, MediaRow};

/// Files written or deleted per transaction.
const BATCH: usize = 500;
/// Bytes read for the header; the rest of the file is only hashed.
const HEAD_BYTES: usize = 256 * 1024;

const COUNTERS: [&str; 5] = ["inserts", "updates", "deletes", "skipped", "errors"];

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
            ParamSpec::new("path", ParamKind::Path)
                .required()
                .help("The directory to scan (recursively; symbolic links are not followed)."),
        ],
        // Safe to run again: it converges on the directory's state.
        retry_safe: true,
        handler: Arc::new(run),
    }
}

fn run(ctx: &JobContext) -> Result<(), JobError> {
    let given = ctx.param_str("path")?;
    let root = std::fs::canonicalize(given)
        .map_err(|e| JobError::new(format!("cannot open directory {given}: {e}")))?;
    if !root.is_dir() {
        return Err(JobError::new(format!(
            "{} is not a directory",
            root.display()
        )));
    }
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
    let known = media::known_under(&*ctx.store().conn()?, &root_text)?;
    let mut seen: HashSet<&str> = HashSet::with_capacity(files.len());
    let mut pending: Vec<MediaRow> = Vec::with_capacity(BATCH);
    for (path, text) in &files {
        ctx.check_cancelled()?;
        seen.insert(text);
        process(ctx, path, text, &known, &mut pending);
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
        let n = ctx
            .store()
            .write("delete media files", |tx| media::delete(tx, chunk))?;
        ctx.outcome("deletes", n as i64);
        ctx.add(chunk.len() as i64);
    }
    ctx.info(&format!("{} rows of deleted files removed", gone.len()));
    Ok(())
}

/// Phase 1: every regular file under `root`, sorted, with its path text.
fn scan(ctx: &JobContext, root: &Path) -> Result<Vec<(PathBuf, String)>, JobError> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
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
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file() {
                match path.to_str() {
                    Some(t) => {
                        let t = t.to_string();
                        files.push((path, t));
                        ctx.inc();
                    }
                    None => problem(ctx, &path.display().to_string(), "file name is not UTF-8"),
                }
            }
        }
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(files)
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

/// Phase 2 for one file: skip it if unchanged, else read it into `pending`.
fn process(
    ctx: &JobContext,
    path: &Path,
    text: &str,
    known: &HashMap<String, (i64, String)>,
    pending: &mut Vec<MediaRow>,
) {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return problem(ctx, text, &format!("cannot read: {e}")),
    };
    let size = meta.len() as i64;
    let mtime_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    let mtime = Timestamp(mtime_ms).to_text();
    let before = known.get(text);
    if before.is_some_and(|(s, m)| *s == size && *m == mtime) {
        ctx.outcome("skipped", 1);
        return;
    }
    match read(path) {
        Ok((hash, sniffed)) => {
            let (width, height) = match sniffed.size {
                Some((w, h)) => (Some(i64::from(w)), Some(i64::from(h))),
                None => (None, None),
            };
            pending.push(MediaRow {
                path: text.to_string(),
                size,
                mtime,
                hash,
                media_type: sniffed.media_type.to_string(),
                width,
                height,
            });
            ctx.outcome(
                if before.is_some() {
                    "updates"
                } else {
                    "inserts"
                },
                1,
            );
        }
        Err(why) => problem(ctx, text, &why),
    }
}

/// Hashes the whole file and sniffs its header from the first bytes.
fn read(path: &Path) -> Result<(String, imagehead::Sniffed), String> {
    let mut f = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(4096);
    (&mut f)
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read: {e}"))?;
    hasher.update(&head);
    let mut buf = vec![0u8; 64 * 1024];
    let mut more = false;
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("cannot read: {e}"))?;
        if n == 0 {
            break;
        }
        more = true;
        hasher.update(&buf[..n]);
    }
    let hash: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let media_type = imagehead::media_type(&head);
    let size = match imagehead::dimensions(media_type, &head) {
        None => None,
        Some(Ok(size)) => Some(size),
        // The size lies beyond the bytes read: keep the file without it.
        Some(Err(imagehead::HeaderError::Truncated)) if more => None,
        Some(Err(e)) => return Err(format!("corrupt image: {e}")),
    };
    let sniffed = imagehead::Sniffed { media_type, size };
    Ok((hash, sniffed))
}

fn write(ctx: &JobContext, pending: &mut Vec<MediaRow>) -> Result<(), JobError> {
    if pending.is_empty() {
        return Ok(());
    }
    let now = Timestamp::now().to_text();
    let run_id = ctx.run_id();
    ctx.store().write("write media files", |tx| {
        media::upsert(tx, pending, run_id, &now)
    })?;
    pending.clear();
    Ok(())
}
