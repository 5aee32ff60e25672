//! The bench's own job types (a no-op, a latency probe, a logger) and the
//! other process of the `latency` scenario, which enqueues its probes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::Sender;
use serde_json::{Map, Value};

use super::BenchOptions;
use super::scenarios::Ctx;
use crate::context::JobContext;
use crate::error::Result;
use crate::job::{LogLevel, Trigger};
use crate::jobs::builtin_registry;
use crate::manager::EnqueueRequest;
use crate::registry::{JobType, ParamKind, ParamSpec, Registry};

/// A latency run's id and how many milliseconds after its enqueue it began.
pub(super) type Started = (i64, f64);

/// Wall-clock microseconds: the one clock both processes of `latency` share.
fn wall_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The other process of the `latency` scenario: enqueues `samples` runs at
/// random gaps of 0-50 ms, each stamped with the time just before its commit.
pub fn latency_client(db: &std::path::Path, samples: usize) -> Result<()> {
    let ctx = Ctx::new(&BenchOptions {
        db: db.to_path_buf(),
        n: samples.max(1),
        backlog: 0,
        history_lines: 0,
    })?;
    let m = ctx.manager(db)?;
    let mut seed = 0x2545_f491_u64;
    for _ in 0..samples {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        thread::sleep(Duration::from_millis((seed >> 33) % 50));
        let mut req = noop_request("bench-latency");
        req.parameters
            .insert("t0_us".into(), Value::from(wall_us()));
        m.enqueue_many(&[req])?;
    }
    Ok(())
}

/// The built-in job types and the bench's own: `done` counts finished
/// no-op runs, `started` receives each latency run's delay.
pub(super) fn registry(done: &Arc<AtomicUsize>, started: &Sender<Started>) -> Arc<Registry> {
    let mut r = builtin_registry();
    let done = done.clone();
    r.register(simple("bench-noop", move |_| {
        done.fetch_add(1, Ordering::Relaxed);
    }));
    r.register(simple("bench-backlog", |_| {}));
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
