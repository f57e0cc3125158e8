//! Reading configuration.yaml: the HA fixtures, defaults, list forms, duplicates, unknown types.

use auth_host::{HttpOptions, PluginEntry};
use serde_json::json;

use crate::support::{error, parse};

fn kinds(entries: &[PluginEntry]) -> Vec<(&str, Option<&str>)> {
    entries
        .iter()
        .map(|e| (e.kind.as_str(), e.spec.id.as_deref()))
        .collect()
}

#[cfg(all(
    feature = "provider-homeassistant",
    feature = "provider-insecure-example",
    feature = "mfa-totp",
    feature = "mfa-insecure-example"
))]
#[test]
fn loads_the_ha_2026_fixture() {
    let path = crate::support::fixture_config("ha-2026.2.3");
    let config = auth_host::load_config(&path).unwrap();
    assert_eq!(
        kinds(&config.providers),
        [("homeassistant", None), ("insecure_example", None)]
    );
    assert_eq!(
        kinds(&config.mfa_modules),
        [("totp", None), ("insecure_example", None)]
    );
    let example = &config.providers[1];
    assert_eq!(
        example.spec.config,
        json!({"users": [{"username": "example-user", "password": "example-pass", "name": "Example User"}]})
    );
    assert_eq!(example.key_path, "homeassistant.auth_providers[1]");
    assert!(
        example
            .location
            .ends_with("ha-2026.2.3/configuration.yaml:16:7"),
        "{}",
        example.location
    );
    // The quoted PIN stays a string (a plain 000000 would be the integer 0 in YAML 1.1).
    assert_eq!(
        config.mfa_modules[1].spec.config["data"][0]["pin"],
        json!("000000")
    );
    assert_eq!(
        config.http,
        HttpOptions {
            server_host: vec!["127.0.0.1".into()],
            server_port: 29124,
            ..HttpOptions::default()
        }
    );
    // insecure_example is allowed, with a warning for the provider and for the module.
    let warnings = config.warnings.join("\n");
    assert!(
        warnings.contains("The insecure_example auth provider is for testing only."),
        "{warnings}"
    );
    assert!(
        warnings.contains("The insecure_example mfa module is for testing only."),
        "{warnings}"
    );
}

#[cfg(all(
    feature = "provider-homeassistant",
    feature = "provider-legacy-api-password",
    feature = "provider-insecure-example",
    feature = "mfa-totp",
    feature = "mfa-insecure-example"
))]
#[test]
fn loads_the_ha_2024_fixture() {
    let path = crate::support::fixture_config("ha-2024.3.3");
    let config = auth_host::load_config(&path).unwrap();
    assert_eq!(
        kinds(&config.providers),
        [
            ("homeassistant", None),
            ("legacy_api_password", None),
            ("insecure_example", None)
        ]
    );
    assert_eq!(
        config.providers[1].spec.config,
        json!({"api_password": "legacy-api-password"})
    );
    assert_eq!(config.http.server_port, 29123);
    assert!(config.http.ip_ban_enabled);
    assert_eq!(config.http.login_attempts_threshold, -1);
}

#[test]
fn defaults_when_keys_are_absent() {
    for text in [
        "",
        "# only a comment\n",
        "homeassistant:\n",
        "homeassistant:\n  name: Home\n  time_zone: UTC\n",
        "api:\nlogger:\n  default: info\n",
    ] {
        let config = parse(text).unwrap();
        if cfg!(feature = "provider-homeassistant") {
            assert_eq!(
                kinds(&config.providers),
                [("homeassistant", None)],
                "{text:?}"
            );
            assert_eq!(config.providers[0].spec.name, None);
            assert_eq!(config.providers[0].spec.config, json!({}));
        } else {
            assert!(config.providers.is_empty());
            assert!(
                config
                    .warnings
                    .iter()
                    .any(|w| w.contains("no auth providers"))
            );
        }
        if cfg!(feature = "mfa-totp") {
            assert_eq!(kinds(&config.mfa_modules), [("totp", Some("totp"))]);
            assert_eq!(
                config.mfa_modules[0].spec.name.as_deref(),
                Some("Authenticator app")
            );
        } else {
            assert!(config.mfa_modules.is_empty());
            assert!(config.warnings.iter().any(|w| w.contains("no MFA modules")));
        }
        assert_eq!(config.http, HttpOptions::default());
    }
}

#[test]
fn a_single_mapping_is_a_one_element_list() {
    let config = parse(
        "homeassistant:
  auth_providers:
    type: example_fork
    name: Kiosk accounts
    accounts:
      - {login: kiosk, secret: s}
  auth_mfa_modules:
    type: no_such_module_but_never_checked_because_list_is_empty
    id: x
",
    );
    // The module type is unknown: the single mapping was read as an entry.
    let message = config.unwrap_err().to_string();
    assert!(
        message.starts_with(
            "configuration.yaml:8:5: homeassistant.auth_mfa_modules.type: unknown mfa module type"
        ),
        "{message}"
    );
    let config = parse(
        "homeassistant:
  auth_providers:
    type: example_fork
    name: Kiosk accounts
    accounts:
      - {login: kiosk, secret: s}
  auth_mfa_modules: []
",
    )
    .unwrap();
    assert_eq!(kinds(&config.providers), [("example_fork", None)]);
    let entry = &config.providers[0];
    assert_eq!(entry.key_path, "homeassistant.auth_providers");
    assert_eq!(entry.location, "configuration.yaml:3:5");
    assert_eq!(entry.spec.name.as_deref(), Some("Kiosk accounts"));
    assert_eq!(
        entry.spec.config,
        json!({"accounts": [{"login": "kiosk", "secret": "s"}]})
    );
}

