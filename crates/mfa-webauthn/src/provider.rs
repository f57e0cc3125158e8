//! The `webauthn` auth provider: sign in with a username and a passkey, no password.
//!
//! ```yaml
//! homeassistant:
//!   auth_providers:
//!     - type: homeassistant
//!     - type: webauthn
//!       passwordless: true     # required: this provider is a sign-in without a password
//!       module: webauthn       # optional; the id of the webauthn MFA module holding the keys
//! ```
//!
//! The keys are the ones users registered in the `webauthn` MFA module (profile page); the
//! provider finds that module (built from `auth_mfa_modules` of the same configuration) at login
//! time. Step `init` asks for the username, which is looked up among the `username`s of the
//! users' other credentials (e.g. the `homeassistant` provider's); step `passkey` carries the
//! module's request options in the placeholder `webauthn_request` and takes the `assertion`.
//! The first passwordless sign-in links a credential `{"user_id", "username"}` of this provider
//! to that user; no user is ever created by this provider. Users are not asked for MFA after it
//! (a passkey with user verification is two factors already).

use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use auth_core::flow_engine::{Field, FlowResult, Schema};
use auth_core::provider::base_error;
use auth_core::{
    AuthAccess, AuthProvider, Credentials, LoginContext, PluginConfigError, PluginContext,
    PluginIdentity, PluginSpec, ProviderError, ProviderLoginFlow, Storage, UserMeta,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{FIELD_ASSERTION, Inner, MODULE_TYPE, PLACEHOLDER_REQUEST, assertion_schema};

/// The provider's config `type`.
pub const PROVIDER_TYPE: &str = "webauthn";
/// Display name when `name` is not configured.
pub const DEFAULT_PROVIDER_NAME: &str = "Passkey";
/// Step id of the passkey form.
pub const STEP_PASSKEY: &str = "passkey";

/// The provider's own config keys.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Must be `true`: a sign-in with a passkey and no password.
    pub passwordless: bool,
    /// Id of the `webauthn` MFA module whose keys are used (default `webauthn`).
    #[serde(default)]
    pub module: Option<String>,
}

auth_core::register_provider! {
    kind: "webauthn",
    default_name: "Passkey",
    config: ProviderConfig,
    build: |config, spec, ctx| Ok(Arc::new(WebauthnProvider::new(&spec, &config, ctx)?) as _),
}

/// Modules built in this process: (storage identity, module id) -> the module's shared state.
type ModuleList = Vec<(usize, String, Weak<Inner>)>;
static MODULES: Mutex<ModuleList> = Mutex::new(Vec::new());

fn storage_identity(storage: &Arc<dyn Storage>) -> usize {
    Arc::as_ptr(storage).cast::<()>() as usize
}

/// Makes a module findable by the providers built with the same storage.
pub(crate) fn announce(module_id: &str, inner: &Arc<Inner>) {
    let mut modules = MODULES.lock().unwrap_or_else(|e| e.into_inner());
    modules.retain(|(_, _, weak)| weak.strong_count() > 0);
    let identity = storage_identity(&inner.storage);
    modules.retain(|(s, id, _)| !(*s == identity && id == module_id));
    modules.push((identity, module_id.to_owned(), Arc::downgrade(inner)));
}

fn find_module(storage: &Arc<dyn Storage>, module_id: &str) -> Option<Arc<Inner>> {
    let identity = storage_identity(storage);
    let modules = MODULES.lock().unwrap_or_else(|e| e.into_inner());
    modules
        .iter()
        .find(|(s, id, _)| *s == identity && id == module_id)
        .and_then(|(_, _, weak)| weak.upgrade())
}

/// The `webauthn` provider.
pub struct WebauthnProvider {
    identity: PluginIdentity,
    module_id: String,
    storage: Arc<dyn Storage>,
}

impl std::fmt::Debug for WebauthnProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebauthnProvider")
            .field("identity", &self.identity)
            .field("module_id", &self.module_id)
            .finish_non_exhaustive()
    }
}

impl WebauthnProvider {
    /// A provider from a config entry.
    pub fn new(
        spec: &PluginSpec,
        config: &ProviderConfig,
        ctx: &PluginContext,
    ) -> Result<Self, PluginConfigError> {
        if !config.passwordless {
            return Err(PluginConfigError(
                "webauthn provider: passwordless must be true (for passkeys as a second factor, configure the webauthn MFA module only)".to_owned(),
            ));
        }
        Ok(Self {
            identity: PluginIdentity::from_spec(PROVIDER_TYPE, DEFAULT_PROVIDER_NAME, spec),
            module_id: config
                .module
                .clone()
                .unwrap_or_else(|| MODULE_TYPE.to_owned()),
            storage: ctx.storage.clone(),
        })
    }

    pub(crate) fn module(&self) -> Result<Arc<Inner>, ProviderError> {
        find_module(&self.storage, &self.module_id).ok_or_else(|| {
            ProviderError::Failed(format!(
                "webauthn provider: no webauthn MFA module with id '{}' in auth_mfa_modules",
                self.module_id
            ))
        })
    }
}

