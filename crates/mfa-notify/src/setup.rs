//! The enrolment flow (websocket `auth/setup_mfa`): `init` chooses the service and target,
//! `setup` sends a code there (again on every display) and saves the choice once it is entered.

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{Field, Flow, FlowError, FlowResult, Schema};
use serde_json::{Map, Value, json};

use crate::{Inner, NotifySetting, PendingCode, code_schema};

/// The setup flow of one user.
pub(crate) struct SetupFlow {
    inner: Arc<Inner>,
    user_id: String,
    chosen: Option<NotifySetting>,
    pending: Option<PendingCode>,
}

impl SetupFlow {
    pub(crate) fn new(inner: Arc<Inner>, user_id: &str) -> Self {
        Self {
            inner,
            user_id: user_id.to_owned(),
            chosen: None,
            pending: None,
        }
    }

    async fn init(&mut self, input: Option<Map<String, Value>>) -> Result<FlowResult, FlowError> {
        let services = self.inner.available_services();
        if services.is_empty() {
            return Ok(FlowResult::abort("no_available_service"));
        }
        let Some(input) = input.filter(|i| !i.is_empty()) else {
            let options = services.into_iter().map(|s| (s, None)).collect();
            let schema = Schema::new(vec![
                Field::select("notify_service", options).required(),
                Field::string("target").optional(),
            ]);
            return Ok(FlowResult::form("init", Some(schema)));
        };
        let service = input
            .get("notify_service")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let target = input
            .get("target")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.chosen = Some(NotifySetting {
            notify_service: service,
            target,
        });
        self.pending = Some(PendingCode::new(&self.inner.rng));
        self.setup(None).await
    }

    async fn setup(&mut self, input: Option<Map<String, Value>>) -> Result<FlowResult, FlowError> {
        let (Some(chosen), Some(pending)) = (self.chosen.clone(), self.pending.clone()) else {
            return Err(FlowError::UnknownStep("setup".to_owned()));
        };
        let mut errors = Map::new();
        if let Some(input) = input.filter(|i| !i.is_empty()) {
            let code = input.get("code").and_then(Value::as_str).unwrap_or("");
            if pending.matches(code) {
                self.inner
                    .enrol(&self.user_id, chosen)
                    .await
                    .map_err(|e| FlowError::Handler(e.to_string()))?;
                return Ok(FlowResult::create_entry(json!({})));
            }
            errors.insert("base".to_owned(), json!("invalid_code"));
        }
        if !self.inner.has_service(&chosen.notify_service) {
            return Ok(FlowResult::abort("notify_service_not_exist"));
        }
        self.inner
            .send(&chosen.notify_service, chosen.target.as_deref(), &pending)
            .await
            .map_err(|e| FlowError::Handler(e.to_string()))?;
        let mut placeholders = Map::new();
        placeholders.insert("notify_service".to_owned(), json!(chosen.notify_service));
        Ok(FlowResult::form("setup", Some(code_schema()))
            .with_errors(errors)
            .with_placeholders(placeholders))
    }
}

#[async_trait]
impl Flow for SetupFlow {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        match step_id {
            "init" => self.init(input).await,
            "setup" => self.setup(input).await,
            other => Err(FlowError::UnknownStep(other.to_owned())),
        }
    }
}
