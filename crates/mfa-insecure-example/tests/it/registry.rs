//! Registration: found by type, marked testing-only, strict config.

use auth_core::registry::{PasswordPolicy, find_mfa_module, mfa_registrations};
use auth_core::{PluginContext, PluginSpec};
use auth_testkit::{TempConfig, clock_at, seeded_rng};
use serde_json::{Value, json};

#[test]
fn registered_once_and_marked_testing_only() {
    let found: Vec<_> = mfa_registrations()
        .into_iter()
        .filter(|r| r.kind == "insecure_example")
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].default_name, "Insecure Personal Identify Number");
    assert!(found[0].testing_only);
}

#[test]
fn config_is_strict_and_described_by_its_schema() {
    let config = TempConfig::empty();
    let ctx = PluginContext {
        storage: config.storage(),
        clock: clock_at(0),
        rng: seeded_rng(1),
        password_policy: PasswordPolicy::fast_for_tests(),
        trusted_proxies: Vec::new(),
    };
    let registration = find_mfa_module("insecure_example").unwrap();
    let build = |config: Value| {
        (registration.build)(
            PluginSpec {
                id: None,
                name: None,
                config,
            },
            &ctx,
        )
    };
    let Ok(module) = build(json!({"data": []})) else {
        panic!("a valid config builds");
    };
    assert_eq!(module.id(), "insecure_example");
    assert_eq!(module.name(), "Insecure Personal Identify Number");
    assert_eq!(module.module_type(), "insecure_example");
    assert_eq!(module.max_retry(), 3);
    assert_eq!(
        serde_json::to_value(module.input_schema()).unwrap(),
        json!([{"type": "string", "name": "pin", "required": true}])
    );
    for bad in [
        Value::Null,
        json!({"data": [], "users": []}),
        json!({"data": [{"user_id": "u", "pin": "1", "username": "x"}]}),
    ] {
        assert!(build(bad.clone()).is_err(), "{bad}");
    }
    let schema = serde_json::to_value((registration.config_schema)()).unwrap();
    assert_eq!(schema["additionalProperties"], json!(false), "{schema}");
    assert_eq!(
        schema["oneOf"],
        json!([{"required": ["data"]}, {"required": ["users"]}]),
        "{schema}"
    );
}
