//! Declared parameters of a job type: their kinds, patterns and limits, and
//! the check of one value against its declaration (run before a run is
//! enqueued, so a bad value is refused before anything is written).

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result, suggest};

/// The declared type of a parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "choices")]
pub enum ParamKind {
    String,
    Integer,
    Boolean,
    /// One of a fixed list of strings.
    Enum(Vec<String>),
    /// A filesystem path (a non-empty string without NUL bytes).
    Path,
}

/// A declared parameter of a job type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParamSpec {
    pub name: String,
    #[serde(flatten)]
    pub kind: ParamKind,
    pub required: bool,
    pub default: Option<Value>,
    pub help: String,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub max_length: Option<usize>,
    /// A regular expression the whole text value must match.
    pub pattern: Option<Pattern>,
    /// Whether a value may start with `-`. Command jobs refuse such values
    /// for parameters placed in argv (they would read as options) unless
    /// this is set; everywhere else it is true.
    pub allow_dash: bool,
}

/// A parameter's pattern: the source as written, compiled anchored so it
/// must match the whole value (not just a part of it).
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    re: regex::Regex,
}

impl Pattern {
    /// Compiles `source`, anchored at both ends.
    pub fn new(source: &str) -> std::result::Result<Pattern, String> {
        regex::Regex::new(&format!("^(?:{source})$"))
            .map(|re| Pattern {
                source: source.to_string(),
                re,
            })
            .map_err(|e| e.to_string())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `s` matches as a whole.
    pub fn matches(&self, s: &str) -> bool {
        self.re.is_match(s)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

/// Strings longer than this are refused unless a parameter sets its own limit.
const DEFAULT_MAX_LENGTH: usize = 4096;

impl ParamSpec {
    /// A parameter of `kind` with no default, limits or help.
    pub fn new(name: &str, kind: ParamKind) -> ParamSpec {
        ParamSpec {
            name: name.into(),
            kind,
            required: false,
            default: None,
            help: String::new(),
            min: None,
            max: None,
            max_length: None,
            pattern: None,
            allow_dash: true,
        }
    }

    /// Marks the parameter required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Sets the default used when the parameter is absent.
    pub fn default(mut self, v: impl Into<Value>) -> Self {
        self.default = Some(v.into());
        self
    }

    /// Sets the help text shown in forms and `job-types`.
    pub fn help(mut self, h: &str) -> Self {
        self.help = h.into();
        self
    }

    /// Sets inclusive bounds for an integer.
    pub fn range(mut self, min: i64, max: i64) -> Self {
        self.min = Some(min);
        self.max = Some(max);
        self
    }

    /// Checks and normalises one supplied value (strings from the CLI are
    /// converted to the declared type).
    pub fn check(&self, value: &Value) -> Result<Value> {
        let bad = |message: String| Error::InvalidParameter {
            name: self.name.clone(),
            message,
        };
        match &self.kind {
            ParamKind::Integer => {
                let n = match value {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| bad(format!("expected an integer, got {}", show(value))))?;
                if let Some(min) = self.min.filter(|m| n < *m) {
                    return Err(bad(format!("must be at least {min}, got {n}")));
                }
                if let Some(max) = self.max.filter(|m| n > *m) {
                    return Err(bad(format!("must be at most {max}, got {n}")));
                }
                if n < 0 && !self.allow_dash {
                    return Err(bad(format!(
                        "must not start with '-' (it is passed as a command argument), got {n}"
                    )));
                }
                Ok(Value::from(n))
            }
            ParamKind::Boolean => match value {
                Value::Bool(b) => Ok(Value::Bool(*b)),
                Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" | "on" => Ok(Value::Bool(true)),
                    "false" | "no" | "0" | "off" => Ok(Value::Bool(false)),
                    _ => Err(bad(format!("expected true or false, got {}", show(value)))),
                },
                _ => Err(bad(format!("expected true or false, got {}", show(value)))),
            },
            ParamKind::String | ParamKind::Path | ParamKind::Enum(_) => {
                let s = value
                    .as_str()
                    .ok_or_else(|| bad(format!("expected a string, got {}", show(value))))?;
                self.check_text(s).map_err(bad)?;
                Ok(Value::String(s.to_string()))
            }
        }
    }

    fn check_text(&self, s: &str) -> std::result::Result<(), String> {
        let limit = self.max_length.unwrap_or(DEFAULT_MAX_LENGTH);
        if s.chars().count() > limit {
            return Err(format!("longer than {limit} characters"));
        }
        // No program can receive a NUL in argv or the environment.
        if s.contains('\0') {
            return Err("must not contain NUL bytes".into());
        }
        if !self.allow_dash && s.starts_with('-') {
            return Err(format!(
                "must not start with '-' (it is passed as a command argument), got {}",
                show(&Value::from(s))
            ));
        }
        if let Some(p) = self.pattern.as_ref().filter(|p| !p.matches(s)) {
            return Err(format!(
                "must match the pattern {}, got {}",
                p.as_str(),
                show(&Value::from(s))
            ));
        }
        match &self.kind {
            ParamKind::Enum(choices) if !choices.iter().any(|c| c == s) => {
                let mut msg = format!("must be one of {}", choices.join(", "));
                if let Some(close) = suggest(s, choices.iter().map(String::as_str)) {
                    msg.push_str(&format!(" (did you mean '{close}'?)"));
                }
                Err(msg)
            }
            ParamKind::Path if s.is_empty() => Err("must be a non-empty path".into()),
            _ => Ok(()),
        }
    }
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", &s[..s.floor_char_boundary(60)])
    } else {
        s
    }
}
