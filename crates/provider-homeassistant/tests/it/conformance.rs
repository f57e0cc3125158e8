//! The shared provider conformance suite.

use auth_core::PasswordAdmin;
use auth_testkit::conformance::{ProviderCase, check_provider, manager_from_registry, object};
use serde_json::json;

#[tokio::test]
async fn passes_the_provider_conformance_suite() {
    let config = auth_testkit::TempConfig::empty();
    let manager = manager_from_registry(&config, &[("homeassistant", json!({}))], &[]).await;
    let provider = manager.auth_provider("homeassistant", None).unwrap();
    let ha = (provider.as_ref() as &dyn std::any::Any)
        .downcast_ref::<provider_homeassistant::HomeAssistantProvider>()
        .unwrap();
    ha.add_auth("alice", "wonderland").await.unwrap();
    let case = ProviderCase {
        provider_type: "homeassistant".into(),
        provider_id: None,
        context: auth_core::LoginContext {
            ip_address: Some("127.0.0.1".parse().unwrap()),
            ..Default::default()
        },
        good_input: object(json!({"username": "Alice", "password": "wonderland"})),
        bad_input: Some(object(json!({"username": "alice", "password": "nope"}))),
        creates_users: true,
    };
    check_provider(&manager, &case).await;
}
