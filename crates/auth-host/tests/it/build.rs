//! From configuration to a running AuthManager.

use std::path::Path;
use std::sync::Arc;

use auth_core::flow_engine::FlowResult;
use auth_core::registry::{PasswordPolicy, PluginSpec};
use auth_core::{AuthManager, LoginContext, MemoryStorage};
use auth_host::{
    ConfigError, Host, HostConfig, HostError, HostOptions, PluginEntry, auth_manager_from_config,
};
use serde_json::{Map, json};

use crate::support::{config_dir, loader, parse};

fn options() -> HostOptions {
    HostOptions {
        clock: auth_testkit::clock_at(auth_testkit::FIXTURE_2026_NOW),
        rng: auth_testkit::seeded_rng(11),
        password_policy: PasswordPolicy::fast_for_tests(),
        ..HostOptions::default()
    }
}

/// Runs a username/password login flow; returns the final step.
async fn login(
    manager: &AuthManager,
    provider: (&str, Option<&str>),
    username: &str,
    password: &str,
) -> FlowResult {
    let context = LoginContext {
        ip_address: Some("127.0.0.1".parse().unwrap()),
        ..Default::default()
    };
    let flow = manager
        .start_login_flow(provider.0, provider.1, context)
        .await
        .unwrap()
        .expect("provider configured");
    let mut input = Map::new();
    input.insert("username".into(), json!(username));
    input.insert("password".into(), json!(password));
    manager
        .login_flows()
        .configure(&flow.flow_id, Some(input))
        .await
        .unwrap()
        .result
}

fn is_invalid_auth(result: &FlowResult) -> bool {
    matches!(result, FlowResult::Form { errors: Some(errors), .. } if errors.get("base") == Some(&json!("invalid_auth")))
}

#[tokio::test]
async fn an_out_of_tree_provider_from_yaml_signs_users_in() {
    let dir = config_dir(&[
        (
            "configuration.yaml",
            "homeassistant:
  auth_providers:
    - type: example_fork
      id: kiosks
      name: Kiosks
      accounts:
        - login: kiosk
          secret: !secret kiosk_password
          display_name: Hall kiosk
  auth_mfa_modules: []
",
        ),
        ("secrets.yaml", "kiosk_password: correct-horse\n"),
    ]);
    let host = Host::from_config_dir_with(dir.path(), options(), &loader())
        .await
        .unwrap();
    let manager = host.manager();
    let providers = manager.auth_providers();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].name(), "Kiosks");
    assert_eq!(providers[0].provider_id(), Some("kiosks"));

    // The secret's name is not the password; the secret's value is.
    let refused = login(
        manager,
        ("example_fork", Some("kiosks")),
        "kiosk",
        "kiosk_password",
    )
    .await;
    assert!(is_invalid_auth(&refused), "{refused:?}");
    let done = login(
        manager,
        ("example_fork", Some("kiosks")),
        "kiosk",
        "correct-horse",
    )
    .await;
    let FlowResult::CreateEntry { data, .. } = done else {
        panic!("expected create_entry, got {done:?}");
    };
    let credentials = manager.credentials_from_flow(&data).unwrap();
    let user = manager.get_or_create_user(&credentials).await.unwrap();
    assert_eq!(user.name.as_deref(), Some("Hall kiosk"));
    manager.flush().await.unwrap();
    assert!(host.storage().path("auth").exists());
}

