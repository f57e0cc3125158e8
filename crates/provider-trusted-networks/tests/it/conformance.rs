//! The shared provider conformance suite.

use auth_testkit::conformance::{ProviderCase, check_provider, manager_from_registry, object};
use serde_json::json;

#[tokio::test]
async fn passes_the_provider_conformance_suite() {
    let config = auth_testkit::TempConfig::empty();
    let manager = manager_from_registry(
        &config,
        &[(
            "trusted_networks",
            json!({"trusted_networks": ["192.168.1.0/24"]}),
        )],
        &[],
    )
    .await;
    let user = manager
        .create_user(
            Some("Kitchen tablet".into()),
            vec!["system-users".into()],
            false,
        )
        .await
        .unwrap();
    let case = ProviderCase {
        provider_type: "trusted_networks".into(),
        provider_id: None,
        context: auth_core::LoginContext {
            ip_address: Some("192.168.1.20".parse().unwrap()),
            ..Default::default()
        },
        good_input: object(json!({"user": user.id})),
        // A select of users has no refusable value: anything else is malformed input.
        bad_input: None,
        creates_users: false,
    };
    check_provider(&manager, &case).await;
}
