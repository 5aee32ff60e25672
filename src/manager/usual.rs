//! What is usual for a job type, from its recent COMPLETED runs: the median
//! duration (the ETA of a run that reports no total) and the median of each
//! outcome counter, and which finished runs are far from it ("0 inserts;
//! usually about 5,000"). A type's runs are read once per [`CACHE_FOR`]
//! however many runs the page shows.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::Manager;
use crate::error::Result;
use crate::job::{JobRun, JobStatus};
use crate::store::usual::{Sample, recent_completed};

/// COMPLETED runs the medians are taken over.
const SAMPLES: usize = 20;
/// Fewer than this, and nothing is usual yet.
const MIN_SAMPLES: usize = 5;
/// How long a type's samples are reused: a new run changes a median of 20
/// little, and the page asks about every run it shows, live.
const CACHE_FOR: Duration = Duration::from_secs(30);
/// Types kept at most; past it the cache starts again.
const MAX_TYPES: usize = 1_000;
/// A counter is judged only when its median is at least this: around a
/// handful, ten times more or less is not news.
const MIN_COUNTER_MEDIAN: f64 = 10.0;
/// Outside [median / 10, median * 10] a counter is unusual.
const COUNTER_FACTOR: f64 = 10.0;
/// A run taking more than this many times the median is unusual ...
const DURATION_FACTOR: i64 = 5;
/// ... if it also took this much longer (a 5 ms job taking 30 ms is not).
const MIN_DURATION_EXCESS_MS: i64 = 1_000;

/// A type's samples, newest first, and when they were read.
type Read = (Instant, Arc<Vec<Sample>>);

/// The samples of each type.
#[derive(Default)]
pub struct UsualCache(Mutex<HashMap<String, Read>>);

/// What is usual for a run's type, as the run JSON carries it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usual {
    /// The COMPLETED runs it is taken from (the run itself left out).
    pub runs: usize,
    pub duration_ms: Option<i64>,
    /// The median of each numeric outcome counter most of them report.
    pub outcome: BTreeMap<String, f64>,
}

/// One way a finished run is far from the usual.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unusual {
    /// The counter, or `duration`.
    pub key: String,
    pub value: f64,
    pub usual: f64,
    /// "0 inserts; usually about 5,000".
    pub text: String,
}

impl Manager {
    /// Adds `usual` (and, for a COMPLETED run, `unusual`: a list, empty
    /// when nothing stands out) to the run's JSON object, when its type
    /// has enough COMPLETED runs. A failure to read them is logged and
    /// leaves the run as it was: the run itself is what was asked for.
    pub fn add_usual(&self, view: &mut Value, run: &JobRun) {
        let usual = match self.usual_for(run) {
            Ok(Some(u)) => u,
            Ok(None) => return,
            Err(e) => {
                log::warn!("usual for {}: {e}", run.job_name);
                return;
            }
        };
        let Value::Object(m) = view else { return };
        if run.status == JobStatus::Completed {
            let flags = unusual(run, &usual);
            m.insert(
                "unusual".into(),
                serde_json::to_value(flags).unwrap_or_default(),
            );
        }
        m.insert(
            "usual".into(),
            serde_json::to_value(usual).unwrap_or_default(),
        );
    }

