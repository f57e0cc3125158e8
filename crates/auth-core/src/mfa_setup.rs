//! Changing an MFA enrolment: a user already set up in a module must prove the current second
//! factor before the module's setup flow may replace it (a new TOTP secret, issue 14 item 8) or
//! add to it (one more passkey). Otherwise anyone holding a session (a stolen access token, a
//! browser left open) could swap the TOTP secret for their own, or add their own key.
//!
//! The wrapped flow first shows the form `current_code` with the module's login fields and its
//! login placeholders (a passkey module's fresh WebAuthn challenge); a wrong
//! answer shows it again with `errors.base = invalid_code`; after the module's `max_retry`
//! wrong answers the flow aborts with `too_many_retry`. A right answer continues with the
//! module's own setup flow from its `init` step.

use std::sync::Arc;

use async_trait::async_trait;
use flow_engine::{Flow, FlowError, FlowResult};
use serde_json::{Map, Value};

use crate::mfa::MfaModule;

/// Step id of the form asking for the current code.
pub const CURRENT_CODE_STEP: &str = "current_code";

/// A setup flow behind a check of the current enrolment.
pub(crate) struct ReauthFirst {
    module: Arc<dyn MfaModule>,
    user_id: String,
    inner: Box<dyn Flow>,
    passed: bool,
    wrong: u32,
}

impl ReauthFirst {
    /// Wraps `inner`, the module's setup flow for `user_id`.
    pub(crate) fn new(module: Arc<dyn MfaModule>, user_id: String, inner: Box<dyn Flow>) -> Self {
        Self {
            module,
            user_id,
            inner,
            passed: false,
            wrong: 0,
        }
    }

    /// The `current_code` form (a free function of the module and user, so that the flow itself
    /// is not held across the await).
    async fn form(
        module: Arc<dyn MfaModule>,
        user_id: String,
        errors: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        let mut placeholders = module
            .login_placeholders(&user_id)
            .await
            .map_err(|e| FlowError::Handler(e.to_string()))?;
        placeholders.insert(
            "mfa_module_name".to_owned(),
            Value::String(module.name().to_owned()),
        );
        Ok(FlowResult::Form {
            step_id: CURRENT_CODE_STEP.to_owned(),
            data_schema: Some(module.input_schema()),
            errors: Some(errors.unwrap_or_default()),
            description_placeholders: Some(placeholders),
            last_step: Some(false),
            preview: None,
        })
    }
}

#[async_trait]
impl Flow for ReauthFirst {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        if self.passed {
            return self.inner.step(step_id, input).await;
        }
        let Some(input) = input else {
            return Self::form(self.module.clone(), self.user_id.clone(), None).await;
        };
        if step_id != CURRENT_CODE_STEP {
            return Err(FlowError::UnknownStep(step_id.to_owned()));
        }
        let valid = self
            .module
            .validate(&self.user_id, &input)
            .await
            .map_err(|e| FlowError::Handler(e.to_string()))?;
        if valid {
            self.passed = true;
            return self.inner.step("init", None).await;
        }
        self.wrong += 1;
        if self.wrong >= self.module.max_retry() {
            return Ok(FlowResult::Abort {
                reason: "too_many_retry".to_owned(),
                description_placeholders: None,
            });
        }
        let errors = crate::provider::base_error("invalid_code");
        Self::form(self.module.clone(), self.user_id.clone(), Some(errors)).await
    }
}
