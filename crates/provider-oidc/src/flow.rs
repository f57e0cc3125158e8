//! One `oidc` login flow: `init` -> `external` (waiting for the callback) -> `finish`.

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::FlowResult;
use auth_core::provider::external_state;
use auth_core::{AuthAccess, ProviderError, ProviderLoginFlow};
use auth_crypto::oidc::{new_oidc_secret, new_pkce_verifier, pkce_s256_challenge};
use serde_json::{Map, Value, json};

use crate::Inner;
use crate::idp::IdpError;

/// Step id of the external step (the browser is at the identity provider).
pub const STEP_EXTERNAL: &str = "external";
/// Step id run after the callback.
pub const STEP_FINISH: &str = "finish";
/// Abort reason: no mapped group, or no user and `create_users: false`.
pub const ABORT_NOT_ALLOWED: &str = "user_not_allowed";

pub(crate) struct OidcLogin {
    provider: Arc<Inner>,
    auth: Arc<dyn AuthAccess>,
    state: String,
    nonce: String,
    verifier: String,
    url: Option<String>,
    outcome: Option<Result<Map<String, Value>, &'static str>>,
}

impl OidcLogin {
    pub(crate) fn new(provider: Arc<Inner>, auth: Arc<dyn AuthAccess>) -> Self {
        Self {
            provider,
            auth,
            // Replaced by `bind_flow_id`; without a flow id no callback can find the flow.
            state: new_oidc_secret(),
            nonce: new_oidc_secret(),
            verifier: new_pkce_verifier(),
            url: None,
            outcome: None,
        }
    }

    async fn start(&mut self) -> FlowResult {
        let config = &self.provider.config;
        let endpoints = match self.provider.idp.endpoints(config).await {
            Ok(endpoints) => endpoints,
            Err(error) => {
                tracing::error!(issuer = %config.issuer, %error, "cannot start an OpenID Connect sign-in");
                return FlowResult::abort(error.reason());
            }
        };
        let mut scopes: Vec<&str> = vec!["openid"];
        scopes.extend(
            config
                .scopes
                .iter()
                .map(String::as_str)
                .filter(|s| *s != "openid"),
        );
        let Ok(mut url) = url::Url::parse(&endpoints.authorization) else {
            tracing::error!(url = %endpoints.authorization, "the authorization endpoint is not a URL");
            return FlowResult::abort("cannot_connect");
        };
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &config.client_id)
            .append_pair("redirect_uri", &config.redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &self.state)
            .append_pair("nonce", &self.nonce)
            .append_pair("code_challenge", &pkce_s256_challenge(&self.verifier))
            .append_pair("code_challenge_method", "S256");
        let url = url.to_string();
        self.url = Some(url.clone());
        self.external()
    }

    fn external(&self) -> FlowResult {
        let mut placeholders = Map::new();
        placeholders.insert(
            "provider_name".to_owned(),
            Value::String(self.provider.identity.name.clone()),
        );
        FlowResult::external_step(STEP_EXTERNAL, self.url.clone().unwrap_or_default())
            .with_placeholders(placeholders)
    }

    /// The callback: `state` and `code` (or `error`) from the identity provider's redirect.
    async fn callback(&mut self, input: &Map<String, Value>) -> FlowResult {
        let state = input
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if self.url.is_none()
            || !auth_crypto::constant_time_eq(state.as_bytes(), self.state.as_bytes())
        {
            // Not our callback (or the client polling): keep waiting.
            return self.external();
        }
        let outcome = match (
            input.get("code").and_then(Value::as_str),
            input.get("error"),
        ) {
            (Some(code), None) => self.redeem(code).await,
            (_, error) => {
                let error = error.and_then(Value::as_str).unwrap_or("no code");
                tracing::warn!(error, "the identity provider refused the sign-in");
                Err("invalid_auth")
            }
        };
        self.outcome = Some(outcome);
        // One code per flow: a second callback cannot run the exchange again.
        self.url = None;
        FlowResult::external_step_done(STEP_FINISH)
    }

    async fn redeem(&self, code: &str) -> Result<Map<String, Value>, &'static str> {
        let provider = &self.provider;
        let config = &provider.config;
        let now = provider.clock.now().unix_timestamp();
        let claims = provider
            .idp
            .redeem(config, code, &self.verifier, &self.nonce, now)
            .await
            .map_err(|error: IdpError| {
                tracing::warn!(issuer = %config.issuer, %error, "OpenID Connect sign-in failed");
                error.reason()
            })?;
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let username = claims
            .get(&config.username_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let (Some(sub), Some(username)) = (sub, username) else {
            tracing::warn!(claim = %config.username_claim, "the ID token has no sub or no username claim");
            return Err("invalid_auth");
        };
        let group = match &config.groups_claim {
            None => "system-users",
            Some(claim) => {
                let member_of: Vec<&str> = match claims.get(claim) {
                    Some(Value::Array(groups)) => groups.iter().filter_map(Value::as_str).collect(),
                    Some(Value::String(one)) => vec![one.as_str()],
                    _ => Vec::new(),
                };
                match config.map_groups(member_of) {
                    Some(group) => group,
                    None => {
                        tracing::warn!(%username, "OpenID Connect user is in no mapped group; sign-in refused");
                        return Err(ABORT_NOT_ALLOWED);
                    }
                }
            }
        };
        let name = claims
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(username);
        let data = json!({"sub": sub, "username": username, "name": name, "group": group});
        let Value::Object(data) = data else {
            return Err("unknown_error");
        };
        if !config.create_users
            && provider.existing(self.auth.as_ref(), sub).is_none()
            && user_with_username(self.auth.as_ref(), username).is_none()
        {
            tracing::warn!(%username, "no user for this OpenID Connect sign-in and create_users is false");
            return Err(ABORT_NOT_ALLOWED);
        }
        Ok(data)
    }
}

/// The id of the user that has a credential (of any provider) with `data.username` = `username`.
pub(crate) fn user_with_username(auth: &dyn AuthAccess, username: &str) -> Option<String> {
    // Indexed by username (in user order): not O(users) per sign-in.
    auth.credentials_with_username(username)
        .into_iter()
        .map(|(user_id, _)| user_id)
        .find(|id| auth.user(id).is_some_and(|u| !u.system_generated))
}

#[async_trait]
impl ProviderLoginFlow for OidcLogin {
    fn bind_flow_id(&mut self, flow_id: &str) {
        self.state = external_state(flow_id, &new_oidc_secret());
    }

    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, ProviderError> {
        match step_id {
            "init" => Ok(self.start().await),
            STEP_EXTERNAL => match input {
                Some(input) => Ok(self.callback(&input).await),
                None => Ok(self.external()),
            },
            STEP_FINISH => match self.outcome.take() {
                Some(Ok(data)) => Ok(FlowResult::create_entry(Value::Object(data))),
                Some(Err(reason)) => Ok(FlowResult::abort(reason)),
                None => Ok(FlowResult::abort("unknown_error")),
            },
            other => Err(ProviderError::Failed(format!("unknown step {other}"))),
        }
    }
}
