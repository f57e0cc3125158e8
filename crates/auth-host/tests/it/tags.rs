//! `!secret`, `!env_var`, `!include` and unknown tags.

use std::path::Path;

use auth_host::ConfigLoader;
use serde_json::json;

use crate::support::{config_dir, error, load, parse, relative};

const FORK_WITH_SECRET: &str = "homeassistant:
  auth_providers:
    - type: example_fork
      accounts:
        - login: kiosk
          secret: !secret kiosk_password
  auth_mfa_modules: []
";

#[test]
fn secrets_come_from_secrets_yaml() {
    let dir = config_dir(&[
        ("configuration.yaml", FORK_WITH_SECRET),
        (
            "secrets.yaml",
            "kiosk_password: the-real-password\nother: 1\n",
        ),
    ]);
    let config = load(dir.path()).unwrap();
    assert_eq!(
        config.providers[0].spec.config,
        json!({"accounts": [{"login": "kiosk", "secret": "the-real-password"}]})
    );
}

/// The security property: a tagged value is resolved or refused, never read as its literal text.
#[test]
fn a_tag_is_never_dropped() {
    let dir = config_dir(&[
        (
            "configuration.yaml",
            "homeassistant:
  auth_providers:
    - type: example_fork
      accounts:
        - login: kiosk
          secret: !secret pw
        - login: env
          secret: !env_var HASS_AUTH_TEST_SECRET
  auth_mfa_modules: []
http:
  server_port: !env_var HASS_AUTH_TEST_PORT
",
        ),
        ("secrets.yaml", "pw: correct-horse-battery\n"),
    ]);
    let config = load(dir.path()).unwrap();
    let accounts = &config.providers[0].spec.config["accounts"];
    assert_eq!(accounts[0]["secret"], json!("correct-horse-battery"));
    assert_ne!(accounts[0]["secret"], json!("pw"));
    assert_eq!(accounts[1]["secret"], json!("from-the-environment"));
    assert_ne!(accounts[1]["secret"], json!("HASS_AUTH_TEST_SECRET"));
    assert_eq!(config.http.server_port, 9123);

    // Without the secrets file the same text is an error, not the literal "pw".
    let message = error(
        "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts:\n        - {login: kiosk, secret: !secret pw}\n",
    );
    assert!(message.contains("secret 'pw'"), "{message}");

    // A quoted '!secret pw' is no tag: it is that literal string, as in Home Assistant.
    let config = parse(
        "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts:\n        - {login: kiosk, secret: '!secret pw'}\n",
    )
    .unwrap();
    assert_eq!(
        config.providers[0].spec.config["accounts"][0]["secret"],
        json!("!secret pw")
    );
}

#[cfg(feature = "provider-legacy-api-password")]
#[test]
fn api_password_from_a_secret_is_the_secrets_value() {
    let dir = config_dir(&[
        (
            "configuration.yaml",
            "homeassistant:\n  auth_providers:\n    - type: legacy_api_password\n      api_password: !secret pw\n",
        ),
        ("secrets.yaml", "pw: s3cr3t-api-password\n"),
    ]);
    let config = load(dir.path()).unwrap();
    assert_eq!(
        config.providers[0].spec.config,
        json!({"api_password": "s3cr3t-api-password"})
    );
}

#[test]
fn a_missing_secret_names_both_files_and_the_key() {
    let dir = config_dir(&[
        ("configuration.yaml", FORK_WITH_SECRET),
        ("secrets.yaml", "something_else: x\n"),
    ]);
    let message = load(dir.path()).unwrap_err().to_string();
    assert_eq!(
        relative(&message, dir.path()),
        "configuration.yaml:6:19: homeassistant.auth_providers[0].accounts[0].secret: secret 'kiosk_password' (used in configuration.yaml) is not defined in secrets.yaml"
    );
}

