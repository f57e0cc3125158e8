//! The `webauthn` MFA module and provider for hass-auth: passkeys and security keys
//! (WebAuthn, on the `webauthn-rs` crate), as a second factor after the password and, with the
//! `webauthn` provider and `passwordless: true`, as the only factor.
//!
//! ```yaml
//! homeassistant:
//!   auth_mfa_modules:
//!     - type: webauthn
//!       rp_origins: [https://home.example.org]   # required: where the pages are opened
//!       rp_id: home.example.org                  # optional; default the first origin's host
//!       rp_name: Home Assistant                  # optional; what authenticators show
//!       allow_any_port: false                    # optional; accept the origins' hosts on any port
//! ```
//!
//! * **Enrolment** (setup flow, single step `init`, fields `name` and `credential`): the form's
//!   placeholder `webauthn_create` holds the `PublicKeyCredentialCreationOptions` (JSON text, as
//!   webauthn-rs makes them: user verification required, the user's keys excluded); the page
//!   passes them to `navigator.credentials.create` and sends the result as `credential` (JSON
//!   text) with the key's name. Several keys per user, each named, each removable
//!   ([`auth_core::MfaModule::list_credentials`], [`auth_core::MfaModule::remove_credential`]).
//! * **Login** (`mfa` step, field `assertion`): each time the form is shown its placeholder
//!   `webauthn_request` holds fresh `PublicKeyCredentialRequestOptions` (JSON text) for the
//!   user's keys; the page passes them to `navigator.credentials.get` and sends the result.
//!   A challenge can be answered once, within 5 minutes, by the user it was made for. An
//!   assertion whose signature counter is not above the stored one is refused (a cloned key);
//!   the counter and last use are saved before the login goes on.
//! * Keys live in `.storage/auth_module.webauthn` (see [`store`] for the format), mode 0600.

