//! `.storage/auth_module.totp`: Home Assistant's format, lazy loading, saving rules, bad files.

use std::sync::Arc;

use auth_core::registry::PasswordPolicy;
use auth_core::{MfaModule, PluginContext};
use auth_testkit::{TempConfig, clock_at, seeded_rng};
use mfa_totp::TotpModule;
use serde_json::{Map, json};

use crate::support::{Env, Options};

const T: i64 = 1_795_303_500;
/// The user enrolled in the HA 2026.2.3 fixture.
const HA_USER: &str = "277733626f56457a92a02e9ed1381f1a";

fn module_over(config: &TempConfig) -> TotpModule {
    let ctx = PluginContext {
        storage: config.storage(),
        clock: clock_at(T),
        rng: seeded_rng(1),
        password_policy: PasswordPolicy::fast_for_tests(),
        trusted_proxies: Vec::new(),
    };
    TotpModule::new("totp", "Authenticator app", &ctx)
}

fn file(config: &TempConfig) -> std::path::PathBuf {
    config.storage_dir().join("auth_module.totp")
}

#[tokio::test]
async fn home_assistants_file_round_trips_byte_for_byte() {
    let config = TempConfig::from_fixture("ha-2026.2.3");
    let original = std::fs::read(file(&config)).unwrap();
    let module = module_over(&config);
    assert!(module.is_user_setup(HA_USER).await.unwrap());
    let secret = module.setup_user("someone", &Map::new()).await.unwrap();
    let with_two = std::fs::read_to_string(file(&config)).unwrap();
    assert_eq!(
        with_two,
        format!(
            "{{\n  \"version\": 1,\n  \"minor_version\": 1,\n  \"key\": \"auth_module.totp\",\n  \"data\": {{\n    \"users\": {{\n      \"{HA_USER}\": \"5O4XYKQRNBRTVGTLJOBAVBXMBTRGIUGF\",\n      \"someone\": {secret}\n    }}\n  }}\n}}"
        ),
        "HA's layout: 2-space indent, no trailing newline, new users appended"
    );
    module.depose_user("someone").await.unwrap();
    assert_eq!(std::fs::read(file(&config)).unwrap(), original);
}

#[tokio::test]
async fn loading_is_lazy() {
    let config = TempConfig::empty();
    let module = module_over(&config);
    // Written after the module was made, before its first use: it is seen.
    std::fs::copy(
        auth_testkit::fixtures_dir().join("ha-2026.2.3/.storage/auth_module.totp"),
        file(&config),
    )
    .unwrap();
    let module = Arc::new(module);
    let checks: Vec<_> = (0..8)
        .map(|_| {
            let module = module.clone();
            tokio::spawn(async move { module.is_user_setup(HA_USER).await.unwrap() })
        })
        .collect();
    for check in checks {
        assert!(check.await.unwrap());
    }
}

#[tokio::test]
async fn deposing_saves_only_when_something_was_removed() {
    let config = TempConfig::empty();
    let module = module_over(&config);
    module.depose_user("nobody").await.unwrap();
    assert!(
        !file(&config).exists(),
        "nothing to remove: nothing written"
    );

    let config = TempConfig::from_fixture("ha-2026.2.3");
    let module = module_over(&config);
    module.depose_user("nobody").await.unwrap();
    let backup = config.storage_dir().join("auth_module.totp.bak");
    assert!(!backup.exists(), "no save happened");
    module.depose_user(HA_USER).await.unwrap();
    assert!(backup.exists(), "saved");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(file(&config)).unwrap()).unwrap();
    assert_eq!(saved["data"], json!({"users": {}}));
    assert!(!module.is_user_setup(HA_USER).await.unwrap());
    // A fresh module agrees.
    assert!(!module_over(&config).is_user_setup(HA_USER).await.unwrap());
}

#[tokio::test]
async fn a_file_that_cannot_be_parsed_is_an_error_naming_it_and_is_kept() {
    let bad_files: [&[u8]; 5] = [
        b"{not json",
        b"[]",
        br#"{"version": 1, "minor_version": 1, "key": "auth_module.totp", "data": {"users": []}}"#,
        br#"{"version": 1, "minor_version": 1, "key": "auth_module.totp", "data": {"users": {"u": 5}}}"#,
        br#"{"version": 2, "minor_version": 1, "key": "auth_module.totp", "data": {"users": {}}}"#,
    ];
    for bad in bad_files {
        let config = TempConfig::empty();
        std::fs::write(file(&config), bad).unwrap();
        let path = file(&config).display().to_string();
        // The manager refuses to start rather than treat the file as empty: users enrolled in
        // totp would otherwise log in without their second factor.
        let error = match Env::try_open(config, T, Options::default()).await {
            Ok(_) => panic!("a manager over an unreadable {path} must not start"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains(&path), "{error} should name {path}");
    }
}

#[tokio::test]
async fn a_stored_secret_that_is_not_base32_fails_loudly_for_that_user_only() {
    let config = TempConfig::empty();
    std::fs::write(
        file(&config),
        br#"{"version": 1, "minor_version": 1, "key": "auth_module.totp", "data": {"users": {"bad": "not base32!", "good": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"}}}"#,
    )
    .unwrap();
    let module = module_over(&config);
    let input = json!({"code": mfa_totp::code_at("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", T).unwrap()});
    let input = input.as_object().unwrap();
    let err = module.validate("bad", input).await.unwrap_err().to_string();
    assert!(
        err.contains("auth_module.totp") && err.contains("'bad'"),
        "{err}"
    );
    assert!(module.validate("good", input).await.unwrap());
}