    /// The usual of `run`'s type, from its recent COMPLETED runs other than
    /// `run`; None with fewer than [`MIN_SAMPLES`].
    pub fn usual_for(&self, run: &JobRun) -> Result<Option<Usual>> {
        let samples = self.samples(&run.job_name)?;
        let others: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.id != run.id)
            .take(SAMPLES)
            .collect();
        Ok(usual_of(&others))
    }

    fn samples(&self, job_name: &str) -> Result<Arc<Vec<Sample>>> {
        let cache = &self.usual.0;
        if let Ok(map) = cache.lock()
            && let Some((at, s)) = map.get(job_name)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(s.clone());
        }
        // One more than used, so leaving the judged run out still leaves
        // SAMPLES.
        let fresh = Arc::new(recent_completed(
            &*self.store.conn()?,
            job_name,
            SAMPLES + 1,
        )?);
        if let Ok(mut map) = cache.lock() {
            if map.len() >= MAX_TYPES {
                map.clear();
            }
            map.insert(job_name.to_string(), (Instant::now(), fresh.clone()));
        }
        Ok(fresh)
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn usual_of(samples: &[&Sample]) -> Option<Usual> {
    if samples.len() < MIN_SAMPLES {
        return None;
    }
    let durations: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.duration_ms)
        .map(|d| d as f64)
        .collect();
    let mut by_key: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for s in samples {
        for (k, v) in &s.outcome {
            if let Some(n) = v.as_f64() {
                by_key.entry(k).or_default().push(n);
            }
        }
    }
    let outcome = by_key
        .into_iter()
        // A counter only a few runs report has no usual value.
        .filter(|(_, v)| v.len() >= MIN_SAMPLES)
        .filter_map(|(k, v)| median(v).map(|m| (k.to_string(), m)))
        .collect();
    Some(Usual {
        runs: samples.len(),
        duration_ms: (durations.len() >= MIN_SAMPLES)
            .then(|| median(durations))
            .flatten()
            .map(|d| d.round() as i64),
        outcome,
    })
}

/// The ways `run` is far from `usual`, counters first.
pub fn unusual(run: &JobRun, usual: &Usual) -> Vec<Unusual> {
    let mut flags = Vec::new();
    for (key, &m) in &usual.outcome {
        let Some(v) = run.outcome_summary.get(key).and_then(Value::as_f64) else {
            continue;
        };
        if m >= MIN_COUNTER_MEDIAN && (v < m / COUNTER_FACTOR || v > m * COUNTER_FACTOR) {
            flags.push(Unusual {
                key: key.clone(),
                value: v,
                usual: m,
                text: format!(
                    "{} {}; usually about {}",
                    number(v),
                    singular(key, v),
                    number(about(m))
                ),
            });
        }
    }
    if let (Some(d), Some(m)) = (run_duration_ms(run), usual.duration_ms)
        && m > 0
        && d > m * DURATION_FACTOR
        && d - m >= MIN_DURATION_EXCESS_MS
    {
        flags.push(Unusual {
            key: "duration".into(),
            value: d as f64,
            usual: m as f64,
            text: format!(
                "took {}; usually about {}",
                rough_duration(d),
                rough_duration(m)
            ),
        });
    }
    flags
}

fn run_duration_ms(run: &JobRun) -> Option<i64> {
    let start = crate::clock::Timestamp::parse(run.started_at.as_deref()?)?;
    let end = crate::clock::Timestamp::parse(run.finished_at.as_deref()?)?;
    Some(end.0 - start.0)
}

/// "1 error", not "1 errors": a counter named in the plural, for one.
fn singular(key: &str, n: f64) -> &str {
    match key.strip_suffix('s') {
        Some(one) if n == 1.0 && !one.ends_with('s') => one,
        _ => key,
    }
}

/// `n` rounded to two significant digits: "about 5,000", not "about 4,987".
fn about(n: f64) -> f64 {
    if n.abs() < 100.0 {
        return n.round();
    }
    let scale = 10f64.powi(n.abs().log10().floor() as i32 - 1);
    (n / scale).round() * scale
}

