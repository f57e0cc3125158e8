//! The `totp` MFA module for hass-auth: time-based one-time passwords from an authenticator app
//! (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps), compatible with Home Assistant's module and
//! its `.storage/auth_module.totp` file.
//!
//! ```yaml
//! homeassistant:
//!   auth_mfa_modules:
//!     - type: totp
//!       name: Authenticator app   # optional; default "Time-based One Time Password"
//!       id: totp                  # optional; default the type
//! ```
//!
//! The module has no keys of its own. What it does:
//!
//! * **Enrolment** (setup flow, single step `init`): a new 160-bit secret from the injected
//!   random source is shown as text, as an `otpauth://` URL and as an inline SVG QR code; the
//!   user confirms it with the code of the *current* time step. The secret is then saved to
//!   `.storage/auth_module.totp` (mode 0600) before the flow finishes.
//! * **Login** (`mfa` step, field `code`, 5 wrong codes allowed): the previous, current and next
//!   step's codes are accepted; the submitted code is NFKC-normalised (fullwidth digits work) and
//!   compared in constant time. Users without a secret are checked against a dummy secret so
//!   both cases cost the same.
//! * **Replay protection** (differs from Home Assistant, which has none): once a code was
//!   accepted for a user, that time step and every earlier one are refused for that user. The
//!   last accepted step is remembered in memory only (a restart forgets it; the 90-second window
//!   limits what that allows). Enrolment counts as a use of its step.
//! * **Disabling** removes the secret and saves (only if there was one).
//!
//! The file is loaded lazily (once, on first use or at [`auth_core::MfaModule::initialize`]);
//! a file that cannot be parsed is an error naming it, never treated as empty and never
//! overwritten.
//!
//! Secrets Home Assistant stored are used as they are, whatever their length (pyotp accepts any);
//! totp-rs's 128-bit minimum is therefore only enforced for secrets handed to
//! [`auth_core::MfaModule::setup_user`].

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{Flow, Schema};
use auth_core::{
    MfaError, MfaModule, PluginConfigError, PluginContext, PluginIdentity, PluginSpec, SaveOptions,
    SharedClock, SharedRng, Storage,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

mod otp;
mod setup;
mod store;

#[cfg(test)]
mod tests;

pub use otp::{DIGITS, InvalidSecret, STEP_SECONDS, code_at};
pub use setup::{
    AUTHY_URL, ERROR_INVALID_CODE, GOOGLE_AUTHENTICATOR_URL, ISSUER, provisioning_uri, qr_code_svg,
};
pub use store::{STORAGE_KEY, STORAGE_MINOR_VERSION, STORAGE_VERSION};

/// The config `type`.
pub const MODULE_TYPE: &str = "totp";
/// Display name when `name` is not configured (Home Assistant's default config says
/// "Authenticator app"; the host sets that name).
pub const DEFAULT_NAME: &str = "Time-based One Time Password";
/// Wrong codes allowed per login flow (Home Assistant's `MAX_RETRY_TIME` for totp).
pub const MAX_RETRY: u32 = 5;

/// The module's own config keys: none (`type`, `name` and `id` are handled by the host).
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

auth_core::register_mfa_module! {
    kind: "totp",
    default_name: "Time-based One Time Password",
    config: Config,
    build: |_config, spec, ctx| Ok(Arc::new(TotpModule::from_spec(&spec, ctx)?) as _),
}

/// The `totp` MFA module.
pub struct TotpModule {
    identity: PluginIdentity,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TotpModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpModule")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl TotpModule {
    /// A module with this id and display name, keeping its data in `ctx.storage`.
    pub fn new(id: impl Into<String>, name: impl Into<String>, ctx: &PluginContext) -> Self {
        Self {
            identity: PluginIdentity::new(MODULE_TYPE, Some(id.into()), name),
            inner: Arc::new(Inner {
                storage: ctx.storage.clone(),
                changed: auth_core::ChangeFlag::new(ctx.storage.clone(), store::STORAGE_KEY),
                clock: ctx.clock.clone(),
                rng: ctx.rng.clone(),
                state: tokio::sync::Mutex::new(State::default()),
            }),
        }
    }

    /// A module from a config entry: id = `id` or `totp`, name = `name` or [`DEFAULT_NAME`].
    pub fn from_spec(spec: &PluginSpec, ctx: &PluginContext) -> Result<Self, PluginConfigError> {
        let _: Config = spec.parse_config()?;
        Ok(Self::new(
            spec.id.as_deref().unwrap_or(MODULE_TYPE),
            spec.name.as_deref().unwrap_or(DEFAULT_NAME),
            ctx,
        ))
    }
}

/// What the module and its setup flows share.
pub(crate) struct Inner {
    storage: Arc<dyn Storage>,
    /// Set when another instance changed the store (see `auth_core::ChangeFlag`).
    changed: auth_core::ChangeFlag,
    clock: SharedClock,
    pub(crate) rng: SharedRng,
    state: tokio::sync::Mutex<State>,
}

/// In-memory state; the mutex around it also serialises loading and saving.
#[derive(Default)]
struct State {
    loaded: bool,
    secrets: store::Secrets,
    /// User id -> last time-step counter accepted (replay protection; memory only).
    last_used: HashMap<String, u64>,
}

impl Inner {
    /// The state, loading the file first if that has not happened yet.
    async fn state(&self) -> Result<tokio::sync::MutexGuard<'_, State>, MfaError> {
        let mut state = self.state.lock().await;
        // Another instance's change (a shared database) is read before this one's next use.
        let changed = self.changed.take();
        if changed || !state.loaded {
            state.secrets = match self.storage.load(store::STORAGE_KEY).await? {
                Some(doc) => store::parse(self.storage.as_ref(), &doc)?,
                None => Default::default(),
            };
            state.loaded = true;
        }
        Ok(state)
    }

    fn counter_now(&self) -> u64 {
        otp::counter_at(self.clock.now().unix_timestamp())
    }

    fn invalid_stored_secret(&self, user_id: &str) -> MfaError {
        MfaError::Failed(format!(
            "{}: the TOTP secret of user '{user_id}' is not valid Base32",
            self.storage.location(store::STORAGE_KEY)
        ))
    }

    /// Saves `secrets` and, once they are on disk, makes them the module's state.
    async fn commit(&self, state: &mut State, secrets: store::Secrets) -> Result<(), MfaError> {
        self.storage
            .save(&store::document(&secrets), SaveOptions { private: true })
            .await?;
        state.secrets = secrets;
        Ok(())
    }

    /// Stores `secret` for `user_id` (replacing any previous one) and saves.
    async fn enrol(
        &self,
        state: &mut State,
        user_id: &str,
        secret: &str,
        used_counter: Option<u64>,
    ) -> Result<(), MfaError> {
        let mut secrets = state.secrets.clone();
        secrets.insert(user_id.to_owned(), secret.to_owned());
        self.commit(state, secrets).await?;
        match used_counter {
            Some(counter) => state.last_used.insert(user_id.to_owned(), counter),
            None => state.last_used.remove(user_id),
        };
        Ok(())
    }

    /// Setup confirmation: enrols `secret` if `code` is its code for the current step.
    pub(crate) async fn enrol_with_code(
        &self,
        user_id: &str,
        secret: &str,
        code: &str,
    ) -> Result<bool, MfaError> {
        let mut state = self.state().await?;
        let counter = self.counter_now();
        let bytes = otp::decode_base32(secret)
            .map_err(|_| MfaError::Failed("the pending TOTP secret is not Base32".to_owned()))?;
        if !setup::confirms(&bytes, code, counter) {
            return Ok(false);
        }
        self.enrol(&mut state, user_id, secret, Some(counter))
            .await?;
        Ok(true)
    }
}

