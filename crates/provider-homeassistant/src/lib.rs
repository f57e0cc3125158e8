//! The `homeassistant` auth provider for hass-auth: local usernames and passwords, stored in
//! `.storage/auth_provider.homeassistant` in Home Assistant's format.
//!
//! ```yaml
//! homeassistant:
//!   auth_providers:
//!     - type: homeassistant
//!       # optional, default true: replace a Home Assistant bcrypt hash by an argon2id hash
//!       # after the user's next successful login (one-way, see below)
//!       rehash_legacy_hashes: true
//! ```
//!
//! Like Home Assistant, the provider allows at most one instance: the key `id` is refused
//! (`ID is not allowed for the homeassistant auth provider.`). Other unknown keys are ignored
//! (with a warning), as Home Assistant ignores them.
//!
//! # Users and usernames
//!
//! The file holds `{"users": [{"username", "password"}]}`. Usernames are compared after
//! [`normalize_username`] (Python's `strip()` then `casefold()`) on both sides, so
//! `JÖRG-STRASSE-ΣΑΣ` logs in as `jörg-strasse-σασ`. New usernames ([`PasswordAdmin::add_auth`],
//! [`PasswordAdmin::change_username`]) must already be normalised and unique, else
//! `ProviderError::InvalidUsername` with Home Assistant's translation key and message.
//!
//! # Passwords: a one-way migration to argon2id
//!
//! Home Assistant stores `base64(bcrypt)` (`$2b$12$`, first 72 bytes of the UTF-8 password).
//! hass-auth still verifies those, but every password **it** sets (add user, change password)
//! is an **argon2id** PHC string (`$argon2id$v=19$…`), hashed with the host's password policy.
//! With `rehash_legacy_hashes: true` (the default) a bcrypt hash is also replaced by argon2id
//! after the user's next successful login — except for passwords longer than 72 bytes, which
//! stay bcrypt so that the password keeps meaning exactly what it meant under bcrypt's
//! truncation. **Home Assistant cannot verify argon2id hashes**: once a password was set or
//! re-hashed by hass-auth, that user can no longer sign in if the file is handed back to Home
//! Assistant. Set `rehash_legacy_hashes: false` to keep existing bcrypt hashes as they are.
//!
//! # Timing and threads
//!
//! [`PasswordAdmin::validate_login`] scans every user without stopping at a match. For an
//! unknown username it still burns one verification: a bcrypt cost-12 check (Home Assistant's
//! dummy hash) while the store holds only bcrypt hashes, otherwise (empty or partly migrated
//! store) one argon2id check under the current policy. In a partly migrated store an unknown
//! username thus costs as much as an argon2id user, not as much as a remaining bcrypt user.
//! All hashing and verification runs on `tokio::task::spawn_blocking`, never on async workers.
//!
//! # Storage
//!
//! The file is loaded on first use (or by [`auth_core::AuthProvider::initialize`]); loading is
//! serialised. A missing file is an empty table; a file that cannot be parsed is an error that
//! names the file, and the file is never treated as empty nor overwritten. Every change is
//! saved (atomically, mode 0600) before the operation returns.

#![forbid(unsafe_code)]

use std::sync::Arc;

#[cfg(doc)]
use auth_core::PasswordAdmin;
use auth_core::{AuthProvider, PluginConfigError, PluginContext, PluginSpec};
use schemars::JsonSchema;
use serde::Deserialize;

mod flow;
mod normalize;
mod provider;
mod store;

pub use flow::login_schema;
pub use normalize::{is_normalized, is_python_whitespace, normalize_username};
pub use provider::HomeAssistantProvider;
pub use store::{STORAGE_KEY, STORAGE_MINOR_VERSION, STORAGE_VERSION};

/// The config `type` of this provider.
pub const PROVIDER_TYPE: &str = "homeassistant";
/// Display name when `name` is not configured.
pub const DEFAULT_NAME: &str = "Home Assistant Local";
/// The error for a configured `id` (Home Assistant's message).
pub const ID_NOT_ALLOWED: &str = "ID is not allowed for the homeassistant auth provider.";

/// This provider's own config keys. Unknown keys are ignored (as Home Assistant does).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
pub struct Config {
    /// Replace a Home Assistant bcrypt hash by an argon2id hash after a successful login
    /// (one-way: Home Assistant cannot read argon2id). Default: true.
    #[serde(default = "default_true")]
    pub rehash_legacy_hashes: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rehash_legacy_hashes: true,
        }
    }
}

fn default_true() -> bool {
    true
}

/// Keys of [`Config`]; anything else in the entry is ignored with a warning.
const KNOWN_KEYS: &[&str] = &["rehash_legacy_hashes"];

impl HomeAssistantProvider {
    /// Builds the provider from a configured entry (refuses `id`, as Home Assistant does).
    ///
    /// # Errors
    ///
    /// [`ID_NOT_ALLOWED`] when the entry has an `id`.
    pub fn from_spec(
        config: Config,
        spec: &PluginSpec,
        ctx: &PluginContext,
    ) -> Result<Self, PluginConfigError> {
        if spec.id.is_some() {
            return Err(PluginConfigError(ID_NOT_ALLOWED.to_owned()));
        }
        if let Some(entry) = spec.config.as_object() {
            for key in entry.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
                tracing::warn!(
                    key = key.as_str(),
                    "ignoring unknown key of the homeassistant auth provider"
                );
            }
        }
        Ok(Self::new(
            config,
            spec.name.clone(),
            ctx.storage.clone(),
            ctx.password_policy.clone(),
        ))
    }
}

auth_core::register_provider! {
    kind: "homeassistant",
    default_name: "Home Assistant Local",
    config: Config,
    build: |config: Config, spec: PluginSpec, ctx: &PluginContext| {
        HomeAssistantProvider::from_spec(config, &spec, ctx)
            .map(|provider| Arc::new(provider) as Arc<dyn AuthProvider>)
    },
}

#[cfg(test)]
mod tests;
