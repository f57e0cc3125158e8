//! The `oidc` provider's configuration keys.

use std::collections::BTreeMap;
use std::fmt;

use auth_core::PluginConfigError;
use schemars::JsonSchema;
use serde::Deserialize;

/// Home Assistant groups a group of the identity provider can map to, most privileged first.
pub const HA_GROUPS: [&str; 3] = ["system-admin", "system-users", "system-read-only"];

/// This provider's own config keys (`type: oidc`).
#[derive(Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The OpenID Provider's issuer URL; its `/.well-known/openid-configuration` is read.
    pub issuer: String,
    /// The client id registered at the identity provider.
    pub client_id: String,
    /// The client secret (use `!secret`); sent with HTTP Basic authentication.
    pub client_secret: String,
    /// Our callback URL as registered at the identity provider:
    /// `<this server's external URL>/auth/oidc/callback`.
    pub redirect_uri: String,
    /// Scopes asked for (`openid` is always added).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The ID-token claim that names the user.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The ID-token claim listing the user's groups (a list of strings); with it, only members
    /// of a group in `groups` may sign in.
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// Identity-provider group -> `system-admin` | `system-users` | `system-read-only`.
    #[serde(default)]
    pub groups: BTreeMap<String, String>,
    /// Whether a first sign-in creates a Home Assistant user; when false, only users signed in
    /// before or an existing user with the same username (linked at the first sign-in) may.
    #[serde(default = "default_true")]
    pub create_users: bool,
    /// Seconds allowed for each call to the identity provider.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("username_claim", &self.username_claim)
            .field("groups_claim", &self.groups_claim)
            .field("groups", &self.groups)
            .field("create_users", &self.create_users)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn default_scopes() -> Vec<String> {
    vec!["openid".to_owned(), "profile".to_owned()]
}

fn default_username_claim() -> String {
    "preferred_username".to_owned()
}

fn default_true() -> bool {
    true
}

fn default_timeout() -> u64 {
    10
}

impl Config {
    /// Checks the values serde cannot: URLs, non-empty strings, group names.
    pub fn validate(&self) -> Result<(), PluginConfigError> {
        let error = |m: String| Err(PluginConfigError(m));
        for (key, value) in [
            ("issuer", &self.issuer),
            ("redirect_uri", &self.redirect_uri),
        ] {
            match url::Url::parse(value) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => return error(format!("{key}: {value:?} is not an http(s) URL")),
            }
        }
        for (key, value) in [
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            ("username_claim", &self.username_claim),
        ] {
            if value.is_empty() {
                return error(format!("{key}: must not be empty"));
            }
        }
        for (group, target) in &self.groups {
            if !HA_GROUPS.contains(&target.as_str()) {
                return error(format!(
                    "groups: {group:?} maps to {target:?}; expected one of {}",
                    HA_GROUPS.join(", ")
                ));
            }
        }
        if !self.groups.is_empty() && self.groups_claim.is_none() {
            return error(
                "groups: needs groups_claim (the claim that lists a user's groups)".to_owned(),
            );
        }
        if self.timeout == 0 || self.timeout > 120 {
            return error(format!(
                "timeout: {} is not between 1 and 120 seconds",
                self.timeout
            ));
        }
        Ok(())
    }

    /// The most privileged Home Assistant group among `member_of`'s mapped groups.
    pub fn map_groups<'a>(
        &self,
        member_of: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'static str> {
        let mapped: Vec<&str> = member_of
            .into_iter()
            .filter_map(|g| self.groups.get(g).map(String::as_str))
            .collect();
        HA_GROUPS.into_iter().find(|ha| mapped.contains(ha))
    }
}
