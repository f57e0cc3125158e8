#![deny(unused_crate_dependencies)]
//! Builds hass-auth's [`AuthManager`](auth_core::AuthManager) from Home Assistant's
//! `configuration.yaml`; every provider and MFA module crate is a cargo feature (all on by
//! default).
//!
//! ```yaml
//! homeassistant:
//!   auth_providers:                 # absent: [{type: homeassistant}]
//!     - type: homeassistant
//!     - type: trusted_networks
//!       trusted_networks: [192.168.0.0/24]
//!     - type: legacy_api_password
//!       api_password: !secret api_password      # from secrets.yaml next to this file
//!       modules:                    # required MFA for every login through this provider
//!         - type: totp              # the totp module below (one instance per module id)
//!           enroll: false           # refuse logins not set up yet (default: enrol them)
//!   auth_mfa_modules:               # absent: [{type: totp, id: totp, name: Authenticator app}]
//!     - type: totp
//! http:
//!   server_port: !env_var HASS_AUTH_PORT 8123
//!   use_x_forwarded_for: true
//!   trusted_proxies: [172.30.33.0/24]
//! automation: !include automations.yaml           # other sections are ignored, never read
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), auth_host::HostError> {
//! // Reads /config/configuration.yaml, locks /config/.storage, starts the manager.
//! let host = auth_host::Host::from_config_dir("/config").await?;
//! println!("{} providers", host.manager().auth_providers().len());
//! # Ok(()) }
//! ```
//!
//! Or step by step: [`load_config`] (or [`ConfigLoader`]) gives a checked [`HostConfig`];
//! [`auth_manager_from_config`] builds the manager over any [`Storage`](auth_core::Storage).
//!
//! # How the YAML is read
//!
//! The text is parsed into a tree that keeps every tag and every node's line and column. Tags
//! are resolved only in the sections hass-auth reads (`homeassistant: auth_providers /
//! auth_mfa_modules`, `http:`): `!secret name` (from `secrets.yaml` in the file's folder, then its
//! parents up to the configuration directory), `!env_var NAME [default]`, `!include file`
//! (relative to the including file; cycles are errors). Any other tag there is an error: a tag is
//! never dropped, so `api_password: !secret pw` is the secret's value or an error, never "pw".
//! Plain scalars are typed as Home Assistant's YAML 1.1 loader does (`on` is `true`, `0755` is
//! 493). Each entry's own keys are then handed to its plugin (`deny_unknown_fields` structs),
//! once at load time against a scratch in-memory store so that every mistake is reported with
//! `file:line:column` and key path, and again when the manager is built. A provider's `modules:`
//! key (its required MFA chain, see [`ChainModule`] and `docs/configuration.md`) is the host's:
//! it is taken out before the provider sees its keys, and each chain entry (`enroll` taken out) is
//! an MFA module entry.
//!
//! # Differences from Home Assistant
//!
//! * `type: insecure_example` (and any plugin registered `testing_only`) is accepted with a loud
//!   warning instead of being refused ("... is for testing only.").
//! * `modules:` on a provider entry (Home Assistant's first auth-module design) is a required MFA
//!   chain; Home Assistant refuses or ignores it.
//! * Duplicate keys in the sections hass-auth reads are errors (PyYAML keeps the last one).
//! * The `http:` settings are read from YAML (Home Assistant 2026.8 moved them to `.storage/http`);
//!   `http: frontend_dir` is hass-auth's own key; `ssl_*` keys are ignored with a warning.

mod config;
mod error;
mod host;
mod http;
mod http_store;
mod plugins;
mod resolve;
mod schema;
mod yaml;

pub use config::{ChainModule, ConfigLoader, HostConfig, PluginEntry, load_config, parse_config};
pub use error::{ConfigError, HostError, Location};
pub use host::{Host, HostOptions, auth_manager_from_config};
pub use http::{
    DEFAULT_BAN_DURATION_SECS, DEFAULT_CORS_ORIGIN, DEFAULT_PORT, HttpOptions,
    NO_LOGIN_ATTEMPT_THRESHOLD, SSL_INTERMEDIATE, SSL_MODERN,
};
pub use http_store::HTTP_STORE_VERSION;
pub use plugins::{BUILTIN_PLUGINS, BuiltinPlugin, PluginRole};
pub use schema::{config_schema, config_schema_filtered};

#[cfg(test)]
mod tests;

/// The README's examples, compiled and run as doctests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
