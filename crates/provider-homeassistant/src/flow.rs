//! The login flow: one `init` form asking for `username` and `password`.

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{FlowResult, Schema};
use auth_core::{ProviderError, ProviderLoginFlow};
use serde_json::{Map, Value, json};

use crate::provider::Inner;

/// The `init` form's fields: `username` and `password`, both required strings.
pub fn login_schema() -> Schema {
    auth_core::provider::username_password_schema()
}

/// One login flow's provider steps.
pub(crate) struct LoginSteps {
    provider: Arc<Inner>,
}

impl LoginSteps {
    pub(crate) fn new(provider: Arc<Inner>) -> Self {
        Self { provider }
    }
}

#[async_trait]
impl ProviderLoginFlow for LoginSteps {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, ProviderError> {
        if step_id != "init" {
            return Err(ProviderError::Failed(format!("unknown step {step_id}")));
        }
        let mut errors = Map::new();
        if let Some(input) = input {
            let username = input.get("username").and_then(Value::as_str);
            let password = input.get("password").and_then(Value::as_str);
            let valid = match (username, password) {
                (Some(username), Some(password)) => {
                    self.provider.validate_login(username, password).await?
                }
                _ => false,
            };
            if valid {
                // The password is dropped; the username goes on as typed.
                return Ok(FlowResult::create_entry(json!({ "username": username })));
            }
            errors.insert("base".to_owned(), Value::String("invalid_auth".to_owned()));
        }
        Ok(FlowResult::form("init", Some(login_schema())).with_errors(errors))
    }
}
