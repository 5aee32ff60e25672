//! `POST /api/jobs/bulk`: cancel, re-run or delete every run a history
//! filter matches, or with `dryRun` only count them (the page's
//! confirmation names that count). The action runs within the request, in
//! the engine's short batches.

use serde::Deserialize;
use serde_json::json;

use super::Ctx;
use super::http::{Reply, Req, json_reply};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobStatus, Trigger};
use crate::manager::{Actor, BulkAction, BulkRequest};
use crate::query::RunFilter;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BulkBody {
    action: String,
    #[serde(default)]
    filter: FilterBody,
    /// Allows a delete with an empty filter.
    #[serde(default)]
    all: bool,
    /// Count only; change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// The history's filter, as the page's URL and `GET /api/jobs` have it.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FilterBody {
    #[serde(default)]
    status: Vec<String>,
    name: Option<String>,
    q: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

fn bad(msg: String) -> Error {
    Error::Invalid(msg)
}

/// An empty text is no filter at all (the page sends its empty fields).
fn given(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn time(name: &str, v: Option<String>) -> Result<Option<String>> {
    given(v)
        .map(|t| {
            Timestamp::parse(&t).map(Timestamp::to_text).ok_or_else(|| {
                bad(format!(
                    "filter.{name} must be a date or timestamp, got '{t}'"
                ))
            })
        })
        .transpose()
}

impl FilterBody {
    fn into_filter(self) -> Result<RunFilter> {
        let statuses = self
            .status
            .iter()
            .map(|s| {
                JobStatus::parse(s).ok_or_else(|| {
                    let all: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
                    bad(format!(
                        "unknown status '{s}' (expected one of {})",
                        all.join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RunFilter {
            statuses,
            name: given(self.name),
            q: given(self.q),
            since: time("since", self.since)?,
            until: time("until", self.until)?,
            ..RunFilter::default()
        })
    }
}

/// `POST /api/jobs/bulk {action, filter, all?, dryRun?}`: 200 with how
/// many runs matched and how many were acted on.
pub fn bulk(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let body: BulkBody = serde_json::from_slice(&req.body).map_err(|e| {
        bad(format!(
            "request body must be a JSON object with action and filter: {e}"
        ))
    })?;
    let action = BulkAction::parse(&body.action).ok_or_else(|| {
        bad(format!(
            "unknown action '{}' (expected cancel, rerun or delete)",
            body.action
        ))
    })?;
    let request = BulkRequest {
        action,
        filter: body.filter.into_filter()?,
        all: body.all,
    };
    if body.dry_run {
        let n = ctx.manager.bulk_preview(&request)?;
        return Ok(json_reply(
            200,
            &json!({"action": action.as_str(), "matched": n, "dryRun": true}),
        ));
    }
    let report = ctx
        .manager
        .bulk(&request, Trigger::Rerun, &Actor::web(&req.source))?;
    Ok(json_reply(
        200,
        &serde_json::to_value(report).unwrap_or_default(),
    ))
}
