//! The `trusted_networks` auth provider for hass-auth: existing users sign in without a
//! password when the request comes from a trusted network.
//!
//! ```yaml
//! homeassistant:
//!   auth_providers:
//!     - type: trusted_networks
//!       trusted_networks:          # one network or a list; single IPs mean /32 or /128
//!         - 192.168.0.0/24
//!         - fd00::/8
//!       trusted_users:             # optional: who is offered to which network
//!         192.168.0.10: 3e57f1b79298450995152b2063eac662
//!         192.168.0.0/24:
//!           - 3e57f1b79298450995152b2063eac662
//!           - group: system-users
//!       allow_bypass_login: true   # optional, default false
//!     - type: homeassistant
//! ```
//!
//! # Behaviour (Home Assistant 2026.11)
//!
//! * **Access check**, in order: `trusted_networks` empty → `trusted_networks is not configured`;
//!   the IP in no trusted network → `Not in trusted_networks`; the IP inside one of the HTTP
//!   server's trusted proxy networks ([`auth_core::PluginContext::trusted_proxies`]), or the
//!   request came through a trusted proxy ([`auth_core::LoginContext::via_trusted_proxy`]) →
//!   `Can't allow access from a proxy server`. An IPv4 address never matches an IPv6 network
//!   and vice versa (IPv4-mapped IPv6 addresses are not unwrapped), as in Home Assistant.
//! * **Offered / startable** ([`auth_core::AuthProvider::can_start_login`]) only when the request
//!   has an IP and passes the check; otherwise `/auth/providers` hides the provider and starting
//!   a flow answers like an unknown provider (404).
//! * **Available users**: active, not system-generated; if a `trusted_users` network contains
//!   the IP (the first in config order), only the users listed there by id or by group.
//! * **Login flow** `init`: the access check again (failure → abort `not_allowed`); with
//!   `allow_bypass_login` and exactly one available user the flow finishes at once; otherwise a
//!   form with one required select `user` (`[[user_id, name or null], …]`, `errors: null`).
//!   An id outside the options is a schema error. Never asks for MFA.
//! * **Credentials**: the user must exist, be active and not system-generated; the credential
//!   `{"user_id": <id>}` is reused or created **and linked at once**. This provider never
//!   creates users.
//! * **Refresh tokens** obtained through it only mint access tokens from a known IP that passes
//!   the access check (`Unknown remote ip can't be used for trusted network provider.`).
//!
//! # Difference from Home Assistant: group entries
//!
//! Home Assistant validates `{group: <id>}` entries but then iterates the group id *string* as if
//! it were a list, so a group entry matches only users of a group whose id is one character long —
//! in practice never. hass-auth implements the evident intent: a `{group: <id>}` entry matches
//! every member of group `<id>`. A configuration that lists groups therefore offers **more**
//! users here than the same configuration does in Home Assistant.
//!
//! # Config parsing
//!
//! Strict like Home Assistant: networks with host bits set are refused (the message names the
//! value and the network it lies in), user ids must be UUID4 hex, unknown keys are refused.
//! `allow_bypass_login` accepts Home Assistant's lenient booleans (`yes`, `on`, `1`, …).

#![forbid(unsafe_code)]

use std::sync::Arc;

use auth_core::{AuthProvider, PluginContext, PluginSpec};

mod config;
mod provider;

pub use config::{
    Config, NetworkError, TrustedUser, parse_lenient_bool, parse_network, parse_user_id,
};
pub use provider::{AccessDenied, TrustedNetworksProvider, UNKNOWN_REMOTE_IP};

/// The config `type` of this provider.
pub const PROVIDER_TYPE: &str = "trusted_networks";
/// Display name when `name` is not configured.
pub const DEFAULT_NAME: &str = "Trusted Networks";

auth_core::register_provider! {
    kind: "trusted_networks",
    default_name: "Trusted Networks",
    config: Config,
    build: |config: Config, spec: PluginSpec, ctx: &PluginContext| {
        Ok(Arc::new(TrustedNetworksProvider::new(
            config,
            spec.id,
            spec.name,
            ctx.trusted_proxies.clone(),
        )) as Arc<dyn AuthProvider>)
    },
}

#[cfg(test)]
mod tests;
