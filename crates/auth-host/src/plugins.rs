//! Force-links every plugin crate enabled by a cargo feature.
//!
//! A plugin registers itself with `inventory`; a crate that is a dependency but never named in
//! code is not linked and its registration silently vanishes. Hence one line per plugin here,
//! and `#![deny(unused_crate_dependencies)]` in `lib.rs` turns a forgotten line into a compile
//! error.

#[cfg(feature = "mfa-insecure-example")]
use mfa_insecure_example as _;
#[cfg(feature = "mfa-notify")]
use mfa_notify as _;
#[cfg(feature = "mfa-totp")]
use mfa_totp as _;
#[cfg(feature = "mfa-webauthn")]
use mfa_webauthn as _;
#[cfg(feature = "provider-command-line")]
use provider_command_line as _;
#[cfg(feature = "provider-homeassistant")]
use provider_homeassistant as _;
#[cfg(feature = "provider-insecure-example")]
use provider_insecure_example as _;
#[cfg(feature = "provider-legacy-api-password")]
use provider_legacy_api_password as _;
#[cfg(feature = "provider-oidc")]
use provider_oidc as _;
#[cfg(feature = "provider-trusted-networks")]
use provider_trusted_networks as _;

/// Whether a plugin is an auth provider or an MFA module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PluginRole {
    /// An auth provider (`auth_providers`).
    Provider,
    /// An MFA module (`auth_mfa_modules`).
    MfaModule,
}

/// A plugin crate this host can be built with, and whether its feature is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltinPlugin {
    /// The cargo feature (also the crate name).
    pub feature: &'static str,
    /// The config `type` it registers.
    pub kind: &'static str,
    /// Provider or MFA module.
    pub role: PluginRole,
    /// Whether the feature is enabled in this build.
    pub enabled: bool,
}

/// Every plugin feature of `auth-host`.
pub const BUILTIN_PLUGINS: &[BuiltinPlugin] = &[
    BuiltinPlugin {
        feature: "provider-homeassistant",
        kind: "homeassistant",
        role: PluginRole::Provider,
        enabled: cfg!(feature = "provider-homeassistant"),
    },
    BuiltinPlugin {
        feature: "provider-legacy-api-password",
        kind: "legacy_api_password",
        role: PluginRole::Provider,
        enabled: cfg!(feature = "provider-legacy-api-password"),
    },
    BuiltinPlugin {
        feature: "provider-insecure-example",
        kind: "insecure_example",
        role: PluginRole::Provider,
        enabled: cfg!(feature = "provider-insecure-example"),
    },
    BuiltinPlugin {
        feature: "provider-trusted-networks",
        kind: "trusted_networks",
        role: PluginRole::Provider,
        enabled: cfg!(feature = "provider-trusted-networks"),
    },
    BuiltinPlugin {
        feature: "provider-command-line",
        kind: "command_line",
        role: PluginRole::Provider,
        enabled: cfg!(feature = "provider-command-line"),
    },
    BuiltinPlugin {
        feature: "provider-oidc",
        kind: "oidc",
        role: PluginRole::Provider,
        enabled: cfg!(feature = "provider-oidc"),
    },
    BuiltinPlugin {
        feature: "mfa-totp",
        kind: "totp",
        role: PluginRole::MfaModule,
        enabled: cfg!(feature = "mfa-totp"),
    },
    BuiltinPlugin {
        feature: "mfa-notify",
        kind: "notify",
        role: PluginRole::MfaModule,
        enabled: cfg!(feature = "mfa-notify"),
    },
    BuiltinPlugin {
        feature: "mfa-insecure-example",
        kind: "insecure_example",
        role: PluginRole::MfaModule,
        enabled: cfg!(feature = "mfa-insecure-example"),
    },
    // One crate, two plugins: the module keeps the keys, the provider signs in with them.
    BuiltinPlugin {
        feature: "mfa-webauthn",
        kind: "webauthn",
        role: PluginRole::MfaModule,
        enabled: cfg!(feature = "mfa-webauthn"),
    },
    BuiltinPlugin {
        feature: "mfa-webauthn",
        kind: "webauthn",
        role: PluginRole::Provider,
        enabled: cfg!(feature = "mfa-webauthn"),
    },
];
