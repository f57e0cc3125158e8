//! The shared MFA module conformance suite.

use auth_testkit::conformance::{MfaCase, check_mfa_module, manager_from_registry, object};
use serde_json::json;

#[tokio::test]
async fn passes_the_mfa_conformance_suite() {
    let config = auth_testkit::TempConfig::empty();
    let manager =
        manager_from_registry(&config, &[], &[("insecure_example", json!({"data": []}))]).await;
    let user = manager
        .create_user(Some("Alice".into()), vec![], false)
        .await
        .unwrap();
    let case = MfaCase {
        module_id: "insecure_example".into(),
        user_id: user.id,
    };
    check_mfa_module(
        &manager,
        &case,
        |_form| object(json!({"pin": "2468"})),
        || object(json!({"pin": "2468"})),
        object(json!({"pin": "1357"})),
    )
    .await;
}
