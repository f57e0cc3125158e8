//! The provider: access check, available users, the login flow and credentials.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{Field, FlowResult, Schema};
use auth_core::{
    AuthAccess, AuthProvider, Credentials, LoginContext, PluginIdentity, ProviderError,
    ProviderLoginFlow, RefreshToken, User, UserMeta,
};
use ipnet::IpNet;
use serde_json::{Map, Value, json};

use crate::config::{Config, TrustedUser};
use crate::{DEFAULT_NAME, PROVIDER_TYPE};

/// Why a request may not use this provider (Home Assistant's messages, checked in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessDenied {
    /// `trusted_networks` is an empty list.
    #[error("trusted_networks is not configured")]
    NotConfigured,
    /// The IP is in none of the trusted networks.
    #[error("Not in trusted_networks")]
    NotTrusted,
    /// The IP is a trusted reverse proxy, or the request came through one.
    #[error("Can't allow access from a proxy server")]
    Proxy,
}

/// Home Assistant's message when a refresh token is used without a known remote IP.
pub const UNKNOWN_REMOTE_IP: &str = "Unknown remote ip can't be used for trusted network provider.";

/// The `trusted_networks` auth provider: passwordless sign-in for existing users, by source IP.
#[derive(Clone)]
pub struct TrustedNetworksProvider {
    inner: Arc<Inner>,
}

struct Inner {
    identity: PluginIdentity,
    config: Config,
    trusted_proxies: Vec<IpNet>,
}

impl std::fmt::Debug for TrustedNetworksProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedNetworksProvider")
            .field("identity", &self.inner.identity)
            .field("config", &self.inner.config)
            .field("trusted_proxies", &self.inner.trusted_proxies)
            .finish()
    }
}

impl TrustedNetworksProvider {
    /// A provider for `config`; `name` defaults to `Trusted Networks`. Requests from any of
    /// `trusted_proxies` (the HTTP server's reverse proxies) are never trusted.
    pub fn new(
        config: Config,
        id: Option<String>,
        name: Option<String>,
        trusted_proxies: Vec<IpNet>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                identity: PluginIdentity::new(
                    PROVIDER_TYPE,
                    id,
                    name.as_deref().unwrap_or(DEFAULT_NAME),
                ),
                config,
                trusted_proxies,
            }),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The access check: `ip` must be in a trusted network, must not be a trusted proxy, and the
    /// request must not have come through a trusted proxy (`via_trusted_proxy`).
    ///
    /// # Errors
    ///
    /// The first failing check, as [`AccessDenied`].
    pub fn validate_access(&self, ip: IpAddr, via_trusted_proxy: bool) -> Result<(), AccessDenied> {
        self.inner.validate_access(ip, via_trusted_proxy)
    }

    /// The users offered to a request from `ip`: active, not system-generated, and — if a
    /// `trusted_users` network contains `ip` (the first one in config order) — listed there by
    /// id or through one of their groups.
    pub fn available_users(&self, ip: Option<IpAddr>, users: Vec<User>) -> Vec<User> {
        self.inner.available_users(ip, users)
    }
}

impl Inner {
    fn validate_access(&self, ip: IpAddr, via_trusted_proxy: bool) -> Result<(), AccessDenied> {
        if self.config.trusted_networks.is_empty() {
            return Err(AccessDenied::NotConfigured);
        }
        if !self.config.trusted_networks.iter().any(|n| n.contains(&ip)) {
            return Err(AccessDenied::NotTrusted);
        }
        if via_trusted_proxy || self.trusted_proxies.iter().any(|n| n.contains(&ip)) {
            return Err(AccessDenied::Proxy);
        }
        Ok(())
    }

    fn check_context(&self, context: &LoginContext) -> Result<(), String> {
        let ip = context
            .ip_address
            .ok_or_else(|| UNKNOWN_REMOTE_IP.to_owned())?;
        self.validate_access(ip, context.via_trusted_proxy)
            .map_err(|e| e.to_string())
    }

