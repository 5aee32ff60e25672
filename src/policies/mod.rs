//! Run policies of a job type: its timeout, how many of its runs may run
//! at once (alone or in a group shared with other types), the default
//! priority of its runs, and whether and when a failed attempt is tried
//! again. Set in Rust on the registry and overridden key by key by the
//! config file's `[policies.TYPE]` and `[groups.NAME]`; these types hold
//! the checked values (enums, not strings) that the worker applies.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};

/// How the wait between attempts grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    /// The same wait every time.
    Fixed,
    /// Doubles after every failed attempt, up to the maximum.
    Exponential,
}

impl Backoff {
    /// The names the config file accepts.
    pub const NAMES: [&'static str; 2] = ["fixed", "exponential"];

    /// Parses a config value.
    pub fn parse(text: &str) -> Option<Backoff> {
        match text {
            "fixed" => Some(Backoff::Fixed),
            "exponential" => Some(Backoff::Exponential),
            _ => None,
        }
    }
}

/// When a failed attempt is tried again.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Attempts in all, the first included (so 1 means never again).
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// The wait after the first failed attempt.
    pub initial: Duration,
    /// The longest wait, whatever the backoff.
    pub max: Duration,
    /// Whether a random part of the wait (up to half) is taken off, so
    /// that runs that failed together do not all come back together.
    pub jitter: bool,
    /// Commands: only these exit codes are tried again (empty: any).
    pub on_exit_codes: Vec<i64>,
    /// Whether any failure is tried again (commands, by default), or only
    /// errors the job marked retryable (`JobError::Retry`; Rust jobs, by
    /// default). `on_exit_codes`, when set, decides instead.
    pub any_error: bool,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            max_attempts: 1,
            backoff: Backoff::Exponential,
            initial: Duration::from_secs(10),
            max: Duration::from_secs(3600),
            jitter: false,
            on_exit_codes: Vec::new(),
            any_error: false,
        }
    }
}

/// What the worker knows of a failed attempt when it decides on a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The job returned `JobError::Retry`.
    pub marked_retryable: bool,
    /// A command's exit code, when it exited on its own.
    pub exit_code: Option<i64>,
}

impl Retry {
    /// Whether this kind of failure is one to try again (attempts aside).
    pub fn covers(&self, failure: Failure) -> bool {
        if failure.marked_retryable {
            return true;
        }
        if !self.on_exit_codes.is_empty() {
            return failure
                .exit_code
                .is_some_and(|c| self.on_exit_codes.contains(&c));
        }
        self.any_error
    }

    /// The wait after attempt `attempt` (1-based) failed. `seed` varies the
    /// jitter between runs and attempts without a random number source.
    pub fn delay(&self, attempt: i64, seed: u64) -> Duration {
        let base = match self.backoff {
            Backoff::Fixed => self.initial,
            Backoff::Exponential => {
                let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 40)).unwrap_or(40);
                self.initial.saturating_mul(1u32 << doublings.min(31))
            }
        }
        .min(self.max);
        if !self.jitter || base.is_zero() {
            return base;
        }
        // Take off up to half of the wait: a cheap mix of the seed is
        // enough to spread runs apart, nothing depends on its quality.
        let mixed = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29)
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let half = base.as_millis() as u64 / 2;
        base - Duration::from_millis(mixed % (half + 1))
    }
}

/// The policy of one job type. Unset fields mean: no limit, no retry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// How long an attempt may run before it is stopped as timed out.
    pub timeout: Option<Duration>,
    /// At most this many runs of the type RUNNING at once.
    pub max_running: Option<u32>,
    /// The group whose limit the type shares.
    pub group: Option<String>,
    /// The priority of runs enqueued without one.
    pub priority: Option<i64>,
    pub retry: Option<Retry>,
    /// Parameters whose values make a run unique: while a run of the type
    /// with the same values waits or runs, enqueueing returns it.
    pub unique: Vec<String>,
}

impl Policy {
    /// The number of attempts a run gets in all.
    pub fn max_attempts(&self) -> u32 {
        self.retry.as_ref().map_or(1, |r| r.max_attempts.max(1))
    }

    /// What to do after attempt `attempt` of a run failed with `failure`.
    pub fn after_failure(&self, attempt: i64, failure: Failure, seed: u64) -> AfterFailure {
        let Some(retry) = self.retry.as_ref().filter(|r| r.max_attempts > 1) else {
            return AfterFailure::Fail;
        };
        if !retry.covers(failure) {
            return AfterFailure::Fail;
        }
        if attempt >= i64::from(retry.max_attempts) {
            return AfterFailure::GiveUp {
                attempts: retry.max_attempts,
            };
        }
        AfterFailure::RetryIn(retry.delay(attempt, seed))
    }
}

