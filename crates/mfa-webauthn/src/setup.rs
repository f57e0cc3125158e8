//! The enrolment flow (websocket `auth/setup_mfa`): creation options out, the browser's new
//! credential and the key's name back in. Each form carries fresh options.

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{Field, Flow, FlowError, FlowResult, Schema};
use serde_json::{Map, Value, json};

use crate::{Inner, PLACEHOLDER_CREATE, Refused, Registration};

/// Setup field: the key's name.
pub const FIELD_NAME: &str = "name";
/// Setup field: the new credential (JSON text of the browser's `PublicKeyCredential`).
pub const FIELD_CREDENTIAL: &str = "credential";

/// The setup flow of one user (single step `init`).
pub(crate) struct SetupFlow {
    inner: Arc<Inner>,
    user_id: String,
    user_name: Option<String>,
    pending: Option<Registration>,
}

impl SetupFlow {
    pub(crate) fn new(inner: Arc<Inner>, user_id: &str, user_name: Option<&str>) -> Self {
        Self {
            inner,
            user_id: user_id.to_owned(),
            user_name: user_name.map(str::to_owned),
            pending: None,
        }
    }

    /// A form with new creation options and `error` (key, value) if any.
    async fn form(&mut self, error: Option<(&str, &str)>) -> Result<FlowResult, FlowError> {
        let registration = self
            .inner
            .start_registration(&self.user_id, self.user_name.as_deref())
            .await
            .map_err(|e| FlowError::Handler(e.to_string()))?;
        let mut placeholders = Map::new();
        placeholders.insert(
            PLACEHOLDER_CREATE.to_owned(),
            Value::String(registration.options.clone()),
        );
        self.pending = Some(registration);
        let mut errors = Map::new();
        if let Some((key, value)) = error {
            errors.insert(key.to_owned(), json!(value));
        }
        Ok(FlowResult::form("init", Some(setup_schema()))
            .with_errors(errors)
            .with_placeholders(placeholders))
    }
}

/// The setup form's fields.
fn setup_schema() -> Schema {
    Schema::new(vec![
        Field::string(FIELD_NAME).required(),
        Field::string(FIELD_CREDENTIAL).required(),
    ])
}

#[async_trait]
impl Flow for SetupFlow {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        if step_id != "init" {
            return Err(FlowError::UnknownStep(step_id.to_owned()));
        }
        let input = input.filter(|i| !i.is_empty());
        let (Some(input), Some(pending)) = (input, self.pending.take()) else {
            return self.form(None).await;
        };
        let text = |key: &str| input.get(key).and_then(Value::as_str).unwrap_or("");
        let outcome = self
            .inner
            .finish_registration(
                &self.user_id,
                &pending,
                text(FIELD_NAME),
                text(FIELD_CREDENTIAL),
            )
            .await
            .map_err(|e| FlowError::Handler(e.to_string()))?;
        let error = match outcome {
            Ok(()) => {
                return Ok(FlowResult::create_entry(
                    json!({ "result": text(FIELD_NAME).trim() }),
                ));
            }
            Err(Refused::Name) => (FIELD_NAME, "invalid_name"),
            Err(Refused::Credential) => ("base", "invalid_key"),
            Err(Refused::Duplicate) => ("base", "key_registered"),
            Err(Refused::TooMany) => ("base", "too_many_keys"),
        };
        self.form(Some(error)).await
    }
}
