//! The provider is MFA-capable: an enrolled user gets the `mfa` step after the program accepted.

use std::sync::Arc;

use auth_core::AuthManager;
use auth_testkit::fakes::PinModule;
use serde_json::{Map, json};

use crate::common::{ALICE_ONLY, Env, input};

/// A module where every user is enrolled and the PIN is `1234`.
fn fixed_pin() -> Arc<PinModule> {
    Arc::new(PinModule::new("pin", "PIN", "1234").everyone_enrolled())
}

#[tokio::test]
async fn existing_users_are_asked_for_their_second_factor() {
    let env = Env::with_script(ALICE_ONLY, json!({})).await;
    // First sign-in creates the user (new credentials never get MFA).
    let credentials = env.assert_finished(&env.login("alice", "secret").await, "alice", true);
    env.manager
        .get_or_create_user(&credentials)
        .await
        .expect("user");

    let manager = AuthManager::builder(env.config.storage())
        .provider(env.provider.clone())
        .mfa_module(fixed_pin())
        .build()
        .await
        .expect("manager");
    let first = manager
        .start_login_flow("command_line", None, crate::common::context())
        .await
        .expect("starts")
        .expect("known");
    let flows = manager.login_flows();
    let mfa = flows
        .configure(&first.flow_id, Some(input("alice", "secret")))
        .await
        .expect("step");
    let json = mfa.to_json();
    assert_eq!(json["step_id"], "mfa", "{json}");
    assert_eq!(json["errors"], json!({}));
    let mut pin = Map::new();
    pin.insert("pin".into(), json!("1234"));
    let done = flows
        .configure(&first.flow_id, Some(pin))
        .await
        .expect("step");
    let json = done.to_json();
    assert_eq!(json["type"], "create_entry", "{json}");
    assert_eq!(json["data"]["credentials"]["id"], json!(credentials.id));
}