#![forbid(unsafe_code)]

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{Field, Flow, Schema};
use auth_core::{
    MfaCredential, MfaError, MfaModule, PluginConfigError, PluginContext, PluginIdentity,
    PluginSpec, SaveOptions, SharedClock, SharedRng, Storage,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use webauthn_rs::prelude::{
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

mod pending;
mod provider;
mod setup;
pub mod store;

#[cfg(test)]
mod tests;

pub use provider::{PROVIDER_TYPE, WebauthnProvider};
pub use store::{STORAGE_KEY, STORAGE_MINOR_VERSION, STORAGE_VERSION};

/// The config `type`.
pub const MODULE_TYPE: &str = "webauthn";
/// Display name when `name` is not configured.
pub const DEFAULT_NAME: &str = "Passkey";
/// Relying-party name shown by authenticators when `rp_name` is not configured.
pub const DEFAULT_RP_NAME: &str = "Home Assistant";
/// Wrong or failed assertions allowed per login flow.
pub const MAX_RETRY: u32 = 5;
/// Most keys one user can register.
pub const MAX_KEYS_PER_USER: usize = 20;
/// Longest key name (characters).
pub const MAX_NAME_CHARS: usize = 64;
/// Login placeholder: the request options (JSON text).
pub const PLACEHOLDER_REQUEST: &str = "webauthn_request";
/// Setup placeholder: the creation options (JSON text).
pub const PLACEHOLDER_CREATE: &str = "webauthn_create";
/// Login field: the assertion (JSON text of the `PublicKeyCredential`).
pub const FIELD_ASSERTION: &str = "assertion";

/// The module's own config keys.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Origins (`scheme://host[:port]`) the login and profile pages are opened at; at least one.
    pub rp_origins: Vec<String>,
    /// Relying-party id (a domain, never an IP address); default: the first origin's host.
    #[serde(default)]
    pub rp_id: Option<String>,
    /// Name authenticators show; default "Home Assistant".
    #[serde(default)]
    pub rp_name: Option<String>,
    /// Accept the origins' hosts on any port (default `false`).
    #[serde(default)]
    pub allow_any_port: bool,
}

auth_core::register_mfa_module! {
    kind: "webauthn",
    default_name: "Passkey",
    config: Config,
    build: |config, spec, ctx| Ok(Arc::new(WebauthnModule::new(&spec, &config, ctx)?) as _),
}

/// Builds the relying party from the config; errors name the config key.
pub fn relying_party(config: &Config) -> Result<Webauthn, PluginConfigError> {
    let problem = |text: String| PluginConfigError(format!("webauthn: {text}"));
    let origins = config
        .rp_origins
        .iter()
        .map(|o| {
            Url::parse(o).map_err(|e| problem(format!("rp_origins: '{o}' is not a URL ({e})")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first) = origins.first() else {
        return Err(problem(
            "rp_origins: at least one origin is required".to_owned(),
        ));
    };
    let rp_id = match &config.rp_id {
        Some(rp_id) => rp_id.clone(),
        None => first.domain().map(str::to_owned).ok_or_else(|| {
            problem(format!(
                "rp_origins: '{first}' has no domain name to use as rp_id (an IP address cannot be one; use a name such as localhost)"
            ))
        })?,
    };
    for origin in &origins {
        if origin
            .domain()
            .is_none_or(|d| d != rp_id && !d.ends_with(&format!(".{rp_id}")))
        {
            return Err(problem(format!(
                "rp_origins: '{origin}' is not on rp_id '{rp_id}' or a subdomain of it"
            )));
        }
    }
    let mut builder = WebauthnBuilder::new(&rp_id, first)
        .map_err(|e| problem(format!("rp_id '{rp_id}': {e}")))?
        .rp_name(config.rp_name.as_deref().unwrap_or(DEFAULT_RP_NAME))
        .allow_any_port(config.allow_any_port);
    for origin in &origins[1..] {
        builder = builder.append_allowed_origin(origin);
    }
    builder
        .build()
        .map_err(|e| problem(format!("cannot build the relying party: {e}")))
}

/// The `webauthn` MFA module.
pub struct WebauthnModule {
    identity: PluginIdentity,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WebauthnModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebauthnModule")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl WebauthnModule {
    /// A module from a config entry: id = `id` or `webauthn`, name = `name` or [`DEFAULT_NAME`].
    pub fn new(
        spec: &PluginSpec,
        config: &Config,
        ctx: &PluginContext,
    ) -> Result<Self, PluginConfigError> {
        let identity = PluginIdentity::from_spec(MODULE_TYPE, DEFAULT_NAME, spec);
        let inner = Arc::new(Inner {
            webauthn: relying_party(config)?,
            storage: ctx.storage.clone(),
            changed: auth_core::ChangeFlag::new(ctx.storage.clone(), store::STORAGE_KEY),
            clock: ctx.clock.clone(),
            rng: ctx.rng.clone(),
            state: tokio::sync::Mutex::new(State::default()),
        });
        provider::announce(identity.module_id(), &inner);
        Ok(Self { identity, inner })
    }
}

/// What the module, its setup flows and the provider share.
pub(crate) struct Inner {
    webauthn: Webauthn,
    storage: Arc<dyn Storage>,
    /// Set when another instance changed the store (see `auth_core::ChangeFlag`).
    changed: auth_core::ChangeFlag,
    clock: SharedClock,
    rng: SharedRng,
    state: tokio::sync::Mutex<State>,
}

/// In-memory state; the mutex around it also serialises loading and saving.
#[derive(Default)]
struct State {
    loaded: bool,
    users: store::Users,
    logins: pending::Pending<PasskeyAuthentication>,
}

/// Why a registration was not accepted (a form error, not a module failure).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The key's name is empty or too long.
    Name,
    /// The browser's answer does not verify (or is not JSON of a credential).
    Credential,
    /// The key is registered already (to this or another user).
    Duplicate,
    /// The user has [`MAX_KEYS_PER_USER`] keys.
    TooMany,
}

/// A registration waiting for the browser's answer.
pub(crate) struct Registration {
    user_handle: Uuid,
    state: PasskeyRegistration,
    /// The creation options (JSON text) for the form.
    pub(crate) options: String,
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The `challenge` the browser signed, from an assertion's `clientDataJSON`.
fn signed_challenge(credential: &PublicKeyCredential) -> Option<String> {
    let client_data: Value = serde_json::from_slice(&credential.response.client_data_json).ok()?;
    client_data.get("challenge")?.as_str().map(str::to_owned)
}

impl Inner {
    /// The state, loading the file first if that has not happened yet.
    async fn state(&self) -> Result<tokio::sync::MutexGuard<'_, State>, MfaError> {
        let mut state = self.state.lock().await;
        // Another instance's change (a shared database) is read before this one's next use.
        let changed = self.changed.take();
        if changed || !state.loaded {
            state.users = match self.storage.load(store::STORAGE_KEY).await? {
                Some(doc) => store::parse(self.storage.as_ref(), &doc)?,
                None => Default::default(),
            };
            state.loaded = true;
        }
        Ok(state)
    }

    /// Saves `users` and, once they are on disk, makes them the module's state.
    async fn commit(&self, state: &mut State, users: store::Users) -> Result<(), MfaError> {
        let doc = store::document(&users)
            .map_err(|e| MfaError::Failed(format!("cannot encode the WebAuthn keys: {e}")))?;
        self.storage
            .save(&doc, SaveOptions { private: true })
            .await?;
        state.users = users;
        Ok(())
    }

    fn now_iso(&self) -> String {
        auth_core::timefmt::to_iso(self.clock.now())
    }

    /// New request options for `user_id`'s keys (JSON text), or `None` without keys.
    pub(crate) async fn start_login(&self, user_id: &str) -> Result<Option<String>, MfaError> {
        let mut state = self.state().await?;
        let Some(keys) = state
            .users
            .get(user_id)
            .filter(|k| !k.credentials.is_empty())
        else {
            return Ok(None);
        };
        let passkeys: Vec<_> = keys.credentials.iter().map(|k| k.passkey.clone()).collect();
        let (options, login) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| MfaError::Failed(format!("cannot make a WebAuthn challenge: {e}")))?;
        let json = serde_json::to_value(&options)
            .map_err(|e| MfaError::Failed(format!("cannot encode a WebAuthn challenge: {e}")))?;
        let challenge = json["publicKey"]["challenge"]
            .as_str()
            .ok_or_else(|| MfaError::Failed("a WebAuthn challenge without challenge".to_owned()))?
            .to_owned();
        let now = self.clock.now();
        state.logins.insert(challenge, user_id, now, login);
        Ok(Some(json.to_string()))
    }

    /// Checks an assertion (JSON text) of `user_id` against a challenge made for them; on
    /// success saves the key's new counter and last use.
    pub(crate) async fn finish_login(
        &self,
        user_id: &str,
        assertion: &str,
    ) -> Result<bool, MfaError> {
        let Ok(credential) = serde_json::from_str::<PublicKeyCredential>(assertion) else {
            return Ok(false);
        };
        let Some(challenge) = signed_challenge(&credential) else {
            return Ok(false);
        };
        let mut state = self.state().await?;
        let now = self.clock.now();
        let Some(login) = state.logins.take(&challenge, user_id, now) else {
            return Ok(false);
        };
        let result = match self
            .webauthn
            .finish_passkey_authentication(&credential, &login)
        {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                tracing::warn!(
                    user_id,
                    "WebAuthn assertion refused: its signature counter is not above the stored one (a cloned key?)"
                );
                return Ok(false);
            }
            Err(error) => {
                tracing::info!(user_id, %error, "WebAuthn assertion refused");
                return Ok(false);
            }
        };
        // The key may have been removed since the challenge was made.
        let mut users = state.users.clone();
        let Some(key) = users.get_mut(user_id).and_then(|keys| {
            keys.credentials
                .iter_mut()
                .find(|k| k.passkey.cred_id() == result.cred_id())
        }) else {
            return Ok(false);
        };
        key.passkey.update_credential(&result);
        key.last_used_at = Some(self.now_iso());
        self.commit(&mut state, users).await?;
        Ok(true)
    }

    /// New creation options for one more key of `user_id`.
    pub(crate) async fn start_registration(
        &self,
        user_id: &str,
        user_name: Option<&str>,
    ) -> Result<Registration, MfaError> {
        let state = self.state().await?;
        let existing = state.users.get(user_id);
        let user_handle = match existing {
            Some(keys) => keys.user_handle,
            None => {
                let mut bytes = [0u8; 16];
                self.rng.fill(&mut bytes);
                uuid::Builder::from_random_bytes(bytes).into_uuid()
            }
        };
        let exclude = existing.map(|keys| {
            keys.credentials
                .iter()
                .map(|k| k.passkey.cred_id().clone())
                .collect()
        });
        drop(state);
        let display = user_name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(user_id);
        let (options, registration) = self
            .webauthn
            .start_passkey_registration(user_handle, display, display, exclude)
            .map_err(|e| MfaError::Failed(format!("cannot make a WebAuthn challenge: {e}")))?;
        let options = serde_json::to_string(&options)
            .map_err(|e| MfaError::Failed(format!("cannot encode a WebAuthn challenge: {e}")))?;
        Ok(Registration {
            user_handle,
            state: registration,
            options,
        })
    }

    /// Verifies the browser's answer (JSON text) to `registration` and saves the key.
    pub(crate) async fn finish_registration(
        &self,
        user_id: &str,
        registration: &Registration,
        name: &str,
        credential: &str,
    ) -> Result<Result<(), Refused>, MfaError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Ok(Err(Refused::Name));
        }
        let Ok(credential) = serde_json::from_str::<RegisterPublicKeyCredential>(credential) else {
            return Ok(Err(Refused::Credential));
        };
        let passkey = match self
            .webauthn
            .finish_passkey_registration(&credential, &registration.state)
        {
            Ok(passkey) => passkey,
            Err(error) => {
                tracing::info!(user_id, %error, "WebAuthn registration refused");
                return Ok(Err(Refused::Credential));
            }
        };
        let mut state = self.state().await?;
        let taken = state.users.values().any(|keys| {
            keys.credentials
                .iter()
                .any(|k| k.passkey.cred_id() == passkey.cred_id())
        });
        if taken {
            return Ok(Err(Refused::Duplicate));
        }
        let mut users = state.users.clone();
        let keys = users
            .entry(user_id.to_owned())
            .or_insert_with(|| store::UserKeys {
                user_handle: registration.user_handle,
                credentials: Vec::new(),
            });
        if keys.credentials.len() >= MAX_KEYS_PER_USER {
            return Ok(Err(Refused::TooMany));
        }
        keys.credentials.push(store::StoredKey {
            id: b64url(passkey.cred_id()),
            name: name.to_owned(),
            created_at: self.now_iso(),
            last_used_at: None,
            passkey,
        });
        self.commit(&mut state, users).await?;
        Ok(Ok(()))
    }

    pub(crate) async fn is_user_setup(&self, user_id: &str) -> Result<bool, MfaError> {
        let state = self.state().await?;
        Ok(state
            .users
            .get(user_id)
            .is_some_and(|k| !k.credentials.is_empty()))
    }
}

