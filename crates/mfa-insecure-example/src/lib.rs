//! The `insecure_example` MFA module for hass-auth: a PIN per user, kept in memory.
//!
//! **FOR TESTING ONLY. DO NOT USE IN PRODUCTION.** PINs are written in plain text in the
//! configuration, PINs set through the setup flow are forgotten at restart, and nothing limits
//! guessing beyond the login flow's three tries. Home Assistant refuses this module in YAML
//! (`The insecure_example mfa module is for testing only.`); hosts warn loudly because it is
//! registered with `testing_only: true`.
//!
//! ```yaml
//! homeassistant:
//!   auth_mfa_modules:
//!     - type: insecure_example
//!       data:
//!         - user_id: a1b2c3d4e5f60718293a4b5c6d7e8f90
//!           pin: "123456"
//!   auth_providers:
//!     - type: legacy_api_password
//!       api_password: !secret api_password
//!       modules:                      # a required chain: every login must pass these
//!         - type: insecure_example
//!           id: legacy_pin
//!           users:                    # `users` is another name for `data`
//!             - username: homeassistant
//!               pin: "123456"
//! ```
//!
//! * Each entry names the user by `user_id`, or by `username`: the username of the login's
//!   credentials (their data `username`; see `AuthProvider::credential_username`). Username
//!   entries are meant for a provider's required chain, where the login may not belong to a user
//!   yet; opt-in MFA (`auth_mfa_modules`) only looks at `user_id` entries.
//! * Login (`mfa` step): field `pin`; valid when an entry for the user (or, in a chain, for the
//!   login's username) has exactly that PIN. Compared in constant time (Home Assistant uses a
//!   plain comparison). Three wrong PINs abort the login.
//! * Setup flow: one form `init` with field `pin`; submitting sets (or replaces) the user's PIN in
//!   memory and finishes with `data: {"result": null}`.
//! * Disabling removes the user's `user_id` PIN(s); `username` entries stay (they belong to the
//!   configuration, not to the user).

#![forbid(unsafe_code)]

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use auth_core::flow_engine::{Field, Flow, FlowError, FlowResult, Schema};
use auth_core::{MfaError, MfaModule, MfaSubject, PluginConfigError, PluginIdentity, PluginSpec};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[cfg(test)]
mod tests;

/// The config `type`.
pub const MODULE_TYPE: &str = "insecure_example";
/// Display name when `name` is not configured (Home Assistant's spelling).
pub const DEFAULT_NAME: &str = "Insecure Personal Identify Number";
/// Wrong PINs allowed per login flow.
pub const MAX_RETRY: u32 = 3;

/// The module's own config keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The PINs known at start (also accepted as `users`).
    #[serde(alias = "users")]
    pub data: Vec<PinEntry>,
}

