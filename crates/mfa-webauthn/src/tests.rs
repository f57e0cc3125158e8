//! Unit tests: the relying-party config, the file format, the bounded challenge table, and the
//! module's answers to input that never reaches the signature check. (Signatures, counters and
//! removed keys are checked with a real authenticator: auth-server's Chromium tests.)

use std::sync::Arc;

use auth_core::flow_engine::FlowResult;
use auth_core::{
    MemoryStorage, MfaModule, PluginContext, PluginSpec, Storage, StorageError, StoredDocument,
};
use serde_json::{Map, Value, json};

use crate::pending::{self, Pending};
use crate::{Config, WebauthnModule, relying_party, store};

fn config(origins: &[&str]) -> Config {
    Config {
        rp_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        rp_id: None,
        rp_name: None,
        allow_any_port: false,
    }
}

fn context(storage: Arc<dyn Storage>) -> PluginContext {
    PluginContext {
        storage,
        clock: auth_testkit::clock_at(1_800_000_000),
        rng: auth_testkit::seeded_rng(7),
        password_policy: Default::default(),
        trusted_proxies: Vec::new(),
    }
}

fn module(storage: Arc<dyn Storage>) -> WebauthnModule {
    let spec = PluginSpec {
        id: None,
        name: None,
        config: json!({}),
    };
    WebauthnModule::new(
        &spec,
        &config(&["http://localhost:8123"]),
        &context(storage),
    )
    .unwrap()
}

#[test]
fn rp_id_defaults_to_the_first_origin_and_bad_configs_name_the_key() {
    assert!(relying_party(&config(&["https://home.example.org"])).is_ok());
    let mut sub = config(&[
        "https://a.home.example.org",
        "https://home.example.org:8443",
    ]);
    sub.rp_id = Some("home.example.org".to_owned());
    assert!(relying_party(&sub).is_ok());

    let error = relying_party(&config(&[])).unwrap_err().0;
    assert!(
        error.contains("rp_origins") && error.contains("at least one"),
        "{error}"
    );
    let error = relying_party(&config(&["http://127.0.0.1:8123"]))
        .unwrap_err()
        .0;
    assert!(
        error.contains("rp_origins") && error.contains("IP address"),
        "{error}"
    );
    let error = relying_party(&config(&["not a url"])).unwrap_err().0;
    assert!(error.contains("'not a url' is not a URL"), "{error}");
    let error = relying_party(&config(&[
        "https://home.example.org",
        "https://evil.example.net",
    ]))
    .unwrap_err()
    .0;
    assert!(
        error.contains("evil.example.net") && error.contains("rp_id"),
        "{error}"
    );
    let mut other = config(&["https://home.example.org"]);
    other.rp_id = Some("example.net".to_owned());
    assert!(relying_party(&other).unwrap_err().0.contains("example.net"));
}

#[test]
fn the_config_refuses_unknown_keys() {
    let parsed: Result<Config, _> =
        serde_json::from_value(json!({"rp_origins": ["https://a.example"], "rp_idd": "x"}));
    assert!(parsed.unwrap_err().to_string().contains("rp_idd"));
    let parsed: Result<Config, _> = serde_json::from_value(json!({}));
    assert!(parsed.unwrap_err().to_string().contains("rp_origins"));
}

#[test]
fn a_file_without_users_is_an_error_naming_it_never_empty() {
    let storage = MemoryStorage::new();
    for (data, needle) in [
        (json!({}), "'data.users' is missing"),
        (json!({"users": []}), "'data.users' is not a JSON object"),
        (json!({"users": {"u1": {"credentials": []}}}), "user 'u1'"),
        (json!([]), "'data' is not a JSON object"),
    ] {
        let doc = StoredDocument::new(store::STORAGE_KEY, 1, 1, data);
        let error = store::parse(&storage, &doc).unwrap_err();
        assert!(matches!(error, StorageError::Corrupt { .. }), "{error}");
        let text = error.to_string();
        assert!(
            text.contains("auth_module.webauthn") && text.contains(needle),
            "{text}"
        );
    }
    let empty = StoredDocument::new(store::STORAGE_KEY, 1, 1, json!({"users": {}}));
    assert!(store::parse(&storage, &empty).unwrap().is_empty());
}

#[tokio::test]
async fn an_unreadable_file_fails_the_module_and_is_left_alone() {
    let storage = Arc::new(MemoryStorage::new());
    let doc = StoredDocument::new(store::STORAGE_KEY, 1, 1, json!({"users": 3}));
    storage
        .save(&doc, auth_core::SaveOptions { private: true })
        .await
        .unwrap();
    let module = module(storage.clone());
    let error = module.initialize().await.unwrap_err().to_string();
    assert!(error.contains("auth_module.webauthn"), "{error}");
    assert!(module.is_user_setup("u1").await.is_err());
    let kept = storage.load(store::STORAGE_KEY).await.unwrap().unwrap();
    assert_eq!(kept.data, json!({"users": 3}));
}

