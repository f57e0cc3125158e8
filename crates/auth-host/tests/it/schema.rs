//! The checked-in JSON Schema of configuration.yaml.

use std::path::Path;

use auth_host::BUILTIN_PLUGINS;
use serde_json::Value;

/// The schema of the `auth-server` build: every built-in plugin (not the test-only fork).
fn builtin_schema() -> String {
    let schema = auth_host::config_schema_filtered(|role, kind| {
        BUILTIN_PLUGINS
            .iter()
            .any(|p| p.enabled && p.registers(role, kind))
    });
    let mut text = serde_json::to_string_pretty(&schema).unwrap();
    text.push('\n');
    text
}

#[test]
fn schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.schema.json");
    let all_features = BUILTIN_PLUGINS.iter().all(|p| p.enabled);
    if !all_features {
        // The checked-in file describes the default build; other builds are not compared.
        return;
    }
    let current = builtin_schema();
    if std::env::var_os("HASS_AUTH_WRITE_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(&path, &current).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == current,
        "docs/config.schema.json is stale: run `cargo xtask codegen`"
    );
}

#[test]
fn schema_has_one_variant_per_linked_plugin_type() {
    let schema = serde_json::to_value(auth_host::config_schema()).unwrap();
    let variants = |def: &str| -> Vec<String> {
        schema["$defs"][def]["oneOf"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| {
                        v["properties"]["type"]["const"]
                            .as_str()
                            .unwrap()
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let providers: Vec<String> = auth_core::registry::provider_registrations()
        .iter()
        .map(|r| r.kind.to_owned())
        .collect();
    assert_eq!(variants("auth_provider"), providers);
    let modules: Vec<String> = auth_core::registry::mfa_registrations()
        .iter()
        .map(|r| r.kind.to_owned())
        .collect();
    assert_eq!(variants("mfa_module"), modules);
    // Chain modules are the same types, with `enroll`.
    assert_eq!(variants("mfa_chain_module"), modules);
    // (Without any MFA plugin compiled in there are no variants.)
    for variant in schema["$defs"]["mfa_chain_module"]["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert_eq!(
            variant["properties"]["enroll"]["type"], "boolean",
            "{variant}"
        );
        assert_eq!(variant["additionalProperties"], Value::Bool(false));
    }

    let fork = schema["$defs"]["auth_provider"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["title"] == "example_fork")
        .unwrap();
    let keys: Vec<&str> = fork["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // `modules` (a required MFA chain) is the host's key, on every provider.
    assert_eq!(keys, ["type", "name", "id", "accounts", "modules"]);
    assert_eq!(
        fork["properties"]["modules"]["anyOf"][0]["items"]["$ref"],
        "#/$defs/mfa_chain_module"
    );
    assert_eq!(fork["required"], serde_json::json!(["type", "accounts"]));
    assert_eq!(fork["additionalProperties"], Value::Bool(false));
    // The fork's Account definition was lifted to the root, and its reference follows it.
    let items_ref = fork["properties"]["accounts"]["items"]["$ref"]
        .as_str()
        .unwrap();
    let name = items_ref.strip_prefix("#/$defs/").unwrap();
    assert_eq!(name, "provider_example_fork_Account");
    assert!(schema["$defs"][name]["properties"]["secret"].is_object());
    assert_eq!(schema["properties"]["http"]["$ref"], "#/$defs/http");
    assert_eq!(
        schema["$defs"]["http"]["properties"]["server_port"]["default"],
        8123
    );
}

#[test]
fn the_builtin_schema_leaves_out_unlinked_types() {
    let text = builtin_schema();
    assert!(!text.contains("example_fork"));
}
