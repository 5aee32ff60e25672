//! `jobmgr check`: looks the database over without changing it. SQLite's
//! integrity check, the schema version (the migrations applied against the
//! ones built in), the run counters against the rows, and the high-water
//! mark in the lock file against the newest worker and run. Prints each
//! check with ok or its problem, and exits 1 when any check has one.

use std::path::Path;

use serde::Serialize;

use super::output::print_json;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::manager::database::Checkup;

/// One check's result.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

impl Outcome {
    fn from(name: &'static str, r: Result<(bool, String)>) -> Outcome {
        match r {
            Ok((ok, detail)) => Outcome { name, ok, detail },
            // A check that cannot run (a table missing, say) is a problem
            // too, not a reason to skip the others.
            Err(e) => Outcome {
                name,
                ok: false,
                detail: e.to_string(),
            },
        }
    }
}

/// Runs every check on the database of `settings`; exit code 0 or 1.
pub fn run(settings: &Settings, json: bool) -> Result<i32> {
    let outcomes = check_all(&settings.db)?;
    let problems = outcomes.iter().filter(|o| !o.ok).count();
    if json {
        print_json(&serde_json::json!({"ok": problems == 0, "checks": outcomes}));
    } else {
        for o in &outcomes {
            let verdict = if o.ok { "ok" } else { "PROBLEM" };
            println!("{:<16} {verdict}: {}", o.name, o.detail);
        }
        match problems {
            0 => println!("all checks passed"),
            1 => println!("1 problem"),
            n => println!("{n} problems"),
        }
    }
    Ok(if problems == 0 { 0 } else { 1 })
}

fn check_all(db: &Path) -> Result<Vec<Outcome>> {
    // Opening would create a missing file; there is nothing to check.
    if !db.is_file() {
        return Err(Error::Open {
            path: db.to_path_buf(),
            message: "no such database file".into(),
        });
    }
    // Not migrated: the schema version is one of the things checked.
    let db = Checkup::open(db)?;
    Ok(vec![
        Outcome::from("integrity", integrity(&db)),
        Outcome::from("schema", schema(&db)),
        Outcome::from("run counters", counters(&db)),
        Outcome::from(
            "high-water mark",
            db.high_water().map(|c| (!c.behind(), c.to_string())),
        ),
    ])
}

fn integrity(db: &Checkup) -> Result<(bool, String)> {
    let problems = db.integrity()?;
    Ok(match problems.is_empty() {
        true => (true, "PRAGMA integrity_check found nothing wrong".into()),
        false => (false, problems.join("; ")),
    })
}

fn schema(db: &Checkup) -> Result<(bool, String)> {
    let r = db.schema()?;
    let mut problems = Vec::new();
    if !r.missing.is_empty() {
        problems.push(format!(
            "not applied: {} (run `jobmgr migrate`)",
            r.missing.join(", ")
        ));
    }
    if !r.unknown.is_empty() {
        problems.push(format!(
            "applied but unknown to this jobmgr (a newer version migrated it): {}",
            r.unknown.join(", ")
        ));
    }
    if !r.changed.is_empty() {
        problems.push(format!(
            "applied differently from this jobmgr's: {}",
            r.changed.join(", ")
        ));
    }
    Ok(match problems.is_empty() {
        true => (
            true,
            format!(
                "all {} migrations applied (latest {})",
                r.embedded.len(),
                r.embedded.last().map(String::as_str).unwrap_or("none")
            ),
        ),
        false => (false, problems.join("; ")),
    })
}

fn counters(db: &Checkup) -> Result<(bool, String)> {
    let (n, mismatches) = db.counters()?;
    if mismatches.is_empty() {
        return Ok((true, format!("{n} counters match the rows")));
    }
    let text: Vec<String> = mismatches
        .iter()
        .map(|m| match m.counter {
            Some(c) => format!("{}: counter says {c}, rows {}", m.key, m.rows),
            None => format!("{}: no counter, rows {}", m.key, m.rows),
        })
        .collect();
    Ok((false, text.join("; ")))
}
