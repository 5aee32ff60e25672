//! Unit tests of the notifiers, the payload and the scan's cursors.

use super::*;

fn notifier(public_url: Option<&str>) -> Notifier {
    Notifier {
        name: "ops".into(),
        on: vec![Event::RunFailed],
        jobs: Some(vec!["feed".into()]),
        target: Target::Webhook(http::Webhook {
            url: http::Url::parse("http://127.0.0.1:9/hook").expect("url"),
            trust: None,
        }),
        overdue: Duration::from_secs(60),
        public_url: public_url.map(str::to_string),
    }
}

#[test]
fn the_jobs_filter_narrows_run_events_only() {
    let n = notifier(None);
    assert!(n.wants(Event::RunFailed, Some("feed")));
    assert!(!n.wants(Event::RunFailed, Some("other")));
    assert!(!n.wants(Event::RunStalled, Some("feed")));
    let mut all = n.clone();
    all.on.push(Event::DiskLow);
    assert!(all.wants(Event::DiskLow, None));
}

#[test]
fn the_payload_has_a_slack_text_and_a_link_only_with_public_url() {
    let fact = Fact::run(
        Event::RunFailed,
        7,
        "feed",
        "run 7 (feed) failed: a < b".into(),
    )
    .with("error", "a < b");
    let now = Timestamp(0);
    let plain = fact.payload_for(&notifier(None), now);
    assert!(plain.get("url").is_none());
    assert_eq!(plain["runId"], 7);
    assert!(
        plain["text"]
            .as_str()
            .is_some_and(|t| t.ends_with("failed: a &lt; b"))
    );
    let linked = fact.payload_for(&notifier(Some("https://jobs.example/")), now);
    assert_eq!(linked["url"], "https://jobs.example/admin/jobs#/runs/7");
    assert!(
        linked["text"]
            .as_str()
            .is_some_and(|t| t.ends_with("<https://jobs.example/admin/jobs#/runs/7|run 7>"))
    );
}

fn insert_failed(conn: &crate::store::Connection, finished: Timestamp) -> i64 {
    conn.execute(
        "INSERT INTO JobRun (jobName, status, createdAt, finishedAt, updatedAt, error) \
         VALUES ('feed', 'FAILED', ?1, ?1, ?1, 'boom')",
        [finished.to_text()],
    )
    .expect("insert run");
    conn.last_insert_rowid()
}

fn subjects(conn: &crate::store::Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT subject FROM NotifyOutbox ORDER BY id")
        .expect("prepare");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
}

#[test]
fn the_scan_skips_old_history_and_finds_failures_committed_behind_its_cursor() {
    use crate::maintenance::ticker::{Task, Tick};
    let file = crate::store::TestFile::new("notify-scan");
    let store = crate::store::Store::open(&file.db()).expect("open");
    let conn = store.conn().expect("conn");
    let t0 = Timestamp(1_800_000_000_000);
    let tick = |ms: i64| Tick {
        now: t0.plus_ms(ms),
        hold: false,
    };
    // Failed long before notifications were configured: not reported.
    insert_failed(&conn, t0.plus_ms(-3_600_000));
    let mut scan = scan::NotifyScan::new(file.db(), vec![notifier(None)], Vec::new());
    assert!(scan.run(&tick(0)).expect("first scan").is_empty());
    assert!(subjects(&conn).is_empty());
    // A new failure, then one another process committed with an older
    // finishedAt than the cursor has reached.
    let new = insert_failed(&conn, t0.plus_ms(1_000));
    assert_eq!(scan.run(&tick(2_000)).expect("scan")["queued"], 1);
    let late = insert_failed(&conn, t0.plus_ms(-60_000));
    assert_eq!(scan.run(&tick(3_000)).expect("scan")["queued"], 1);
    assert_eq!(
        subjects(&conn),
        [format!("run:{new}"), format!("run:{late}")]
    );
    // Nothing new: the scan only reads (another connection's commit would
    // move this one's data version).
    let version = crate::store::data_version(&conn).expect("version");
    assert!(scan.run(&tick(4_000)).expect("scan").is_empty());
    assert_eq!(crate::store::data_version(&conn).expect("version"), version);
}
