//! media-metadata-batch through the CLI and the database, on a directory of
//! small images the test writes: inserts, updates, deletes, skipped files
//! and errors counted exactly, and a second run over an unchanged
//! directory changing nothing.

mod common;

use std::path::Path;
use std::time::Duration;

use common::TestDb;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&[8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89]);
    v.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
    v
}

fn gif(w: u16, h: u16) -> Vec<u8> {
    let mut v = b"GIF89a".to_vec();
    v.extend_from_slice(&w.to_le_bytes());
    v.extend_from_slice(&h.to_le_bytes());
    v.extend_from_slice(&[0, 0, 0, 0x3B]);
    v
}

fn jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    v.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    v.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9]);
    v
}

/// A lossless WebP header: width-1 and height-1 in 14 bits each.
fn webp(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f".to_vec();
    let bits = (w - 1) | ((h - 1) << 14);
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, bytes).expect("write file");
}

fn outcome(db: &TestDb, id: i64) -> Value {
    serde_json::from_str(&db.scalar(&format!(
        "SELECT outcomeSummary FROM JobRun WHERE id = {id}"
    )))
    .expect("outcome json")
}

fn rows(db: &TestDb) -> Vec<Vec<Value>> {
    db.query(
        "SELECT path, size, mtime, hash, mediaType, width, height, updatedAt FROM MediaFile ORDER BY path",
    )
}

fn run_batch(db: &TestDb, media: &Path) -> i64 {
    let id = db.enqueue(
        "media-metadata-batch",
        &[&format!("path={}", media.display())],
    );
    db.wait_status(id, "COMPLETED", WAIT);
    id
}

#[test]
fn media_batch_counts_inserts_updates_deletes_skips_and_errors() {
    let db = TestDb::new("media");
    let media = db.dir.join("media");
    write(&media, "a.png", &png(640, 480));
    write(&media, "b.gif", &gif(10, 20));
    write(&media, "sub/c.jpg", &jpeg(300, 200));
    write(&media, "sub/d.webp", &webp(100, 50));
    write(&media, "notes.txt", b"not an image\n");
    write(
        &media,
        "broken.png",
        b"\x89PNG\r\n\x1a\n\0\0\0\x0dJUNKJUNKJUNKJUNK",
    );
    // Outside the scanned directory: never touched or deleted.
    write(&db.dir, "media-old/x.png", &png(1, 1));
    let _w = db.spawn_worker(&[]);

    let first = run_batch(&db, &media);
    assert_eq!(
        outcome(&db, first),
        json!({"inserts": 5, "updates": 0, "deletes": 0, "skipped": 0, "partial": 0, "errors": 1})
    );
    let root = std::fs::canonicalize(&media).expect("canonical");
    let p = |name: &str| root.join(name).display().to_string();
    let got: Vec<(String, String, Value, Value)> = rows(&db)
        .into_iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or_default().to_string(),
                r[4].as_str().unwrap_or_default().to_string(),
                r[5].clone(),
                r[6].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (p("a.png"), "image/png".into(), json!(640), json!(480)),
            (p("b.gif"), "image/gif".into(), json!(10), json!(20)),
            (
                p("notes.txt"),
                "application/octet-stream".into(),
                Value::Null,
                Value::Null
            ),
            (p("sub/c.jpg"), "image/jpeg".into(), json!(300), json!(200)),
            (p("sub/d.webp"), "image/webp".into(), json!(100), json!(50)),
        ]
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT hash FROM MediaFile WHERE path = '{}'",
            p("notes.txt")
        )),
        // sha256 of "not an image\n"
        "c04bee9d659201c6647cbc29f7c2e1556b8370c54f4a50a32d84ceab2fddf6cd"
    );
    let warning = db.scalar(&format!(
        "SELECT message FROM JobLog WHERE jobRunId = {first} AND level = 'warning'"
    ));
    assert_eq!(
        warning,
        format!(
            "{}: corrupt image: PNG does not start with an IHDR chunk",
            p("broken.png")
        )
    );
    let (processed, total) = (
        db.scalar(&format!(
            "SELECT entitiesProcessed FROM JobRun WHERE id = {first}"
        )),
        db.scalar(&format!(
            "SELECT entitiesTotal FROM JobRun WHERE id = {first}"
        )),
    );
    assert_eq!(
        (processed.as_str(), total.as_str()),
        ("0", "0"),
        "phase 3 had nothing to delete"
    );

    let before = rows(&db);
    let second = run_batch(&db, &media);
    assert_eq!(
        outcome(&db, second),
        json!({"inserts": 0, "updates": 0, "deletes": 0, "skipped": 5, "partial": 0, "errors": 1})
    );
    assert_eq!(rows(&db), before, "an unchanged directory changes nothing");

    write(
        &media,
        "a.png",
        &[png(800, 600), b"more bytes".to_vec()].concat(),
    );
    std::fs::remove_file(media.join("b.gif")).expect("remove");
    write(&media, "e.gif", &gif(7, 9));
    let third = run_batch(&db, &media);
    assert_eq!(
        outcome(&db, third),
        json!({"inserts": 1, "updates": 1, "deletes": 1, "skipped": 3, "partial": 0, "errors": 1})
    );
    let a = &db.query(&format!(
        "SELECT width, height, jobRunId FROM MediaFile WHERE path = '{}'",
        p("a.png")
    ))[0];
    assert_eq!(a, &vec![json!(800), json!(600), json!(third)]);
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM MediaFile WHERE path = '{}'",
            p("b.gif")
        )),
        "0"
    );
    assert_eq!(db.scalar("SELECT count(*) FROM MediaFile"), "5");
    let stages: Vec<String> = db
        .query(&format!(
            "SELECT json_extract(context, '$.stage') FROM JobLog WHERE jobRunId = {third} \
             AND json_extract(context, '$.event') = 'stage' ORDER BY timestamp, id"
        ))
        .into_iter()
        .map(|r| r[0].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(stages, ["Scanning", "Processing", "Removing deleted files"]);
}

#[test]
fn media_batch_refuses_a_path_that_is_not_a_directory() {
    let db = TestDb::new("media-notdir");
    write(&db.dir, "file.txt", b"x");
    let id = db.enqueue(
        "media-metadata-batch",
        &[&format!("path={}", db.dir.join("file.txt").display())],
    );
    let _w = db.spawn_worker(&[]);
    db.wait_status(id, "FAILED", WAIT);
    let error = db.scalar(&format!("SELECT error FROM JobRun WHERE id = {id}"));
    assert!(error.ends_with("file.txt is not a directory"), "{error}");
}
