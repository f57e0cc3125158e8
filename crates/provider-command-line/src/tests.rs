//! Unit tests: config parsing, path normalisation, metadata parsing.

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::{Config, DEFAULT_TIMEOUT, normpath};
use crate::meta::{Meta, parse_meta};

fn config(value: Value) -> Result<Config, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[test]
fn config_defaults_and_keys() {
    assert_eq!(
        config(json!({"command": "/bin/auth"})),
        Ok(Config::new("/bin/auth"))
    );
    let parsed = config(json!({"command": "/bin/auth", "args": null})).expect("valid");
    assert!(parsed.args.is_empty());
    assert!(!parsed.meta);
    assert_eq!(parsed.timeout, DEFAULT_TIMEOUT);
    let parsed = config(json!({
        "command": "/usr//local/./bin/../bin/auth",
        "args": ["--strict", "-v"],
        "meta": true,
        "timeout": 1.5,
        "max_concurrent": 2,
    }))
    .expect("valid");
    assert_eq!(parsed.command, "/usr/local/bin/auth");
    assert_eq!(parsed.args, vec!["--strict", "-v"]);
    assert!(parsed.meta);
    assert_eq!(parsed.timeout, Duration::from_millis(1500));
    assert_eq!(parsed.max_concurrent, 2);
}

#[test]
fn config_errors() {
    let missing = config(json!({})).expect_err("command required");
    assert!(missing.contains("missing field `command`"), "{missing}");
    let unknown = config(json!({"command": "/x", "env": {}})).expect_err("no extra keys");
    assert!(unknown.contains("unknown field `env`"), "{unknown}");
    for timeout in [json!(0), json!(-1), json!("10"), json!(null), json!(1e300)] {
        assert_eq!(
            config(json!({"command": "/x", "timeout": timeout})),
            Err(format!(
                "timeout: expected a positive number of seconds, got {timeout}"
            )),
        );
    }
    for max in [json!(0), json!(-1), json!(1.5), json!("4"), json!(null)] {
        assert_eq!(
            config(json!({"command": "/x", "max_concurrent": max})),
            Err(format!(
                "max_concurrent: expected a whole number of at least 1, got {max}"
            )),
        );
    }
    // `meta` is a strict boolean, as in Home Assistant.
    assert!(config(json!({"command": "/x", "meta": "yes"})).is_err());
    assert!(config(json!({"command": "/x", "args": "--strict"})).is_err());
    assert!(config(json!({"command": "/x", "args": [1]})).is_err());
    assert!(config(json!({"command": 5})).is_err());
}

#[test]
fn schema_lists_the_keys() {
    let schema = serde_json::to_value(schemars::schema_for!(Config)).expect("json");
    assert_eq!(schema["required"], json!(["command"]));
    assert_eq!(schema["additionalProperties"], json!(false));
    assert_eq!(schema["properties"]["timeout"]["default"], json!(10));
    assert_eq!(schema["properties"]["timeout"]["type"], json!("number"));
    assert_eq!(schema["properties"]["max_concurrent"]["default"], json!(4));
    assert_eq!(schema["properties"]["max_concurrent"]["minimum"], json!(1));
}

#[test]
fn normpath_matches_python() {
    for (input, expected) in [
        ("", "."),
        ("/", "/"),
        ("//", "//"),
        ("///", "/"),
        ("//usr/bin", "//usr/bin"),
        ("/usr/bin/", "/usr/bin"),
        ("/usr/./bin//auth", "/usr/bin/auth"),
        ("/../usr/bin", "/usr/bin"),
        ("/usr/../../bin", "/bin"),
        ("bin/../..", ".."),
        ("../../x", "../../x"),
        ("./auth.sh", "auth.sh"),
        ("a/b/../../..", ".."),
        ("a/./b/.", "a/b"),
    ] {
        assert_eq!(normpath(input), expected, "{input:?}");
    }
}

#[test]
fn meta_lines_are_parsed_like_home_assistant() {
    let out = b"# a comment\n  # indented comment = ignored\nname = Alice\n\
        junk line without equals\n  group=system-users  \r\nlocal_only = true\rother = 1\n\
        \xff\xfename = broken\nname = Alice Smith = Jr\n=\n";
    assert_eq!(
        parse_meta(out),
        Meta {
            name: Some("Alice Smith = Jr".to_owned()),
            group: Some("system-users".to_owned()),
            local_only: Some("true".to_owned()),
        }
    );
    assert!(parse_meta(out).is_local_only());
    assert_eq!(parse_meta(b""), Meta::default());
    assert_eq!(parse_meta(b"NAME = x\nname\n"), Meta::default());
    assert_eq!(
        parse_meta("\u{1c}\u{a0}name\u{2003}=\u{3000}Zoë\u{85}".as_bytes()).name,
        Some("Zoë".to_owned()),
        "Python's whitespace is stripped"
    );
    assert_eq!(parse_meta(b"name =").name, Some(String::new()));
    for value in ["True", "yes", "1", " true x"] {
        let meta = parse_meta(format!("local_only = {value}").as_bytes());
        assert!(!meta.is_local_only(), "{value}");
    }
}
