//! The `notify` MFA module for hass-auth: a one-time code (HOTP, as Home Assistant's `notify`
//! module) sent to the user through a configured delivery, compatible with Home Assistant's
//! `.storage/auth_module.notify`.
//!
//! ```yaml
//! homeassistant:
//!   auth_mfa_modules:
//!     - type: notify
//!       message: "{} is your Home Assistant login code"   # optional (this is the default)
//!       include: [phone]                 # optional: offer only these services
//!       exclude: []                      # optional: never offer these
//!       services:                        # hass-auth only: how each notify service delivers
//!         phone:                         # the name users choose (and Home Assistant stored)
//!           webhook: https://ntfy.example.org/home-login   # POST {"message": ..., "target": [...]}
//!         sms:
//!           command: [/usr/local/bin/send-sms, --quiet]    # message on stdin, no shell
//!           timeout: 10                  # seconds (default 10)
//! ```
//!
//! Home Assistant sends through its `notify.<service>` services; hass-auth has none, so each
//! service a user may pick is declared under `services:` (a Home Assistant config without it
//! starts, offers no service to new users, and a login of a user enrolled with an undeclared
//! service fails with a clear error).
//!
//! * **Codes**: for every login (and setup) a new 160-bit secret and a random 32-digit counter;
//!   code = HOTP-SHA1, 6 digits, with Home Assistant's counter encoding
//!   ([`auth_crypto::hotp::hotp_sha1`]). Codes are kept in memory only, compared in constant
//!   time, and (unlike Home Assistant) forgotten once accepted.
//! * **Login** (`mfa` step, field `code`, 3 wrong codes allowed): the code is sent when the form
//!   is first shown; a failed delivery fails the step.
//! * **Setup** (steps `init`: choose `notify_service` and an optional `target`; `setup`: the
//!   code sent there, resent on every display): the choice is saved once the code is confirmed.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{Field, Flow, Schema};
use auth_core::{
    MfaError, MfaModule, PluginConfigError, PluginContext, PluginIdentity, PluginSpec, SaveOptions,
    SharedRng, Storage,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

mod delivery;
mod setup;
mod store;

#[cfg(test)]
mod tests;

pub use delivery::{DEFAULT_TIMEOUT_SECS, Delivery};
pub use store::{NotifySetting, STORAGE_KEY, STORAGE_MINOR_VERSION, STORAGE_VERSION};

/// The config `type`.
pub const MODULE_TYPE: &str = "notify";
/// Display name when `name` is not configured.
pub const DEFAULT_NAME: &str = "Notify One-Time Password";
/// Wrong codes allowed per login flow (Home Assistant's `MAX_RETRY_TIME` for notify).
pub const MAX_RETRY: u32 = 3;
/// Default message; `{}` is replaced by the code.
pub const DEFAULT_MESSAGE: &str = "{} is your Home Assistant login code";
/// Digits of a code.
pub const DIGITS: u32 = 6;

/// A string or a list of strings (Home Assistant's `cv.ensure_list`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StringOrList {
    /// One name.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

impl StringOrList {
    fn names(&self) -> Vec<String> {
        match self {
            Self::One(name) => vec![name.clone()],
            Self::Many(names) => names.clone(),
        }
    }
}

/// The module's own config keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Offer only these services (none: no filter).
    #[serde(default)]
    pub include: Option<StringOrList>,
    /// Never offer these services.
    #[serde(default)]
    pub exclude: Option<StringOrList>,
    /// The message; `{}` is replaced by the code.
    #[serde(default)]
    pub message: Option<String>,
    /// hass-auth only: how each notify service delivers.
    #[serde(default)]
    pub services: BTreeMap<String, Delivery>,
}

auth_core::register_mfa_module! {
    kind: "notify",
    default_name: "Notify One-Time Password",
    config: Config,
    build: |config, spec, ctx| Ok(Arc::new(NotifyModule::new(config, &spec, ctx)?) as _),
}

