//! Registration: the module is found by type, built from config entries, and has no own keys.

use auth_core::registry::{PasswordPolicy, find_mfa_module, mfa_registrations};
use auth_core::{PluginContext, PluginSpec};
use auth_testkit::{TempConfig, clock_at, seeded_rng};
use serde_json::{Value, json};

fn ctx(config: &TempConfig) -> PluginContext {
    PluginContext {
        storage: config.storage(),
        clock: clock_at(0),
        rng: seeded_rng(1),
        password_policy: PasswordPolicy::fast_for_tests(),
        trusted_proxies: Vec::new(),
    }
}

#[test]
fn totp_is_registered_once() {
    let found: Vec<_> = mfa_registrations()
        .into_iter()
        .filter(|r| r.kind == "totp")
        .collect();
    assert_eq!(found.len(), 1);
    let registration = found[0];
    assert_eq!(registration.default_name, "Time-based One Time Password");
    assert!(!registration.testing_only);
}

#[test]
fn builds_with_default_or_configured_id_and_name() {
    let config = TempConfig::empty();
    let registration = find_mfa_module("totp").unwrap();
    for (id, name, want_id, want_name) in [
        (None, None, "totp", "Time-based One Time Password"),
        (
            Some("totp"),
            Some("Authenticator app"),
            "totp",
            "Authenticator app",
        ),
        (
            Some("second"),
            None,
            "second",
            "Time-based One Time Password",
        ),
    ] {
        for own_keys in [Value::Null, json!({})] {
            let spec = PluginSpec {
                id: id.map(str::to_owned),
                name: name.map(str::to_owned),
                config: own_keys,
            };
            let module = (registration.build)(spec, &ctx(&config)).unwrap();
            assert_eq!(module.id(), want_id);
            assert_eq!(module.name(), want_name);
            assert_eq!(module.module_type(), "totp");
            assert_eq!(module.max_retry(), 5);
            assert_eq!(
                serde_json::to_value(module.input_schema()).unwrap(),
                json!([{"type": "string", "name": "code", "required": true}])
            );
        }
    }
}

#[test]
fn unknown_keys_are_rejected() {
    let config = TempConfig::empty();
    let registration = find_mfa_module("totp").unwrap();
    let spec = PluginSpec {
        id: None,
        name: None,
        config: json!({"issuer": "x"}),
    };
    let Err(err) = (registration.build)(spec, &ctx(&config)) else {
        panic!("an unknown key must be rejected");
    };
    assert!(err.to_string().contains("issuer"), "{err}");
    let schema = serde_json::to_value((registration.config_schema)()).unwrap();
    assert_eq!(schema["additionalProperties"], json!(false), "{schema}");
}
