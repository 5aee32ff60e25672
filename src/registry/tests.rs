//! Unit tests of `registry.rs`.

use super::*;
use serde_json::json;

fn demo() -> JobType {
    JobType {
        name: "t".into(),
        description: String::new(),
        params: vec![
            ParamSpec::new("count", ParamKind::Integer)
                .default(10)
                .range(0, 100),
            ParamSpec::new("mode", ParamKind::Enum(vec!["fast".into(), "slow".into()])),
            ParamSpec::new("path", ParamKind::Path).required(),
        ],
        retry_safe: false,
        handler: Arc::new(|_| Ok(())),
    }
}

fn map(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn fills_defaults_and_converts_strings() {
    let out = demo()
        .validate(&map(json!({"path": "/tmp", "mode": "fast"})))
        .expect("valid");
    assert_eq!(
        Value::Object(out),
        json!({"count": 10, "mode": "fast", "path": "/tmp"})
    );
    let out = demo()
        .validate(&map(json!({"path": "/tmp", "count": "42"})))
        .expect("valid");
    assert_eq!(out["count"], json!(42));
}

#[test]
fn patterns_match_whole_values_and_dashes_can_be_refused() {
    let mut p = ParamSpec::new("key", ParamKind::String);
    p.pattern = Some(Pattern::new("[a-z]+").expect("regex"));
    p.allow_dash = false;
    assert_eq!(p.check(&json!("abc")).ok(), Some(json!("abc")));
    assert_eq!(
        p.check(&json!("abc; id")).map_err(|e| e.to_string()),
        Err("parameter 'key': must match the pattern [a-z]+, got \"abc; id\"".into())
    );
    let mut n = ParamSpec::new("n", ParamKind::Integer);
    n.allow_dash = false;
    assert!(n.check(&json!(-1)).is_err());
    let s = ParamSpec::new("s", ParamKind::String);
    assert_eq!(
        s.check(&json!("-x")).ok(),
        Some(json!("-x")),
        "dashes are fine by default"
    );
    assert!(s.check(&json!("a\0b")).is_err());
    let info = serde_json::to_value(&p).expect("serialize");
    assert_eq!(info["pattern"], "[a-z]+");
    assert_eq!(info["allowDash"], false);
}

#[test]
fn refuses_bad_values_naming_the_parameter() {
    let err = |v| demo().validate(&map(v)).unwrap_err().to_string();
    assert_eq!(err(json!({})), "parameter 'path': is required");
    assert_eq!(
        err(json!({"path": "x", "count": "abc"})),
        "parameter 'count': expected an integer, got \"abc\""
    );
    assert_eq!(
        err(json!({"path": "x", "count": 101})),
        "parameter 'count': must be at most 100, got 101"
    );
    assert_eq!(
        err(json!({"path": "x", "mode": "fsat"})),
        "parameter 'mode': must be one of fast, slow (did you mean 'fast'?)"
    );
    assert_eq!(
        err(json!({"path": "x", "cuont": 1})),
        "parameter 'cuont': unknown parameter for job type 't' (did you mean 'count'?)"
    );
}