impl Config {
    /// Checks that every entry names exactly one of `user_id` and `username`.
    pub fn check(&self) -> Result<(), PluginConfigError> {
        for (i, entry) in self.data.iter().enumerate() {
            match (&entry.user_id, &entry.username) {
                (Some(_), None) | (None, Some(_)) => {}
                (Some(_), Some(_)) => {
                    return Err(PluginConfigError(format!(
                        "data[{i}]: give either `user_id` or `username`, not both"
                    )));
                }
                (None, None) => {
                    return Err(PluginConfigError(format!(
                        "data[{i}]: missing field `user_id` (or `username`)"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The schema of [`Config`]: `data` or its other name `users` (schemars does not describe
/// serde aliases).
impl JsonSchema for Config {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Config".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let entries = generator.subschema_for::<Vec<PinEntry>>();
        let described = |description: &str| {
            let mut schema = entries.clone();
            schema.insert("description".to_owned(), description.into());
            schema
        };
        schemars::json_schema!({
            "type": "object",
            "properties": {
                "data": described("The PINs known at start."),
                "users": described("Another name for `data`."),
            },
            "oneOf": [{"required": ["data"]}, {"required": ["users"]}],
            "additionalProperties": false,
        })
    }
}

/// A field that may be left out but is not `null` when given.
fn not_null(schema: &mut schemars::Schema) {
    schema.insert("type".to_owned(), "string".into());
}

/// One PIN, for a user (`user_id`) or for the logins with a username (`username`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["user_id"]}, {"required": ["username"]}]))]
pub struct PinEntry {
    /// The user's id.
    #[schemars(transform = not_null)]
    pub user_id: Option<String>,
    /// The login's username (credentials data `username`); used by required chains.
    #[schemars(transform = not_null)]
    pub username: Option<String>,
    /// The PIN, in plain text.
    pub pin: String,
}

impl PinEntry {
    /// An entry for user `user_id`.
    pub fn for_user(user_id: impl Into<String>, pin: impl Into<String>) -> Self {
        Self {
            user_id: Some(user_id.into()),
            username: None,
            pin: pin.into(),
        }
    }

    /// An entry for logins with username `username`.
    pub fn for_username(username: impl Into<String>, pin: impl Into<String>) -> Self {
        Self {
            user_id: None,
            username: Some(username.into()),
            pin: pin.into(),
        }
    }

    fn matches(&self, subject: &MfaSubject) -> bool {
        let by_user = self.user_id.is_some() && self.user_id == subject.user_id;
        let by_name = self.username.is_some() && self.username == subject.username;
        by_user || by_name
    }
}

auth_core::register_mfa_module! {
    kind: "insecure_example",
    default_name: "Insecure Personal Identify Number",
    config: Config,
    build: |config, spec, _ctx| {
        config.check()?;
        Ok(Arc::new(InsecureExampleModule::new(config, &spec)) as _)
    },
    testing_only: true,
}

/// The `insecure_example` MFA module (testing only).
#[derive(Debug)]
pub struct InsecureExampleModule {
    identity: PluginIdentity,
    entries: Arc<Mutex<Vec<PinEntry>>>,
}

impl InsecureExampleModule {
    /// A module from its config entry: id = `id` or `insecure_example`, name = `name` or
    /// [`DEFAULT_NAME`].
    pub fn new(config: Config, spec: &PluginSpec) -> Self {
        Self {
            identity: PluginIdentity::from_spec(MODULE_TYPE, DEFAULT_NAME, spec),
            entries: Arc::new(Mutex::new(config.data)),
        }
    }

    /// The PIN entries currently known, in order.
    pub fn entries(&self) -> Vec<PinEntry> {
        lock(&self.entries).clone()
    }
}

/// The entries; a poisoned lock still holds consistent data (every update is one assignment).
fn lock(entries: &Mutex<Vec<PinEntry>>) -> MutexGuard<'_, Vec<PinEntry>> {
    entries
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sets `user_id`'s PIN: the first entry of the user is updated (Home Assistant), other entries
/// of the same user are dropped so that only the new PIN works.
fn set_pin(entries: &Mutex<Vec<PinEntry>>, user_id: &str, pin: &str) {
    let mut entries = lock(entries);
    let is_user = |e: &PinEntry| e.user_id.as_deref() == Some(user_id);
    match entries.iter().position(is_user) {
        Some(first) => {
            entries[first].pin = pin.to_owned();
            let mut index = 0;
            entries.retain(|e| {
                let keep = index <= first || !is_user(e);
                index += 1;
                keep
            });
        }
        None => entries.push(PinEntry::for_user(user_id, pin)),
    }
}

/// The subject of opt-in MFA: a user, no username.
fn user_subject(user_id: &str) -> MfaSubject {
    MfaSubject {
        user_id: Some(user_id.to_owned()),
        username: None,
    }
}

fn pin_of(data: &Map<String, Value>) -> Result<&str, MfaError> {
    data.get("pin")
        .and_then(Value::as_str)
        .ok_or_else(|| MfaError::InvalidInput("a string 'pin' is required".to_owned()))
}

fn pin_schema() -> Schema {
    Schema::new(vec![Field::string("pin").required()])
}

/// Home Assistant's generic setup flow: one form, any submitted input enrols.
struct SetupFlow {
    entries: Arc<Mutex<Vec<PinEntry>>>,
    user_id: String,
}

#[async_trait]
impl Flow for SetupFlow {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        if step_id != "init" {
            return Err(FlowError::UnknownStep(step_id.to_owned()));
        }
        match input.filter(|i| !i.is_empty()) {
            Some(input) => {
                let pin = pin_of(&input).map_err(|e| FlowError::Handler(e.to_string()))?;
                set_pin(&self.entries, &self.user_id, pin);
                Ok(FlowResult::create_entry(json!({ "result": null })))
            }
            None => Ok(FlowResult::form("init", Some(pin_schema())).with_errors(Map::new())),
        }
    }
}

#[async_trait]
impl MfaModule for InsecureExampleModule {
    fn identity(&self) -> &PluginIdentity {
        &self.identity
    }

    fn max_retry(&self) -> u32 {
        MAX_RETRY
    }

    fn input_schema(&self) -> Schema {
        pin_schema()
    }

    async fn setup_flow(
        &self,
        user_id: &str,
        _user_name: Option<&str>,
    ) -> Result<Box<dyn Flow>, MfaError> {
        Ok(Box::new(SetupFlow {
            entries: self.entries.clone(),
            user_id: user_id.to_owned(),
        }))
    }

    /// Sets the user's PIN from `data.pin`; returns `null`.
    async fn setup_user(
        &self,
        user_id: &str,
        data: &Map<String, Value>,
    ) -> Result<Value, MfaError> {
        set_pin(&self.entries, user_id, pin_of(data)?);
        Ok(Value::Null)
    }

    /// Removes every PIN of the user (Home Assistant removes only the first entry); `username`
    /// entries stay.
    async fn depose_user(&self, user_id: &str) -> Result<(), MfaError> {
        lock(&self.entries).retain(|e| e.user_id.as_deref() != Some(user_id));
        Ok(())
    }

    async fn is_user_setup(&self, user_id: &str) -> Result<bool, MfaError> {
        self.is_subject_setup(&user_subject(user_id)).await
    }

    async fn validate(&self, user_id: &str, input: &Map<String, Value>) -> Result<bool, MfaError> {
        self.validate_subject(&user_subject(user_id), input).await
    }

    /// Set up when an entry names the user or the login's username.
    async fn is_subject_setup(&self, subject: &MfaSubject) -> Result<bool, MfaError> {
        Ok(lock(&self.entries).iter().any(|e| e.matches(subject)))
    }

    async fn validate_subject(
        &self,
        subject: &MfaSubject,
        input: &Map<String, Value>,
    ) -> Result<bool, MfaError> {
        let Some(submitted) = input.get("pin").and_then(Value::as_str) else {
            return Ok(false);
        };
        let entries = lock(&self.entries);
        // Every entry of the user (or username) is compared; no early exit.
        let mut valid = false;
        for entry in entries.iter().filter(|e| e.matches(subject)) {
            valid |= auth_crypto::constant_time_eq(entry.pin.as_bytes(), submitted.as_bytes());
        }
        Ok(valid)
    }
}