#[test]
fn pending_challenges_are_bounded_per_user_and_in_total_and_expire() {
    let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let mut table = Pending::default();
    for i in 0..pending::MAX_PER_USER + 3 {
        table.insert(format!("c{i}"), "u1", now, i);
    }
    assert_eq!(table.len(), pending::MAX_PER_USER);
    // The oldest went first; the newest is there, once.
    assert_eq!(table.take("c0", "u1", now), None);
    let newest = format!("c{}", pending::MAX_PER_USER + 2);
    assert_eq!(
        table.take(&newest, "u1", now),
        Some(pending::MAX_PER_USER + 2)
    );
    assert_eq!(table.take(&newest, "u1", now), None);
    // Another user's challenge is not theirs to take, and stays for its owner.
    table.insert("mine".to_owned(), "u2", now, 99);
    assert_eq!(table.take("mine", "u1", now), None);
    assert_eq!(table.take("mine", "u2", now), Some(99));
    // Expired challenges are refused.
    table.insert("old".to_owned(), "u3", now, 1);
    assert_eq!(table.take("old", "u3", now + pending::LIFETIME), None);
    // The total is bounded whatever the number of users.
    let mut table = Pending::default();
    for i in 0..pending::MAX_TOTAL + 10 {
        table.insert(format!("c{i}"), &format!("user{i}"), now, ());
    }
    assert_eq!(table.len(), pending::MAX_TOTAL);
}

#[tokio::test]
async fn users_without_keys_get_no_challenge_and_garbage_is_refused() {
    let module = module(Arc::new(MemoryStorage::new()));
    assert!(!module.is_user_setup("u1").await.unwrap());
    assert!(module.login_placeholders("u1").await.unwrap().is_empty());
    assert_eq!(module.list_credentials("u1").await.unwrap(), Some(vec![]));
    assert!(!module.remove_credential("u1", "nope").await.unwrap());
    for assertion in [
        "",
        "{}",
        "not json",
        r#"{"id":"x","rawId":"eA","type":"public-key","response":{"authenticatorData":"","clientDataJSON":"","signature":""}}"#,
    ] {
        let mut input = Map::new();
        input.insert("assertion".to_owned(), Value::String(assertion.to_owned()));
        assert!(!module.validate("u1", &input).await.unwrap(), "{assertion}");
    }
    let error = module
        .setup_user("u1", &Map::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("browser"), "{error}");
}

#[tokio::test]
async fn the_setup_form_carries_creation_options_and_refuses_bad_answers() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let module = module(storage.clone());
    let mut flow = module.setup_flow("u1", Some("Ann")).await.unwrap();
    let options = |result: &FlowResult| -> Value {
        let FlowResult::Form {
            description_placeholders: Some(placeholders),
            ..
        } = result
        else {
            panic!("not a form: {result:?}");
        };
        serde_json::from_str(placeholders["webauthn_create"].as_str().unwrap()).unwrap()
    };
    let first = flow.step("init", None).await.unwrap();
    let created = options(&first);
    assert_eq!(created["publicKey"]["rp"]["id"], "localhost");
    assert_eq!(created["publicKey"]["rp"]["name"], "Home Assistant");
    assert_eq!(created["publicKey"]["user"]["name"], "Ann");
    assert_eq!(
        created["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let errors = |result: &FlowResult| match result {
        FlowResult::Form { errors, .. } => errors.clone().unwrap_or_default(),
        other => panic!("not a form: {other:?}"),
    };
    // An empty name, then a credential that is not one: form errors, fresh challenges.
    let mut input = Map::new();
    input.insert("name".to_owned(), json!("  "));
    input.insert("credential".to_owned(), json!("{}"));
    let second = flow.step("init", Some(input.clone())).await.unwrap();
    assert_eq!(errors(&second)["name"], "invalid_name");
    assert_ne!(
        options(&second)["publicKey"]["challenge"],
        created["publicKey"]["challenge"]
    );
    input.insert("name".to_owned(), json!("YubiKey"));
    let third = flow.step("init", Some(input)).await.unwrap();
    assert_eq!(errors(&third)["base"], "invalid_key");
    // Nothing was stored.
    assert!(!module.is_user_setup("u1").await.unwrap());
    assert!(storage.load(store::STORAGE_KEY).await.unwrap().is_none());
}

#[test]
fn the_provider_must_be_passwordless_and_names_a_missing_module() {
    use crate::provider::{ProviderConfig, WebauthnProvider};
    let spec = PluginSpec {
        id: None,
        name: None,
        config: json!({}),
    };
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let off = ProviderConfig {
        passwordless: false,
        module: None,
    };
    let error = WebauthnProvider::new(&spec, &off, &context(storage.clone())).unwrap_err();
    assert!(error.0.contains("passwordless must be true"), "{}", error.0);
    let on = ProviderConfig {
        passwordless: true,
        module: Some("keys".to_owned()),
    };
    let provider = WebauthnProvider::new(&spec, &on, &context(storage.clone())).unwrap();
    let error = provider.module().err().expect("no module yet").to_string();
    assert!(error.contains("'keys'"), "{error}");
    // A module built later on the same storage is found; one on other storage is not.
    let _other = module(Arc::new(MemoryStorage::new()));
    let spec_keys = PluginSpec {
        id: Some("keys".to_owned()),
        name: None,
        config: json!({}),
    };
    let config = config(&["http://localhost:8123"]);
    let elsewhere = WebauthnModule::new(
        &spec_keys,
        &config,
        &context(Arc::new(MemoryStorage::new())),
    )
    .unwrap();
    assert!(provider.module().is_err());
    let here = WebauthnModule::new(&spec_keys, &config, &context(storage)).unwrap();
    assert!(provider.module().is_ok());
    drop((here, elsewhere));
    assert!(
        provider.module().is_err(),
        "a dropped module is not kept alive"
    );
}
