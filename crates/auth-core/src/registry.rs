//! Plugin registration over `inventory`: providers and MFA modules announce themselves with
//! [`crate::register_provider!`] / [`crate::register_mfa_module!`]; hosts look them up by `type`.
//!
//! A plugin crate that is a dependency but never named in code is not linked, and its registration
//! silently vanishes: hosts must force-link every plugin crate (see `auth-host/src/plugins.rs`).
//!
//! Each registration records the crate that made it; two crates registering one `type` are
//! refused at start by [`check_registrations`] (auth-host's configuration loader calls it).

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

/// Who a configured plugin is: its config `type`, `id` and display name. Providers and MFA modules
/// keep one and hand it out through `identity()`; the trait reads its getters through it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginIdentity {
    /// The config `type`.
    pub kind: String,
    /// The config `id` (None when not configured).
    pub id: Option<String>,
    /// The display name (config `name`, else the plugin's default).
    pub name: String,
}

impl PluginIdentity {
    /// An identity given field by field.
    pub fn new(kind: impl Into<String>, id: Option<String>, name: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            id,
            name: name.into(),
        }
    }

    /// The identity of a configured entry of type `kind`: its `id`, and its `name` or
    /// `default_name`.
    pub fn from_spec(kind: impl Into<String>, default_name: &str, spec: &PluginSpec) -> Self {
        Self::new(
            kind,
            spec.id.clone(),
            spec.name.as_deref().unwrap_or(default_name),
        )
    }

    /// The id of an MFA module: the configured `id`, else the type.
    pub fn module_id(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.kind)
    }
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
    /// The cargo package that registered it (filled in by [`crate::register_provider!`]).
    pub crate_name: &'static str,
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
    /// The cargo package that registered it (filled in by [`crate::register_mfa_module!`]).
    pub crate_name: &'static str,
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

/// Two linked plugin crates register one config `type` for the same role: which of them a
/// configuration entry would get depends on link order, so hosts refuse to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{role} type '{kind}' is registered by two plugin crates, {first} and {second}: link only one of them"
)]
pub struct DuplicateRegistration {
    /// `auth provider` or `mfa module`.
    pub role: &'static str,
    /// The config `type` both register.
    pub kind: &'static str,
    /// One registering crate (the first by name).
    pub first: &'static str,
    /// The other registering crate.
    pub second: &'static str,
}

/// Checks that no provider type and no MFA module type is registered by two crates (or twice).
///
/// # Errors
///
/// The first [`DuplicateRegistration`] found, providers first.
pub fn check_registrations() -> Result<(), DuplicateRegistration> {
    let providers = provider_registrations()
        .into_iter()
        .map(|r| (r.kind, r.crate_name));
    let modules = mfa_registrations()
        .into_iter()
        .map(|r| (r.kind, r.crate_name));
    match first_duplicate("auth provider", providers) {
        Some(duplicate) => Err(duplicate),
        None => first_duplicate("mfa module", modules).map_or(Ok(()), Err),
    }
}

/// The first `type` in `(type, crate)` pairs that occurs twice.
pub fn first_duplicate(
    role: &'static str,
    registrations: impl IntoIterator<Item = (&'static str, &'static str)>,
) -> Option<DuplicateRegistration> {
    let mut all: Vec<_> = registrations.into_iter().collect();
    all.sort();
    all.windows(2).find_map(|pair| {
        (pair[0].0 == pair[1].0).then_some(DuplicateRegistration {
            role,
            kind: pair[0].0,
            first: pair[0].1,
            second: pair[1].1,
        })
    })
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
                    crate_name: ::std::env!("CARGO_PKG_NAME"),
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
                    crate_name: ::std::env!("CARGO_PKG_NAME"),
                    default_name: $default,
                    testing_only: false $(|| $testing)?,
                    config_schema: __hass_auth_schema,
                    build: __hass_auth_build,
                }
            }
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_registered_twice_names_both_crates() {
        let found = first_duplicate(
            "auth provider",
            [
                ("kiosk", "provider-kiosk"),
                ("homeassistant", "provider-homeassistant"),
                ("kiosk", "provider-kiosk-fork"),
            ],
        );
        assert_eq!(
            found,
            Some(DuplicateRegistration {
                role: "auth provider",
                kind: "kiosk",
                first: "provider-kiosk",
                second: "provider-kiosk-fork",
            })
        );
        assert_eq!(
            found.unwrap().to_string(),
            "auth provider type 'kiosk' is registered by two plugin crates, provider-kiosk and provider-kiosk-fork: link only one of them"
        );
        assert_eq!(
            first_duplicate(
                "mfa module",
                [("totp", "mfa-totp"), ("notify", "mfa-notify")]
            ),
            None
        );
    }

    #[test]
    fn an_identity_takes_the_entry_or_the_defaults() {
        let spec = |id: Option<&str>, name: Option<&str>| PluginSpec {
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            config: Value::Null,
        };
        let configured = PluginIdentity::from_spec("totp", "TOTP", &spec(Some("otp"), Some("App")));
        assert_eq!(
            (
                configured.kind.as_str(),
                configured.module_id(),
                configured.name.as_str()
            ),
            ("totp", "otp", "App")
        );
        let plain = PluginIdentity::from_spec("totp", "TOTP", &spec(None, None));
        assert_eq!(
            (plain.id.as_deref(), plain.module_id(), plain.name.as_str()),
            (None, "totp", "TOTP")
        );
    }

    #[test]
    fn this_test_binary_registers_nothing_twice() {
        assert_eq!(check_registrations(), Ok(()));
    }
}
