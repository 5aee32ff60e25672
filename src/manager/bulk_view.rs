//! What a bulk action is shown as: its states, who carries it out, and
//! the view the API, the CLI and the page read (`GET /api/jobs/bulk/ID`).

use serde::Serialize;
use serde_json::Value;

use super::bulk::{BulkAction, BulkCounts};
use crate::error::{Error, Result};
use crate::store::bulk_actions::BulkRow;

/// Where a bulk action is. RUNNING → DONE, FAILED (an error stopped it) or
/// INTERRUPTED (the CLI process carrying it out died; see
/// [`super::bulk_recover`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BulkState {
    Running,
    Done,
    Failed,
    Interrupted,
}

impl BulkState {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkState::Running => "RUNNING",
            BulkState::Done => "DONE",
            BulkState::Failed => "FAILED",
            BulkState::Interrupted => "INTERRUPTED",
        }
    }

    fn parse(text: &str) -> Option<BulkState> {
        [
            BulkState::Running,
            BulkState::Done,
            BulkState::Failed,
            BulkState::Interrupted,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Which process carries an action out, and so what happens when it dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkRunner {
    /// `jobmgr serve`'s bulk thread: carried on after a restart.
    Serve,
    /// A `jobmgr cancel|rerun|delete` in the foreground: marked INTERRUPTED
    /// when it dies (whoever killed it meant it to stop).
    Cli,
}

impl BulkRunner {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            BulkRunner::Serve => "serve",
            BulkRunner::Cli => "cli",
        }
    }
}

/// A bulk action as the API, the CLI and the page show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkView {
    pub id: i64,
    pub action: &'static str,
    pub filter: Value,
    /// Runs the filter matched when the action began.
    pub total: i64,
    /// The same, under the name the dry run uses.
    pub matched: i64,
    /// Runs walked so far.
    pub done: i64,
    pub status: BulkState,
    pub error: Option<String>,
    pub source: String,
    pub user: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub audit_id: Option<i64>,
    #[serde(flatten)]
    pub counts: BulkCounts,
}

impl BulkView {
    pub(super) fn from_row(row: &BulkRow) -> Result<BulkView> {
        let bad = |what: &str| Error::Internal(format!("bulk action {}: {what}", row.id));
        let action = BulkAction::parse(&row.action).ok_or_else(|| bad("unknown action"))?;
        Ok(BulkView {
            id: row.id,
            action: action.as_str(),
            filter: serde_json::from_str(&row.filter).unwrap_or(Value::Null),
            total: row.total,
            matched: row.total,
            done: row.done,
            status: BulkState::parse(&row.status).ok_or_else(|| bad("unknown status"))?,
            error: row.error.clone(),
            source: row.source.clone(),
            user: row.user.clone(),
            created_at: row.created_at.clone(),
            finished_at: row.finished_at.clone(),
            audit_id: row.audit_id,
            counts: serde_json::from_str(&row.report).unwrap_or_default(),
        })
    }
}
