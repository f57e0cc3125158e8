//! Complete login flows through the manager.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use auth_core::flow_engine::{FlowError, FlowResponse};
use auth_core::models::GROUP_ID_ADMIN;
use auth_core::registry::{PasswordPolicy, find_provider};
use auth_core::{AuthManager, AuthProvider, LoginContext, PluginContext, PluginSpec};
use auth_testkit::{FIXTURE_2026_NOW, TempConfig, clock_at, fixture_json, seeded_rng};
use serde_json::{Map, Value, json};

fn ctx(config: &TempConfig) -> PluginContext {
    PluginContext {
        storage: config.storage(),
        clock: clock_at(FIXTURE_2026_NOW),
        rng: seeded_rng(5),
        password_policy: PasswordPolicy::fast_for_tests(),
        trusted_proxies: Vec::new(),
    }
}

/// The provider as configured in the fixtures' `configuration.yaml`.
fn fixture_config() -> Value {
    json!({"users": [
        {"username": "example-user", "password": "example-pass", "name": "Example User"}
    ]})
}

fn build(config: &TempConfig, id: Option<&str>, keys: Value) -> Arc<dyn AuthProvider> {
    let spec = PluginSpec {
        id: id.map(str::to_owned),
        name: None,
        config: keys,
    };
    (find_provider("insecure_example").expect("registered").build)(spec, &ctx(config))
        .expect("builds")
}

async fn manager(config: &TempConfig, keys: Value) -> AuthManager {
    AuthManager::builder(config.storage())
        .clock(clock_at(FIXTURE_2026_NOW))
        .rng(seeded_rng(13))
        .provider(build(config, None, keys))
        .build()
        .await
        .expect("manager")
}

fn context() -> LoginContext {
    LoginContext {
        ip_address: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        redirect_uri: Some("http://127.0.0.1:29124/".to_owned()),
        ..LoginContext::default()
    }
}

fn input(username: &str, password: &str) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("username".to_owned(), json!(username));
    map.insert("password".to_owned(), json!(password));
    map
}

fn form(flow_id: &str, errors: Value) -> Value {
    json!({
        "type": "form",
        "flow_id": flow_id,
        "handler": ["insecure_example", null],
        "data_schema": [
            {"type": "string", "name": "username", "required": true},
            {"type": "string", "name": "password", "required": true}
        ],
        "errors": errors,
        "description_placeholders": null,
        "last_step": null,
        "preview": null,
        "step_id": "init"
    })
}

async fn login(manager: &AuthManager, username: &str, password: &str) -> FlowResponse {
    let first = manager
        .start_login_flow("insecure_example", None, context())
        .await
        .expect("starts")
        .expect("known");
    manager
        .login_flows()
        .configure(&first.flow_id, Some(input(username, password)))
        .await
        .expect("step runs")
}

#[tokio::test]
async fn first_form_has_null_errors_then_invalid_auth() {
    let config = TempConfig::empty();
    let manager = manager(&config, fixture_config()).await;
    let first = manager
        .start_login_flow("insecure_example", None, context())
        .await
        .expect("starts")
        .expect("known");
    assert_eq!(
        serde_json::to_string(&first).expect("json"),
        serde_json::to_string(&form(&first.flow_id, Value::Null)).expect("json")
    );
    for (username, password) in [
        ("example-user", "wrong"),
        ("Example-User", "example-pass"),
        ("nobody", "example-pass"),
    ] {
        let response = manager
            .login_flows()
            .configure(&first.flow_id, Some(input(username, password)))
            .await
            .expect("step runs");
        assert_eq!(
            response.to_json(),
            form(&first.flow_id, json!({"base": "invalid_auth"}))
        );
    }
}

#[tokio::test]
async fn fixture_example_user_logs_in_to_its_existing_user() {
    let fixture = fixture_json("ha-2026.2.3/fixture.json");
    let example = &fixture["users"]["example"];
    assert_eq!(example["password"], "example-pass");
    let config = TempConfig::from_fixture("ha-2026.2.3");
    let manager = manager(&config, fixture_config()).await;
    let done = login(&manager, "example-user", "example-pass").await;
    let json = done.to_json();
    assert_eq!(json["type"], "create_entry");
    let credentials = manager
        .credentials_from_flow(&json["data"])
        .expect("credentials");
    assert_eq!(credentials.id, example["credentials"][0]["id"]);
    assert!(!credentials.is_new);
    let user = manager
        .get_or_create_user(&credentials)
        .await
        .expect("user");
    assert_eq!(user.id, example["id"]);
    assert_eq!(user.name.as_deref(), Some("Example User"));
}

#[tokio::test]
async fn new_user_gets_the_configured_name() {
    let config = TempConfig::empty();
    let manager = manager(
        &config,
        json!({"users": [
            {"username": "named", "password": "a", "name": "Named Person"},
            {"username": "anonymous", "password": "b"}
        ]}),
    )
    .await;
    for (username, password, name) in [
        ("named", "a", Some("Named Person")),
        ("anonymous", "b", None),
    ] {
        let done = login(&manager, username, password).await;
        let credentials = manager
            .credentials_from_flow(&done.to_json()["data"])
            .expect("credentials");
        assert!(credentials.is_new);
        assert_eq!(
            Value::Object(credentials.data.clone()),
            json!({"username": username})
        );
        let user = manager
            .get_or_create_user(&credentials)
            .await
            .expect("user");
        assert_eq!(user.name.as_deref(), name);
        assert!(user.is_active);
        assert!(!user.is_owner);
        assert_eq!(user.group_ids, vec![GROUP_ID_ADMIN.to_owned()]);

        let again = manager
            .credentials_from_flow(&login(&manager, username, password).await.to_json()["data"])
            .expect("credentials");
        assert_eq!(again.id, credentials.id);
        assert!(!again.is_new);
    }
}

#[tokio::test]
async fn malformed_input_is_rejected() {
    let config = TempConfig::empty();
    let manager = manager(&config, fixture_config()).await;
    let first = manager
        .start_login_flow("insecure_example", None, context())
        .await
        .expect("starts")
        .expect("known");
    let mut extra = input("example-user", "example-pass");
    extra.insert("pin".to_owned(), json!("1234"));
    assert!(matches!(
        manager
            .login_flows()
            .configure(&first.flow_id, Some(extra))
            .await,
        Err(FlowError::InvalidInput(_))
    ));
}

#[test]
fn registered_as_testing_only() {
    let registration = find_provider("insecure_example").expect("registered");
    assert!(registration.testing_only);
    assert_eq!(registration.default_name, "Unnamed auth provider");
    let schema = serde_json::to_value((registration.config_schema)()).expect("json");
    assert_eq!(schema["required"], json!(["users"]));
    assert_eq!(schema["additionalProperties"], json!(false));

    let config = TempConfig::empty();
    let with_id = build(&config, Some("second"), json!({"users": []}));
    assert_eq!(with_id.provider_id(), Some("second"));
    let spec = PluginSpec {
        id: None,
        name: None,
        config: json!({"users": [{"username": "a", "password": "b", "extra": 1}]}),
    };
    assert!((registration.build)(spec, &ctx(&config)).is_err());
}
