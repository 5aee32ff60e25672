//! The bench's own job types: a no-op, a latency probe, a logger.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::Sender;
use serde_json::{Map, Value};

use crate::context::JobContext;
use crate::job::{LogLevel, Trigger};
use crate::jobs::builtin_registry;
use crate::manager::EnqueueRequest;
use crate::policies::{Group, Policy};
use crate::registry::{JobType, ParamKind, ParamSpec, Registry};

/// A latency run's id and how many milliseconds after its enqueue it began.
pub(super) type Started = (i64, f64);

/// Wall-clock microseconds: the one clock both processes of `latency` share.
pub(super) fn wall_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The built-in job types and the bench's own: `done` counts finished
/// no-op runs, `started` receives each latency run's delay.
pub(super) fn registry(done: &Arc<AtomicUsize>, started: &Sender<Started>) -> Arc<Registry> {
    let mut r = builtin_registry();
    let done = done.clone();
    r.register(simple("bench-noop", move |_| {
        done.fetch_add(1, Ordering::Relaxed);
    }));
    for name in [
        "bench-backlog",
        "bench-paused",
        "bench-waiting",
        "bench-limited-a",
        "bench-limited-b",
    ] {
        r.register(simple(name, |_| {}));
    }
    let tx = started.clone();
    r.register(JobType {
        name: "bench-latency".into(),
        description: "Benchmark: reports how long after `t0_us` (wall clock) it started.".into(),
        params: vec![ParamSpec::new("t0_us", ParamKind::Integer).default(0)],
        retry_safe: true,
        handler: Arc::new(move |ctx| {
            let t0 = ctx.param_i64("t0_us")?;
            let ms = (wall_us() - t0) as f64 / 1000.0;
            let _ = tx.send((ctx.run_id(), ms));
            Ok(())
        }),
    });
    r.register(JobType {
        name: "bench-logs".into(),
        description: "Benchmark: formats `lines` messages and logs them when `log` is set.".into(),
        params: vec![
            ParamSpec::new("lines", ParamKind::Integer).default(0),
            ParamSpec::new("log", ParamKind::Boolean).default(true),
        ],
        retry_safe: true,
        handler: Arc::new(|ctx| {
            let n = ctx.param_i64("lines")?;
            let log = ctx.params().get("log").and_then(Value::as_bool) == Some(true);
            let mut sink = 0usize;
            for i in 0..n {
                let msg = format!("processed item {i} of the benchmark workload");
                if log {
                    ctx.log_with(LogLevel::Info, &msg, serde_json::json!({"i": i}));
                } else {
                    sink += std::hint::black_box(msg).len();
                }
                ctx.inc();
            }
            std::hint::black_box(sink);
            Ok(())
        }),
    });
    Arc::new(r)
}

/// [`registry`] with the policies of `process-policies`: the two limited
/// types share the group `bench-disk`, at most one of them running.
pub(super) fn policy_registry(done: &Arc<AtomicUsize>, started: &Sender<Started>) -> Arc<Registry> {
    let mut r = (*registry(done, started)).clone();
    for name in ["bench-limited-a", "bench-limited-b"] {
        r.set_policy(
            name,
            Policy {
                group: Some("bench-disk".into()),
                ..Policy::default()
            },
        );
    }
    r.set_group("bench-disk", Group { max_running: 1 });
    Arc::new(r)
}

fn simple(name: &str, f: impl Fn(&JobContext) + Send + Sync + 'static) -> JobType {
    JobType {
        name: name.into(),
        description: format!("Benchmark job type {name}."),
        params: vec![],
        retry_safe: true,
        handler: Arc::new(move |ctx| {
            f(ctx);
            Ok(())
        }),
    }
}

pub(super) fn noop_request(name: &str) -> EnqueueRequest {
    EnqueueRequest {
        job_name: name.into(),
        parameters: Map::new(),
        priority: 0,
        trigger: Trigger::Api,
    }
}