/// The `notify` MFA module.
pub struct NotifyModule {
    identity: PluginIdentity,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NotifyModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyModule")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl NotifyModule {
    /// A module from its config entry; refuses a service with an unusable delivery.
    pub fn new(
        config: Config,
        spec: &PluginSpec,
        ctx: &PluginContext,
    ) -> Result<Self, PluginConfigError> {
        for (service, delivery) in &config.services {
            if let Some(problem) = delivery.problem() {
                return Err(PluginConfigError(format!("services.{service}: {problem}")));
            }
        }
        Ok(Self {
            identity: PluginIdentity::from_spec(MODULE_TYPE, DEFAULT_NAME, spec),
            inner: Arc::new(Inner {
                storage: ctx.storage.clone(),
                changed: auth_core::ChangeFlag::new(ctx.storage.clone(), STORAGE_KEY),
                rng: ctx.rng.clone(),
                sender: delivery::Sender::new(),
                config,
                state: tokio::sync::Mutex::new(State::default()),
            }),
        })
    }

    /// The services a user may choose: the configured ones, filtered by `include`/`exclude`,
    /// sorted (as Home Assistant lists them).
    pub fn available_services(&self) -> Vec<String> {
        self.inner.available_services()
    }
}

/// A code waiting to be entered: HOTP key and counter.
#[derive(Clone)]
pub(crate) struct PendingCode {
    key: [u8; 20],
    counter: u128,
}

impl PendingCode {
    pub(crate) fn new(rng: &SharedRng) -> Self {
        let mut key = [0u8; 20];
        rng.fill(&mut key);
        let mut raw = [0u8; 16];
        rng.fill(&mut raw);
        // A random 32-digit decimal number, as Home Assistant's counter.
        let counter = u128::from_be_bytes(raw) % 10u128.pow(32);
        Self { key, counter }
    }

    pub(crate) fn code(&self) -> String {
        auth_crypto::hotp::hotp_sha1(&self.key, self.counter, DIGITS)
    }

    pub(crate) fn matches(&self, submitted: &str) -> bool {
        auth_crypto::constant_time_eq(self.code().as_bytes(), submitted.as_bytes())
    }
}

/// What the module and its setup flows share.
pub(crate) struct Inner {
    storage: Arc<dyn Storage>,
    /// Set when another instance changed the store (see `auth_core::ChangeFlag`).
    changed: auth_core::ChangeFlag,
    pub(crate) rng: SharedRng,
    sender: Arc<delivery::Sender>,
    config: Config,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    loaded: bool,
    settings: store::Settings,
    /// User id -> the code sent for the login in progress (memory only).
    pending: HashMap<String, PendingCode>,
}

impl Inner {
    async fn state(&self) -> Result<tokio::sync::MutexGuard<'_, State>, MfaError> {
        let mut state = self.state.lock().await;
        // Another instance's change (a shared database) is read before this one's next use.
        let changed = self.changed.take();
        if changed || !state.loaded {
            state.settings = match self.storage.load(STORAGE_KEY).await? {
                Some(doc) => store::parse(self.storage.as_ref(), &doc)?,
                None => Default::default(),
            };
            state.loaded = true;
        }
        Ok(state)
    }

    pub(crate) fn available_services(&self) -> Vec<String> {
        let include = self.config.include.as_ref().map(StringOrList::names);
        let exclude = self
            .config
            .exclude
            .as_ref()
            .map(StringOrList::names)
            .unwrap_or_default();
        let mut names: Vec<String> = self
            .config
            .services
            .keys()
            .filter(|s| !exclude.contains(s))
            .filter(|s| {
                include
                    .as_ref()
                    .is_none_or(|i| i.is_empty() || i.contains(s))
            })
            .cloned()
            .collect();
        names.sort();
        names
    }

    pub(crate) fn has_service(&self, service: &str) -> bool {
        self.config.services.contains_key(service)
    }

    fn message(&self, code: &str) -> String {
        self.config
            .message
            .as_deref()
            .unwrap_or(DEFAULT_MESSAGE)
            .replacen("{}", code, 1)
    }

    /// Sends `code` through `service` to `target`.
    pub(crate) async fn send(
        &self,
        service: &str,
        target: Option<&str>,
        code: &PendingCode,
    ) -> Result<(), MfaError> {
        let Some(delivery) = self.config.services.get(service) else {
            return Err(MfaError::Failed(format!(
                "notify service '{service}' is not configured (add it under the notify module's 'services:')"
            )));
        };
        self.sender
            .send(service, delivery, &self.message(&code.code()), target)
            .await
            .map_err(|e| MfaError::Failed(e.0))
    }

    /// Saves `setting` for `user_id` (setup confirmed).
    pub(crate) async fn enrol(
        &self,
        user_id: &str,
        setting: NotifySetting,
    ) -> Result<(), MfaError> {
        let mut state = self.state().await?;
        let mut settings = state.settings.clone();
        settings.insert(user_id.to_owned(), setting);
        self.commit(&mut state, settings).await
    }

    async fn commit(&self, state: &mut State, settings: store::Settings) -> Result<(), MfaError> {
        self.storage
            .save(&store::document(&settings), SaveOptions { private: true })
            .await?;
        state.settings = settings;
        Ok(())
    }
}

