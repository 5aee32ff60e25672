//! `jobmgr bench --rounds K [--compare OTHER]`: the same scenarios K times,
//! each round in fresh processes, and the median of each figure. With
//! `--compare`, another jobmgr binary runs the same scenarios in alternation
//! with this one (the order swapped every round), so that both meet the
//! machine's slow and fast periods alike: on a shared machine one run of
//! each, one after the other, compares the periods more than the builds.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::{BenchOptions, opt};
use crate::error::{Error, Result};

/// One build under test: the label printed, its executable, and the
/// scenarios it runs of those asked for (all when empty; None when it has
/// none of them).
struct Build {
    label: String,
    exe: PathBuf,
    names: Option<Vec<String>>,
}

/// One figure (a mode and its worker count) across rounds: per build, the
/// JSON rows of every round.
struct Figure {
    mode: String,
    workers: u64,
    per_build: Vec<Vec<Value>>,
}

/// Runs `names` `rounds` times with this binary, and with `other` in
/// alternation when given; prints the medians.
pub fn run(
    names: &[String],
    opts: &BenchOptions,
    rounds: usize,
    other: Option<&Path>,
    json: bool,
) -> Result<()> {
    let this = super::own_binary()?;
    let mut builds = vec![Build {
        label: "this".into(),
        exe: this,
        names: Some(names.to_vec()),
    }];
    if let Some(o) = other {
        builds.push(Build {
            label: o.display().to_string(),
            exe: o.to_path_buf(),
            names: known_by(o, names),
        });
    }
    // In the order the scenarios print them.
    let mut figures: Vec<Figure> = Vec::new();
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..builds.len()).collect()
        } else {
            (0..builds.len()).rev().collect()
        };
        for b in order {
            for row in run_once(&builds[b], opts)? {
                let mode = row["mode"].as_str().unwrap_or("?").to_string();
                let workers = row["workers"].as_u64().unwrap_or(0);
                match figures
                    .iter_mut()
                    .find(|f| f.mode == mode && f.workers == workers)
                {
                    Some(f) => f.per_build[b].push(row),
                    None => {
                        let mut per_build = vec![Vec::new(); builds.len()];
                        per_build[b].push(row);
                        figures.push(Figure {
                            mode,
                            workers,
                            per_build,
                        });
                    }
                }
            }
        }
    }
    print_summary(&builds, &figures, json);
    Ok(())
}

/// Of `names`, those the build at `exe` has (an older build lacks newer
/// scenarios), from the list its `bench --help` prints; all of them when
/// it prints none; None when it has none of them. The ones left out are
/// said on stderr, once.
fn known_by(exe: &Path, names: &[String]) -> Option<Vec<String>> {
    const LIST: &str = "Scenarios to run (all when none): ";
    let help = Command::new(exe).args(["bench", "--help"]).output();
    let text = help
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let Some(list) = text
        .lines()
        .find_map(|l| l.split_once(LIST).map(|(_, r)| r))
    else {
        return Some(names.to_vec());
    };
    let known: Vec<&str> = list.split(',').map(str::trim).collect();
    let (kept, left): (Vec<String>, Vec<String>) = names
        .iter()
        .cloned()
        .partition(|n| known.contains(&n.as_str()));
    if !left.is_empty() {
        eprintln!(
            "{} has no scenario {}: measured with this build only",
            exe.display(),
            left.join(", ")
        );
    }
    (names.is_empty() || !kept.is_empty()).then_some(kept)
}

/// One run of the scenarios by `build`, as a child process.
fn run_once(build: &Build, opts: &BenchOptions) -> Result<Vec<Value>> {
    // Every scenario asked for is one this build lacks: nothing to run.
    let Some(names) = &build.names else {
        return Ok(Vec::new());
    };
    let mut cmd = Command::new(&build.exe);
    cmd.arg("--db").arg(&opts.db).arg("--json").arg("bench");
    // Only when given: without it, each scenario takes its own default.
    if let Some(n) = opts.n_given {
        cmd.args(["--n", &n.to_string()]);
    }
    let out = cmd
        .args(["--backlog", &opts.backlog.to_string()])
        .args(["--history-lines", &opts.history_lines.to_string()])
        .args(names)
        .output()
        .map_err(|e| Error::Invalid(format!("cannot run {}: {e}", build.exe.display())))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Invalid(format!(
            "{} bench failed ({}): {}",
            build.exe.display(),
            out.status,
            err.trim()
        )));
    }
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["mode"].is_string())
        .collect();
    if rows.is_empty() {
        return Err(Error::Invalid(format!(
            "{} bench printed no JSON figures",
            build.exe.display()
        )));
    }
    Ok(rows)
}

