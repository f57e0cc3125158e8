//! Building through the registration: names, schema, config errors.

use provider_command_line::{CommandLineProvider, DEFAULT_TIMEOUT};
use serde_json::json;

use crate::common::build;

#[test]
fn registration_and_defaults() {
    let registration = auth_core::registry::find_provider("command_line").expect("registered");
    assert_eq!(registration.default_name, "Command Line Authentication");
    assert!(!registration.testing_only);
    let schema = serde_json::to_value((registration.config_schema)()).expect("json");
    assert_eq!(schema["required"], json!(["command"]));

    let provider = build(
        json!({"command": "/usr/local/bin/../bin/ha-auth", "args": null}),
        Some("ldap"),
    )
    .expect("builds");
    assert_eq!(provider.provider_type(), "command_line");
    assert_eq!(provider.provider_id(), Some("ldap"));
    assert_eq!(provider.name(), "Command Line Authentication");
    assert!(provider.supports_mfa());
    let concrete = (provider.as_ref() as &dyn std::any::Any)
        .downcast_ref::<CommandLineProvider>()
        .expect("concrete type");
    assert_eq!(concrete.config().command, "/usr/local/bin/ha-auth");
    assert!(concrete.config().args.is_empty());
    assert!(!concrete.config().meta);
    assert_eq!(concrete.config().timeout, DEFAULT_TIMEOUT);
}

fn error_of(keys: serde_json::Value) -> String {
    match build(keys, None) {
        Ok(_) => panic!("config accepted"),
        Err(error) => error.0,
    }
}

#[test]
fn config_errors() {
    assert!(error_of(json!({})).contains("missing field `command`"));
    assert!(error_of(json!({"command": "/x", "shell": true})).starts_with("unknown field `shell`"));
    assert_eq!(
        error_of(json!({"command": "/x", "timeout": 0})),
        "timeout: expected a positive number of seconds, got 0"
    );
    assert!(error_of(json!({"command": "/x", "meta": "on"})).contains("invalid type"));
}
