//! The shared provider conformance suite.

use auth_testkit::conformance::{ProviderCase, check_provider, manager_from_registry, object};
use serde_json::json;

#[tokio::test]
async fn passes_the_provider_conformance_suite() {
    let config = auth_testkit::TempConfig::empty();
    let manager = manager_from_registry(
        &config,
        &[("legacy_api_password", json!({"api_password": "letmein"}))],
        &[],
    )
    .await;
    let case = ProviderCase {
        provider_type: "legacy_api_password".into(),
        provider_id: None,
        context: auth_core::LoginContext {
            ip_address: Some("127.0.0.1".parse().unwrap()),
            ..Default::default()
        },
        good_input: object(json!({"password": "letmein"})),
        bad_input: Some(object(json!({"password": "letmeout"}))),
        creates_users: true,
    };
    check_provider(&manager, &case).await;
}
