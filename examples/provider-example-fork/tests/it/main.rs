//! The provider registered through the registry, built from a spec, signing a user in.

// Integration tests are a separate crate: name the plugin so that its registration is linked.
use provider_example_fork as _;

mod conformance;

use std::sync::Arc;

use auth_core::flow_engine::FlowResult;
use auth_core::registry::{PasswordPolicy, PluginContext, PluginSpec, find_provider};
use auth_core::{AuthManager, LoginContext, MemoryStorage};
use serde_json::{Map, Value, json};

fn context(storage: Arc<MemoryStorage>) -> PluginContext {
    PluginContext {
        storage,
        clock: auth_testkit::clock_at(auth_testkit::FIXTURE_2026_NOW),
        rng: auth_testkit::seeded_rng(3),
        password_policy: PasswordPolicy::fast_for_tests(),
        trusted_proxies: Vec::new(),
    }
}

fn spec(config: Value) -> PluginSpec {
    PluginSpec {
        id: Some("demo".into()),
        name: None,
        config,
    }
}

#[test]
fn registers_once_as_testing_only() {
    let registrations: Vec<_> = auth_core::registry::provider_registrations()
        .into_iter()
        .filter(|r| r.kind == "example_fork")
        .collect();
    assert_eq!(registrations.len(), 1);
    assert!(registrations[0].testing_only);
    assert_eq!(registrations[0].default_name, "Example Fork");
    let schema = serde_json::to_value((registrations[0].config_schema)()).unwrap();
    assert_eq!(schema["required"], json!(["accounts"]));
    assert_eq!(schema["additionalProperties"], json!(false));
}

#[test]
fn unknown_keys_are_refused() {
    let registration = find_provider("example_fork").expect("linked");
    let storage = Arc::new(MemoryStorage::new());
    let Err(err) = (registration.build)(spec(json!({"account": []})), &context(storage)) else {
        panic!("an unknown key must be refused");
    };
    assert!(err.0.starts_with("unknown field `account`"), "{err}");
}

#[tokio::test]
async fn signs_in_a_configured_account() {
    let registration = find_provider("example_fork").expect("linked");
    let storage = Arc::new(MemoryStorage::new());
    let provider = (registration.build)(
        spec(
            json!({"accounts": [{"login": "kiosk", "secret": "s3cret", "display_name": "Kiosk"}]}),
        ),
        &context(storage.clone()),
    )
    .unwrap();
    assert_eq!(provider.name(), "Example Fork");
    let manager = AuthManager::builder(storage)
        .clock(auth_testkit::clock_at(auth_testkit::FIXTURE_2026_NOW))
        .rng(auth_testkit::seeded_rng(4))
        .provider(provider)
        .build()
        .await
        .unwrap();

    let mut results = Vec::new();
    for password in ["wrong", "s3cret"] {
        let flow = manager
            .start_login_flow("example_fork", Some("demo"), LoginContext::default())
            .await
            .unwrap()
            .expect("provider known");
        let mut input = Map::new();
        input.insert("username".into(), json!("kiosk"));
        input.insert("password".into(), json!(password));
        let step = manager
            .login_flows()
            .configure(&flow.flow_id, Some(input))
            .await
            .unwrap();
        results.push(step.result);
    }
    match &results[0] {
        FlowResult::Form { errors, .. } => {
            assert_eq!(
                errors.as_ref().and_then(|e| e.get("base")),
                Some(&json!("invalid_auth"))
            );
        }
        other => panic!("expected a form, got {other:?}"),
    }
    let FlowResult::CreateEntry { data, .. } = &results[1] else {
        panic!("expected create_entry, got {:?}", results[1]);
    };
    let credentials = manager.credentials_from_flow(data).expect("credentials");
    let user = manager.get_or_create_user(&credentials).await.unwrap();
    assert_eq!(user.name.as_deref(), Some("Kiosk"));
}
