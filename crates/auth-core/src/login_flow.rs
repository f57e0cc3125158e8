//! The login flow: the provider's own steps, then (for users with MFA) `select_mfa_module` and
//! `mfa`, with HA's 5-minute session and retry limits. Finishing yields credentials.

use std::sync::Arc;

use async_trait::async_trait;
use flow_engine::{Field, Flow, FlowError, FlowResult, Schema};
use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::manager::AuthManager;
use crate::models::{Credentials, MFA_SESSION_EXPIRATION};
use crate::provider::{AuthProvider, ProviderLoginFlow};

/// Step id of the module picker.
pub const STEP_SELECT_MFA_MODULE: &str = "select_mfa_module";
/// Step id of the code entry.
pub const STEP_MFA: &str = "mfa";
/// Field of the module picker.
pub const FIELD_MFA_MODULE: &str = "multi_factor_auth_module";

#[derive(Debug)]
enum Stage {
    Provider,
    SelectModule {
        credentials: Credentials,
        user_id: String,
        modules: IndexMap<String, String>,
    },
    Mfa {
        credentials: Credentials,
        user_id: String,
        module_id: String,
    },
}

/// One login flow (see the module docs).
pub struct LoginFlow {
    manager: AuthManager,
    provider: Arc<dyn AuthProvider>,
    steps: Box<dyn ProviderLoginFlow>,
    created_at: OffsetDateTime,
    stage: Stage,
    invalid_mfa_times: u32,
}

impl LoginFlow {
    /// A flow for `provider` started at `created_at`.
    pub fn new(
        manager: AuthManager,
        provider: Arc<dyn AuthProvider>,
        steps: Box<dyn ProviderLoginFlow>,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            manager,
            provider,
            steps,
            created_at,
            stage: Stage::Provider,
            invalid_mfa_times: 0,
        }
    }

    async fn after_provider(&mut self, data: Value) -> Result<FlowResult, FlowError> {
        let data = match data {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let access = self.manager.clone();
        let credentials = self
            .provider
            .get_or_create_credentials(&data, &access)
            .await
            .map_err(|e| FlowError::Handler(e.to_string()))?;
        let user = match self.provider.supports_mfa() && !credentials.is_new {
            true => self.manager.user_by_credentials(&credentials.id),
            false => None,
        };
        if let Some(user) = user {
            // Fail closed: if a module cannot tell whether the user is enrolled (its store is
            // unreadable), refuse the login rather than skip the second factor.
            let modules = match self.manager.try_enabled_mfa(&user.id).await {
                Ok(modules) => modules,
                Err(error) => {
                    tracing::error!(%error, "cannot read MFA enrolment; login refused");
                    return Ok(FlowResult::abort("unknown_error"));
                }
            };
            if modules.len() == 1 {
                let module_id = modules.keys().next().cloned().unwrap_or_default();
                self.stage = Stage::Mfa {
                    credentials,
                    user_id: user.id,
                    module_id,
                };
                return self.show_mfa_form(None).await;
            }
            if !modules.is_empty() {
                self.stage = Stage::SelectModule {
                    credentials,
                    user_id: user.id,
                    modules,
                };
                return Ok(self.select_form(None));
            }
        }
        Ok(finish(&credentials))
    }

    fn select_form(&self, error: Option<&str>) -> FlowResult {
        let Stage::SelectModule { modules, .. } = &self.stage else {
            return FlowResult::abort("unknown_error");
        };
        let options = modules
            .iter()
            .map(|(id, name)| (id.clone(), Some(name.clone())))
            .collect();
        let schema = Schema::new(vec![Field::select(FIELD_MFA_MODULE, options)]);
        let mut errors = Map::new();
        if let Some(error) = error {
            errors.insert("base".to_owned(), Value::String(error.to_owned()));
        }
        form(STEP_SELECT_MFA_MODULE, schema, errors, None)
    }

    async fn show_mfa_form(&mut self, error: Option<&str>) -> Result<FlowResult, FlowError> {
        let Stage::Mfa {
            user_id, module_id, ..
        } = &self.stage
        else {
            return Ok(FlowResult::abort("unknown_error"));
        };
        let Some(module) = self.manager.mfa_module(module_id) else {
            return Ok(FlowResult::abort("unknown_error"));
        };
        if error.is_none() && module.begin_login(user_id).await.is_err() {
            return Ok(FlowResult::abort("unknown_error"));
        }
        let mut errors = Map::new();
        if let Some(error) = error {
            errors.insert("base".to_owned(), Value::String(error.to_owned()));
        }
        let mut placeholders = Map::new();
        placeholders.insert(
            "mfa_module_name".to_owned(),
            Value::String(module.name().to_owned()),
        );
        placeholders.insert(
            "mfa_module_id".to_owned(),
            Value::String(module.id().to_owned()),
        );
        Ok(form(
            STEP_MFA,
            module.input_schema(),
            errors,
            Some(placeholders),
        ))
    }

    async fn mfa_step(
        &mut self,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        let Some(input) = input else {
            return self.show_mfa_form(None).await;
        };
        if self.manager.clock().now() > self.created_at + MFA_SESSION_EXPIRATION {
            return Ok(FlowResult::abort("login_expired"));
        }
        let Stage::Mfa {
            credentials,
            user_id,
            module_id,
        } = &self.stage
        else {
            return Ok(FlowResult::abort("unknown_error"));
        };
        let Some(module) = self.manager.mfa_module(module_id) else {
            return Ok(FlowResult::abort("unknown_error"));
        };
        let ok = module
            .validate(user_id, &input)
            .await
            .map_err(|e| FlowError::Handler(e.to_string()))?;
        if ok {
            return Ok(finish(credentials));
        }
        self.invalid_mfa_times += 1;
        let max = module.max_retry();
        if max > 0 && self.invalid_mfa_times >= max {
            return Ok(FlowResult::abort("too_many_retry"));
        }
        self.show_mfa_form(Some("invalid_code")).await
    }
}

