//! The `legacy_api_password` auth provider for hass-auth: everyone who knows one configured
//! password signs in as one shared user.
//!
//! ```yaml
//! homeassistant:
//!   auth_providers:
//!     - type: homeassistant
//!     - type: legacy_api_password
//!       api_password: !secret http_password
//! ```
//!
//! Home Assistant deprecated this provider in 2023.12 and removed it in 2024.7; hass-auth keeps
//! it with the behaviour of Home Assistant up to 2024.6, so old configs and `.storage/auth`
//! files keep working:
//!
//! * The login form `init` has one required string field `password`; the first form carries
//!   `errors: {}`. The password is compared in constant time; a wrong one is the same form with
//!   `errors: {"base": "invalid_auth"}` (a value, not an error).
//! * All logins share one credential with `data: {}` (the first existing one is reused).
//! * The user made at the first login is named `Legacy API password user`, is active and an
//!   administrator (group `system-admin`), and is never the owner.
//! * For MFA modules that key entries by username (a required chain, `modules:` on this entry),
//!   the shared credential is known as [`LEGACY_USERNAME`] (`homeassistant`, the username Home
//!   Assistant's first version of this provider stored in it), unless its data names another.
//!
//! Prefer the `homeassistant` provider: a shared password cannot be revoked for one person.

#![forbid(unsafe_code)]

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{Field, FlowResult, Schema};
use auth_core::{
    AuthAccess, AuthProvider, Credentials, LoginContext, PluginConfigError, PluginContext,
    PluginIdentity, PluginSpec, ProviderError, ProviderLoginFlow, UserMeta,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The config `type` of this provider.
pub const PROVIDER_TYPE: &str = "legacy_api_password";
/// Display name when `name` is not configured.
pub const DEFAULT_NAME: &str = "Legacy API Password";
/// Name of the shared user created at the first login.
pub const LEGACY_USER_NAME: &str = "Legacy API password user";
/// Username of the shared credential, for MFA modules that key entries by username.
pub const LEGACY_USERNAME: &str = "homeassistant";

/// This provider's own config keys.
#[derive(Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The shared password.
    pub api_password: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("api_password", &"<redacted>")
            .finish()
    }
}

/// The `legacy_api_password` provider. Cheap to clone.
#[derive(Clone)]
pub struct LegacyApiPasswordProvider {
    inner: Arc<Inner>,
}

struct Inner {
    identity: PluginIdentity,
    api_password: String,
}

impl std::fmt::Debug for LegacyApiPasswordProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyApiPasswordProvider")
            .field("identity", &self.inner.identity)
            .finish_non_exhaustive()
    }
}

impl LegacyApiPasswordProvider {
    /// A provider checking against `config.api_password`; `name` defaults to `Legacy API Password`.
    pub fn new(config: Config, id: Option<String>, name: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                identity: PluginIdentity::new(
                    PROVIDER_TYPE,
                    id,
                    name.as_deref().unwrap_or(DEFAULT_NAME),
                ),
                api_password: config.api_password,
            }),
        }
    }

    /// Whether `password` is the configured password (constant-time comparison).
    pub fn validate_login(&self, password: &str) -> bool {
        self.inner.validate_login(password)
    }
}

impl Inner {
    fn validate_login(&self, password: &str) -> bool {
        auth_crypto::constant_time_eq(self.api_password.as_bytes(), password.as_bytes())
    }
}

/// The `init` form's single field: `password`, a required string.
pub fn login_schema() -> Schema {
    Schema::new(vec![Field::string("password").required()])
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
        let mut errors = Map::new();
        if let Some(input) = input {
            let password = input.get("password").and_then(Value::as_str);
            if password.is_some_and(|p| self.provider.validate_login(p)) {
                return Ok(FlowResult::create_entry(json!({})));
            }
            errors.insert("base".to_owned(), Value::String("invalid_auth".to_owned()));
        }
        Ok(FlowResult::form("init", Some(login_schema())).with_errors(errors))
    }
}

#[async_trait]
impl AuthProvider for LegacyApiPasswordProvider {
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

    async fn get_or_create_credentials(
        &self,
        _data: &Map<String, Value>,
        auth: &dyn AuthAccess,
    ) -> Result<Credentials, ProviderError> {
        let id = self.inner.identity.id.as_deref();
        if let Some(shared) = auth.credentials_of(PROVIDER_TYPE, id).into_iter().next() {
            return Ok(shared);
        }
        Ok(auth.new_credentials(PROVIDER_TYPE, id, Map::new()))
    }

    fn credential_username(&self, credentials: &Credentials) -> Option<String> {
        Some(
            credentials
                .data_str("username")
                .unwrap_or(LEGACY_USERNAME)
                .to_owned(),
        )
    }

    async fn user_meta_for_credentials(
        &self,
        _credentials: &Credentials,
    ) -> Result<UserMeta, ProviderError> {
        Ok(UserMeta {
            name: Some(LEGACY_USER_NAME.to_owned()),
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
    Ok(Arc::new(LegacyApiPasswordProvider::new(
        config, spec.id, spec.name,
    )))
}

auth_core::register_provider! {
    kind: "legacy_api_password",
    default_name: "Legacy API Password",
    config: Config,
    build: build_provider,
}

#[cfg(test)]
mod tests;