#[tokio::test]
async fn a_second_host_on_the_same_directory_is_refused() {
    let dir = config_dir(&[(
        "configuration.yaml",
        "homeassistant:\n  auth_providers: []\n  auth_mfa_modules: []\n",
    )]);
    let first = Host::from_config_dir_with(dir.path(), options(), &loader())
        .await
        .unwrap();
    assert_eq!(first.config_dir(), dir.path());
    let second = Host::from_config_dir_with(dir.path(), options(), &loader()).await;
    assert!(matches!(second, Err(HostError::Storage(_))), "{second:?}");
    drop(first);
    Host::from_config_dir_with(dir.path(), options(), &loader())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missing_configuration_file_is_an_error() {
    let dir = config_dir(&[]);
    let err = Host::from_config_dir(dir.path()).await.unwrap_err();
    assert!(
        matches!(err, HostError::Config(ConfigError::Read { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn build_errors_name_the_entry() {
    let config = HostConfig {
        source: Path::new("configuration.yaml").to_owned(),
        providers: vec![PluginEntry::new(
            "example_fork",
            PluginSpec {
                id: None,
                name: None,
                config: json!({"accounts": "nope"}),
            },
            "homeassistant.auth_providers[0]",
            Path::new("configuration.yaml"),
        )],
        mfa_modules: vec![],
        storage: None,
        http: Default::default(),
        warnings: vec![],
    };
    let err = auth_manager_from_config(&config, Arc::new(MemoryStorage::new()), options())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "configuration.yaml:1:1: homeassistant.auth_providers[0] (type example_fork): invalid type: string \"nope\", expected a sequence"
    );

    let mut config = config;
    config.providers[0].kind = "ldap".into();
    let err = auth_manager_from_config(&config, Arc::new(MemoryStorage::new()), options())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "configuration.yaml:1:1: homeassistant.auth_providers[0] (type ldap): unknown auth provider type 'ldap': not compiled into this build"
    );
}

#[tokio::test]
async fn the_manager_keeps_the_configured_order() {
    let config = parse(
        "homeassistant:
  auth_providers:
    - {type: example_fork, id: b, name: B, accounts: []}
    - {type: example_fork, id: a, name: A, accounts: []}
  auth_mfa_modules: []
",
    )
    .unwrap();
    let manager = auth_manager_from_config(&config, Arc::new(MemoryStorage::new()), options())
        .await
        .unwrap();
    let names: Vec<String> = manager
        .auth_providers()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    assert_eq!(names, ["B", "A"]);
}

#[cfg(all(
    feature = "provider-homeassistant",
    feature = "provider-insecure-example",
    feature = "mfa-totp",
    feature = "mfa-insecure-example"
))]
#[tokio::test]
async fn a_manager_from_the_ha_2026_fixture_serves_its_users() {
    let fixture = auth_testkit::TempConfig::from_fixture("ha-2026.2.3");
    let host = Host::from_config_dir_with(fixture.path(), options(), &loader())
        .await
        .unwrap();
    let manager = host.manager();
    let providers: Vec<(String, String)> = manager
        .auth_providers()
        .iter()
        .map(|p| (p.provider_type().to_owned(), p.name().to_owned()))
        .collect();
    assert_eq!(
        providers,
        [
            (
                "homeassistant".to_owned(),
                "Home Assistant Local".to_owned()
            ),
            (
                "insecure_example".to_owned(),
                "Unnamed auth provider".to_owned()
            )
        ]
    );
    let modules: Vec<String> = manager
        .mfa_modules()
        .iter()
        .map(|m| m.id().to_owned())
        .collect();
    assert_eq!(modules, ["totp", "insecure_example"]);
    assert_eq!(manager.owner().unwrap().name.as_deref(), Some("Owner"));

    // The owner's bcrypt hash from Home Assistant verifies.
    let done = login(manager, ("homeassistant", None), "owner", "owner-pass").await;
    let FlowResult::CreateEntry { data, .. } = &done else {
        panic!("expected create_entry, got {done:?}");
    };
    let credentials = manager.credentials_from_flow(data).unwrap();
    assert_eq!(
        manager.get_or_create_user(&credentials).await.unwrap().id,
        "0e7a85349f6a45ba8ef2b1356c4e3ee5"
    );
    // The insecure_example user from the YAML maps to the user HA created for it.
    let done = login(
        manager,
        ("insecure_example", None),
        "example-user",
        "example-pass",
    )
    .await;
    let FlowResult::CreateEntry { data, .. } = &done else {
        panic!("expected create_entry, got {done:?}");
    };
    let credentials = manager.credentials_from_flow(data).unwrap();
    assert_eq!(
        manager.get_or_create_user(&credentials).await.unwrap().id,
        "d5dc0346590c49a3a5288db1525920cc"
    );
    let refused = login(manager, ("insecure_example", None), "example-user", "wrong").await;
    assert!(is_invalid_auth(&refused), "{refused:?}");
}

#[cfg(feature = "provider-trusted-networks")]
#[tokio::test]
async fn plugins_get_the_http_trusted_proxies() {
    let config = parse(
        "homeassistant:
  auth_providers:
    - type: trusted_networks
      trusted_networks: [10.0.0.0/8]
  auth_mfa_modules: []
http:
  use_x_forwarded_for: true
  trusted_proxies: 10.0.0.5
",
    )
    .unwrap();
    let manager = auth_manager_from_config(&config, Arc::new(MemoryStorage::new()), options())
        .await
        .unwrap();
    let offered = |ip: &str| {
        manager
            .providers_for(&LoginContext {
                ip_address: Some(ip.parse().unwrap()),
                ..Default::default()
            })
            .len()
    };
    assert_eq!(offered("10.0.0.6"), 1);
    // A request from the proxy itself never counts as the trusted network.
    assert_eq!(offered("10.0.0.5"), 0);
}

/// Two totp instances would share `.storage/auth_module.totp` and overwrite each other's
/// enrolments (HA allows it); the start is refused with both ids named.
#[cfg(feature = "mfa-totp")]
#[tokio::test]
async fn two_modules_sharing_one_store_are_refused() {
    let config = parse(
        "homeassistant:
  auth_providers: []
  auth_mfa_modules:
    - type: totp
    - type: totp
      id: totp_backup
",
    )
    .unwrap();
    let err = auth_manager_from_config(&config, Arc::new(MemoryStorage::new()), options())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot start the auth manager: MFA modules totp and totp_backup would both keep their data in .storage/auth_module.totp and overwrite each other's enrolments: configure only one of them"
    );
}
