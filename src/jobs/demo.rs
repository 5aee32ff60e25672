//! Demo job types: a known total, an unknown total, several phases with
//! outcome counters, warnings and an optional failure, and a flaky job for
//! retries and timeouts.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::context::{JobContext, JobError};
use crate::job::LogLevel;
use crate::registry::{JobType, ParamKind, ParamSpec};

fn count_param(default: i64) -> ParamSpec {
    ParamSpec::new("count", ParamKind::Integer)
        .default(default)
        .range(0, 100_000_000)
        .help("How many items to process.")
}

fn delay_param(default: i64) -> ParamSpec {
    ParamSpec::new("delay_ms", ParamKind::Integer)
        .default(default)
        .range(0, 3_600_000)
        .help("Milliseconds spent on each item.")
}

fn pause(ctx: &JobContext, ms: i64) -> Result<(), JobError> {
    if ms > 0 {
        ctx.sleep(Duration::from_millis(ms as u64))
    } else {
        ctx.check_cancelled()
    }
}

/// "1 item", "2 items".
fn items(n: i64) -> String {
    if n == 1 {
        "1 item".to_string()
    } else {
        format!("{n} items")
    }
}

/// Logs a line every tenth of `total` (or every 1,000 items when unknown).
fn milestone(ctx: &JobContext, done: i64, total: Option<i64>) {
    let every = total.map(|t| (t / 10).max(1)).unwrap_or(1000);
    if done % every == 0 {
        ctx.log_with(
            LogLevel::Info,
            &format!("processed {}", items(done)),
            json!({"processed": done, "total": total}),
        );
    }
}

/// `demo-known-total`: "Processing items (1,250 / 5,000)".
pub fn known_total() -> JobType {
    JobType {
        name: "demo-known-total".into(),
        description: "Demo: processes `count` items with a known total, so progress shows a \
                      percentage and an ETA."
            .into(),
        params: vec![count_param(100), delay_param(50)],
        retry_safe: true,
        handler: Arc::new(|ctx| {
            let count = ctx.param_i64("count")?;
            let delay = ctx.param_i64("delay_ms")?;
            ctx.stage("Processing");
            ctx.set_total(count, "items");
            for i in 1..=count {
                pause(ctx, delay)?;
                ctx.inc();
                ctx.outcome("updates", 1);
                milestone(ctx, i, Some(count));
            }
            ctx.info(&format!("done: {} processed", items(count)));
            Ok(())
        }),
    }
}

/// `demo-quick`: the smallest real run, a total, progress and two log
/// lines with context; `bench process-real` drains thousands of them.
pub fn quick() -> JobType {
    JobType {
        name: "demo-quick".into(),
        description: "Demo: the smallest real run: declares a total of `count` items (one by \
                      default), counts each as processed, and logs a line with context when it \
                      starts and when it ends."
            .into(),
        params: vec![count_param(1), delay_param(0)],
        retry_safe: true,
        handler: Arc::new(|ctx| {
            let count = ctx.param_i64("count")?;
            let delay = ctx.param_i64("delay_ms")?;
            ctx.set_total(count, "items");
            ctx.log_with(
                LogLevel::Info,
                &format!("processing {}", items(count)),
                json!({"total": count}),
            );
            for _ in 0..count {
                pause(ctx, delay)?;
                ctx.inc();
            }
            ctx.log_with(
                LogLevel::Info,
                &format!("done: {} processed", items(count)),
                json!({"processed": count}),
            );
            Ok(())
        }),
    }
}

/// `demo-unknown-total`: "Scanning (1,250 processed)".
pub fn unknown_total() -> JobType {
    JobType {
        name: "demo-unknown-total".into(),
        description: "Demo: scans a stream of `count` items whose size is not known up front, \
                      so progress shows a running count."
            .into(),
        params: vec![count_param(100), delay_param(50)],
        retry_safe: true,
        handler: Arc::new(|ctx| {
            let count = ctx.param_i64("count")?;
            let delay = ctx.param_i64("delay_ms")?;
            ctx.stage("Scanning");
            for i in 1..=count {
                pause(ctx, delay)?;
                ctx.inc();
                ctx.outcome("found", 1);
                milestone(ctx, i, None);
            }
            ctx.info(&format!("stream ended after {}", items(count)));
            Ok(())
        }),
    }
}