#[async_trait]
impl MfaModule for TotpModule {
    fn identity(&self) -> &PluginIdentity {
        &self.identity
    }

    fn max_retry(&self) -> u32 {
        MAX_RETRY
    }

    fn input_schema(&self) -> Schema {
        setup::code_schema()
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

    /// Enrols directly with `data.secret` (Base32, at least 128 bits) or a new secret; returns it.
    async fn setup_user(
        &self,
        user_id: &str,
        data: &Map<String, Value>,
    ) -> Result<Value, MfaError> {
        let secret = match data.get("secret") {
            None | Some(Value::Null) => otp::new_secret(self.inner.rng.as_ref()),
            Some(Value::String(secret)) => {
                let bytes = otp::decode_base32(secret).map_err(|_| {
                    MfaError::InvalidInput("the TOTP secret is not valid Base32".to_owned())
                })?;
                if bytes.len() < otp::MIN_NEW_SECRET_BYTES {
                    return Err(MfaError::InvalidInput(format!(
                        "the TOTP secret has {} bits; at least 128 are required",
                        bytes.len() * 8
                    )));
                }
                secret.clone()
            }
            Some(_) => {
                return Err(MfaError::InvalidInput(
                    "the TOTP secret must be a string".to_owned(),
                ));
            }
        };
        let mut state = self.inner.state().await?;
        self.inner.enrol(&mut state, user_id, &secret, None).await?;
        Ok(Value::String(secret))
    }

    async fn depose_user(&self, user_id: &str) -> Result<(), MfaError> {
        let mut state = self.inner.state().await?;
        if !state.secrets.contains_key(user_id) {
            return Ok(());
        }
        let mut secrets = state.secrets.clone();
        secrets.shift_remove(user_id);
        self.inner.commit(&mut state, secrets).await?;
        state.last_used.remove(user_id);
        Ok(())
    }

    async fn is_user_setup(&self, user_id: &str) -> Result<bool, MfaError> {
        Ok(self.inner.state().await?.secrets.contains_key(user_id))
    }

    async fn validate(&self, user_id: &str, input: &Map<String, Value>) -> Result<bool, MfaError> {
        let submitted = otp::normalize(input.get("code").and_then(Value::as_str).unwrap_or(""));
        let mut state = self.inner.state().await?;
        let counter = self.inner.counter_now();
        let Some(secret) = state.secrets.get(user_id) else {
            // Same work as for an enrolled user, result thrown away.
            let _ = otp::Generator::dummy().matching(&submitted, otp::login_window(counter));
            return Ok(false);
        };
        let bytes = otp::decode_base32(secret)
            .ok()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| self.inner.invalid_stored_secret(user_id))?;
        let matched = otp::Generator::new(&bytes).matching(&submitted, otp::login_window(counter));
        let last_used = state.last_used.get(user_id).copied();
        let fresh = matched
            .into_iter()
            .filter(|&c| last_used.is_none_or(|last| c > last))
            .max();
        match fresh {
            Some(counter) => {
                state.last_used.insert(user_id.to_owned(), counter);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn storage_key(&self) -> Option<&str> {
        Some(STORAGE_KEY)
    }
}
