//! The progress protocol a command job speaks on stdout: a line that starts
//! with `##jobmgr ` followed by one JSON object. Keys (any combination, applied in
//! this order): `stage` (string), `total` (integer, with optional `unit`),
//! `progress` (absolute count), `inc` (increment), `outcome` (object of
//! counters to add), `log` (text, with optional `level` and `context`).
//! A line with the tag that does not parse is kept as ordinary text.

use serde_json::{Map, Value};

use crate::job::LogLevel;

/// The tag that starts a protocol line.
pub const PREFIX: &str = "##jobmgr";

/// One thing a protocol line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Stage(String),
    Total {
        total: i64,
        unit: String,
    },
    Progress(i64),
    Inc(i64),
    Outcome(Vec<(String, i64)>),
    Log {
        level: LogLevel,
        message: String,
        context: Option<Value>,
    },
}

/// How a stdout line reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Ordinary output.
    Text,
    /// A valid protocol line.
    Commands(Vec<Command>),
    /// Tagged but unusable; the reason goes into a warning.
    Malformed(String),
}

const KEYS: &[&str] = &[
    "stage", "total", "unit", "progress", "inc", "outcome", "log", "level", "context",
];

/// Reads one stdout line.
pub fn parse(line: &str) -> Parsed {
    let Some(rest) = line.strip_prefix(PREFIX) else {
        return Parsed::Text;
    };
    // "##jobmgrX" is ordinary text; only the tag followed by a space counts.
    let Some(json) = rest.strip_prefix(' ') else {
        if rest.is_empty() {
            return Parsed::Malformed("expected a JSON object after '##jobmgr '".into());
        }
        return Parsed::Text;
    };
    match serde_json::from_str::<Value>(json.trim()) {
        Ok(Value::Object(obj)) => commands(&obj).map_or_else(Parsed::Malformed, Parsed::Commands),
        Ok(_) => Parsed::Malformed("expected a JSON object".into()),
        Err(e) => Parsed::Malformed(format!("invalid JSON: {e}")),
    }
}

fn int(obj: &Map<String, Value>, key: &str, min: i64) -> Result<Option<i64>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if n >= min => Ok(Some(n)),
            _ => Err(format!(
                "'{key}' must be an integer of at least {min}, got {v}"
            )),
        },
    }
}

fn text<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(format!("'{key}' must be a string, got {v}")),
    }
}

fn commands(obj: &Map<String, Value>) -> Result<Vec<Command>, String> {
    if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        let mut msg = format!("unknown key '{k}'");
        if let Some(s) = crate::error::suggest(k, KEYS.iter().copied()) {
            msg.push_str(&format!(" (did you mean '{s}'?)"));
        }
        return Err(msg);
    }
    if obj.is_empty() {
        return Err("empty object".into());
    }
    let mut out = Vec::new();
    if let Some(s) = text(obj, "stage")? {
        out.push(Command::Stage(s.to_string()));
    }
    let unit = text(obj, "unit")?;
    match int(obj, "total", 0)? {
        Some(total) => out.push(Command::Total {
            total,
            unit: unit.unwrap_or_default().to_string(),
        }),
        None if unit.is_some() => return Err("'unit' needs a 'total'".into()),
        None => {}
    }
    if let Some(n) = int(obj, "progress", 0)? {
        out.push(Command::Progress(n));
    }
    if let Some(n) = int(obj, "inc", i64::MIN)? {
        out.push(Command::Inc(n));
    }
    if let Some(o) = obj.get("outcome") {
        let Value::Object(counters) = o else {
            return Err(format!("'outcome' must be an object of counters, got {o}"));
        };
        let mut list = Vec::with_capacity(counters.len());
        for (k, v) in counters {
            let n = v
                .as_i64()
                .ok_or_else(|| format!("outcome counter '{k}' must be an integer, got {v}"))?;
            list.push((k.clone(), n));
        }
        out.push(Command::Outcome(list));
    }
    let level = match text(obj, "level")? {
        None => LogLevel::Info,
        Some(l) => LogLevel::parse(l)
            .ok_or_else(|| format!("'level' must be debug, info, warning or error, got '{l}'"))?,
    };
    let context = obj.get("context").cloned();
    match text(obj, "log")? {
        Some(message) => out.push(Command::Log {
            level,
            message: message.to_string(),
            context,
        }),
        None if obj.contains_key("level") || context.is_some() => {
            return Err("'level' and 'context' go with 'log'".into());
        }
        None => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_each_kind_of_line() {
        assert_eq!(parse("hello"), Parsed::Text);
        assert_eq!(parse("##jobmgrish"), Parsed::Text);
        assert_eq!(
            parse(r#"##jobmgr {"stage":"Scanning"}"#),
            Parsed::Commands(vec![Command::Stage("Scanning".into())])
        );
        assert_eq!(
            parse(r#"##jobmgr {"total":5000,"unit":"users","progress":10}"#),
            Parsed::Commands(vec![
                Command::Total {
                    total: 5000,
                    unit: "users".into()
                },
                Command::Progress(10)
            ])
        );
        assert_eq!(
            parse(r#"##jobmgr {"log":"x","level":"warning","context":{"a":1}}"#),
            Parsed::Commands(vec![Command::Log {
                level: LogLevel::Warning,
                message: "x".into(),
                context: Some(json!({"a": 1}))
            }])
        );
    }

    #[test]
    fn malformed_lines_say_why() {
        let bad = |l: &str| match parse(l) {
            Parsed::Malformed(m) => m,
            other => panic!("{l}: {other:?}"),
        };
        assert!(bad("##jobmgr {not json").starts_with("invalid JSON"));
        assert_eq!(bad("##jobmgr [1]"), "expected a JSON object");
        assert_eq!(
            bad(r#"##jobmgr {"stag":"x"}"#),
            "unknown key 'stag' (did you mean 'stage'?)"
        );
        assert_eq!(
            bad(r#"##jobmgr {"progress":-1}"#),
            "'progress' must be an integer of at least 0, got -1"
        );
        assert_eq!(
            bad(r#"##jobmgr {"level":"info"}"#),
            "'level' and 'context' go with 'log'"
        );
    }
}
