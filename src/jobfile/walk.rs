//! A checked walk over a parsed TOML document: typed look-ups that record
//! every problem with its dotted location and line instead of stopping at
//! the first, and unknown keys reported with a "did you mean".

use std::ops::Range;

use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::suggest;

/// One thing wrong with the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the key, e.g. `jobs.feed-presort.parameters.limit`.
    pub location: String,
    /// 1-based line in the file, when the parser knows it.
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if self.location.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.location, self.message)
        }
    }
}

/// Collects problems for one file.
pub struct Report<'a> {
    text: &'a str,
    pub problems: Vec<Problem>,
}

impl<'a> Report<'a> {
    /// A report on `text`.
    pub fn new(text: &'a str) -> Report<'a> {
        Report {
            text,
            problems: Vec::new(),
        }
    }

    /// The 1-based line of a byte offset.
    pub fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    /// Records a problem at `location`, on the line of `span`.
    pub fn add(&mut self, location: &str, span: Option<&Range<usize>>, message: impl Into<String>) {
        let line = span.map(|s| self.line_of(s));
        self.problems.push(Problem {
            location: location.to_string(),
            line,
            message: message.into(),
        });
    }
}

/// A TOML table being read, with its location for messages.
pub struct Section<'t, 'i> {
    pub loc: String,
    pub span: Range<usize>,
    table: &'t DeTable<'i>,
}

/// The name of a TOML value's type, for "expected X, got Y".
fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// An integer as TOML wrote it, if it fits in i64.
fn to_i64(v: &DeValue<'_>) -> Option<i64> {
    match v {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

impl<'t, 'i> Section<'t, 'i> {
    /// Opens `table` at `loc`; keys outside `allowed` are reported at once.
    pub fn new(
        report: &mut Report<'_>,
        loc: &str,
        table: &'t DeTable<'i>,
        span: Range<usize>,
        allowed: &[&str],
    ) -> Section<'t, 'i> {
        for (k, _) in table.iter() {
            let key: &str = k.get_ref();
            if !allowed.contains(&key) {
                let mut msg = format!("unknown key '{key}'");
                match suggest(key, allowed.iter().copied()) {
                    Some(s) => msg.push_str(&format!(" (did you mean '{s}'?)")),
                    None => msg.push_str(&format!(" (expected one of: {})", allowed.join(", "))),
                }
                report.add(&join(loc, key), Some(&k.span()), msg);
            }
        }
        Section {
            loc: loc.to_string(),
            span,
            table,
        }
    }

    /// The dotted location of `key` in this section.
    pub fn at(&self, key: &str) -> String {
        join(&self.loc, key)
    }

    /// The raw value of `key`.
    pub fn raw(&self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.table
            .iter()
            .find(|(k, _)| {
                let name: &str = k.get_ref();
                name == key
            })
            .map(|(_, v)| v)
    }

    /// The entries of this table, in file order where the parser keeps it.
    pub fn entries(&self) -> impl Iterator<Item = (&'t str, &'t Spanned<DeValue<'i>>)> {
        self.table.iter().map(|(k, v)| {
            let name: &str = k.get_ref();
            (name, v)
        })
    }

    fn typed<T>(
        &self,
        report: &mut Report<'_>,
        key: &str,
        want: &str,
        f: impl FnOnce(&'t DeValue<'i>) -> Option<T>,
    ) -> Option<T> {
        let v = self.raw(key)?;
        let out = f(v.get_ref());
        if out.is_none() {
            report.add(
                &self.at(key),
                Some(&v.span()),
                format!("expected {want}, got {}", type_name(v.get_ref())),
            );
        }
        out
    }

    /// A string value.
    pub fn string(&self, report: &mut Report<'_>, key: &str) -> Option<String> {
        self.typed(report, key, "a string", |v| match v {
            DeValue::String(s) => Some(s.to_string()),
            _ => None,
        })
    }

    /// An integer value.
    pub fn int(&self, report: &mut Report<'_>, key: &str) -> Option<i64> {
        self.typed(report, key, "an integer", to_i64)
    }

    /// A non-negative integer value.
    pub fn count(&self, report: &mut Report<'_>, key: &str) -> Option<u64> {
        let n = self.int(report, key)?;
        match u64::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                let span = self.raw(key).map(|v| v.span());
                report.add(
                    &self.at(key),
                    span.as_ref(),
                    format!("must not be negative, got {n}"),
                );
                None
            }
        }
    }

    /// A boolean value.
    pub fn boolean(&self, report: &mut Report<'_>, key: &str) -> Option<bool> {
        self.typed(report, key, "true or false", |v| match v {
            DeValue::Boolean(b) => Some(*b),
            _ => None,
        })
    }

    /// An array of strings, each with its span.
    pub fn strings(
        &self,
        report: &mut Report<'_>,
        key: &str,
    ) -> Option<Vec<(String, Range<usize>)>> {
        let v = self.raw(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            report.add(
                &self.at(key),
                Some(&v.span()),
                format!(
                    "expected an array of strings, got {}",
                    type_name(v.get_ref())
                ),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.to_string(), item.span())),
                other => {
                    ok = false;
                    report.add(
                        &format!("{}[{i}]", self.at(key)),
                        Some(&item.span()),
                        format!("expected a string, got {}", type_name(other)),
                    );
                }
            }
        }
        ok.then_some(out)
    }

    /// A sub-table.
    pub fn table(
        &self,
        report: &mut Report<'_>,
        key: &str,
        allowed: &[&str],
    ) -> Option<Section<'t, 'i>> {
        let v = self.raw(key)?;
        as_section(report, &self.at(key), v, allowed)
    }

    /// A plain scalar (string, integer or boolean) as JSON, for defaults.
    pub fn scalar(&self, report: &mut Report<'_>, key: &str) -> Option<Value> {
        self.typed(report, key, "a string, integer or boolean", |v| match v {
            DeValue::String(s) => Some(Value::from(s.to_string())),
            DeValue::Integer(_) => to_i64(v).map(Value::from),
            DeValue::Boolean(b) => Some(Value::Bool(*b)),
            _ => None,
        })
    }
}

/// Reads `v` as a table at `loc`, reporting anything else.
pub fn as_section<'t, 'i>(
    report: &mut Report<'_>,
    loc: &str,
    v: &'t Spanned<DeValue<'i>>,
    allowed: &[&str],
) -> Option<Section<'t, 'i>> {
    match v.get_ref() {
        DeValue::Table(t) => Some(Section::new(report, loc, t, v.span(), allowed)),
        other => not_a_table(report, loc, v, other),
    }
}

/// Reads `v` as a table whose keys are names the user chooses (job types,
/// parameters, variables), so no key is unknown.
pub fn as_map<'t, 'i>(
    report: &mut Report<'_>,
    loc: &str,
    v: &'t Spanned<DeValue<'i>>,
) -> Option<Section<'t, 'i>> {
    match v.get_ref() {
        DeValue::Table(table) => Some(Section {
            loc: loc.to_string(),
            span: v.span(),
            table,
        }),
        other => not_a_table(report, loc, v, other),
    }
}

/// Reports that `v` at `loc` is `other` where a table belongs.
fn not_a_table<T>(
    report: &mut Report<'_>,
    loc: &str,
    v: &Spanned<DeValue<'_>>,
    other: &DeValue<'_>,
) -> Option<T> {
    report.add(
        loc,
        Some(&v.span()),
        format!("expected a table, got {}", type_name(other)),
    );
    None
}

fn join(loc: &str, key: &str) -> String {
    if loc.is_empty() {
        key.to_string()
    } else {
        format!("{loc}.{key}")
    }
}
