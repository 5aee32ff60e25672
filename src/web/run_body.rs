//! The `{"run": ...}` answers of the routes that make one run (enqueue,
//! re-run, retry, schedule "run now"), written straight from the
//! [`JobRun`] instead of through a `serde_json::Value` tree. The tree cost
//! an acknowledged `POST /api/jobs` about a fifth of the server's own CPU
//! (26 map inserts, their allocations and drops, then a second walk to
//! print it); the text is byte for byte what [`run_json`] printed, which
//! the tests below hold it to.
//!
//! [`run_json`]: crate::events::run_json

use serde::Serialize;
use serde_json::{Map, Value};

use super::http::{Reply, reply};
use crate::job::{JobRun, JobStatus};

/// A run as [`crate::events::run_json`] shows it. The fields are in the
/// order a `Value` object prints its keys (sorted bytewise), so that the
/// text is the same.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunView<'a> {
    attempt: i64,
    cancel_requested_at: &'a Option<String>,
    created_at: &'a str,
    current_stage: &'a Option<String>,
    entities_processed: i64,
    entities_total: Option<i64>,
    entities_unit: &'a Option<String>,
    error: &'a Option<String>,
    error_context: &'a Option<Value>,
    finished_at: &'a Option<String>,
    id: i64,
    job_name: &'a str,
    metadata: &'a Map<String, Value>,
    outcome_summary: &'a Map<String, Value>,
    parameters: &'a Map<String, Value>,
    priority: i64,
    progress_text: String,
    rerun_of_id: Option<i64>,
    run_at: &'a Option<String>,
    schedule_name: &'a Option<String>,
    scheduled_for: &'a Option<String>,
    started_at: &'a Option<String>,
    status: JobStatus,
    triggered_by: &'a str,
    updated_at: &'a str,
    worker_id: Option<i64>,
}

impl<'a> RunView<'a> {
    fn of(r: &'a JobRun) -> RunView<'a> {
        RunView {
            attempt: r.attempt,
            cancel_requested_at: &r.cancel_requested_at,
            created_at: &r.created_at,
            current_stage: &r.current_stage,
            entities_processed: r.entities_processed,
            entities_total: r.entities_total,
            entities_unit: &r.entities_unit,
            error: &r.error,
            error_context: &r.error_context,
            finished_at: &r.finished_at,
            id: r.id,
            job_name: &r.job_name,
            metadata: &r.metadata,
            outcome_summary: &r.outcome_summary,
            parameters: &r.parameters,
            priority: r.priority,
            progress_text: r.progress_text(),
            rerun_of_id: r.rerun_of_id,
            run_at: &r.run_at,
            schedule_name: &r.schedule_name,
            scheduled_for: &r.scheduled_for,
            started_at: &r.started_at,
            status: r.status,
            triggered_by: &r.triggered_by,
            updated_at: &r.updated_at,
            worker_id: r.worker_id,
        }
    }
}

/// `{"duplicateOf": ..., "run": ...}`, keys sorted as a `Value` prints them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate_of: Option<i64>,
    run: RunView<'a>,
}

/// The text of `{"run": run}` (with `duplicateOf` when given).
fn text(run: &JobRun, duplicate_of: Option<i64>) -> Vec<u8> {
    let answer = Answer {
        duplicate_of,
        run: RunView::of(run),
    };
    // A run's answer is about 700 bytes: one allocation, not five doublings.
    let mut out = Vec::with_capacity(1024);
    // Writing into a Vec fails only on a map with non-string keys, which
    // none of these has.
    if serde_json::to_writer(&mut out, &answer).is_err() {
        out.clear();
    }
    out
}

/// The JSON reply `{"run": run}` with `status`.
pub fn run_reply(status: u16, run: &JobRun) -> Reply {
    reply(status, "application/json", text(run, None))
}

/// The 200 of an enqueue answered with the run already waiting under the
/// same unique key: `{"duplicateOf": id, "run": run}`.
pub fn duplicate_reply(run: &JobRun, id: i64) -> Reply {
    reply(200, "application/json", text(run, Some(id)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::events::run_json;

    fn minimal() -> JobRun {
        JobRun {
            id: 7,
            job_name: "demo".into(),
            status: JobStatus::Queued,
            parameters: Map::new(),
            priority: 0,
            attempt: 1,
            created_at: "2026-12-02T01:00:00.000Z".into(),
            started_at: None,
            finished_at: None,
            worker_id: None,
            current_stage: None,
            entities_processed: 0,
            entities_total: None,
            entities_unit: None,
            outcome_summary: Map::new(),
            error: None,
            error_context: None,
            rerun_of_id: None,
            triggered_by: "api".into(),
            metadata: Map::new(),
            cancel_requested_at: None,
            updated_at: "2026-12-02T01:00:00.000Z".into(),
            run_at: None,
            schedule_name: None,
            scheduled_for: None,
        }
    }

    /// Every field set, strings that need escaping, nested values.
    fn full() -> JobRun {
        let obj = |v: Value| match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        JobRun {
            id: 9_007_199_254_740_993,
            job_name: "naïve \"quoted\"\n\u{1}".into(),
            status: JobStatus::Failed,
            parameters: obj(json!({"z": 1, "a": [1.5, null, "x"], "m": {"b": true, "a": -3}})),
            priority: -1000,
            attempt: 3,
            created_at: "2026-12-02T01:00:00.000Z".into(),
            started_at: Some("2026-12-02T01:00:01.000Z".into()),
            finished_at: Some("2026-12-02T01:00:02.000Z".into()),
            worker_id: Some(4),
            current_stage: Some("Copying </script>".into()),
            entities_processed: 1250,
            entities_total: Some(5000),
            entities_unit: Some("files".into()),
            outcome_summary: obj(json!({"copied": 1250, "note": "tab\there"})),
            error: Some("disk full \\ 100%".into()),
            error_context: Some(json!({"path": "/tmp/x", "codes": [28, 5]})),
            rerun_of_id: Some(3),
            triggered_by: "rerun".into(),
            metadata: obj(json!({"enqueuedByVersion": "1.0.0"})),
            cancel_requested_at: Some("2026-12-02T01:00:03.000Z".into()),
            updated_at: "2026-12-02T01:00:04.000Z".into(),
            run_at: Some("2026-12-02T00:59:00.000Z".into()),
            schedule_name: Some("nightly".into()),
            scheduled_for: Some("2026-12-02T00:59:00.000Z".into()),
        }
    }

    fn tree_text(v: Value) -> String {
        v.to_string()
    }

    #[test]
    fn the_answer_is_the_value_trees_text() {
        let mut scheduled = minimal();
        scheduled.status = JobStatus::Scheduled;
        scheduled.run_at = Some("2027-01-01T00:00:00.000Z".into());
        let mut running = full();
        running.status = JobStatus::Running;
        running.error_context = Some(Value::String("plain text".into()));
        for run in [minimal(), full(), scheduled, running] {
            let want = tree_text(json!({"run": run_json(&run)}));
            let got = String::from_utf8(text(&run, None)).expect("UTF-8");
            assert_eq!(got, want);
            let want = tree_text(json!({"run": run_json(&run), "duplicateOf": 12}));
            let got = String::from_utf8(text(&run, Some(12))).expect("UTF-8");
            assert_eq!(got, want);
        }
    }
}
