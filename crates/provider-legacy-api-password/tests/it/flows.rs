//! Complete login flows through the manager.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use auth_core::flow_engine::{FlowError, FlowResponse};
use auth_core::models::GROUP_ID_ADMIN;
use auth_core::registry::{PasswordPolicy, find_provider};
use auth_core::{AuthManager, AuthProvider, LoginContext, PluginContext, PluginSpec};
use auth_testkit::{FIXTURE_2026_NOW, TempConfig, clock_at, fixture_json, seeded_rng};
use serde_json::{Map, Value, json};

const PASSWORD: &str = "legacy-api-password";

fn build(config: &TempConfig, spec: PluginSpec) -> Arc<dyn AuthProvider> {
    let ctx = PluginContext {
        storage: config.storage(),
        clock: clock_at(FIXTURE_2026_NOW),
        rng: seeded_rng(3),
        password_policy: PasswordPolicy::fast_for_tests(),
        trusted_proxies: Vec::new(),
    };
    (find_provider("legacy_api_password")
        .expect("registered")
        .build)(spec, &ctx)
    .expect("builds")
}

async fn manager(config: &TempConfig) -> AuthManager {
    let provider = build(
        config,
        PluginSpec {
            id: None,
            name: None,
            config: json!({"api_password": PASSWORD}),
        },
    );
    AuthManager::builder(config.storage())
        .clock(clock_at(FIXTURE_2026_NOW))
        .rng(seeded_rng(9))
        .provider(provider)
        .build()
        .await
        .expect("manager")
}

fn context() -> LoginContext {
    LoginContext {
        ip_address: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        redirect_uri: Some("http://127.0.0.1:29123/".to_owned()),
        ..LoginContext::default()
    }
}

fn password(value: Value) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("password".to_owned(), value);
    map
}

fn form(flow_id: &str, errors: Value) -> Value {
    json!({
        "type": "form",
        "flow_id": flow_id,
        "handler": ["legacy_api_password", null],
        "data_schema": [{"type": "string", "name": "password", "required": true}],
        "errors": errors,
        "description_placeholders": null,
        "last_step": null,
        "preview": null,
        "step_id": "init"
    })
}

async fn start(manager: &AuthManager) -> FlowResponse {
    manager
        .start_login_flow("legacy_api_password", None, context())
        .await
        .expect("starts")
        .expect("known provider")
}

async fn login(manager: &AuthManager, value: &str) -> FlowResponse {
    let first = start(manager).await;
    manager
        .login_flows()
        .configure(&first.flow_id, Some(password(json!(value))))
        .await
        .expect("step runs")
}

#[tokio::test]
async fn first_form_then_wrong_then_right_password() {
    let config = TempConfig::empty();
    let manager = manager(&config).await;
    let first = start(&manager).await;
    assert_eq!(
        serde_json::to_string(&first).expect("json"),
        serde_json::to_string(&form(&first.flow_id, json!({}))).expect("json")
    );
    let wrong = manager
        .login_flows()
        .configure(&first.flow_id, Some(password(json!("nope"))))
        .await
        .expect("step runs");
    assert_eq!(
        wrong.to_json(),
        form(&first.flow_id, json!({"base": "invalid_auth"}))
    );
    let done = manager
        .login_flows()
        .configure(&first.flow_id, Some(password(json!(PASSWORD))))
        .await
        .expect("step runs");
    let entry = done.to_json();
    assert_eq!(entry["type"], "create_entry");
    let credentials = manager
        .credentials_from_flow(&entry["data"])
        .expect("credentials");
    assert!(credentials.is_new);
    assert_eq!(credentials.auth_provider_type, "legacy_api_password");
    assert_eq!(credentials.auth_provider_id, None);
    assert!(credentials.data.is_empty());
}

#[tokio::test]
async fn shared_user_is_an_admin_but_never_the_owner() {
    let config = TempConfig::empty();
    let manager = manager(&config).await;
    let done = login(&manager, PASSWORD).await;
    let credentials = manager
        .credentials_from_flow(&done.to_json()["data"])
        .expect("credentials");
    let user = manager
        .get_or_create_user(&credentials)
        .await
        .expect("user");
    assert_eq!(user.name.as_deref(), Some("Legacy API password user"));
    assert_eq!(user.group_ids, vec![GROUP_ID_ADMIN.to_owned()]);
    assert!(user.is_active);
    assert!(!user.is_owner, "even as the very first user");
    assert!(user.is_admin());

    // Every later login shares that credential and user.
    for _ in 0..2 {
        let again = manager
            .credentials_from_flow(&login(&manager, PASSWORD).await.to_json()["data"])
            .expect("credentials");
        assert_eq!(again.id, credentials.id);
        assert!(!again.is_new);
        let same = manager.get_or_create_user(&again).await.expect("user");
        assert_eq!(same.id, user.id);
    }
    assert_eq!(manager.users().len(), 1);
}

