//! Every enabled plugin feature registered its plugin exactly once.

use std::collections::BTreeMap;

use auth_host::{BUILTIN_PLUGINS, PluginRole};

#[test]
fn every_enabled_feature_registered_exactly_once() {
    let mut providers: BTreeMap<&str, usize> = BTreeMap::new();
    for registration in auth_core::registry::provider_registrations() {
        *providers.entry(registration.kind).or_default() += 1;
    }
    let mut modules: BTreeMap<&str, usize> = BTreeMap::new();
    for registration in auth_core::registry::mfa_registrations() {
        *modules.entry(registration.kind).or_default() += 1;
    }
    // The features as cargo sees them (BUILTIN_PLUGINS must agree).
    let features = [
        (
            "provider-homeassistant",
            cfg!(feature = "provider-homeassistant"),
        ),
        (
            "provider-legacy-api-password",
            cfg!(feature = "provider-legacy-api-password"),
        ),
        (
            "provider-insecure-example",
            cfg!(feature = "provider-insecure-example"),
        ),
        (
            "provider-trusted-networks",
            cfg!(feature = "provider-trusted-networks"),
        ),
        (
            "provider-command-line",
            cfg!(feature = "provider-command-line"),
        ),
        ("provider-oidc", cfg!(feature = "provider-oidc")),
        ("mfa-totp", cfg!(feature = "mfa-totp")),
        ("mfa-notify", cfg!(feature = "mfa-notify")),
        (
            "mfa-insecure-example",
            cfg!(feature = "mfa-insecure-example"),
        ),
        // The module and the provider of mfa-webauthn.
        ("mfa-webauthn", cfg!(feature = "mfa-webauthn")),
        ("mfa-webauthn", cfg!(feature = "mfa-webauthn")),
    ];
    assert_eq!(BUILTIN_PLUGINS.len(), features.len());
    for (plugin, (feature, enabled)) in BUILTIN_PLUGINS.iter().zip(features) {
        assert_eq!(plugin.feature, feature);
        assert_eq!(plugin.enabled, enabled, "{feature}");
        let table = match plugin.role {
            PluginRole::Provider => &providers,
            PluginRole::MfaModule => &modules,
        };
        let count = table.get(plugin.kind).copied().unwrap_or(0);
        assert_eq!(
            count,
            usize::from(enabled),
            "feature {feature} (type {}) is {} but registered {count} times",
            plugin.kind,
            if enabled { "on" } else { "off" }
        );
    }
    // The test binary also links the out-of-tree provider, once.
    assert_eq!(providers.get("example_fork"), Some(&1));
    // Nothing else is registered.
    let known = |role: PluginRole, kind: &str| {
        BUILTIN_PLUGINS
            .iter()
            .any(|p| p.role == role && p.kind == kind)
    };
    for kind in providers.keys() {
        assert!(
            known(PluginRole::Provider, kind) || *kind == "example_fork",
            "{kind}"
        );
    }
    for kind in modules.keys() {
        assert!(known(PluginRole::MfaModule, kind), "{kind}");
    }
}
