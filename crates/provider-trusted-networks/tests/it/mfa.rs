//! The provider never asks for MFA, even for users enrolled in a module.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{Field, Flow, Schema};
use auth_core::{AuthManager, MfaError, MfaModule};
use serde_json::{Map, Value, json};

use crate::common::{env, from};

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
async fn enrolled_users_sign_in_without_a_second_factor() {
    let env = env(json!({"trusted_networks": "192.168.0.0/24"})).await;
    let provider = env
        .manager
        .auth_provider("trusted_networks", None)
        .expect("provider");
    let manager = AuthManager::builder(env.config.storage())
        .provider(provider)
        .mfa_module(Arc::new(FixedPin))
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