#[test]
fn a_missing_secrets_file_is_an_error() {
    let dir = config_dir(&[("configuration.yaml", FORK_WITH_SECRET)]);
    let message = load(dir.path()).unwrap_err().to_string();
    assert_eq!(
        relative(&message, dir.path()),
        "configuration.yaml:6:19: homeassistant.auth_providers[0].accounts[0].secret: secret 'kiosk_password' (used in configuration.yaml) cannot be looked up: secrets.yaml not found (looked for secrets.yaml)"
    );
}

#[test]
fn secrets_are_looked_up_from_an_included_files_folder_up_to_the_config_dir() {
    let dir = config_dir(&[
        (
            "configuration.yaml",
            "homeassistant:\n  auth_providers: !include auth/providers.yaml\n  auth_mfa_modules: []\n",
        ),
        (
            "auth/providers.yaml",
            "- type: example_fork\n  accounts:\n    - {login: a, secret: !secret near}\n    - {login: b, secret: !secret far}\n",
        ),
        ("auth/secrets.yaml", "near: from-auth-folder\n"),
        ("secrets.yaml", "far: from-config-dir\nnear: shadowed\n"),
    ]);
    let config = load(dir.path()).unwrap();
    assert_eq!(
        config.providers[0].spec.config["accounts"],
        json!([{"login": "a", "secret": "from-auth-folder"}, {"login": "b", "secret": "from-config-dir"}])
    );
    // Errors point into the included file.
    assert_eq!(
        config.providers[0].location,
        format!("{}:1:3", dir.path().join("auth/providers.yaml").display())
    );
}

#[test]
fn secrets_yaml_cannot_use_secret() {
    let dir = config_dir(&[
        ("configuration.yaml", FORK_WITH_SECRET),
        ("secrets.yaml", "kiosk_password: !secret other\nother: x\n"),
    ]);
    let message = relative(&load(dir.path()).unwrap_err().to_string(), dir.path());
    assert_eq!(
        message,
        "secrets.yaml:1:17: homeassistant.auth_providers[0].accounts[0].secret: !secret cannot be used inside secrets.yaml"
    );
}

#[test]
fn env_var_with_value_default_and_missing() {
    let text = |value: &str| {
        format!(
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts:\n        - login: k\n          secret: {value}\n  auth_mfa_modules: []\n"
        )
    };
    let secret = |value: &str| {
        parse(&text(value)).map(|c| c.providers[0].spec.config["accounts"][0]["secret"].clone())
    };
    assert_eq!(
        secret("!env_var HASS_AUTH_TEST_SECRET").unwrap(),
        json!("from-the-environment")
    );
    assert_eq!(
        secret("!env_var HASS_AUTH_TEST_SECRET ignored default").unwrap(),
        json!("from-the-environment")
    );
    assert_eq!(
        secret("!env_var HASS_AUTH_UNSET a default   with spaces").unwrap(),
        json!("a default with spaces")
    );
    assert_eq!(
        secret("!env_var HASS_AUTH_UNSET").unwrap_err().to_string(),
        "configuration.yaml:6:19: homeassistant.auth_providers[0].accounts[0].secret: !env_var: environment variable HASS_AUTH_UNSET is not set and no default is given"
    );
    assert_eq!(
        secret("!env_var").unwrap_err().to_string(),
        "configuration.yaml:6:19: homeassistant.auth_providers[0].accounts[0].secret: !env_var expects a name after it"
    );
}

#[test]
fn env_var_reads_the_process_environment_by_default() {
    // Cargo sets CARGO_MANIFEST_DIR for test processes; nothing here changes the environment.
    let Ok(expected) = std::env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let config = ConfigLoader::new()
        .parse(
            "http:\n  frontend_dir: !env_var CARGO_MANIFEST_DIR\n",
            Path::new("configuration.yaml"),
        )
        .unwrap();
    assert_eq!(
        config.http.frontend_dir,
        Some(Path::new(&expected).to_owned())
    );
}