/// The login form's fields.
pub(crate) fn assertion_schema() -> Schema {
    Schema::new(vec![Field::string(FIELD_ASSERTION).required()])
}

#[async_trait]
impl MfaModule for WebauthnModule {
    fn identity(&self) -> &PluginIdentity {
        &self.identity
    }

    fn max_retry(&self) -> u32 {
        MAX_RETRY
    }

    fn input_schema(&self) -> Schema {
        assertion_schema()
    }

    async fn initialize(&self) -> Result<(), MfaError> {
        self.inner.state().await.map(drop)
    }

    async fn setup_flow(
        &self,
        user_id: &str,
        user_name: Option<&str>,
    ) -> Result<Box<dyn Flow>, MfaError> {
        Ok(Box::new(setup::SetupFlow::new(
            self.inner.clone(),
            user_id,
            user_name,
        )))
    }

    /// Keys can only be registered by a browser (the setup flow).
    async fn setup_user(
        &self,
        _user_id: &str,
        _data: &Map<String, Value>,
    ) -> Result<Value, MfaError> {
        Err(MfaError::InvalidInput(
            "passkeys are registered in a browser, through the module's setup flow".to_owned(),
        ))
    }

    async fn depose_user(&self, user_id: &str) -> Result<(), MfaError> {
        let mut state = self.inner.state().await?;
        if !state.users.contains_key(user_id) {
            return Ok(());
        }
        let mut users = state.users.clone();
        users.shift_remove(user_id);
        self.inner.commit(&mut state, users).await
    }

