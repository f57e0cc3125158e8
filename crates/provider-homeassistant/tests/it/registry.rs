//! The registration: kind, default name, config handling.

use auth_core::registry::find_provider;
use auth_core::{AuthProvider, PluginSpec};
use serde_json::{Value, json};

use crate::common::plugin_context;

fn spec(id: Option<&str>, name: Option<&str>, config: Value) -> PluginSpec {
    PluginSpec {
        id: id.map(str::to_owned),
        name: name.map(str::to_owned),
        config,
    }
}

#[test]
fn registered_once_with_home_assistant_defaults() {
    let all: Vec<_> = auth_core::registry::provider_registrations()
        .into_iter()
        .filter(|r| r.kind == "homeassistant")
        .collect();
    assert_eq!(all.len(), 1);
    let registration = all[0];
    assert_eq!(registration.default_name, "Home Assistant Local");
    assert!(!registration.testing_only);
    let schema = serde_json::to_value((registration.config_schema)()).expect("json");
    assert_eq!(
        schema["properties"]["rehash_legacy_hashes"]["type"],
        "boolean"
    );
}

#[test]
fn id_is_refused_with_home_assistant_message() {
    let config = auth_testkit::TempConfig::empty();
    let build = find_provider("homeassistant").expect("registered").build;
    match build(
        spec(Some("second"), None, json!({})),
        &plugin_context(&config),
    ) {
        Err(error) => assert_eq!(
            error.to_string(),
            "ID is not allowed for the homeassistant auth provider."
        ),
        Ok(_) => panic!("id must be refused"),
    }
}

#[test]
fn name_extra_keys_and_bad_values() {
    let config = auth_testkit::TempConfig::empty();
    let ctx = plugin_context(&config);
    let build = find_provider("homeassistant").expect("registered").build;

    let provider: std::sync::Arc<dyn AuthProvider> =
        build(spec(None, None, Value::Null), &ctx).expect("builds");
    assert_eq!(provider.name(), "Home Assistant Local");
    assert_eq!(provider.provider_type(), "homeassistant");
    assert_eq!(provider.provider_id(), None);
    assert!(provider.supports_mfa());

    let named = build(
        spec(None, Some("Local"), json!({"ignored_key": [1, 2]})),
        &ctx,
    )
    .expect("extra keys are ignored, as in HA");
    assert_eq!(named.name(), "Local");

    assert!(build(spec(None, None, json!({"rehash_legacy_hashes": 1})), &ctx).is_err());
}