/// The median of `field` over `rows` (those that have it), with the lowest
/// and highest value.
fn spread(rows: &[Value], field: &str) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = rows.iter().filter_map(|r| r[field].as_f64()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    };
    Some((median, v[0], v[v.len() - 1]))
}

fn print_summary(builds: &[Build], figures: &[Figure], json: bool) {
    if !json {
        println!(
            "{:<20} {:>4} {:<12} {:>6} {:>11} {:>23} {:>6} {:>8} {:>8} {:>8} {:>7} {:>8} {:>8}",
            "mode",
            "wrk",
            "build",
            "rounds",
            "median/s",
            "min-max",
            "raw",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "cpu µs",
            "rss KB",
            "change"
        );
    }
    for Figure {
        mode,
        workers,
        per_build,
    } in figures
    {
        let base = spread(&per_build[0], "rate").map(|s| s.0);
        for (i, (build, rows)) in builds.iter().zip(per_build).enumerate() {
            let Some((median, min, max)) = spread(rows, "rate") else {
                continue;
            };
            let raw = spread(rows, "raw_ratio").map(|s| s.0);
            let p50 = spread(rows, "lat_p50_ms").map(|s| s.0);
            let p95 = spread(rows, "lat_p95_ms").map(|s| s.0);
            let p99 = spread(rows, "lat_p99_ms").map(|s| s.0);
            let cpu = spread(rows, "cpu_us").map(|s| s.0);
            let rss = spread(rows, "maxrss_kb").map(|s| s.0);
            // Against this build's median, for the other build's row.
            let change = base
                .filter(|b| *b > 0.0 && i > 0)
                .map(|b| (median / b - 1.0) * 100.0);
            if json {
                let row = json!({
                    "mode": mode, "workers": workers, "build": build.label,
                    "rounds": rows.len(), "rate_median": median, "rate_min": min,
                    "rate_max": max, "raw_ratio_median": raw, "lat_p50_ms_median": p50,
                    "lat_p95_ms_median": p95, "lat_p99_ms_median": p99,
                    "cpu_us_median": cpu, "maxrss_kb_median": rss, "change_pct": change,
                });
                println!("{row}");
                continue;
            }
            println!(
                "{:<20} {:>4} {:<12} {:>6} {:>11.0} {:>23} {:>6} {:>8} {:>8} {:>8} {:>7} {:>8} {:>8}",
                mode,
                workers,
                short(&build.label),
                rows.len(),
                median,
                format!("{min:.0}-{max:.0}"),
                opt(raw, 2),
                opt(p50, 2),
                opt(p95, 2),
                opt(p99, 2),
                opt(cpu, 1),
                opt(rss, 0),
                change
                    .map(|c| format!("{c:+.1} %"))
                    .unwrap_or_else(|| "-".into())
            );
        }
    }
}

/// The last 12 characters of a label, so paths fit the column.
fn short(label: &str) -> String {
    let chars: Vec<char> = label.chars().collect();
    if chars.len() <= 12 {
        label.to_string()
    } else {
        format!("…{}", chars[chars.len() - 11..].iter().collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let rows: Vec<Value> = [4.0, 1.0, 3.0, 2.0]
            .iter()
            .map(|r| json!({ "rate": r }))
            .collect();
        assert_eq!(spread(&rows, "rate"), Some((2.5, 1.0, 4.0)));
        assert_eq!(spread(&rows[..3], "rate"), Some((3.0, 1.0, 4.0)));
        assert_eq!(spread(&rows, "lat_p99_ms"), None);
    }

    /// An older build is asked only for the scenarios its help lists.
    #[test]
    fn another_build_runs_only_the_scenarios_it_has() {
        use std::os::unix::fs::PermissionsExt;
        let file = crate::store::TestFile::new("rounds-known");
        let exe = file.db().with_file_name("old-jobmgr");
        std::fs::write(
            &exe,
            "#!/bin/sh\necho '  [SCENARIOS]...  Scenarios to run (all when none): raw, process'\n",
        )
        .unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            known_by(&exe, &names(&["process", "process-real"])),
            Some(names(&["process"]))
        );
        assert_eq!(known_by(&exe, &names(&["process-real"])), None);
        assert_eq!(known_by(&exe, &[]), Some(Vec::new()), "all of its own");
    }

    #[test]
    fn long_labels_keep_their_end() {
        assert_eq!(short("this"), "this");
        assert_eq!(short("/tmp/builds/old/jobmgr"), "…/old/jobmgr");
    }
}
