//! The plugin list (`BUILTIN_PLUGINS`, derived from auth-host's one list) agrees with what is
//! registered: each enabled plugin crate registered something, a disabled one nothing, and
//! nothing else is registered but the out-of-tree provider the tests link.

use auth_core::registry::{check_registrations, mfa_registrations, provider_registrations};
use auth_host::{BUILTIN_PLUGINS, PluginRole};

#[test]
fn every_enabled_plugin_registered_and_nothing_else_did() {
    for plugin in BUILTIN_PLUGINS {
        let kinds = [PluginRole::Provider, PluginRole::MfaModule]
            .iter()
            .map(|role| plugin.kinds(*role).len())
            .sum::<usize>();
        assert_eq!(
            kinds > 0,
            plugin.enabled,
            "feature {} is {} but its crate registered {kinds} types",
            plugin.feature,
            if plugin.enabled { "on" } else { "off" }
        );
    }
    let builtin = |krate: &str| BUILTIN_PLUGINS.iter().any(|p| p.feature == krate);
    for registration in provider_registrations() {
        assert!(
            builtin(registration.crate_name) || registration.crate_name == "provider-example-fork",
            "provider {} of {}",
            registration.kind,
            registration.crate_name
        );
    }
    for registration in mfa_registrations() {
        assert!(
            builtin(registration.crate_name),
            "mfa module {} of {}",
            registration.kind,
            registration.crate_name
        );
    }
    // The test binary also links the out-of-tree provider, once; no type is registered twice.
    assert_eq!(
        provider_registrations()
            .iter()
            .filter(|r| r.kind == "example_fork")
            .count(),
        1
    );
    assert_eq!(check_registrations(), Ok(()));
}

#[test]
fn the_list_names_each_plugin_crate_once() {
    let mut features: Vec<&str> = BUILTIN_PLUGINS.iter().map(|p| p.feature).collect();
    features.sort_unstable();
    features.dedup();
    assert_eq!(features.len(), BUILTIN_PLUGINS.len());
    assert!(
        features
            .iter()
            .all(|f| f.starts_with("provider-") || f.starts_with("mfa-"))
    );
}
