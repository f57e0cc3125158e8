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
//! ```
//!
//! * Login (`mfa` step): field `pin`; valid when an entry for the user has exactly that PIN.
//!   Compared in constant time (Home Assistant uses a plain comparison). Three wrong PINs abort
//!   the login.
//! * Setup flow: one form `init` with field `pin`; submitting sets (or replaces) the user's PIN in
//!   memory and finishes with `data: {"result": null}`.
//! * Disabling removes the user's PIN(s).

#![forbid(unsafe_code)]

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use auth_core::flow_engine::{Field, Flow, FlowError, FlowResult, Schema};
use auth_core::{MfaError, MfaModule, PluginSpec};
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The PINs known at start.
    pub data: Vec<PinEntry>,
}

/// One user's PIN.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PinEntry {
    /// The user's id.
    pub user_id: String,
    /// The PIN, in plain text.
    pub pin: String,
}

auth_core::register_mfa_module! {
    kind: "insecure_example",
    default_name: "Insecure Personal Identify Number",
    config: Config,
    build: |config, spec, _ctx| Ok(Arc::new(InsecureExampleModule::new(config, &spec)) as _),
    testing_only: true,
}

/// The `insecure_example` MFA module (testing only).
#[derive(Debug)]
pub struct InsecureExampleModule {
    id: String,
    name: String,
    entries: Arc<Mutex<Vec<PinEntry>>>,
}

impl InsecureExampleModule {
    /// A module from its config entry: id = `id` or `insecure_example`, name = `name` or
    /// [`DEFAULT_NAME`].
    pub fn new(config: Config, spec: &PluginSpec) -> Self {
        Self {
            id: spec.id.clone().unwrap_or_else(|| MODULE_TYPE.to_owned()),
            name: spec.name.clone().unwrap_or_else(|| DEFAULT_NAME.to_owned()),
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
    match entries.iter().position(|e| e.user_id == user_id) {
        Some(first) => {
            entries[first].pin = pin.to_owned();
            let mut index = 0;
            entries.retain(|e| {
                let keep = index <= first || e.user_id != user_id;
                index += 1;
                keep
            });
        }
        None => entries.push(PinEntry {
            user_id: user_id.to_owned(),
            pin: pin.to_owned(),
        }),
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
    fn id(&self) -> &str {
        &self.id
    }

    fn module_type(&self) -> &str {
        MODULE_TYPE
    }

    fn name(&self) -> &str {
        &self.name
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

    /// Removes every PIN of the user (Home Assistant removes only the first entry).
    async fn depose_user(&self, user_id: &str) -> Result<(), MfaError> {
        lock(&self.entries).retain(|e| e.user_id != user_id);
        Ok(())
    }

    async fn is_user_setup(&self, user_id: &str) -> Result<bool, MfaError> {
        Ok(lock(&self.entries).iter().any(|e| e.user_id == user_id))
    }

    async fn validate(&self, user_id: &str, input: &Map<String, Value>) -> Result<bool, MfaError> {
        let Some(submitted) = input.get("pin").and_then(Value::as_str) else {
            return Ok(false);
        };
        let entries = lock(&self.entries);
        // Every entry of the user is compared; no early exit.
        let mut valid = false;
        for entry in entries.iter().filter(|e| e.user_id == user_id) {
            valid |= auth_crypto::constant_time_eq(entry.pin.as_bytes(), submitted.as_bytes());
        }
        Ok(valid)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