/// `demo-multi-phase`: fetch, process with counters and warnings, finalise;
/// fails at item `fail_at` when given.
pub fn multi_phase() -> JobType {
    JobType {
        name: "demo-multi-phase".into(),
        description: "Demo: three phases (fetching, processing with a known total, finalizing), \
                      outcome counters for inserts, updates and errors, some warnings, and a \
                      failure at item `fail_at` when set."
            .into(),
        params: vec![
            count_param(50),
            delay_param(20),
            ParamSpec::new("fail_at", ParamKind::Integer)
                .range(1, 100_000_000)
                .help("Fail when processing this item (leave empty to succeed)."),
            ParamSpec::new(
                "fail_mode",
                ParamKind::Enum(vec!["error".into(), "panic".into()]),
            )
            .default("error")
            .help("How to fail at `fail_at`: return an error, or panic."),
        ],
        retry_safe: false,
        handler: Arc::new(multi_phase_run),
    }
}

fn multi_phase_run(ctx: &JobContext) -> Result<(), JobError> {
    let count = ctx.param_i64("count")?;
    let delay = ctx.param_i64("delay_ms")?;
    let fail_at = ctx.param_i64_opt("fail_at");

    ctx.stage("Phase 1: Fetching");
    for _ in 0..(count + 4) / 5 {
        pause(ctx, delay)?;
        ctx.inc();
    }
    ctx.info(&format!("fetched {count} records"));

    ctx.stage("Phase 2: Processing");
    ctx.set_total(count, "records");
    for i in 1..=count {
        pause(ctx, delay)?;
        if Some(i) == fail_at {
            ctx.outcome("errors", 1);
            if ctx.param_str("fail_mode")? == "panic" {
                panic!("demo panic at record {i}");
            }
            return Err(
                JobError::new(format!("record {i} could not be processed (fail_at={i})"))
                    .with_context(json!({"record": i, "phase": "Processing"})),
            );
        }
        match i % 10 {
            0 => {
                ctx.outcome("errors", 1);
                ctx.log_with(
                    LogLevel::Warning,
                    &format!("record {i} skipped: malformed"),
                    json!({"record": i}),
                );
            }
            1 | 4 | 7 => ctx.outcome("inserts", 1),
            _ => ctx.outcome("updates", 1),
        }
        ctx.inc();
        milestone(ctx, i, Some(count));
    }

    ctx.stage("Phase 3: Finalizing");
    pause(ctx, delay)?;
    ctx.info("summary written");
    Ok(())
}

/// `demo-flaky`: fails on its first attempts, then succeeds; for watching
/// retries with backoff and timeouts on a Rust job.
pub fn flaky() -> JobType {
    JobType {
        name: "demo-flaky".into(),
        description: "Demo: fails on its first `fail_attempts` attempts (with an error marked \
                      retryable unless `retryable` is false), then succeeds. Each attempt first \
                      works `work_ms` without looking for a cancel or its timeout. Give it a \
                      retry policy to watch retries with backoff."
            .into(),
        params: vec![
            ParamSpec::new("fail_attempts", ParamKind::Integer)
                .default(2)
                .range(0, 1000)
                .help("How many attempts fail before one succeeds."),
            ParamSpec::new("retryable", ParamKind::Boolean)
                .default(true)
                .help("Fail with an error marked retryable (JobError::Retry)."),
            ParamSpec::new("work_ms", ParamKind::Integer)
                .default(0)
                .range(0, 3_600_000)
                .help("Milliseconds each attempt works, deaf to a cancel or its timeout."),
        ],
        retry_safe: true,
        handler: Arc::new(flaky_run),
    }
}

fn flaky_run(ctx: &JobContext) -> Result<(), JobError> {
    let attempt = ctx.attempt();
    ctx.stage("Working");
    ctx.info(&format!("attempt {attempt} started"));
    let work = ctx.param_i64("work_ms")?;
    if work > 0 {
        // Deliberately deaf: shows how a job that ignores its stop request
        // is recorded once it returns.
        std::thread::sleep(Duration::from_millis(work as u64));
    }
    if attempt <= ctx.param_i64("fail_attempts")? {
        let message = format!("flaky failure on attempt {attempt}");
        let retryable = ctx.params().get("retryable").and_then(|v| v.as_bool()) != Some(false);
        return Err(if retryable {
            JobError::retry(message)
        } else {
            JobError::new(message)
        }
        .with_context(json!({"attempt": attempt})));
    }
    ctx.info(&format!("attempt {attempt} succeeded"));
    Ok(())
}
