//! Unit tests: config parsing and the password check.

use auth_core::PluginSpec;
use serde_json::{Value, json};

use super::*;

fn spec(config: Value) -> PluginSpec {
    PluginSpec {
        id: None,
        name: None,
        config,
    }
}

#[test]
fn config_requires_api_password_and_nothing_else() {
    assert_eq!(
        spec(json!({"api_password": "pw"}))
            .parse_config::<Config>()
            .expect("valid")
            .api_password,
        "pw"
    );
    for bad in [
        Value::Null,
        json!({}),
        json!({"api_password": 5}),
        json!({"api_password": "pw", "extra": 1}),
    ] {
        assert!(spec(bad.clone()).parse_config::<Config>().is_err(), "{bad}");
    }
}

#[test]
fn debug_output_hides_the_password() {
    let config = Config {
        api_password: "hunter2".to_owned(),
    };
    assert!(!format!("{config:?}").contains("hunter2"));
    let provider = LegacyApiPasswordProvider::new(config, None, None);
    assert!(!format!("{provider:?}").contains("hunter2"));
}

#[test]
fn compares_whole_passwords() {
    let provider = LegacyApiPasswordProvider::new(
        Config {
            api_password: "legacy-api-password".to_owned(),
        },
        None,
        None,
    );
    assert!(provider.validate_login("legacy-api-password"));
    for wrong in [
        "",
        "legacy-api-passwor",
        "legacy-api-password ",
        "LEGACY-API-PASSWORD",
    ] {
        assert!(!provider.validate_login(wrong), "{wrong:?}");
    }
    assert_eq!(provider.name(), "Legacy API Password");
    assert_eq!(provider.provider_type(), "legacy_api_password");
}

#[test]
fn empty_configured_password_only_matches_empty_input() {
    let provider = LegacyApiPasswordProvider::new(
        Config {
            api_password: String::new(),
        },
        Some("second".to_owned()),
        Some("Old".to_owned()),
    );
    assert!(provider.validate_login(""));
    assert!(!provider.validate_login("x"));
    assert_eq!(provider.provider_id(), Some("second"));
    assert_eq!(provider.name(), "Old");
}

#[test]
fn the_shared_credential_is_known_as_homeassistant_to_mfa_chains() {
    let provider = LegacyApiPasswordProvider::new(
        Config {
            api_password: "pw".to_owned(),
        },
        None,
        None,
    );
    let credentials = |data: Value| Credentials {
        id: "c".to_owned(),
        auth_provider_type: PROVIDER_TYPE.to_owned(),
        auth_provider_id: None,
        data: data.as_object().cloned().unwrap_or_default(),
        is_new: false,
    };
    assert_eq!(
        provider.credential_username(&credentials(json!({}))),
        Some("homeassistant".to_owned())
    );
    // Credentials from Home Assistant's first version of the provider carry the name.
    assert_eq!(
        provider.credential_username(&credentials(json!({"username": "other"}))),
        Some("other".to_owned())
    );
}
