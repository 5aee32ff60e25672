//! `prune-history`: deletes finished runs older than N days, with their
//! logs, in batches, so the worker's own writes are never held up long.

use std::sync::Arc;

use serde_json::json;

use crate::clock::Timestamp;
use crate::job::LogLevel;
use crate::registry::{JobType, ParamKind, ParamSpec};

/// Runs deleted per transaction: a big, rare write, done in small batches
/// on a connection of its own (see `JobContext::prune_history`), so the
/// worker's writer waits for the lock at most one batch.
const BATCH: usize = 500;

/// The job type.
pub fn prune_history() -> JobType {
    JobType {
        name: "prune-history".into(),
        description: "Deletes finished runs (and their log lines) that ended more than \
                      `older_than_days` days ago, in batches."
            .into(),
        params: vec![
            ParamSpec::new("older_than_days", ParamKind::Integer)
                .required()
                .range(0, 36_500)
                .help("Delete runs that finished more than this many days ago."),
        ],
        retry_safe: true,
        handler: Arc::new(|ctx| {
            let days = ctx.param_i64("older_than_days")?;
            let cutoff = Timestamp::now().plus_ms(-days * 86_400_000).to_text();
            ctx.stage("Counting");
            let (runs, lines) = ctx.count_prunable(&cutoff)?;
            ctx.log_with(
                LogLevel::Info,
                &format!("{runs} runs and {lines} log lines finished before {cutoff}"),
                json!({"cutoff": cutoff, "runs": runs, "logLines": lines}),
            );
            ctx.stage("Deleting");
            ctx.set_total(runs, "runs");
            ctx.check_cancelled()?;
            ctx.prune_history(&cutoff, BATCH, |r, l| {
                ctx.add(r);
                ctx.outcome("deletes", r);
                ctx.outcome("logLinesDeleted", l);
                ctx.check_cancelled()
            })?;
            ctx.info("pruning finished");
            Ok(())
        }),
    }
}
