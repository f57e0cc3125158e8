//! The shared provider conformance suite (auth-testkit), as every provider in the workspace runs
//! it: a fork keeps the contract auth-core relies on.

use auth_testkit::conformance::{ProviderCase, check_provider, manager_from_registry, object};
use serde_json::json;

#[tokio::test]
async fn passes_the_provider_conformance_suite() {
    let config = auth_testkit::TempConfig::empty();
    let accounts =
        json!({"accounts": [{"login": "kiosk", "secret": "s3cret", "display_name": "Kiosk"}]});
    let manager = manager_from_registry(&config, &[("example_fork", accounts)], &[]).await;
    let case = ProviderCase {
        provider_type: "example_fork".into(),
        provider_id: None,
        context: auth_core::LoginContext::default(),
        good_input: object(json!({"username": "kiosk", "password": "s3cret"})),
        bad_input: Some(object(json!({"username": "kiosk", "password": "wrong"}))),
        creates_users: true,
    };
    check_provider(&manager, &case).await;
}
