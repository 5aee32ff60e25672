//! `jobmgr enqueue`: its arguments, `-p key=value` parsing, and the
//! enqueue itself (at once, later, unique, or after other runs).

use clap::Args;
use serde_json::{Map, Value};

use super::output::{outln, print_json};
use crate::clock::{self, Timestamp};
use crate::error::{Error, Result};
use crate::job::Trigger;
use crate::manager::{Actor, EnqueueRequest, Manager};

/// `jobmgr enqueue`.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The job type.
    pub name: String,
    /// A parameter as key=value (repeatable).
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Parameters as one JSON object (merged under -p values).
    #[arg(long = "params-json", value_name = "JSON")]
    pub params_json: Option<String>,
    /// Higher runs first.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i64,
    /// Wait as SCHEDULED until this time, with its zone: 2026-12-24T06:00:00Z,
    /// 2026-12-24T07:00:00+01:00 or "2026-12-24T07:00 Europe/Berlin".
    #[arg(long, value_name = "TIME", conflicts_with = "delay")]
    pub at: Option<String>,
    /// Wait as SCHEDULED for this long first: 90s, 15m, 2h, 1d, 1h30m.
    #[arg(long = "in", value_name = "DELAY", id = "delay")]
    pub delay: Option<String>,
    /// While a run with this key is scheduled, queued or running, print
    /// its id instead of making a second one.
    #[arg(long = "unique-key", value_name = "KEY")]
    pub unique_key: Option<String>,
    /// Wait as WAITING until these runs all COMPLETED: 12,13.
    #[arg(long, value_name = "IDS", value_delimiter = ',', conflicts_with_all = ["at", "delay", "unique_key"])]
    pub after: Vec<i64>,
}

/// Parses `-p key=value` values and `--params-json` into one object.
pub fn parse_params(pairs: &[String], json_text: Option<&str>) -> Result<Map<String, Value>> {
    let mut out = match json_text {
        Some(t) => match serde_json::from_str::<Value>(t) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(Error::Invalid("--params-json must be a JSON object".into())),
            Err(e) => {
                return Err(Error::Invalid(format!(
                    "--params-json is not valid JSON: {e}"
                )));
            }
        },
        None => Map::new(),
    };
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| Error::Invalid(format!("-p expects KEY=VALUE, got '{p}'")))?;
        if k.is_empty() {
            return Err(Error::Invalid(format!("-p expects KEY=VALUE, got '{p}'")));
        }
        out.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(out)
}

pub(super) fn enqueue(m: &Manager, a: &EnqueueArgs, json: bool) -> Result<i32> {
    let req = EnqueueRequest {
        job_name: a.name.clone(),
        parameters: parse_params(&a.params, a.params_json.as_deref())?,
        priority: a.priority,
        trigger: Trigger::Cli,
    };
    let run_at = match (&a.at, &a.delay) {
        (Some(at), _) => Some(clock::parse_instant(at)?),
        (None, Some(d)) => Some(Timestamp::now().plus_ms(clock::parse_delay(d)?)),
        (None, None) => None,
    };
    if !a.after.is_empty() {
        let run = m.enqueue_after(&req, &a.after, &Actor::cli())?;
        if json {
            print_json(&run);
        } else {
            outln!("{}", run.id);
        }
        return Ok(0);
    }
    let e = m.enqueue_keyed(&req, run_at, a.unique_key.as_deref(), &Actor::cli())?;
    if json {
        let mut v = serde_json::to_value(&e.run).unwrap_or_default();
        if let Some(id) = e.duplicate_of {
            v["duplicateOf"] = id.into();
        }
        print_json(&v);
    } else {
        if e.duplicate_of.is_some() {
            log::info!("run {} already holds that unique key; no new run", e.run.id);
        }
        outln!("{}", e.run.id);
    }
    Ok(0)
}
