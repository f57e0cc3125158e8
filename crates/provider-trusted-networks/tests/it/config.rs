//! Building through the registration: names, schema, config errors.

use auth_core::registry::find_provider;
use auth_core::{MemoryStorage, PluginConfigError};
use provider_trusted_networks::{TrustedNetworksProvider, TrustedUser};
use serde_json::json;
use std::sync::Arc;

use crate::common::build_with;

fn build(keys: serde_json::Value) -> Result<Arc<dyn auth_core::AuthProvider>, PluginConfigError> {
    build_with(keys, None, &[], Arc::new(MemoryStorage::new()))
}

fn build_err(keys: serde_json::Value) -> PluginConfigError {
    match build(keys) {
        Ok(_) => panic!("config accepted"),
        Err(error) => error,
    }
}

#[test]
fn registration_and_defaults() {
    let registration = find_provider("trusted_networks").expect("registered");
    assert_eq!(registration.default_name, "Trusted Networks");
    assert!(!registration.testing_only);
    let schema = serde_json::to_value((registration.config_schema)()).expect("json");
    assert_eq!(schema["required"], json!(["trusted_networks"]));

    let provider = build(json!({"trusted_networks": "192.168.0.0/24"})).expect("builds");
    assert_eq!(provider.provider_type(), "trusted_networks");
    assert_eq!(provider.provider_id(), None);
    assert_eq!(provider.name(), "Trusted Networks");
    assert!(!provider.supports_mfa());
    let concrete = (provider.as_ref() as &dyn std::any::Any)
        .downcast_ref::<TrustedNetworksProvider>()
        .expect("concrete type");
    assert!(!concrete.config().allow_bypass_login);
}

#[test]
fn config_errors_name_the_offending_value() {
    let cases = [
        (
            json!({"trusted_networks": ["192.168.0.0/24", "192.168.1.1/24"]}),
            "trusted_networks: 192.168.1.1/24 has host bits set (did you mean 192.168.1.0/24?)",
        ),
        (
            json!({"trusted_networks": "192.168.0.0/24", "trusted_users": {"192.168.0.0/24": "bob"}}),
            "trusted_users[192.168.0.0/24]: Invalid Version4 UUID: 'bob'",
        ),
        (
            json!({"trusted_networks": "192.168.0.0/24", "allow_bypass_login": "please"}),
            "allow_bypass_login: invalid boolean value \"please\"",
        ),
    ];
    for (keys, message) in cases {
        let error = build_err(keys.clone());
        assert_eq!(error.0, message, "{keys}");
    }
    let unknown = build_err(json!({"trusted_networks": "10.0.0.0/8", "trusted_proxies": []}));
    assert!(
        unknown.0.starts_with("unknown field `trusted_proxies`"),
        "{unknown}"
    );
    let missing = build_err(json!(null));
    assert!(
        missing.0.contains("missing field `trusted_networks`"),
        "{missing}"
    );
}

#[test]
fn group_entries_are_kept() {
    let provider = build(json!({
        "trusted_networks": "10.0.0.0/8",
        "trusted_users": {"10.0.0.0/8": [{"group": "system-users"}]},
    }))
    .expect("builds");
    let concrete = (provider.as_ref() as &dyn std::any::Any)
        .downcast_ref::<TrustedNetworksProvider>()
        .expect("concrete type");
    assert_eq!(
        concrete.config().trusted_users[0].1,
        vec![TrustedUser::Group("system-users".into())]
    );
}
