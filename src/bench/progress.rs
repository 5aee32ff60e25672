//! The `progress` scenario: what a progress increment costs the job (an
//! atomic add, no I/O), and what carrying it to the database costs the
//! worker: the coalesced write the writer adds to a commit for each
//! running run once per progress interval.

use std::time::Instant;

use serde_json::Map;

use super::scenarios::Ctx;
use super::{Measurement, TempDir, cpu_seconds, percentile};
use crate::clock::Timestamp;
use crate::context::{JobContext, RunInfo, RunShared};
use crate::error::Result;
use crate::store::batch::{self, Batch, Claimant, ProgressRecord};
use crate::store::{self, Store, bench as sb};

/// Runs whose progress one commit carries in the batched measurement.
const BATCH_RUNS: usize = 100;

impl Ctx {
    /// The increment in the job's thread, then the coalesced write: one
    /// run's progress in a commit of its own (what an otherwise idle writer
    /// pays every interval), and per run with `BATCH_RUNS` in one commit.
    pub(super) fn progress(&mut self) -> Result<Vec<Measurement>> {
        let dir = TempDir::beside(&self.opts.db, "progress")?;
        let store = Store::open(&dir.db())?;
        self.note_sync(&store)?;
        let inc = increments(store, self.opts.n.max(10_000_000));
        // The writer's own kind of connection, as in the worker.
        let mut conn = store::open_writer_connection(&dir.db())?;
        let (worker_id, runs) = sb::running_fixture(&mut conn, BATCH_RUNS)?;
        let me = Claimant { worker_id };
        let writes = self.opts.n.clamp(100, 2_000);
        let mut lat = Vec::with_capacity(writes);
        let (t, cpu) = (Instant::now(), cpu_seconds());
        for k in 0..writes {
            let one = Batch {
                progress: vec![record(runs[0], k as i64)],
                ..Batch::default()
            };
            let t0 = Instant::now();
            batch::commit(&mut conn, &me, &one, Timestamp::now())?;
            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        let mut single = Measurement::new("progress-write", writes, 1, t.elapsed()).with_cpu(cpu);
        lat.sort_by(f64::total_cmp);
        single.lat_p50_ms = percentile(&lat, 50.0);
        single.lat_p95_ms = percentile(&lat, 95.0);
        single.lat_p99_ms = percentile(&lat, 99.0);
        let rounds = (writes / 10).max(10);
        let t = Instant::now();
        for k in 0..rounds {
            let many = Batch {
                progress: runs.iter().map(|&id| record(id, k as i64)).collect(),
                ..Batch::default()
            };
            batch::commit(&mut conn, &me, &many, Timestamp::now())?;
        }
        let per_run_us = t.elapsed().as_secs_f64() * 1e6 / (rounds * BATCH_RUNS) as f64;
        single.note = Some(format!(
            "one run's coalesced progress in a commit of its own; {per_run_us:.1} µs per run \
             with {BATCH_RUNS} runs in one commit; written once per run per progress interval"
        ));
        Ok(vec![inc, single])
    }
}

/// `n` increments of a job's progress, as the job's own thread pays them.
fn increments(store: Store, n: usize) -> Measurement {
    let (tx, _rx) = crossbeam_channel::bounded(1);
    let shared = RunShared::new(1);
    let ctx = JobContext::new(
        RunInfo {
            id: 1,
            job_name: "bench".into(),
            attempt: 1,
            parameters: Map::new(),
            worker_id: None,
        },
        shared.clone(),
        tx,
        store,
    );
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(&ctx).inc();
    }
    let took = t.elapsed();
    let mut out = Measurement::new("progress", n, 1, took);
    out.note = Some(format!(
        "{:.2} ns per increment, in the job's thread (fingerprint {:?}); \
         the database write is progress-write",
        took.as_nanos() as f64 / n as f64,
        shared.fingerprint().0
    ));
    out
}

/// A run's progress as the writer would carry it.
fn record(run_id: i64, k: i64) -> ProgressRecord {
    ProgressRecord {
        run_id,
        stage: Some("Processing".into()),
        processed: k,
        total: Some(1_000_000),
        unit: Some("items".into()),
        outcome: format!("{{\"updates\":{k}}}"),
    }
}