    async fn is_user_setup(&self, user_id: &str) -> Result<bool, MfaError> {
        self.inner.is_user_setup(user_id).await
    }

    async fn validate(&self, user_id: &str, input: &Map<String, Value>) -> Result<bool, MfaError> {
        let assertion = input
            .get(FIELD_ASSERTION)
            .and_then(Value::as_str)
            .unwrap_or("");
        self.inner.finish_login(user_id, assertion).await
    }

    async fn login_placeholders(&self, user_id: &str) -> Result<Map<String, Value>, MfaError> {
        let mut placeholders = Map::new();
        if let Some(options) = self.inner.start_login(user_id).await? {
            placeholders.insert(PLACEHOLDER_REQUEST.to_owned(), Value::String(options));
        }
        Ok(placeholders)
    }

    async fn list_credentials(
        &self,
        user_id: &str,
    ) -> Result<Option<Vec<MfaCredential>>, MfaError> {
        let state = self.inner.state().await?;
        let keys = state
            .users
            .get(user_id)
            .map(|keys| {
                keys.credentials
                    .iter()
                    .map(|k| MfaCredential {
                        id: k.id.clone(),
                        name: k.name.clone(),
                        created_at: k.created_at.clone(),
                        last_used_at: k.last_used_at.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(keys))
    }

    /// Removes the key; the user's last key takes the user out of the file.
    async fn remove_credential(
        &self,
        user_id: &str,
        credential_id: &str,
    ) -> Result<bool, MfaError> {
        let mut state = self.inner.state().await?;
        let mut users = state.users.clone();
        let Some(keys) = users.get_mut(user_id) else {
            return Ok(false);
        };
        let before = keys.credentials.len();
        keys.credentials.retain(|k| k.id != credential_id);
        if keys.credentials.len() == before {
            return Ok(false);
        }
        if keys.credentials.is_empty() {
            users.shift_remove(user_id);
        }
        self.inner.commit(&mut state, users).await?;
        Ok(true)
    }

    fn storage_key(&self) -> Option<&str> {
        Some(STORAGE_KEY)
    }
}
