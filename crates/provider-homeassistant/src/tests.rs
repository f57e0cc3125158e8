//! Unit tests: config, username rules, hashing and re-hashing against a real file store.

use std::sync::Arc;

use auth_core::registry::PasswordPolicy;
use auth_core::{AuthProvider, FileStorage, PasswordAdmin, PluginSpec, ProviderError, Storage};
use auth_testkit::TempConfig;
use serde_json::{Value, json};

use super::*;

fn provider(config: &TempConfig, rehash: bool) -> HomeAssistantProvider {
    HomeAssistantProvider::new(
        Config {
            rehash_legacy_hashes: rehash,
        },
        None,
        config.storage(),
        PasswordPolicy::fast_for_tests(),
    )
}

fn write_users(config: &TempConfig, users: Value) {
    let doc = json!({
        "version": 1, "minor_version": 1, "key": STORAGE_KEY, "data": {"users": users}
    });
    std::fs::write(
        config.storage_dir().join(STORAGE_KEY),
        serde_json::to_vec_pretty(&doc).expect("json"),
    )
    .expect("write");
}

fn stored_hashes(config: &TempConfig) -> Vec<String> {
    let text = std::fs::read_to_string(config.storage_dir().join(STORAGE_KEY)).expect("read");
    let doc: Value = serde_json::from_str(&text).expect("json");
    doc["data"]["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["password"].as_str().expect("password").to_owned())
        .collect()
}

#[test]
fn config_defaults_and_ignores_unknown_keys() {
    let spec = PluginSpec {
        id: None,
        name: None,
        config: Value::Null,
    };
    assert_eq!(spec.parse_config::<Config>(), Ok(Config::default()));
    assert!(Config::default().rehash_legacy_hashes);
    let spec = PluginSpec {
        id: None,
        name: None,
        config: json!({"rehash_legacy_hashes": false, "something_else": 1}),
    };
    assert_eq!(
        spec.parse_config::<Config>(),
        Ok(Config {
            rehash_legacy_hashes: false
        })
    );
    let spec = PluginSpec {
        id: None,
        name: None,
        config: json!({"rehash_legacy_hashes": "yes"}),
    };
    assert!(spec.parse_config::<Config>().is_err());
}

#[test]
fn schema_names_the_key() {
    let schema = serde_json::to_value(schemars::schema_for!(Config)).expect("json");
    assert_eq!(
        schema["properties"]["rehash_legacy_hashes"]["type"],
        json!("boolean")
    );
    assert_eq!(
        schema["properties"]["rehash_legacy_hashes"]["default"],
        json!(true)
    );
}

#[tokio::test]
async fn new_usernames_must_be_normalised_and_unique() {
    let config = TempConfig::empty();
    let p = provider(&config, true);
    p.add_auth("jörg-strasse-σασ", "pw").await.expect("added");
    match p.add_auth(" Jörg-Straße-ΣΑΣ ", "pw").await {
        Err(ProviderError::InvalidUsername {
            key,
            message,
            placeholders,
        }) => {
            assert_eq!(key, "username_not_normalized");
            assert_eq!(
                message,
                "Username \" Jörg-Straße-ΣΑΣ \" is not normalized. Please make sure the username is lowercase and does not contain any whitespace"
            );
            assert_eq!(
                Value::Object(placeholders),
                json!({"new_username": " Jörg-Straße-ΣΑΣ "})
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    match p.add_auth("jörg-strasse-σασ", "pw").await {
        Err(ProviderError::InvalidUsername {
            key,
            message,
            placeholders,
        }) => {
            assert_eq!(key, "username_already_exists");
            assert_eq!(message, "Username \"jörg-strasse-σασ\" already exists");
            assert_eq!(
                Value::Object(placeholders),
                json!({"username": "jörg-strasse-σασ"})
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        p.usernames().await.expect("usernames"),
        vec!["jörg-strasse-σασ"]
    );
}

#[tokio::test]
async fn existing_non_normalised_names_still_collide_and_log_in() {
    let config = TempConfig::empty();
    let hash = auth_crypto::hash_password("pw", &PasswordPolicy::fast_for_tests()).expect("hash");
    write_users(
        &config,
        json!([{"username": " Legacy User ", "password": hash}]),
    );
    let p = provider(&config, true);
    assert!(p.validate_login("legacy user", "pw").await.expect("ok"));
    assert!(p.validate_login("LEGACY USER\t", "pw").await.expect("ok"));
    assert!(matches!(
        p.add_auth("legacy user", "x").await,
        Err(ProviderError::InvalidUsername {
            key: "username_already_exists",
            ..
        })
    ));
    p.remove_auth("LEGACY user").await.expect("removed");
    assert!(p.usernames().await.expect("usernames").is_empty());
}

#[tokio::test]
async fn remove_and_change_password_of_unknown_user() {
    let config = TempConfig::empty();
    let p = provider(&config, true);
    for result in [
        p.remove_auth("nobody").await,
        p.change_password("nobody", "x").await,
    ] {
        match result {
            Err(ProviderError::InvalidUser(message)) => assert_eq!(message, "User not found"),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Nothing was written for a refused operation.
    assert!(!config.storage_dir().join(STORAGE_KEY).exists());
}

#[tokio::test]
async fn bcrypt_is_rehashed_to_argon2id_after_login() {
    let config = TempConfig::empty();
    let bcrypt = auth_crypto::ha_bcrypt_hash("secret", 4).expect("bcrypt");
    write_users(&config, json!([{"username": "alice", "password": bcrypt}]));
    let p = provider(&config, true);
    assert!(!p.validate_login("alice", "wrong").await.expect("checked"));
    assert_eq!(stored_hashes(&config), vec![bcrypt.clone()]);
    assert!(p.validate_login("Alice", "secret").await.expect("checked"));
    let after = stored_hashes(&config);
    assert!(
        after[0].starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
        "{after:?}"
    );
    assert!(p.validate_login("alice", "secret").await.expect("checked"));
    // A fresh provider reading the file agrees.
    let again = provider(&config, true);
    assert!(
        again
            .validate_login("alice", "secret")
            .await
            .expect("checked")
    );
}

#[tokio::test]
async fn rehash_can_be_disabled() {
    let config = TempConfig::empty();
    let bcrypt = auth_crypto::ha_bcrypt_hash("secret", 4).expect("bcrypt");
    write_users(&config, json!([{"username": "alice", "password": bcrypt}]));
    let p = provider(&config, false);
    assert!(p.validate_login("alice", "secret").await.expect("checked"));
    assert_eq!(stored_hashes(&config), vec![bcrypt]);
}

#[tokio::test]
async fn passwords_over_72_bytes_keep_their_bcrypt_hash() {
    let config = TempConfig::empty();
    let long = format!("{}é-tail", "x".repeat(71));
    let bcrypt = auth_crypto::ha_bcrypt_hash(&long, 4).expect("bcrypt");
    write_users(&config, json!([{"username": "long", "password": bcrypt}]));
    let p = provider(&config, true);
    assert!(p.validate_login("long", &long).await.expect("checked"));
    let other_tail = format!("{}è-other", "x".repeat(71));
    assert!(
        p.validate_login("long", &other_tail)
            .await
            .expect("checked")
    );
    assert_eq!(stored_hashes(&config), vec![bcrypt]);
}

#[tokio::test]
async fn new_passwords_are_argon2id_and_not_truncated() {
    let config = TempConfig::empty();
    let p = provider(&config, true);
    let long = format!("{}-tail-one", "y".repeat(72));
    p.add_auth("bob", &long).await.expect("added");
    let hashes = stored_hashes(&config);
    assert!(hashes[0].starts_with("$argon2id$"));
    assert!(p.validate_login("bob", &long).await.expect("checked"));
    let other = format!("{}-tail-two", "y".repeat(72));
    assert!(!p.validate_login("bob", &other).await.expect("checked"));
    p.change_password("BOB", "short").await.expect("changed");
    assert!(p.validate_login("bob", "short").await.expect("checked"));
    assert!(!p.validate_login("bob", &long).await.expect("checked"));
}

#[tokio::test]
async fn unknown_users_and_empty_store_fail_cleanly() {
    let config = TempConfig::empty();
    let p = provider(&config, true);
    assert!(!p.validate_login("nobody", "x").await.expect("checked"));
    let bcrypt = auth_crypto::ha_bcrypt_hash("pw", 4).expect("bcrypt");
    write_users(&config, json!([{"username": "a", "password": bcrypt}]));
    let p = provider(&config, true);
    assert!(!p.validate_login("nobody", "x").await.expect("checked"));
}

#[tokio::test]
async fn malformed_hash_is_an_error_not_a_wrong_password() {
    let config = TempConfig::empty();
    write_users(&config, json!([{"username": "a", "password": "plaintext"}]));
    let p = provider(&config, true);
    let err = p.validate_login("a", "plaintext").await.expect_err("error");
    assert!(err.to_string().contains(STORAGE_KEY), "{err}");
}

#[tokio::test]
async fn later_duplicates_win_like_home_assistant() {
    let config = TempConfig::empty();
    let policy = PasswordPolicy::fast_for_tests();
    let first = auth_crypto::hash_password("one", &policy).expect("hash");
    let second = auth_crypto::hash_password("two", &policy).expect("hash");
    write_users(
        &config,
        json!([
            {"username": "Dup", "password": first},
            {"username": "dup", "password": second},
        ]),
    );
    let p = provider(&config, true);
    assert!(!p.validate_login("dup", "one").await.expect("checked"));
    assert!(p.validate_login("dup", "two").await.expect("checked"));
}

#[tokio::test]
async fn unsupported_version_is_refused() {
    let config = TempConfig::empty();
    std::fs::write(
        config.storage_dir().join(STORAGE_KEY),
        r#"{"version": 2, "minor_version": 1, "key": "auth_provider.homeassistant", "data": {"users": []}}"#,
    )
    .expect("write");
    let p = provider(&config, true);
    let err = p.initialize().await.expect_err("refused");
    assert!(
        err.to_string().contains("unsupported storage version 2"),
        "{err}"
    );
}

#[tokio::test]
async fn missing_file_is_empty_and_first_save_is_private() {
    let config = TempConfig::empty();
    let storage: Arc<dyn Storage> = Arc::new(FileStorage::new(config.storage_dir()));
    let p = HomeAssistantProvider::new(
        Config::default(),
        Some("Local".into()),
        storage,
        PasswordPolicy::fast_for_tests(),
    );
    assert_eq!(p.name(), "Local");
    p.initialize().await.expect("empty");
    p.add_auth("a", "b").await.expect("added");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(config.storage_dir().join(STORAGE_KEY))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
