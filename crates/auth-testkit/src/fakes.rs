//! Small stand-ins for plugins, for tests of code that needs *a* provider or *an* MFA module but
//! must not depend on a plugin crate (plugins never depend on each other).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use auth_core::flow_engine::{Field, Flow, FlowResult, Schema};
use auth_core::provider::{ProviderLoginFlow, base_error, username_password_schema};
use auth_core::{
    AuthAccess, AuthProvider, Credentials, LoginContext, MfaError, MfaModule, PluginIdentity,
    ProviderError, UserMeta,
};
use serde_json::{Map, Value, json};

/// A username/password provider whose users live in a map; MFA-capable; users it creates are
/// named after their username and land in the admin group (like HA's CLI-created users).
#[derive(Debug)]
pub struct PasswordProvider {
    identity: PluginIdentity,
    users: Mutex<HashMap<String, String>>,
}

impl PasswordProvider {
    /// A provider of type `kind` (id `None`) with no users.
    pub fn new(kind: &str) -> Self {
        Self {
            identity: PluginIdentity::new(kind, None, "Test provider"),
            users: Mutex::new(HashMap::new()),
        }
    }

    /// A provider of type `kind` knowing these `(username, password)` pairs.
    pub fn with_users(kind: &str, users: &[(&str, &str)]) -> Self {
        let provider = Self::new(kind);
        for (username, password) in users {
            provider.add(username, password);
        }
        provider
    }

    /// Adds (or replaces) a user.
    pub fn add(&self, username: &str, password: &str) {
        self.users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(username.to_owned(), password.to_owned());
    }
}

struct PasswordFlow {
    users: HashMap<String, String>,
}

#[async_trait::async_trait]
impl ProviderLoginFlow for PasswordFlow {
    async fn step(
        &mut self,
        _step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, ProviderError> {
        let form = FlowResult::form("init", Some(username_password_schema()));
        let Some(input) = input else {
            return Ok(form.with_errors(Map::new()));
        };
        let username = input
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let password = input
            .get("password")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if self.users.get(username).map(String::as_str) == Some(password) {
            return Ok(FlowResult::create_entry(json!({ "username": username })));
        }
        Ok(form.with_errors(base_error("invalid_auth")))
    }
}

#[async_trait::async_trait]
impl AuthProvider for PasswordProvider {
    fn identity(&self) -> &PluginIdentity {
        &self.identity
    }
    async fn login_flow(
        &self,
        _context: &LoginContext,
        _auth: Arc<dyn AuthAccess>,
    ) -> Result<Box<dyn ProviderLoginFlow>, ProviderError> {
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(Box::new(PasswordFlow { users }))
    }
    async fn user_meta_for_credentials(
        &self,
        credentials: &Credentials,
    ) -> Result<UserMeta, ProviderError> {
        Ok(UserMeta {
            name: credentials.data_str("username").map(str::to_owned),
            is_active: true,
            group: None,
            local_only: None,
        })
    }
}

/// An MFA module asking for a fixed PIN. Users enrol through `setup_user` (no setup flow), or
/// everyone counts as enrolled after [`PinModule::everyone_enrolled`].
#[derive(Debug)]
pub struct PinModule {
    identity: PluginIdentity,
    pin: String,
    everyone: bool,
    enrolled: Mutex<Vec<String>>,
}

impl PinModule {
    /// A module of type `pin` with `id` and `name` accepting `pin`; nobody is enrolled.
    pub fn new(id: &str, name: &str, pin: &str) -> Self {
        Self {
            identity: PluginIdentity::new("pin", Some(id.to_owned()), name),
            pin: pin.to_owned(),
            everyone: false,
            enrolled: Mutex::new(Vec::new()),
        }
    }

    /// Every user counts as enrolled.
    pub fn everyone_enrolled(mut self) -> Self {
        self.everyone = true;
        self
    }

    fn enrolled(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.enrolled.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl MfaModule for PinModule {
    fn identity(&self) -> &PluginIdentity {
        &self.identity
    }
    fn input_schema(&self) -> Schema {
        Schema::new(vec![Field::string("pin").required()])
    }
    async fn setup_flow(&self, _: &str, _: Option<&str>) -> Result<Box<dyn Flow>, MfaError> {
        Err(MfaError::Failed(
            "the fake PIN module has no setup flow".into(),
        ))
    }
    async fn setup_user(&self, user_id: &str, _: &Map<String, Value>) -> Result<Value, MfaError> {
        self.enrolled().push(user_id.to_owned());
        Ok(Value::Null)
    }
    async fn depose_user(&self, user_id: &str) -> Result<(), MfaError> {
        self.enrolled().retain(|u| u != user_id);
        Ok(())
    }
    async fn is_user_setup(&self, user_id: &str) -> Result<bool, MfaError> {
        Ok(self.everyone || self.enrolled().iter().any(|u| u == user_id))
    }
    async fn validate(&self, _: &str, input: &Map<String, Value>) -> Result<bool, MfaError> {
        Ok(input.get("pin").and_then(Value::as_str) == Some(self.pin.as_str()))
    }
}