#[test]
fn empty_lists_mean_none() {
    let config = parse("homeassistant:\n  auth_providers: []\n  auth_mfa_modules: []\n").unwrap();
    assert!(config.providers.is_empty());
    assert!(config.mfa_modules.is_empty());
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w == "configuration.yaml: no auth providers are configured: nobody can log in"),
        "{:?}",
        config.warnings
    );
    // Home Assistant's ensure_list turns an empty value into an empty list too.
    let config = parse("homeassistant:\n  auth_providers:\n  auth_mfa_modules:\n").unwrap();
    assert!(config.providers.is_empty());
    assert!(config.mfa_modules.is_empty());
}

#[test]
fn order_name_and_id_are_kept() {
    let config = parse(
        "homeassistant:
  auth_providers:
    - type: example_fork
      id: b
      name: Second
      accounts: []
    - type: example_fork
      accounts: []
    - type: example_fork
      id: a
      accounts: []
  auth_mfa_modules: []
",
    )
    .unwrap();
    assert_eq!(
        kinds(&config.providers),
        [
            ("example_fork", Some("b")),
            ("example_fork", None),
            ("example_fork", Some("a"))
        ]
    );
    assert_eq!(config.providers[0].spec.name.as_deref(), Some("Second"));
    assert_eq!(
        config.providers[2].key_path,
        "homeassistant.auth_providers[2]"
    );
    assert_eq!(config.providers[2].location, "configuration.yaml:9:7");
}

#[test]
fn duplicate_providers_use_home_assistants_message() {
    assert_eq!(
        error(
            "homeassistant:
  auth_providers:
    - type: example_fork
      accounts: []
    - type: example_fork
      accounts: []
"
        ),
        "configuration.yaml:5:7: homeassistant.auth_providers[1]: Duplicate auth provider example_fork found. Please add unique IDs if you want to have the same auth provider twice"
    );
    assert_eq!(
        error(
            "homeassistant:
  auth_providers:
    - {type: example_fork, id: x, accounts: []}
    - {type: example_fork, accounts: []}
    - {type: example_fork, id: x, accounts: []}
"
        ),
        "configuration.yaml:5:7: homeassistant.auth_providers[2]: Duplicate auth provider example_fork found. Please add unique IDs if you want to have the same auth provider twice"
    );
    // Duplicates are found before unknown types, as in Home Assistant.
    assert_eq!(
        error("homeassistant:\n  auth_providers:\n    - type: nope\n    - type: nope\n"),
        "configuration.yaml:4:7: homeassistant.auth_providers[1]: Duplicate auth provider nope found. Please add unique IDs if you want to have the same auth provider twice"
    );
}

#[test]
fn duplicate_mfa_modules_use_home_assistants_message() {
    // Module ids default to the type and share one namespace.
    assert_eq!(
        error(
            "homeassistant:
  auth_mfa_modules:
    - type: totp
    - type: notify
      id: totp
"
        ),
        "configuration.yaml:4:7: homeassistant.auth_mfa_modules[1]: Duplicate mfa module notify found. Please add unique IDs if you want to have the same mfa module twice"
    );
    assert_eq!(
        error("homeassistant:\n  auth_mfa_modules:\n    - type: totp\n    - type: totp\n"),
        "configuration.yaml:4:7: homeassistant.auth_mfa_modules[1]: Duplicate mfa module totp found. Please add unique IDs if you want to have the same mfa module twice"
    );
}

#[test]
fn unknown_types_list_the_compiled_types() {
    let providers: Vec<&str> = auth_core::registry::provider_registrations()
        .iter()
        .map(|r| r.kind)
        .collect();
    assert!(providers.contains(&"example_fork"));
    assert_eq!(
        error(
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts: []\n    - type: ldap\n"
        ),
        format!(
            "configuration.yaml:5:7: homeassistant.auth_providers[1].type: unknown auth provider type 'ldap'; this build supports: {}",
            providers.join(", ")
        )
    );
    let modules: Vec<&str> = auth_core::registry::mfa_registrations()
        .iter()
        .map(|r| r.kind)
        .collect();
    let supported = if modules.is_empty() {
        "none".to_owned()
    } else {
        modules.join(", ")
    };
    assert_eq!(
        error("homeassistant:\n  auth_providers: []\n  auth_mfa_modules:\n    - type: sms\n"),
        format!(
            "configuration.yaml:4:7: homeassistant.auth_mfa_modules[0].type: unknown mfa module type 'sms'; this build supports: {supported}"
        )
    );
}

#[cfg(feature = "provider-homeassistant")]
#[test]
fn the_homeassistant_provider_refuses_an_id() {
    assert_eq!(
        error("homeassistant:\n  auth_providers:\n    - type: homeassistant\n      id: second\n"),
        "configuration.yaml:3:7: homeassistant.auth_providers[0] (type homeassistant): ID is not allowed for the homeassistant auth provider."
    );
}

#[test]
fn testing_only_plugins_are_allowed_with_a_warning() {
    let config = parse(
        "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts: []\n  auth_mfa_modules: []\n",
    )
    .unwrap();
    assert_eq!(
        config.warnings,
        [
            "configuration.yaml:3:7: homeassistant.auth_providers[0]: The example_fork auth provider is for testing only. hass-auth allows it (Home Assistant refuses it in YAML); never use it on a reachable server"
        ]
    );
}
