//! **FOR TESTING ONLY — NEVER USE IN PRODUCTION.** The `insecure_example` auth provider for
//! hass-auth: users and their **plain-text** passwords come straight from the configuration.
//!
//! It exists so that tests and demos can sign in without a user store. Home Assistant refuses it
//! in YAML (`The insecure_example auth provider is for testing only.`); hass-auth registers it
//! with `testing_only: true`, so hosts can refuse or loudly warn about it, and building it logs a
//! warning.
//!
//! ```yaml
//! # TESTING ONLY
//! homeassistant:
//!   auth_providers:
//!     - type: insecure_example
//!       users:
//!         - username: example-user
//!           password: example-pass
//!           name: Example User
//! ```
//!
//! * Config: `users`, a list of `{username, password, name?}`; no other keys anywhere.
//! * Login form `init`: `username` and `password` (required strings), first shown with
//!   `errors: null`; a wrong username or password gives the same form with
//!   `errors: {"base": "invalid_auth"}`.
//! * The username is compared in constant time with every configured user (no early exit, the
//!   last match wins); with no match a dummy comparison runs; then the password is compared in
//!   constant time.
//! * Credentials: the stored credential whose `data.username` equals the typed username
//!   exactly, else a new one `{"username": <typed>}`. A new user is named after the configured
//!   `name` (or none), active, administrator.

#![forbid(unsafe_code)]

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{FlowResult, Schema};
use auth_core::{
    AuthAccess, AuthProvider, Credentials, LoginContext, PluginConfigError, PluginContext,
    PluginIdentity, PluginSpec, ProviderError, ProviderLoginFlow, UserMeta,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The config `type` of this provider.
pub const PROVIDER_TYPE: &str = "insecure_example";
/// Display name when `name` is not configured (Home Assistant's base default).
pub const DEFAULT_NAME: &str = "Unnamed auth provider";
/// Home Assistant's message when this provider appears in YAML.
pub const TESTING_ONLY_MESSAGE: &str = "The insecure_example auth provider is for testing only.";

/// This provider's own config keys (TESTING ONLY).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The users who may sign in, with plain-text passwords.
    pub users: Vec<UserConfig>,
}

/// One configured user (TESTING ONLY: the password is plain text).
#[derive(Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Username, compared exactly (case-sensitive, no trimming).
    pub username: String,
    /// Plain-text password.
    pub password: String,
    /// Display name of the user created at the first login.
    #[serde(default)]
    pub name: Option<String>,
}

impl std::fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("name", &self.name)
            .finish()
    }
}

/// The `insecure_example` provider (TESTING ONLY). Cheap to clone.
#[derive(Clone, Debug)]
pub struct InsecureExampleProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    identity: PluginIdentity,
    users: Vec<UserConfig>,
}

impl InsecureExampleProvider {
    /// A provider over the configured users; `name` defaults to `Unnamed auth provider`.
    pub fn new(config: Config, id: Option<String>, name: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                identity: PluginIdentity::new(
                    PROVIDER_TYPE,
                    id,
                    name.as_deref().unwrap_or(DEFAULT_NAME),
                ),
                users: config.users,
            }),
        }
    }

    /// Whether `username` and `password` match a configured user (constant-time comparisons).
    pub fn validate_login(&self, username: &str, password: &str) -> bool {
        self.inner.validate_login(username, password)
    }
}

impl Inner {
    fn validate_login(&self, username: &str, password: &str) -> bool {
        let mut found = None;
        for user in &self.users {
            // No early exit: every configured user is compared.
            if auth_crypto::constant_time_eq(username.as_bytes(), user.username.as_bytes()) {
                found = Some(user);
            }
        }
        match found {
            None => {
                // Burn a comparison of the same length, like a real password check.
                let _ = std::hint::black_box(auth_crypto::constant_time_eq(
                    password.as_bytes(),
                    std::hint::black_box(password.as_bytes()),
                ));
                false
            }
            Some(user) => {
                auth_crypto::constant_time_eq(user.password.as_bytes(), password.as_bytes())
            }
        }
    }
}

/// The `init` form's fields: `username` and `password`, both required strings.
pub fn login_schema() -> Schema {
    auth_core::provider::username_password_schema()
}

struct LoginSteps {
    provider: Arc<Inner>,
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
        let form = FlowResult::form("init", Some(login_schema()));
        let Some(input) = input else {
            // This provider's first form carries `errors: null`.
            return Ok(form);
        };
        let username = input.get("username").and_then(Value::as_str);
        let password = input.get("password").and_then(Value::as_str);
        if let (Some(username), Some(password)) = (username, password)
            && self.provider.validate_login(username, password)
        {
            return Ok(FlowResult::create_entry(json!({ "username": username })));
        }
        Ok(form.with_errors(auth_core::provider::base_error("invalid_auth")))
    }
}

#[async_trait]
impl AuthProvider for InsecureExampleProvider {
    fn identity(&self) -> &PluginIdentity {
        &self.inner.identity
    }

    async fn login_flow(
        &self,
        _context: &LoginContext,
        _auth: Arc<dyn AuthAccess>,
    ) -> Result<Box<dyn ProviderLoginFlow>, ProviderError> {
        Ok(Box::new(LoginSteps {
            provider: self.inner.clone(),
        }))
    }

    async fn user_meta_for_credentials(
        &self,
        credentials: &Credentials,
    ) -> Result<UserMeta, ProviderError> {
        let username = credentials.data_str("username");
        let name = self
            .inner
            .users
            .iter()
            .find(|u| Some(u.username.as_str()) == username)
            .and_then(|u| u.name.clone());
        Ok(UserMeta {
            name,
            is_active: true,
            group: None,
            local_only: None,
        })
    }
}

fn build_provider(
    config: Config,
    spec: PluginSpec,
    _ctx: &PluginContext,
) -> Result<Arc<dyn AuthProvider>, PluginConfigError> {
    tracing::warn!(
        users = config.users.len(),
        "the insecure_example auth provider is FOR TESTING ONLY: its passwords are plain text in the configuration"
    );
    Ok(Arc::new(InsecureExampleProvider::new(
        config, spec.id, spec.name,
    )))
}

auth_core::register_provider! {
    kind: "insecure_example",
    default_name: "Unnamed auth provider",
    config: Config,
    build: build_provider,
    testing_only: true,
}

#[cfg(test)]
mod tests;