impl Policy {
    /// The settings as `job-types --json` and the API show them (only
    /// those that are set; times in seconds).
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        if let Some(t) = self.timeout {
            out.insert("timeoutSecs".into(), t.as_secs().into());
        }
        if let Some(n) = self.max_running {
            out.insert("maxRunning".into(), n.into());
        }
        if let Some(g) = &self.group {
            out.insert("group".into(), g.clone().into());
        }
        if let Some(p) = self.priority {
            out.insert("priority".into(), p.into());
        }
        if !self.unique.is_empty() {
            out.insert("unique".into(), self.unique.clone().into());
        }
        if let Some(r) = &self.retry {
            out.insert(
                "retry".into(),
                json!({
                    "maxAttempts": r.max_attempts,
                    "backoff": r.backoff,
                    "initialSecs": r.initial.as_secs(),
                    "maxSecs": r.max.as_secs(),
                    "jitter": r.jitter,
                    "onExitCodes": r.on_exit_codes,
                    "anyError": r.any_error,
                }),
            );
        }
        Value::Object(out)
    }

    /// One line for `job-types`, empty when nothing is set.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = self.timeout {
            parts.push(format!("timeout {} s", t.as_secs()));
        }
        if let Some(n) = self.max_running {
            parts.push(format!("at most {n} running"));
        }
        if let Some(g) = &self.group {
            parts.push(format!("group {g}"));
        }
        if let Some(p) = self.priority {
            parts.push(format!("priority {p}"));
        }
        if !self.unique.is_empty() {
            parts.push(format!("unique by {}", self.unique.join(", ")));
        }
        if let Some(r) = self.retry.as_ref().filter(|r| r.max_attempts > 1) {
            let how = match r.backoff {
                Backoff::Fixed => format!("every {} s", r.initial.as_secs()),
                Backoff::Exponential => format!(
                    "backoff {} s doubling up to {} s",
                    r.initial.as_secs(),
                    r.max.as_secs()
                ),
            };
            parts.push(format!("{} attempts, {how}", r.max_attempts));
        }
        parts.join(", ")
    }
}

/// The outcome of [`Policy::after_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// An ordinary failure: the type does not retry this one.
    Fail,
    /// Wait this long, then try again.
    RetryIn(Duration),
    /// Retries are exhausted: fail, saying so.
    GiveUp { attempts: u32 },
}

/// The error of a run whose retries are exhausted.
pub fn gave_up(attempts: u32, last_error: &str) -> String {
    format!("gave up after {attempts} attempts: {last_error}")
}

/// A group of job types sharing one limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub max_running: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(backoff: Backoff) -> Retry {
        Retry {
            max_attempts: 5,
            backoff,
            initial: Duration::from_secs(10),
            max: Duration::from_secs(60),
            ..Retry::default()
        }
    }

    #[test]
    fn exponential_doubles_up_to_the_maximum_and_fixed_stays() {
        let e = retry(Backoff::Exponential);
        let got: Vec<u64> = (1..=5).map(|a| e.delay(a, 7).as_secs()).collect();
        assert_eq!(got, [10, 20, 40, 60, 60]);
        let f = retry(Backoff::Fixed);
        assert_eq!(f.delay(4, 7), Duration::from_secs(10));
        assert_eq!(e.delay(1_000_000, 1), Duration::from_secs(60));
    }

    #[test]
    fn jitter_takes_off_at_most_half() {
        let mut r = retry(Backoff::Fixed);
        r.jitter = true;
        let waits: Vec<Duration> = (0..50).map(|s| r.delay(1, s)).collect();
        assert!(
            waits
                .iter()
                .all(|w| *w >= Duration::from_secs(5) && *w <= Duration::from_secs(10))
        );
        assert!(waits.iter().any(|w| *w != waits[0]), "jitter varies");
    }

    #[test]
    fn exit_codes_decide_for_commands_and_marks_for_rust_jobs() {
        let mut r = retry(Backoff::Fixed);
        let plain = Failure {
            marked_retryable: false,
            exit_code: Some(1),
        };
        assert!(!r.covers(plain), "Rust default: only marked errors");
        assert!(r.covers(Failure {
            marked_retryable: true,
            exit_code: None
        }));
        r.any_error = true;
        assert!(r.covers(plain));
        r.on_exit_codes = vec![75];
        assert!(!r.covers(plain));
        assert!(r.covers(Failure {
            marked_retryable: false,
            exit_code: Some(75)
        }));
    }

    #[test]
    fn the_last_attempt_gives_up() {
        let mut r = retry(Backoff::Fixed);
        r.any_error = true;
        r.max_attempts = 2;
        let p = Policy {
            retry: Some(r),
            ..Policy::default()
        };
        let f = Failure {
            marked_retryable: false,
            exit_code: None,
        };
        assert_eq!(
            p.after_failure(1, f, 0),
            AfterFailure::RetryIn(Duration::from_secs(10))
        );
        assert_eq!(
            p.after_failure(2, f, 0),
            AfterFailure::GiveUp { attempts: 2 }
        );
        assert_eq!(Policy::default().after_failure(1, f, 0), AfterFailure::Fail);
    }
}