/// The user whose other credentials carry exactly `username` (only if exactly one does).
fn user_by_username(auth: &dyn AuthAccess, username: &str) -> Option<String> {
    // Indexed by username: a passwordless sign-in does not cost O(users).
    let mut ids: Vec<String> = auth
        .credentials_with_username(username)
        .into_iter()
        .filter(|(_, c)| c.auth_provider_type != PROVIDER_TYPE)
        .map(|(user_id, _)| user_id)
        .collect();
    ids.dedup();
    let mut found = ids
        .into_iter()
        .filter(|id| auth.user(id).is_some_and(|user| user.is_active));
    let user = found.next()?;
    found.next().is_none().then_some(user)
}

struct PasswordlessFlow {
    inner: Arc<Inner>,
    auth: Arc<dyn AuthAccess>,
    /// (user id, username) once the username is known.
    user: Option<(String, String)>,
    /// Refused assertions so far ([`crate::MAX_RETRY`] end the flow).
    failures: u32,
}

impl PasswordlessFlow {
    fn username_form(error: Option<&str>) -> FlowResult {
        let schema = Schema::new(vec![Field::string("username").required()]);
        FlowResult::form("init", Some(schema))
            .with_errors(error.map(base_error).unwrap_or_default())
    }

    async fn passkey_form(
        &self,
        user_id: &str,
        error: Option<&str>,
    ) -> Result<FlowResult, ProviderError> {
        let options = self
            .inner
            .start_login(user_id)
            .await
            .map_err(|e| ProviderError::Failed(e.to_string()))?;
        let Some(options) = options else {
            return Ok(Self::username_form(Some("invalid_auth")));
        };
        let mut placeholders = Map::new();
        placeholders.insert(PLACEHOLDER_REQUEST.to_owned(), Value::String(options));
        Ok(FlowResult::form(STEP_PASSKEY, Some(assertion_schema()))
            .with_errors(error.map(base_error).unwrap_or_default())
            .with_placeholders(placeholders))
    }
}

#[async_trait]
impl ProviderLoginFlow for PasswordlessFlow {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, ProviderError> {
        match step_id {
            "init" => {
                let Some(input) = input else {
                    return Ok(Self::username_form(None));
                };
                let username = input.get("username").and_then(Value::as_str).unwrap_or("");
                let Some(user_id) = user_by_username(self.auth.as_ref(), username) else {
                    return Ok(Self::username_form(Some("invalid_auth")));
                };
                let result = self.passkey_form(&user_id, None).await?;
                self.user = Some((user_id, username.to_owned()));
                Ok(result)
            }
            STEP_PASSKEY => {
                let Some((user_id, username)) = self.user.clone() else {
                    return Ok(Self::username_form(None));
                };
                let Some(input) = input else {
                    return self.passkey_form(&user_id, None).await;
                };
                let assertion = input
                    .get(FIELD_ASSERTION)
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let ok = self
                    .inner
                    .finish_login(&user_id, assertion)
                    .await
                    .map_err(|e| ProviderError::Failed(e.to_string()))?;
                if !ok {
                    self.failures += 1;
                    if self.failures >= crate::MAX_RETRY {
                        return Ok(FlowResult::abort("too_many_retry"));
                    }
                    return self.passkey_form(&user_id, Some("invalid_auth")).await;
                }
                let mut data = Map::new();
                data.insert("user_id".to_owned(), Value::String(user_id));
                data.insert("username".to_owned(), Value::String(username));
                Ok(FlowResult::create_entry(Value::Object(data)))
            }
            other => Ok(FlowResult::abort(format!("unknown step {other}"))),
        }
    }
}

#[async_trait]
impl AuthProvider for WebauthnProvider {
    fn identity(&self) -> &PluginIdentity {
        &self.identity
    }

    /// A passkey with user verification is already two factors.
    fn supports_mfa(&self) -> bool {
        false
    }

    async fn login_flow(
        &self,
        _context: &LoginContext,
        auth: Arc<dyn AuthAccess>,
    ) -> Result<Box<dyn ProviderLoginFlow>, ProviderError> {
        Ok(Box::new(PasswordlessFlow {
            inner: self.module()?,
            auth,
            user: None,
            failures: 0,
        }))
    }

    /// This provider's credential of the user (linked at their first passwordless sign-in).
    async fn get_or_create_credentials(
        &self,
        data: &Map<String, Value>,
        auth: &dyn AuthAccess,
    ) -> Result<Credentials, ProviderError> {
        let user_id = data
            .get("user_id")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::Failed("login result without a user id".to_owned()))?;
        let existing = auth
            .credentials_of(PROVIDER_TYPE, self.provider_id())
            .into_iter()
            .find(|c| c.data_str("user_id") == Some(user_id));
        if let Some(existing) = existing {
            return Ok(existing);
        }
        let credentials = auth.new_credentials(PROVIDER_TYPE, self.provider_id(), data.clone());
        auth.link_credentials(user_id, credentials)
            .await
            .map_err(|e| ProviderError::Failed(e.to_string()))
    }

    /// Never asked: this provider's credentials are linked to an existing user before the login
    /// ends, so no user is ever created for them.
    async fn user_meta_for_credentials(
        &self,
        _credentials: &Credentials,
    ) -> Result<UserMeta, ProviderError> {
        Err(ProviderError::Failed(
            "the webauthn provider never creates users".to_owned(),
        ))
    }
}
