//! The `oidc` auth provider for hass-auth: single sign-on through an external OpenID Provider
//! (Authelia, Authentik, Kanidm, Keycloak, ...), with the authorization code flow, PKCE `S256`,
//! `state` and `nonce`.
//!
//! ```yaml
//! homeassistant:
//!   auth_providers:
//!     - type: oidc
//!       name: Authelia
//!       issuer: https://auth.example.com
//!       client_id: home-assistant
//!       client_secret: !secret oidc_client_secret
//!       redirect_uri: https://home.example.com/auth/oidc/callback
//!       scopes: [openid, profile, groups]
//!       username_claim: preferred_username   # default
//!       groups_claim: groups
//!       groups:
//!         admins: system-admin
//!         family: system-users
//!         guests: system-read-only
//!       create_users: true                   # default
//! ```
//!
//! * Login flow: step `init` answers an `external` step (step id `external`) whose `url` is the
//!   identity provider's authorization endpoint. The identity provider sends the browser back to
//!   `redirect_uri` (auth-http's `/auth/oidc/callback`), which runs the `external` step with the
//!   query (`state`, `code` or `error`): the code is exchanged at the token endpoint (HTTP Basic
//!   client authentication, the PKCE verifier), the ID token verified
//!   ([`auth_crypto::oidc::verify_id_token`]), and the step answers `external_done` with step id
//!   `finish`. The client's next request to the flow runs `finish`: a `create_entry` (then the
//!   provider's `modules:` chain and opt-in MFA, as for any provider), or an abort:
//!   `cannot_connect` (the identity provider is unreachable), `invalid_auth` (it refused, or the
//!   ID token is not valid), `user_not_allowed` (no mapped group, or no user and
//!   `create_users: false`).
//! * `state` is `<flow id>.<32 random bytes>` so the callback finds its flow; a callback whose
//!   `state` is not the flow's leaves the flow waiting.
//! * Credentials are keyed by the ID token's `sub`, with `username` (from `username_claim`) and,
//!   for a new user, `name` and `group` (from `groups_claim` through `groups`; without
//!   `groups_claim` new users are `system-users`). The group is applied when the user is created.

#![forbid(unsafe_code)]

pub mod config;
mod flow;
pub mod idp;

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::{
    AuthAccess, AuthProvider, Credentials, LoginContext, PluginConfigError, PluginContext,
    PluginIdentity, PluginSpec, ProviderError, ProviderLoginFlow, SharedClock, UserMeta,
};
use serde_json::{Map, Value};

pub use config::Config;

/// The config `type` of this provider.
pub const PROVIDER_TYPE: &str = "oidc";
/// Display name when `name` is not configured.
pub const DEFAULT_NAME: &str = "OpenID Connect";

/// The `oidc` provider. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OidcProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) identity: PluginIdentity,
    pub(crate) config: Config,
    pub(crate) idp: idp::Idp,
    pub(crate) clock: SharedClock,
}

impl OidcProvider {
    /// A provider for `config` (validated), with `clock` for ID-token expiry.
    pub fn new(
        config: Config,
        id: Option<String>,
        name: Option<String>,
        clock: SharedClock,
    ) -> Result<Self, PluginConfigError> {
        config.validate()?;
        let idp = idp::Idp::new(&config).map_err(PluginConfigError)?;
        Ok(Self {
            inner: Arc::new(Inner {
                identity: PluginIdentity::new(
                    PROVIDER_TYPE,
                    id,
                    name.as_deref().unwrap_or(DEFAULT_NAME),
                ),
                config,
                idp,
                clock,
            }),
        })
    }
}

#[async_trait]
impl AuthProvider for OidcProvider {
    fn identity(&self) -> &PluginIdentity {
        &self.inner.identity
    }

    async fn login_flow(
        &self,
        _context: &LoginContext,
        auth: Arc<dyn AuthAccess>,
    ) -> Result<Box<dyn ProviderLoginFlow>, ProviderError> {
        Ok(Box::new(flow::OidcLogin::new(self.inner.clone(), auth)))
    }

    async fn get_or_create_credentials(
        &self,
        data: &Map<String, Value>,
        auth: &dyn AuthAccess,
    ) -> Result<Credentials, ProviderError> {
        let sub = data
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::Failed("login result without a sub".to_owned()))?;
        let username = data
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(mut existing) = self.inner.existing(auth, sub) {
            if existing.data_str("username") != Some(username) {
                existing
                    .data
                    .insert("username".to_owned(), Value::String(username.to_owned()));
                auth.update_credential_data(&existing.id, existing.data.clone())
                    .await
                    .map_err(|e| ProviderError::Failed(e.to_string()))?;
            }
            return Ok(existing);
        }
        let new = auth.new_credentials(
            PROVIDER_TYPE,
            self.inner.identity.id.as_deref(),
            data.clone(),
        );
        if self.inner.config.create_users {
            return Ok(new);
        }
        // Not creating users: the flow only finished because a user of that username exists.
        let user_id = flow::user_with_username(auth, username)
            .ok_or_else(|| ProviderError::InvalidAuth("no user for this sign-in".to_owned()))?;
        auth.link_credentials(&user_id, new)
            .await
            .map_err(|e| ProviderError::Failed(e.to_string()))
    }

    async fn user_meta_for_credentials(
        &self,
        credentials: &Credentials,
    ) -> Result<UserMeta, ProviderError> {
        Ok(UserMeta {
            name: credentials
                .data_str("name")
                .or(credentials.data_str("username"))
                .map(str::to_owned),
            is_active: true,
            group: Some(
                credentials
                    .data_str("group")
                    .unwrap_or("system-users")
                    .to_owned(),
            ),
            local_only: None,
        })
    }
}

impl Inner {
    /// The stored credential of this provider for `sub`.
    pub(crate) fn existing(&self, auth: &dyn AuthAccess, sub: &str) -> Option<Credentials> {
        auth.credentials_of(PROVIDER_TYPE, self.identity.id.as_deref())
            .into_iter()
            .find(|c| c.data_str("sub") == Some(sub))
    }
}

fn build_provider(
    config: Config,
    spec: PluginSpec,
    ctx: &PluginContext,
) -> Result<Arc<dyn AuthProvider>, PluginConfigError> {
    Ok(Arc::new(OidcProvider::new(
        config,
        spec.id,
        spec.name,
        ctx.clock.clone(),
    )?))
}

auth_core::register_provider! {
    kind: "oidc",
    default_name: "OpenID Connect",
    config: Config,
    build: build_provider,
}

#[cfg(test)]
mod tests;