#[tokio::test]
async fn fixture_legacy_user_is_reused() {
    // HA 2024.3.3 made this user and credential (`data: {}`) at its legacy login.
    let fixture = fixture_json("ha-2024.3.3/fixture.json");
    let legacy = &fixture["users"]["legacy"];
    assert_eq!(legacy["password"], PASSWORD);
    let config = TempConfig::from_fixture("ha-2024.3.3");
    let manager = manager(&config).await;

    let wrong = login(&manager, "legacy-api-password ").await;
    assert_eq!(
        wrong.to_json(),
        form(&wrong.flow_id, json!({"base": "invalid_auth"}))
    );

    let done = login(&manager, PASSWORD).await;
    let credentials = manager
        .credentials_from_flow(&done.to_json()["data"])
        .expect("credentials");
    assert_eq!(credentials.id, legacy["credentials"][0]["id"]);
    assert!(!credentials.is_new);
    assert!(credentials.data.is_empty());
    let user = manager
        .get_or_create_user(&credentials)
        .await
        .expect("user");
    assert_eq!(user.id, legacy["id"]);
    assert_eq!(user.name.as_deref(), Some("Legacy API password user"));
    assert_eq!(user.group_ids, vec![GROUP_ID_ADMIN.to_owned()]);
}

#[tokio::test]
async fn input_must_be_one_string_password() {
    let config = TempConfig::empty();
    let manager = manager(&config).await;
    let first = start(&manager).await;
    let flows = manager.login_flows();
    assert!(matches!(
        flows
            .configure(&first.flow_id, Some(password(json!(1234))))
            .await,
        Err(FlowError::InvalidInput(_))
    ));
    let mut extra = password(json!(PASSWORD));
    extra.insert("username".to_owned(), json!("admin"));
    assert!(matches!(
        flows.configure(&first.flow_id, Some(extra)).await,
        Err(FlowError::InvalidInput(_))
    ));
    assert!(matches!(
        flows.configure(&first.flow_id, Some(Map::new())).await,
        Err(FlowError::InvalidInput(_))
    ));
}

#[test]
fn registration_and_config() {
    let registration = find_provider("legacy_api_password").expect("registered");
    assert_eq!(registration.default_name, "Legacy API Password");
    assert!(!registration.testing_only);
    let schema = serde_json::to_value((registration.config_schema)()).expect("json");
    assert_eq!(schema["required"], json!(["api_password"]));
    assert_eq!(schema["additionalProperties"], json!(false));

    let config = TempConfig::empty();
    let named = build(
        &config,
        PluginSpec {
            id: Some("old".to_owned()),
            name: Some("API password".to_owned()),
            config: json!({"api_password": "x"}),
        },
    );
    assert_eq!(named.provider_id(), Some("old"));
    assert_eq!(named.name(), "API password");
    assert_eq!(named.provider_type(), "legacy_api_password");

    let ctx = PluginContext {
        storage: config.storage(),
        clock: clock_at(FIXTURE_2026_NOW),
        rng: seeded_rng(3),
        password_policy: PasswordPolicy::fast_for_tests(),
        trusted_proxies: Vec::new(),
    };
    for bad in [json!({}), json!({"api_password": "x", "extra": true})] {
        let spec = PluginSpec {
            id: None,
            name: None,
            config: bad,
        };
        assert!((registration.build)(spec, &ctx).is_err());
    }
}

#[tokio::test]
async fn credential_of_another_provider_id_is_not_shared() {
    // Two legacy providers (different ids) keep separate shared credentials.
    let config = TempConfig::empty();
    let spec = |id: Option<&str>| PluginSpec {
        id: id.map(str::to_owned),
        name: None,
        config: json!({"api_password": PASSWORD}),
    };
    let manager = AuthManager::builder(config.storage())
        .clock(clock_at(FIXTURE_2026_NOW))
        .rng(seeded_rng(11))
        .provider(build(&config, spec(None)))
        .provider(build(&config, spec(Some("b"))))
        .build()
        .await
        .expect("manager");
    let first = login(&manager, PASSWORD).await;
    let a = manager
        .credentials_from_flow(&first.to_json()["data"])
        .expect("credentials");
    manager.get_or_create_user(&a).await.expect("user");
    let start_b = manager
        .start_login_flow("legacy_api_password", Some("b"), context())
        .await
        .expect("starts")
        .expect("known");
    let done_b = manager
        .login_flows()
        .configure(&start_b.flow_id, Some(password(json!(PASSWORD))))
        .await
        .expect("runs");
    let b = manager
        .credentials_from_flow(&done_b.to_json()["data"])
        .expect("credentials");
    assert!(b.is_new);
    assert_eq!(b.auth_provider_id.as_deref(), Some("b"));
}