#[test]
fn include_works_nested_and_relative_to_the_including_file() {
    let dir = config_dir(&[
        (
            "configuration.yaml",
            "homeassistant: !include core/homeassistant.yaml\nhttp: !include http.yaml\n",
        ),
        (
            "core/homeassistant.yaml",
            "auth_providers:\n  - !include providers/fork.yaml\nauth_mfa_modules: []\n",
        ),
        (
            "core/providers/fork.yaml",
            "type: example_fork\nid: included\naccounts: !include ../accounts.yaml\n",
        ),
        ("core/accounts.yaml", "- {login: kiosk, secret: s}\n"),
        ("http.yaml", "server_port: 8999\n"),
    ]);
    let config = load(dir.path()).unwrap();
    assert_eq!(config.providers[0].spec.id.as_deref(), Some("included"));
    assert_eq!(
        config.providers[0].spec.config,
        json!({"accounts": [{"login": "kiosk", "secret": "s"}]})
    );
    assert_eq!(config.http.server_port, 8999);
}

#[test]
fn an_empty_included_file_is_an_empty_mapping() {
    let dir = config_dir(&[
        (
            "configuration.yaml",
            "homeassistant: !include empty.yaml\nhttp: !include empty.yaml\n",
        ),
        ("empty.yaml", "# nothing yet\n"),
    ]);
    let config = load(dir.path()).unwrap();
    assert_eq!(config.http, auth_host::HttpOptions::default());
}

#[test]
fn a_missing_include_is_an_error() {
    let dir = config_dir(&[(
        "configuration.yaml",
        "homeassistant:\n  auth_providers: !include missing.yaml\n",
    )]);
    let message = relative(&load(dir.path()).unwrap_err().to_string(), dir.path());
    assert!(
        message.starts_with(
            "configuration.yaml:2:19: homeassistant.auth_providers: !include: cannot read missing.yaml: "
        ),
        "{message}"
    );
}

#[test]
fn include_cycles_are_errors() {
    let dir = config_dir(&[
        (
            "configuration.yaml",
            "homeassistant:\n  auth_providers: !include a.yaml\n",
        ),
        ("a.yaml", "- !include b.yaml\n"),
        ("b.yaml", "!include a.yaml\n"),
    ]);
    let message = relative(&load(dir.path()).unwrap_err().to_string(), dir.path());
    assert_eq!(
        message,
        "b.yaml:1:1: homeassistant.auth_providers[0]: !include cycle: a.yaml -> b.yaml -> a.yaml"
    );
    let dir = config_dir(&[(
        "configuration.yaml",
        "homeassistant: !include configuration.yaml\n",
    )]);
    let message = relative(&load(dir.path()).unwrap_err().to_string(), dir.path());
    assert_eq!(
        message,
        "configuration.yaml:1:16: homeassistant: !include cycle: configuration.yaml -> configuration.yaml"
    );
}

#[test]
fn unknown_tags_in_read_sections_are_errors() {
    assert_eq!(
        error("homeassistant:\n  auth_providers: !include_dir_list providers\n"),
        "configuration.yaml:2:19: homeassistant.auth_providers: unsupported tag !include_dir_list (hass-auth resolves !secret, !env_var and !include in the sections it reads)"
    );
    assert_eq!(
        error("http:\n  server_port: !input port\n"),
        "configuration.yaml:2:16: http.server_port: unsupported tag !input (hass-auth resolves !secret, !env_var and !include in the sections it reads)"
    );
    assert_eq!(
        error(
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts:\n        - {login: a, secret: !vault a}\n"
        ),
        "configuration.yaml:5:30: homeassistant.auth_providers[0].accounts[0].secret: unsupported tag !vault (hass-auth resolves !secret, !env_var and !include in the sections it reads)"
    );
}

#[test]
fn sections_hass_auth_does_not_read_are_never_resolved() {
    let config = parse(
        "homeassistant:
  customize: !include customize.yaml
  packages: !include_dir_named packages
  auth_providers: []
automation: !include automations.yaml
script: !include_dir_merge_named scripts
blueprint_thing: !input whatever
http:
  base_url: !secret not_used
",
    )
    .unwrap();
    assert!(config.providers.is_empty());
}
