//! The shipped examples (`packaging/examples/`): the sample config passes
//! `check-config`, and both scripts do their real work through a worker,
//! with progress and outcome counters that match their input.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::TestDb;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn example_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("packaging/examples/jobmgr.toml")
}

fn with_config(db: &TestDb, args: &[&str]) -> String {
    let config = example_config();
    let mut all = vec!["--config", config.to_str().unwrap_or_default()];
    all.extend_from_slice(args);
    db.ok(&all)
}

fn outcome(db: &TestDb, id: i64) -> Value {
    serde_json::from_str(&db.scalar(&format!(
        "SELECT outcomeSummary FROM JobRun WHERE id = {id}"
    )))
    .expect("outcome json")
}

#[test]
fn the_sample_config_is_valid() {
    let db = TestDb::new("ex-check");
    let out = with_config(&db, &["check-config"]);
    assert!(
        out.contains("ok (2 command job type(s): feed-presort, match-scores;"),
        "{out}"
    );
}

#[test]
fn feed_presort_and_match_scores_do_checkable_work() {
    let db = TestDb::new("ex-presort");
    let input = db.dir.join("feed.jsonl");
    let output = db.dir.join("sorted.jsonl");
    let mut lines: Vec<String> = (0..250)
        .rev()
        .map(|i| format!("{{\"id\": {i}, \"name\": \"n{i}\"}}"))
        .collect();
    lines.insert(10, "not json".into());
    lines.insert(20, "{\"name\": \"no id\"}".into());
    std::fs::write(&input, lines.join("\n") + "\n").expect("write feed");
    let config = example_config();
    let mut worker = db.cmd();
    worker.args(["--config", config.to_str().unwrap_or_default(), "worker"]);
    let log = std::fs::File::create(db.dir.join("w.log")).expect("log");
    let _w = common::Worker {
        child: worker
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("worker"),
        log: db.dir.join("w.log"),
    };
    let id: i64 = with_config(
        &db,
        &[
            "enqueue",
            "feed-presort",
            "-p",
            &format!("input={}", input.display()),
            "-p",
            &format!("output={}", output.display()),
        ],
    )
    .parse()
    .expect("id");
    db.wait_status(id, "COMPLETED", WAIT);
    assert_eq!(outcome(&db, id), json!({"sorted": 250, "errors": 2}));
    let row = &db.query(&format!(
        "SELECT currentStage, entitiesProcessed, entitiesTotal FROM JobRun WHERE id = {id}"
    ))[0];
    assert_eq!(row, &vec![json!("Writing"), json!(250), json!(250)]);
    let sorted = std::fs::read_to_string(&output).expect("output");
    let ids: Vec<i64> = sorted
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["id"]
                .as_i64()
                .unwrap_or(-1)
        })
        .collect();
    assert_eq!(ids, (0..250).collect::<Vec<_>>());
    let warnings = db.scalar(&format!("SELECT count(*) FROM JobLog WHERE jobRunId = {id} AND level = 'warning' AND message LIKE 'line % skipped: %'"));
    assert_eq!(warnings, "2");

    // match-scores: 4 valid matches, 1 malformed; one team already known.
    let matches = db.dir.join("matches.jsonl");
    let standings = db.dir.join("standings.json");
    std::fs::write(
        &matches,
        [
            r#"{"home": "Ajax", "away": "PSV", "home_goals": 2, "away_goals": 1}"#,
            r#"{"home": "PSV", "away": "Feyenoord", "home_goals": 0, "away_goals": 0}"#,
            r#"{"home": "Feyenoord", "away": "Ajax", "home_goals": 3, "away_goals": 1}"#,
            r#"{"home": "Ajax", "away": "Ajax", "home_goals": 1, "away_goals": 1}"#,
            r#"{"home": "Twente", "away": "PSV", "home_goals": 1, "away_goals": 2}"#,
        ]
        .join("\n")
            + "\n",
    )
    .expect("matches");
    std::fs::write(&standings, r#"{"Ajax": 10}"#).expect("standings");
    let id: i64 = with_config(
        &db,
        &[
            "enqueue",
            "match-scores",
            "-p",
            &format!("matches={}", matches.display()),
            "-p",
            &format!("standings={}", standings.display()),
        ],
    )
    .parse()
    .expect("id");
    db.wait_status(id, "COMPLETED", WAIT);
    assert_eq!(
        outcome(&db, id),
        json!({"inserts": 3, "updates": 1, "errors": 1})
    );
    let table: Value =
        serde_json::from_str(&std::fs::read_to_string(&standings).expect("standings"))
            .expect("json");
    assert_eq!(
        table,
        json!({"Ajax": 13, "PSV": 4, "Feyenoord": 4, "Twente": 0})
    );
    let stages: Vec<String> = db
        .query(&format!(
            "SELECT json_extract(context, '$.stage') FROM JobLog WHERE jobRunId = {id} \
             AND json_extract(context, '$.event') = 'stage' ORDER BY timestamp, id"
        ))
        .into_iter()
        .map(|r| r[0].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(stages, ["Reading matches", "Scoring", "Saving standings"]);
}
