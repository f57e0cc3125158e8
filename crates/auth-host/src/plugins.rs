//! The one list of built-in plugin crates, and their force-links.
//!
//! A plugin registers itself with `inventory`; a crate that is a dependency but never named in
//! code is not linked and its registration silently vanishes. [`builtin_plugins!`] names each
//! listed crate whose feature is on (`#![deny(unused_crate_dependencies)]` in `lib.rs` turns a
//! plugin dependency missing from the list into a compile error) and derives [`BUILTIN_PLUGINS`].
//!
//! Everything else that names the plugins is checked against this list by the tidy test
//! `plugin_list_is_the_one_list` (xtask, through `cargo metadata`): auth-host's and
//! auth-server's cargo features and auth-host's optional dependencies, the `provider-*`/`mfa-*`
//! crates of the workspace, and the README. `cargo xtask ci`'s feature matrix reads the features.

use auth_core::registry::{mfa_registrations, provider_registrations};

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
    /// The cargo feature, which is also the crate's package name.
    pub feature: &'static str,
    /// Whether the feature is enabled in this build.
    pub enabled: bool,
}

impl BuiltinPlugin {
    /// The config `type`s the crate registered for `role` (none when its feature is off).
    pub fn kinds(&self, role: PluginRole) -> Vec<&'static str> {
        match role {
            PluginRole::Provider => provider_registrations()
                .into_iter()
                .filter(|r| r.crate_name == self.feature)
                .map(|r| r.kind)
                .collect(),
            PluginRole::MfaModule => mfa_registrations()
                .into_iter()
                .filter(|r| r.crate_name == self.feature)
                .map(|r| r.kind)
                .collect(),
        }
    }

    /// Whether the crate registered `kind` for `role`.
    pub fn registers(&self, role: PluginRole, kind: &str) -> bool {
        self.kinds(role).contains(&kind)
    }
}

/// Force-links each listed crate whose feature is on, and lists them all in [`BUILTIN_PLUGINS`].
macro_rules! builtin_plugins {
    ($($krate:ident = $feature:literal),+ $(,)?) => {
        $(
            #[cfg(feature = $feature)]
            use $krate as _;
        )+

        /// Every plugin feature of `auth-host`, in the order of the list.
        pub const BUILTIN_PLUGINS: &[BuiltinPlugin] = &[
            $(BuiltinPlugin { feature: $feature, enabled: cfg!(feature = $feature) }),+
        ];
    };
}

// The one list: crate = "feature (the package name)".
builtin_plugins! {
    provider_homeassistant = "provider-homeassistant",
    provider_legacy_api_password = "provider-legacy-api-password",
    provider_insecure_example = "provider-insecure-example",
    provider_trusted_networks = "provider-trusted-networks",
    provider_command_line = "provider-command-line",
    provider_oidc = "provider-oidc",
    mfa_totp = "mfa-totp",
    mfa_notify = "mfa-notify",
    mfa_insecure_example = "mfa-insecure-example",
    // One crate, two plugins: the `webauthn` module keeps the keys, the provider signs in with them.
    mfa_webauthn = "mfa-webauthn",
}
