//! Unit tests: config parsing and credential checks.

use auth_core::PluginSpec;
use serde_json::{Value, json};

use super::*;

fn parse(config: Value) -> Result<Config, auth_core::PluginConfigError> {
    PluginSpec {
        id: None,
        name: None,
        config,
    }
    .parse_config()
}

fn provider() -> InsecureExampleProvider {
    let config = parse(json!({"users": [
        {"username": "test-user", "password": "test-pass", "name": "Test Name"},
        {"username": "second", "password": "pw2"},
        {"username": "test-user", "password": "shadowing-pass"},
    ]}))
    .expect("valid");
    InsecureExampleProvider::new(config, None, None)
}

#[test]
fn config_denies_unknown_keys_everywhere() {
    assert!(parse(json!({"users": []})).is_ok());
    for bad in [
        Value::Null,
        json!({}),
        json!({"users": [], "extra": 1}),
        json!({"users": [{"username": "a", "password": "b", "group": "x"}]}),
        json!({"users": [{"username": "a"}]}),
        json!({"users": [{"username": "a", "password": 1}]}),
        json!({"users": [{"username": "a", "password": "b", "name": 5}]}),
    ] {
        assert!(parse(bad.clone()).is_err(), "{bad}");
    }
}

#[test]
fn last_matching_user_wins_and_comparisons_are_exact() {
    let p = provider();
    assert!(
        !p.validate_login("test-user", "test-pass"),
        "shadowed by the later entry"
    );
    assert!(p.validate_login("test-user", "shadowing-pass"));
    assert!(p.validate_login("second", "pw2"));
    assert!(!p.validate_login("Second", "pw2"));
    assert!(!p.validate_login(" second", "pw2"));
    assert!(!p.validate_login("second", "pw2 "));
    assert!(!p.validate_login("unknown", "pw2"));
    assert!(!p.validate_login("", ""));
}

#[test]
fn defaults_and_debug_redaction() {
    let p = provider();
    assert_eq!(p.name(), "Unnamed auth provider");
    assert_eq!(p.provider_type(), "insecure_example");
    assert_eq!(p.provider_id(), None);
    assert!(p.supports_mfa());
    let debug = format!("{p:?}");
    assert!(!debug.contains("test-pass"), "{debug}");
}
