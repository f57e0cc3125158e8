//! The provider is MFA-capable: an enrolled user gets the `mfa` step after the program accepted.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{Field, Flow, Schema};
use auth_core::{AuthManager, MfaError, MfaModule};
use serde_json::{Map, Value, json};

use crate::common::{ALICE_ONLY, Env, input};

/// A module where every user is enrolled and the PIN is `1234`.
struct FixedPin;

#[async_trait]
impl MfaModule for FixedPin {
    fn id(&self) -> &str {
        "pin"
    }
    fn module_type(&self) -> &str {
        "pin"
    }
    fn name(&self) -> &str {
        "PIN"
    }
    fn input_schema(&self) -> Schema {
        Schema::new(vec![Field::string("pin").required()])
    }
    async fn setup_flow(&self, _: &str, _: Option<&str>) -> Result<Box<dyn Flow>, MfaError> {
        Err(MfaError::Failed("not in this test".into()))
    }
    async fn setup_user(&self, _: &str, _: &Map<String, Value>) -> Result<Value, MfaError> {
        Ok(Value::Null)
    }
    async fn depose_user(&self, _: &str) -> Result<(), MfaError> {
        Ok(())
    }
    async fn is_user_setup(&self, _: &str) -> Result<bool, MfaError> {
        Ok(true)
    }
    async fn validate(&self, _: &str, input: &Map<String, Value>) -> Result<bool, MfaError> {
        Ok(input.get("pin") == Some(&json!("1234")))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
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
        .mfa_module(Arc::new(FixedPin))
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
