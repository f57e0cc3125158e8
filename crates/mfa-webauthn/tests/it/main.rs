//! The module and the passwordless provider built from config through the plugin registry, as
//! a host builds them: the provider finds the module's keys, and refuses unknown usernames.
//! (Registering and using real keys needs an authenticator: auth-server's Chromium tests.)

use auth_core::LoginContext;
// Linked for its registrations (the module and the provider).
use auth_testkit::conformance::manager_from_registry;
use auth_testkit::{TempConfig, conformance::object};
use mfa_webauthn as _;
use serde_json::json;

#[tokio::test]
async fn the_registry_builds_both_and_the_provider_uses_the_module() {
    let config = TempConfig::empty();
    let manager = manager_from_registry(
        &config,
        &[("webauthn", json!({"passwordless": true}))],
        &[(
            "webauthn",
            json!({"rp_origins": ["https://home.example.org"]}),
        )],
    )
    .await;
    let module = manager
        .mfa_module("webauthn")
        .expect("the module is configured");
    assert_eq!(module.name(), "Passkey");
    assert_eq!(module.storage_key(), Some("auth_module.webauthn"));
    let context = LoginContext {
        ip_address: Some("127.0.0.1".parse().unwrap()),
        ..Default::default()
    };
    let form = manager
        .start_login_flow("webauthn", None, context)
        .await
        .expect("the provider found its module")
        .expect("the provider is configured");
    let first = form.to_json();
    assert_eq!(first["step_id"], "init", "{first}");
    assert_eq!(
        first["data_schema"],
        json!([{"type": "string", "name": "username", "required": true}]),
        "a username and no password"
    );
    let refused = manager
        .login_flows()
        .configure(&form.flow_id, Some(object(json!({"username": "nobody"}))))
        .await
        .unwrap()
        .to_json();
    assert_eq!(
        refused["errors"],
        json!({"base": "invalid_auth"}),
        "{refused}"
    );
    assert_eq!(refused["step_id"], "init");
}

#[tokio::test]
async fn a_provider_without_its_module_fails_its_logins_naming_the_module() {
    let config = TempConfig::empty();
    let manager = manager_from_registry(
        &config,
        &[("webauthn", json!({"passwordless": true, "module": "keys"}))],
        &[(
            "webauthn",
            json!({"rp_origins": ["https://home.example.org"]}),
        )],
    )
    .await;
    let Err(error) = manager
        .start_login_flow("webauthn", None, LoginContext::default())
        .await
    else {
        panic!("a login started without the module 'keys'");
    };
    let error = error.to_string();
    assert!(error.contains("'keys'"), "{error}");
}
