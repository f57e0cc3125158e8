//! Plugin registration over `inventory`: providers and MFA modules announce themselves with
//! [`crate::register_provider!`] / [`crate::register_mfa_module!`]; hosts look them up by `type`.
//!
//! A plugin crate that is a dependency but never named in code is not linked, and its registration
//! silently vanishes: hosts must force-link every plugin crate (see `auth-host/src/plugins.rs`).

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::clock::SharedClock;
use crate::mfa::MfaModule;
use crate::provider::AuthProvider;
use crate::rng::SharedRng;
use crate::storage::Storage;

pub use auth_crypto::PasswordPolicy;

/// A plugin's configuration was rejected; the message says which key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PluginConfigError(pub String);

/// What every plugin may use when it is built.
#[derive(Clone, Debug)]
pub struct PluginContext {
    /// Where plugins keep their data (`.storage`).
    pub storage: Arc<dyn Storage>,
    /// Time source.
    pub clock: SharedClock,
    /// Random source.
    pub rng: SharedRng,
    /// Hashing policy for new passwords.
    pub password_policy: PasswordPolicy,
    /// Networks of trusted reverse proxies (`http: trusted_proxies`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// One configured plugin entry: the common keys, and the rest for the plugin's own config struct.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginSpec {
    /// Config `id`.
    pub id: Option<String>,
    /// Config `name`.
    pub name: Option<String>,
    /// The entry's other keys (without `type`, `name`, `id`).
    pub config: Value,
}

impl PluginSpec {
    /// Deserialises the plugin's own keys into its (`deny_unknown_fields`) config struct.
    pub fn parse_config<T: DeserializeOwned>(&self) -> Result<T, PluginConfigError> {
        let config = match &self.config {
            Value::Null => Value::Object(Default::default()),
            other => other.clone(),
        };
        serde_json::from_value(config).map_err(|e| PluginConfigError(e.to_string()))
    }
}

/// Builds a provider from its spec.
pub type ProviderBuilder =
    fn(PluginSpec, &PluginContext) -> Result<Arc<dyn AuthProvider>, PluginConfigError>;
/// Builds an MFA module from its spec.
pub type MfaBuilder =
    fn(PluginSpec, &PluginContext) -> Result<Arc<dyn MfaModule>, PluginConfigError>;

/// A provider type compiled into this build.
#[derive(Debug)]
pub struct ProviderRegistration {
    /// The config `type`.
    pub kind: &'static str,
    /// Display name when `name` is not configured.
    pub default_name: &'static str,
    /// Whether the provider is only meant for testing (hosts warn loudly).
    pub testing_only: bool,
    /// JSON Schema of the plugin's own keys.
    pub config_schema: fn() -> schemars::Schema,
    /// Builds an instance.
    pub build: ProviderBuilder,
}

/// An MFA module type compiled into this build.
#[derive(Debug)]
pub struct MfaRegistration {
    /// The config `type`.
    pub kind: &'static str,
    /// Display name when `name` is not configured.
    pub default_name: &'static str,
    /// Whether the module is only meant for testing (hosts warn loudly).
    pub testing_only: bool,
    /// JSON Schema of the plugin's own keys.
    pub config_schema: fn() -> schemars::Schema,
    /// Builds an instance.
    pub build: MfaBuilder,
}

inventory::collect!(ProviderRegistration);
inventory::collect!(MfaRegistration);

/// Every provider type linked into this binary, sorted by kind.
pub fn provider_registrations() -> Vec<&'static ProviderRegistration> {
    let mut all: Vec<_> = inventory::iter::<ProviderRegistration>
        .into_iter()
        .collect();
    all.sort_by_key(|r| r.kind);
    all
}

/// Every MFA module type linked into this binary, sorted by kind.
pub fn mfa_registrations() -> Vec<&'static MfaRegistration> {
    let mut all: Vec<_> = inventory::iter::<MfaRegistration>.into_iter().collect();
    all.sort_by_key(|r| r.kind);
    all
}

/// The provider registration for `kind`, if linked.
pub fn find_provider(kind: &str) -> Option<&'static ProviderRegistration> {
    inventory::iter::<ProviderRegistration>
        .into_iter()
        .find(|r| r.kind == kind)
}

/// The MFA module registration for `kind`, if linked.
pub fn find_mfa_module(kind: &str) -> Option<&'static MfaRegistration> {
    inventory::iter::<MfaRegistration>
        .into_iter()
        .find(|r| r.kind == kind)
}

/// Registers an auth provider type.
///
/// ```text
/// auth_core::register_provider! {
///     kind: "example",
///     default_name: "Example",
///     config: Config,                      // #[derive(Deserialize, JsonSchema)] #[serde(deny_unknown_fields)]
///     build: |config: Config, spec: PluginSpec, ctx: &PluginContext| Ok(Arc::new(Example::new(config, spec, ctx)) as _),
/// }
/// ```
#[macro_export]
macro_rules! register_provider {
    (kind: $kind:literal, default_name: $default:literal, config: $cfg:ty, build: $build:expr $(, testing_only: $testing:literal)? $(,)?) => {
        const _: () = {
            fn __hass_auth_build(
                spec: $crate::registry::PluginSpec,
                ctx: &$crate::registry::PluginContext,
            ) -> ::std::result::Result<::std::sync::Arc<dyn $crate::provider::AuthProvider>, $crate::registry::PluginConfigError> {
                let config: $cfg = spec.parse_config()?;
                let build: fn(
                    $cfg,
                    $crate::registry::PluginSpec,
                    &$crate::registry::PluginContext,
                ) -> ::std::result::Result<::std::sync::Arc<dyn $crate::provider::AuthProvider>, $crate::registry::PluginConfigError> = $build;
                build(config, spec, ctx)
            }
            fn __hass_auth_schema() -> $crate::__private::schemars::Schema {
                $crate::__private::schemars::schema_for!($cfg)
            }
            $crate::__private::inventory::submit! {
                $crate::registry::ProviderRegistration {
                    kind: $kind,
                    default_name: $default,
                    testing_only: false $(|| $testing)?,
                    config_schema: __hass_auth_schema,
                    build: __hass_auth_build,
                }
            }
        };
    };
}

/// Registers an MFA module type (same shape as [`register_provider!`]).
#[macro_export]
macro_rules! register_mfa_module {
    (kind: $kind:literal, default_name: $default:literal, config: $cfg:ty, build: $build:expr $(, testing_only: $testing:literal)? $(,)?) => {
        const _: () = {
            fn __hass_auth_build(
                spec: $crate::registry::PluginSpec,
                ctx: &$crate::registry::PluginContext,
            ) -> ::std::result::Result<::std::sync::Arc<dyn $crate::mfa::MfaModule>, $crate::registry::PluginConfigError> {
                let config: $cfg = spec.parse_config()?;
                let build: fn(
                    $cfg,
                    $crate::registry::PluginSpec,
                    &$crate::registry::PluginContext,
                ) -> ::std::result::Result<::std::sync::Arc<dyn $crate::mfa::MfaModule>, $crate::registry::PluginConfigError> = $build;
                build(config, spec, ctx)
            }
            fn __hass_auth_schema() -> $crate::__private::schemars::Schema {
                $crate::__private::schemars::schema_for!($cfg)
            }
            $crate::__private::inventory::submit! {
                $crate::registry::MfaRegistration {
                    kind: $kind,
                    default_name: $default,
                    testing_only: false $(|| $testing)?,
                    config_schema: __hass_auth_schema,
                    build: __hass_auth_build,
                }
            }
        };
    };
}
