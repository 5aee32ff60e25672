//! Cron expressions and time zones: parsing with the place of an error,
//! and due times computed in the zone and returned in UTC. `croner` does
//! the parsing and the calendar walk, `chrono-tz` the zone rules; this
//! module only adds the error positions and the one rule for repeated
//! local times (see the module header of [`super`]).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, TimeZone};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::clock::Timestamp;
use crate::error::suggest;

/// The shorthands accepted instead of fields.
pub const NICKNAMES: &[&str] = &["@hourly", "@daily", "@weekly", "@monthly", "@yearly"];

/// Field names of a 6-field expression (seconds first); a 5-field one
/// starts at the minute.
const FIELDS: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day of month",
    "month",
    "day of week",
];

/// Most candidates skipped in a row as second halves of a repeated hour
/// before giving up: an every-second expression skips 3,600 in one hour.
const MAX_SKIPPED: usize = 100_000;

/// A cron expression that parsed.
#[derive(Debug, Clone)]
pub struct CronExpr {
    text: String,
    cron: Cron,
    /// Whether it has a seconds field (6 fields).
    seconds: bool,
}

/// Why an expression did not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronProblem {
    /// 1-based field number as the user wrote it (None: the whole text).
    pub field: Option<usize>,
    /// 1-based column of the field (or of the text) in the expression.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for CronProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(n) => write!(f, "field {n} at column {}: {}", self.column, self.message),
            None => write!(f, "column {}: {}", self.column, self.message),
        }
    }
}

impl CronExpr {
    /// Parses 5 fields (minute first), 6 fields (seconds first) or one of
    /// [`NICKNAMES`].
    pub fn parse(text: &str) -> Result<CronExpr, CronProblem> {
        let trimmed = text.trim();
        let lead = text.len() - text.trim_start().len();
        if trimmed.is_empty() {
            return Err(problem(None, 1, "is empty: expected 5 or 6 fields"));
        }
        if trimmed.starts_with('@') {
            let lower = trimmed.to_ascii_lowercase();
            if !NICKNAMES.contains(&lower.as_str()) {
                let mut msg = format!("unknown shorthand '{trimmed}'");
                match suggest(&lower, NICKNAMES.iter().copied()) {
                    Some(s) => msg.push_str(&format!(" (did you mean '{s}'?)")),
                    None => msg.push_str(&format!(" (expected one of {})", NICKNAMES.join(" "))),
                }
                return Err(problem(None, lead + 1, msg));
            }
            let cron = parser()
                .parse(&lower)
                .map_err(|e| problem(None, lead + 1, e))?;
            return Ok(CronExpr {
                text: lower,
                cron,
                seconds: false,
            });
        }
        let fields = split_fields(text);
        if fields.len() != 5 && fields.len() != 6 {
            return Err(problem(
                None,
                lead + 1,
                format!(
                    "has {} fields: expected 5 (minute hour day-of-month month day-of-week) \
                     or 6 (with seconds first)",
                    fields.len()
                ),
            ));
        }
        let normal: Vec<&str> = fields.iter().map(|(_, f)| *f).collect();
        if let Ok(cron) = parser().parse(&normal.join(" ")) {
            return Ok(CronExpr {
                text: normal.join(" "),
                cron,
                seconds: fields.len() == 6,
            });
        }
        let offset = 6 - fields.len();
        // croner names no position: parse each field alone, the others
        // left as `*`, so the first that fails names the place.
        for (i, (col, field)) in fields.iter().enumerate() {
            let mut probe = ["*"; 6];
            probe[0] = "0";
            probe[i + offset] = field;
            if let Err(e) = parser().parse(&probe.join(" ")) {
                let name = FIELDS[i + offset];
                let why = describe(&e);
                return Err(problem(
                    Some(i + 1),
                    *col,
                    format!("{name} '{field}': {why}"),
                ));
            }
        }
        // Each field parses alone but not together.
        let e = parser().parse(&normal.join(" ")).err();
        Err(problem(
            None,
            lead + 1,
            e.map_or("does not parse".to_string(), |e| describe(&e)),
        ))
    }

    /// The expression as written (fields separated by single spaces).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it has a seconds field.
    pub fn has_seconds(&self) -> bool {
        self.seconds
    }

    /// The first due time strictly after `t`, computed in `zone`. A local
    /// time inside a spring gap comes out as the first instant after the
    /// gap (croner's rule); of a local time that happens twice, only the
    /// first is a due time. None when the expression never matches again.
    pub fn next_after(&self, t: Timestamp, zone: Tz) -> Option<Timestamp> {
        // Whole seconds: croner walks the calendar second by second, and
        // every due time is a whole second, so the next one after `t` is
        // the next one after `t` rounded down.
        let mut from = zone.timestamp_opt(t.0.div_euclid(1000), 0).single()?;
        for _ in 0..MAX_SKIPPED {
            let next = self.cron.find_next_occurrence(&from, false).ok()?;
            if !second_of_repeat(&next, zone) {
                return Some(Timestamp(next.timestamp_millis()));
            }
            from = next;
        }
        None
    }

    /// The next `n` due times after `t`.
    pub fn upcoming(&self, t: Timestamp, zone: Tz, n: usize) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            match self.next_after(at, zone) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }
}

/// Whether `t` is the second instant of a local time that happens twice
/// (the hour a zone repeats when its clocks go back).
fn second_of_repeat(t: &DateTime<Tz>, zone: Tz) -> bool {
    match zone.from_local_datetime(&t.naive_local()) {
        LocalResult::Ambiguous(first, _) => first != *t,
        _ => false,
    }
}

/// croner's message without its type prefixes.
fn describe(e: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    match e {
        E::IllegalCharacters(_) => "has a character not allowed in this field".into(),
        E::ComponentError(m) | E::InvalidPattern(m) => m.clone(),
        other => other.to_string(),
    }
}

fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Optional).build()
}

/// The whitespace-separated fields with their 1-based columns.
fn split_fields(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push((s + 1, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s + 1, &text[s..]));
    }
    out
}

fn problem(field: Option<usize>, column: usize, message: impl fmt::Display) -> CronProblem {
    CronProblem {
        field,
        column,
        message: message.to_string(),
    }
}

/// Parses an IANA zone name; an unknown one answers with the closest name.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    if let Ok(z) = Tz::from_str(name) {
        return Ok(z);
    }
    let names = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
    // Case slips ("europe/berlin") are the common mistake: compare in one
    // case, answer with the real spelling.
    let lower = name.to_ascii_lowercase();
    let exact = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|z| z.name().eq_ignore_ascii_case(name));
    let guess = exact.map(|z| z.name().to_string()).or_else(|| {
        let lowered: Vec<(String, &str)> = names.map(|n| (n.to_ascii_lowercase(), n)).collect();
        suggest(&lower, lowered.iter().map(|(l, _)| l.as_str())).and_then(|l| {
            lowered
                .iter()
                .find(|(low, _)| *low == l)
                .map(|(_, n)| n.to_string())
        })
    });
    Err(match guess {
        Some(g) => format!("unknown time zone '{name}' (did you mean '{g}'?)"),
        None => {
            format!("unknown time zone '{name}' (an IANA name such as 'Europe/Berlin' or 'UTC')")
        }
    })
}

/// `t` as local time in `zone`, for people: `2027-03-28 03:00:00 CEST`.
pub fn local_text(t: Timestamp, zone: Tz) -> String {
    match zone.timestamp_millis_opt(t.0) {
        LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => {
            d.format("%Y-%m-%d %H:%M:%S %Z").to_string()
        }
        LocalResult::None => t.to_text(),
    }
}