/// The one field asked for, at setup and at login.
pub(crate) fn code_schema() -> Schema {
    Schema::new(vec![Field::string("code").required()])
}

#[async_trait]
impl MfaModule for NotifyModule {
    fn identity(&self) -> &PluginIdentity {
        &self.identity
    }

    fn max_retry(&self) -> u32 {
        MAX_RETRY
    }

    fn input_schema(&self) -> Schema {
        code_schema()
    }

    async fn initialize(&self) -> Result<(), MfaError> {
        let state = self.inner.state().await?;
        for (user_id, setting) in &state.settings {
            if !self.inner.has_service(&setting.notify_service) {
                tracing::warn!(
                    user_id,
                    service = setting.notify_service.as_str(),
                    "a user is enrolled in notify MFA with a service that has no delivery under 'services:'; their logins will fail"
                );
            }
        }
        Ok(())
    }

    async fn setup_flow(
        &self,
        user_id: &str,
        _user_name: Option<&str>,
    ) -> Result<Box<dyn Flow>, MfaError> {
        Ok(Box::new(setup::SetupFlow::new(self.inner.clone(), user_id)))
    }

    /// Enrols directly with `data.notify_service` (a configured service) and `data.target`.
    async fn setup_user(
        &self,
        user_id: &str,
        data: &Map<String, Value>,
    ) -> Result<Value, MfaError> {
        let Some(Value::String(service)) = data.get("notify_service") else {
            return Err(MfaError::InvalidInput(
                "'notify_service' (a string) is required".into(),
            ));
        };
        if !self.inner.has_service(service) {
            return Err(MfaError::InvalidInput(format!(
                "notify service '{service}' is not configured"
            )));
        }
        let target = match data.get("target") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => Some(t.clone()),
            Some(_) => return Err(MfaError::InvalidInput("'target' must be a string".into())),
        };
        self.inner
            .enrol(
                user_id,
                NotifySetting {
                    notify_service: service.clone(),
                    target,
                },
            )
            .await?;
        Ok(Value::Null)
    }

    async fn depose_user(&self, user_id: &str) -> Result<(), MfaError> {
        let mut state = self.inner.state().await?;
        state.pending.remove(user_id);
        if !state.settings.contains_key(user_id) {
            return Ok(());
        }
        let mut settings = state.settings.clone();
        settings.shift_remove(user_id);
        self.inner.commit(&mut state, settings).await
    }

    async fn is_user_setup(&self, user_id: &str) -> Result<bool, MfaError> {
        Ok(self.inner.state().await?.settings.contains_key(user_id))
    }

    async fn validate(&self, user_id: &str, input: &Map<String, Value>) -> Result<bool, MfaError> {
        let submitted = input.get("code").and_then(Value::as_str).unwrap_or("");
        let mut state = self.inner.state().await?;
        let accepted = state
            .pending
            .get(user_id)
            .is_some_and(|pending| pending.matches(submitted));
        if accepted {
            state.pending.remove(user_id);
        }
        Ok(accepted)
    }

    async fn begin_login(&self, user_id: &str) -> Result<(), MfaError> {
        let setting = {
            let state = self.inner.state().await?;
            state.settings.get(user_id).cloned()
        };
        let Some(setting) = setting else {
            return Err(MfaError::Failed(format!(
                "user '{user_id}' has no notify settings"
            )));
        };
        let code = PendingCode::new(&self.inner.rng);
        self.inner
            .state()
            .await?
            .pending
            .insert(user_id.to_owned(), code.clone());
        self.inner
            .send(&setting.notify_service, setting.target.as_deref(), &code)
            .await
    }

    fn storage_key(&self) -> Option<&str> {
        Some(STORAGE_KEY)
    }
}
