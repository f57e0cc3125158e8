//! Small stand-ins for plugins, for tests of code that needs *a* provider but must not depend on a
//! provider crate (plugins never depend on each other).

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use auth_core::flow_engine::FlowResult;
use auth_core::provider::{
    ProviderLoginFlow, base_error, credentials_by_exact_username, username_password_schema,
};
use auth_core::{AuthAccess, AuthProvider, Credentials, LoginContext, ProviderError, UserMeta};
use serde_json::{Map, Value, json};

/// A username/password provider whose users live in a map; MFA-capable; users it creates are
/// named after their username and land in the admin group (like HA's CLI-created users).
#[derive(Debug)]
pub struct PasswordProvider {
    kind: String,
    users: Mutex<HashMap<String, String>>,
}

impl PasswordProvider {
    /// A provider of type `kind` (id `None`) with no users.
    pub fn new(kind: &str) -> Self {
        Self {
            kind: kind.to_owned(),
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
    fn provider_type(&self) -> &str {
        &self.kind
    }
    fn provider_id(&self) -> Option<&str> {
        None
    }
    fn name(&self) -> &str {
        "Test provider"
    }
    async fn login_flow(
        &self,
        _context: &LoginContext,
        _auth: Arc<dyn AuthAccess>,
    ) -> Result<Box<dyn ProviderLoginFlow>, ProviderError> {
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(Box::new(PasswordFlow { users }))
    }
    async fn get_or_create_credentials(
        &self,
        data: &Map<String, Value>,
        auth: &dyn AuthAccess,
    ) -> Result<Credentials, ProviderError> {
        credentials_by_exact_username(auth, &self.kind, None, data)
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
    fn as_any(&self) -> &dyn Any {
        self
    }
}
