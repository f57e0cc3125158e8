//! The provider never asks for MFA, even for users enrolled in a module.

use std::sync::Arc;

use auth_core::AuthManager;
use auth_testkit::fakes::PinModule;
use serde_json::{Map, json};

use crate::common::{env, from};

/// A module where every user is enrolled and the PIN is `1234`.
fn fixed_pin() -> Arc<PinModule> {
    Arc::new(PinModule::new("pin", "PIN", "1234").everyone_enrolled())
}

#[tokio::test]
async fn enrolled_users_sign_in_without_a_second_factor() {
    let env = env(json!({"trusted_networks": "192.168.0.0/24"})).await;
    let provider = env
        .manager
        .auth_provider("trusted_networks", None)
        .expect("provider");
    let manager = AuthManager::builder(env.config.storage())
        .provider(provider)
        .mfa_module(fixed_pin())
        .build()
        .await
        .expect("manager");
    assert_eq!(manager.enabled_mfa(&env.users.alice).await.len(), 1);
    let first = manager
        .start_login_flow("trusted_networks", None, from("192.168.0.5"))
        .await
        .expect("starts")
        .expect("offered");
    let mut input = Map::new();
    input.insert("user".into(), json!(env.users.alice));
    let done = manager
        .login_flows()
        .configure(&first.flow_id, Some(input))
        .await
        .expect("step");
    let json = done.to_json();
    assert_eq!(json["type"], "create_entry", "{json}");
    assert_eq!(
        json["data"]["credentials"]["data"],
        json!({"user_id": env.users.alice})
    );
}