/// A whole number with thousands separators; others with one decimal.
fn number(n: f64) -> String {
    if n.fract() != 0.0 {
        return format!("{n:.1}");
    }
    let digits = format!("{}", n.abs() as i64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0.0 { format!("-{out}") } else { out }
}

/// "45 s", "2 min", "3 h": how a person says a duration roughly.
pub fn rough_duration(ms: i64) -> String {
    let s = (ms as f64 / 1000.0).round() as i64;
    match s {
        s if s < 1 => format!("{ms} ms"),
        s if s < 90 => format!("{s} s"),
        s if s < 90 * 60 => format!("{} min", (s as f64 / 60.0).round() as i64),
        s => format!("{} h", (s as f64 / 3600.0).round() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: i64, ms: i64, inserts: i64) -> Sample {
        let mut outcome = serde_json::Map::new();
        outcome.insert("inserts".into(), inserts.into());
        Sample {
            id,
            duration_ms: Some(ms),
            outcome,
        }
    }

    #[test]
    fn medians_need_five_runs() {
        let s: Vec<Sample> = (0..4).map(|i| sample(i, 1000, 5000)).collect();
        let refs: Vec<&Sample> = s.iter().collect();
        assert_eq!(usual_of(&refs), None);
        let s: Vec<Sample> = (0..6).map(|i| sample(i, 1000 + i * 100, 5000)).collect();
        let refs: Vec<&Sample> = s.iter().collect();
        let u = usual_of(&refs).unwrap();
        assert_eq!(u.runs, 6);
        assert_eq!(u.duration_ms, Some(1250));
        assert_eq!(u.outcome["inserts"], 5000.0);
    }

    fn completed(ms: i64, inserts: i64) -> JobRun {
        let mut outcome = serde_json::Map::new();
        outcome.insert("inserts".into(), inserts.into());
        JobRun {
            id: 99,
            job_name: "t".into(),
            status: JobStatus::Completed,
            parameters: serde_json::Map::new(),
            priority: 0,
            attempt: 1,
            created_at: "2026-12-01T10:00:00.000Z".into(),
            started_at: Some("2026-12-01T10:00:00.000Z".into()),
            finished_at: Some(crate::clock::Timestamp(1_796_119_200_000 + ms).to_text()),
            worker_id: None,
            current_stage: None,
            entities_processed: 0,
            entities_total: None,
            entities_unit: None,
            outcome_summary: outcome,
            error: None,
            error_context: None,
            rerun_of_id: None,
            triggered_by: "cli".into(),
            metadata: serde_json::Map::new(),
            cancel_requested_at: None,
            updated_at: "2026-12-01T10:00:00.000Z".into(),
            run_at: None,
            schedule_name: None,
            scheduled_for: None,
        }
    }

    #[test]
    fn far_from_the_usual_is_a_tenth_ten_times_or_five_times_as_long() {
        let usual = |ms: i64, inserts: f64| Usual {
            runs: 20,
            duration_ms: Some(ms),
            outcome: [("inserts".to_string(), inserts)].into(),
        };
        let keys = |run: &JobRun, u: &Usual| -> Vec<String> {
            unusual(run, u).into_iter().map(|f| f.key).collect()
        };
        assert_eq!(
            crate::clock::Timestamp::parse("2026-12-01T10:00:00.000Z").map(|t| t.0),
            Some(1_796_119_200_000)
        );
        // Within [median / 10, 10 x median] and under 5 x the duration: nothing.
        assert!(keys(&completed(4_000, 500), &usual(1_000, 5_000.0)).is_empty());
        assert_eq!(
            keys(&completed(1_000, 0), &usual(1_000, 5_000.0)),
            ["inserts"]
        );
        assert_eq!(
            keys(&completed(1_000, 50_001), &usual(1_000, 5_000.0)),
            ["inserts"]
        );
        // A median under 10 is not judged.
        assert!(keys(&completed(1_000, 0), &usual(1_000, 9.0)).is_empty());
        assert_eq!(
            keys(&completed(5_001, 5_000), &usual(1_000, 5_000.0)),
            ["duration"]
        );
        // Five times a tiny duration is not news.
        assert!(keys(&completed(600, 5_000), &usual(100, 5_000.0)).is_empty());
        assert_eq!(
            unusual(&completed(1_000, 0), &usual(1_000, 4_987.0))[0].text,
            "0 inserts; usually about 5,000"
        );
    }

    #[test]
    fn the_words_round_the_usual() {
        assert_eq!(number(about(4987.0)), "5,000");
        assert_eq!(number(about(42.4)), "42");
        assert_eq!(number(1234567.0), "1,234,567");
        assert_eq!(rough_duration(120_000), "2 min");
        assert_eq!(rough_duration(45_000), "45 s");
    }
}