fn form(
    step_id: &str,
    schema: Schema,
    errors: Map<String, Value>,
    placeholders: Option<Map<String, Value>>,
) -> FlowResult {
    FlowResult::Form {
        step_id: step_id.to_owned(),
        data_schema: Some(schema),
        errors: Some(errors),
        description_placeholders: placeholders,
        last_step: None,
        preview: None,
    }
}

fn finish(credentials: &Credentials) -> FlowResult {
    FlowResult::CreateEntry {
        title: None,
        data: credentials_to_flow_data(credentials),
        description: None,
        description_placeholders: None,
        context: json!({}),
    }
}

/// Credentials as carried in a login flow's `create_entry` data.
pub fn credentials_to_flow_data(credentials: &Credentials) -> Value {
    json!({
        "credentials": {
            "id": credentials.id,
            "auth_provider_type": credentials.auth_provider_type,
            "auth_provider_id": credentials.auth_provider_id,
            "data": credentials.data,
            "is_new": credentials.is_new,
        }
    })
}

/// The credentials in a finished login flow's `create_entry` data.
pub fn credentials_from_flow_data(data: &Value) -> Option<Credentials> {
    let c = data.get("credentials")?;
    Some(Credentials {
        id: c.get("id")?.as_str()?.to_owned(),
        auth_provider_type: c.get("auth_provider_type")?.as_str()?.to_owned(),
        auth_provider_id: c
            .get("auth_provider_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        data: c.get("data")?.as_object()?.clone(),
        is_new: c.get("is_new")?.as_bool()?,
    })
}

#[async_trait]
impl Flow for LoginFlow {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        match (step_id, &self.stage) {
            (STEP_SELECT_MFA_MODULE, Stage::SelectModule { .. }) => {
                let Some(input) = input else {
                    return Ok(self.select_form(None));
                };
                let chosen = input
                    .get(FIELD_MFA_MODULE)
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let Stage::SelectModule {
                    credentials,
                    user_id,
                    modules,
                } = std::mem::replace(&mut self.stage, Stage::Provider)
                else {
                    return Ok(FlowResult::abort("unknown_error"));
                };
                match chosen
                    .filter(|id| modules.contains_key(id) && self.manager.mfa_module(id).is_some())
                {
                    Some(module_id) => {
                        self.stage = Stage::Mfa {
                            credentials,
                            user_id,
                            module_id,
                        };
                        self.show_mfa_form(None).await
                    }
                    None => {
                        self.stage = Stage::SelectModule {
                            credentials,
                            user_id,
                            modules,
                        };
                        Ok(self.select_form(Some("invalid_auth_module")))
                    }
                }
            }
            (STEP_MFA, Stage::Mfa { .. }) => self.mfa_step(input).await,
            (_, Stage::Provider) => {
                let result = self
                    .steps
                    .step(step_id, input)
                    .await
                    .map_err(|e| FlowError::Handler(e.to_string()))?;
                match result {
                    FlowResult::CreateEntry { data, .. } => self.after_provider(data).await,
                    other => Ok(other),
                }
            }
            (other, _) => Err(FlowError::UnknownStep(other.to_owned())),
        }
    }
}
