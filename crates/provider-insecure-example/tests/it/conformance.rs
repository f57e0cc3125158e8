//! The shared provider conformance suite.

use auth_testkit::conformance::{ProviderCase, check_provider, manager_from_registry, object};
use serde_json::json;

#[tokio::test]
async fn passes_the_provider_conformance_suite() {
    let config = auth_testkit::TempConfig::empty();
    let users = json!({"users": [{"username": "demo", "password": "demo-pass", "name": "Demo"}]});
    let manager = manager_from_registry(&config, &[("insecure_example", users)], &[]).await;
    let case = ProviderCase {
        provider_type: "insecure_example".into(),
        provider_id: None,
        context: auth_core::LoginContext {
            ip_address: Some("127.0.0.1".parse().unwrap()),
            ..Default::default()
        },
        good_input: object(json!({"username": "demo", "password": "demo-pass"})),
        bad_input: Some(object(json!({"username": "demo", "password": "wrong"}))),
        creates_users: true,
    };
    check_provider(&manager, &case).await;
}