    fn available_users(&self, ip: Option<IpAddr>, users: Vec<User>) -> Vec<User> {
        let users = users
            .into_iter()
            .filter(|u| u.is_active && !u.system_generated);
        let listed = ip.and_then(|ip| {
            self.config
                .trusted_users
                .iter()
                .find(|(network, _)| network.contains(&ip))
                .map(|(_, entries)| entries)
        });
        match listed {
            None => users.collect(),
            Some(entries) => users
                .filter(|user| {
                    entries.iter().any(|entry| match entry {
                        TrustedUser::User(id) => *id == user.id,
                        TrustedUser::Group(group) => user.group_ids.contains(group),
                    })
                })
                .collect(),
        }
    }
}

#[async_trait]
impl AuthProvider for TrustedNetworksProvider {
    fn identity(&self) -> &PluginIdentity {
        &self.inner.identity
    }

    fn supports_mfa(&self) -> bool {
        false
    }

    fn can_start_login(&self, context: &LoginContext) -> bool {
        self.inner.check_context(context).is_ok()
    }

    async fn login_flow(
        &self,
        context: &LoginContext,
        auth: Arc<dyn AuthAccess>,
    ) -> Result<Box<dyn ProviderLoginFlow>, ProviderError> {
        let available = self
            .inner
            .available_users(context.ip_address, auth.users())
            .into_iter()
            .map(|u| (u.id, u.name))
            .collect();
        Ok(Box::new(LoginSteps {
            provider: self.inner.clone(),
            context: context.clone(),
            available,
        }))
    }

    async fn get_or_create_credentials(
        &self,
        data: &Map<String, Value>,
        auth: &dyn AuthAccess,
    ) -> Result<Credentials, ProviderError> {
        let invalid = || ProviderError::InvalidUser("User not found".to_owned());
        let user_id = data
            .get("user")
            .and_then(Value::as_str)
            .ok_or_else(invalid)?;
        let user = auth
            .user(user_id)
            .filter(|u| u.is_active && !u.system_generated)
            .ok_or_else(invalid)?;
        let provider_id = self.inner.identity.id.as_deref();
        // The user's own credentials: no scan of every user's.
        if let Some(existing) = user.credentials.iter().find(|c| {
            c.belongs_to(PROVIDER_TYPE, provider_id) && c.data_str("user_id") == Some(user_id)
        }) {
            return Ok(existing.clone());
        }
        let mut cred_data = Map::new();
        cred_data.insert("user_id".to_owned(), Value::String(user.id.clone()));
        let credentials = auth.new_credentials(PROVIDER_TYPE, provider_id, cred_data);
        auth.link_credentials(&user.id, credentials)
            .await
            .map_err(|e| ProviderError::Failed(e.to_string()))
    }

    async fn user_meta_for_credentials(
        &self,
        _credentials: &Credentials,
    ) -> Result<UserMeta, ProviderError> {
        Err(ProviderError::Failed(
            "the trusted_networks provider never creates users".to_owned(),
        ))
    }

    async fn validate_refresh_token(
        &self,
        _token: &RefreshToken,
        remote_ip: Option<IpAddr>,
    ) -> Result<(), ProviderError> {
        let ip =
            remote_ip.ok_or_else(|| ProviderError::InvalidAuth(UNKNOWN_REMOTE_IP.to_owned()))?;
        self.inner
            .validate_access(ip, false)
            .map_err(|e| ProviderError::InvalidAuth(e.to_string()))
    }
}

/// One login flow: pick one of the available users (or none asked, with bypass).
struct LoginSteps {
    provider: Arc<Inner>,
    context: LoginContext,
    /// `(user id, name)` of the users offered, in store order.
    available: Vec<(String, Option<String>)>,
}

#[async_trait]
impl ProviderLoginFlow for LoginSteps {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, ProviderError> {
        if step_id != "init" {
            return Err(ProviderError::Failed(format!("unknown step {step_id}")));
        }
        if let Err(reason) = self.provider.check_context(&self.context) {
            tracing::info!(ip = ?self.context.ip_address, %reason, "trusted_networks login refused");
            return Ok(FlowResult::abort("not_allowed"));
        }
        if let Some(input) = input {
            return Ok(FlowResult::create_entry(Value::Object(input)));
        }
        if self.provider.config.allow_bypass_login
            && let [(user_id, _)] = self.available.as_slice()
        {
            return Ok(FlowResult::create_entry(json!({ "user": user_id })));
        }
        let schema = Schema::new(vec![
            Field::select("user", self.available.clone()).required(),
        ]);
        Ok(FlowResult::form("init", Some(schema)))
    }
}
