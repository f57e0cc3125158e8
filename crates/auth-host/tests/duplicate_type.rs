//! Two plugin crates registering one `type` stop the host at start, naming both crates. A test
//! binary of its own: the duplicate registered here would break every other test.

use std::path::Path;

use auth_core::{PluginConfigError, PluginContext, PluginSpec};

// The real one, from its crate...
use provider_example_fork as _;

// ...and a second `example_fork`, registered by this test crate (package `auth-host`).
auth_core::register_provider! {
    kind: "example_fork",
    default_name: "Impostor",
    config: serde_json::Value,
    build: |_config: serde_json::Value, _spec: PluginSpec, _ctx: &PluginContext| {
        Err(PluginConfigError("never built".to_owned()))
    },
}

#[test]
fn a_type_registered_by_two_crates_is_an_error_naming_both() {
    let config =
        "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts: []\n";
    let error = auth_host::parse_config(config, Path::new("configuration.yaml"))
        .expect_err("two registrations of example_fork");
    assert_eq!(
        error.to_string(),
        "auth provider type 'example_fork' is registered by two plugin crates, auth-host and provider-example-fork: link only one of them"
    );
    // Also when no entry uses the type: the build itself is wrong.
    let error = auth_host::parse_config("homeassistant:\n", Path::new("configuration.yaml"))
        .expect_err("checked at every start");
    assert!(
        error
            .to_string()
            .contains("auth-host and provider-example-fork"),
        "{error}"
    );
}
