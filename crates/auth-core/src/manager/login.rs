//! Login flows, external callbacks and authorization codes.

use std::sync::Arc;

use flow_engine::{FlowError, FlowManager, FlowResponse};
use serde_json::{Map, Value};

use crate::codes::{AuthCode, AuthCodes, Redemption};
use crate::error::AuthError;
use crate::login_flow::{LoginFlow, credentials_from_flow_data};
use crate::models::Credentials;
use crate::provider::{AuthAccess, AuthProvider, LoginContext};
use crate::rng::random_hex;
use crate::storage::SharedRedemption;

use super::AuthManager;

impl AuthManager {
    // ----- login flows and authorization codes -----

    /// Providers offered to a request (config order, filtered by `can_start_login`).
    pub fn providers_for(&self, context: &LoginContext) -> Vec<Arc<dyn AuthProvider>> {
        self.inner
            .providers
            .values()
            .filter(|p| p.can_start_login(context))
            .cloned()
            .collect()
    }

    /// Starts a login flow for provider `(type, id)`; `None` when the provider is unknown or refuses
    /// this request (HTTP 404 "Invalid handler specified"). A client (its IP; an IPv6 client's
    /// /64; loopback excepted) holds at most `max_flows_per_owner` flows: its next one drops
    /// its oldest.
    ///
    /// A whole sign-in: the flow's steps, then the user and a refresh token for the finished flow.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), auth_core::AuthError> {
    /// use std::sync::Arc;
    /// use auth_core::{AuthManager, MemoryStorage};
    /// use auth_core::{LoginContext, NewRefreshToken};
    /// use auth_testkit::fakes::PasswordProvider;
    /// use serde_json::json;
    ///
    /// let manager = AuthManager::builder(Arc::new(MemoryStorage::new()))
    ///     .provider(Arc::new(PasswordProvider::with_users("test", &[("ann", "pw")])))
    ///     .build()
    ///     .await?;
    /// let flow = manager
    ///     .start_login_flow("test", None, LoginContext::default())
    ///     .await?
    ///     .expect("the provider exists");
    /// let input = json!({"username": "ann", "password": "pw"});
    /// let done = manager
    ///     .login_flows()
    ///     .configure(&flow.flow_id, input.as_object().cloned())
    ///     .await
    ///     .expect("the flow is open")
    ///     .to_json();
    /// assert_eq!(done["type"], "create_entry");
    /// let credentials = manager.credentials_from_flow(&done["data"]).expect("credentials");
    /// let user = manager.get_or_create_user(&credentials).await?;
    /// let app = NewRefreshToken { client_id: Some("https://example.com/".into()), ..Default::default() };
    /// let token = manager.create_refresh_token(&user.id, app).await?;
    /// assert_eq!(token.user_id, user.id);
    /// # Ok(()) }
    /// ```
    pub async fn start_login_flow(
        &self,
        provider_type: &str,
        provider_id: Option<&str>,
        context: LoginContext,
    ) -> Result<Option<FlowResponse>, AuthError> {
        let Some(provider) = self.auth_provider(provider_type, provider_id) else {
            return Ok(None);
        };
        if !provider.can_start_login(&context) {
            return Ok(None);
        }
        let access: Arc<dyn AuthAccess> = Arc::new(self.clone());
        let steps = provider.login_flow(&context, access).await?;
        let flow = LoginFlow::new(self.clone(), provider, steps, self.now()).with_context(&context);
        let handler = serde_json::json!([provider_type, provider_id]);
        // Each client gets a share of the table (`max_flows_per_owner`): one client starting
        // flows without end only ever drops its own oldest ones. Loopback clients are local
        // programs, or a proxy whose clients cannot be told apart: they get no share of their
        // own (dividing them would make all those clients share one).
        let owner = context
            .ip_address
            .filter(|ip| !crate::net::is_loopback(*ip))
            .map(crate::net::client_key);
        Ok(Some(
            self.inner
                .login_flows
                .start_owned(owner.as_deref(), handler, context, Box::new(flow))
                .await?,
        ))
    }

    /// The login flows table (configure, abort, context).
    pub fn login_flows(&self) -> &FlowManager<LoginContext> {
        &self.inner.login_flows
    }

    /// An identity provider's redirect back to us (`state`, `code`, ... as `params`): runs the
    /// external step of the login flow named in `state` (see
    /// [`crate::provider::external_state`]). Only a flow that is showing an external step is
    /// configured; anything else is [`FlowError::UnknownFlow`].
    pub async fn external_login_callback(
        &self,
        params: Map<String, Value>,
    ) -> Result<FlowResponse, FlowError> {
        let flow_id = params
            .get("state")
            .and_then(Value::as_str)
            .and_then(crate::provider::external_state_flow_id)
            .ok_or(FlowError::UnknownFlow)?
            .to_owned();
        let flows = &self.inner.login_flows;
        match flows.current(&flow_id) {
            Some(current) if current.result.type_name() == "external" => {}
            _ => return Err(FlowError::UnknownFlow),
        }
        flows.configure(&flow_id, Some(params)).await
    }

    /// Credentials carried by a finished login flow's `create_entry` data.
    pub fn credentials_from_flow(&self, data: &Value) -> Option<Credentials> {
        credentials_from_flow_data(data)
    }

    /// Stores an authorization code for `credentials`, bound to `client_id`; returns the code.
    /// With a storage several instances share, the code is stored there (before it is
    /// returned), so that whichever instance the client's token request reaches redeems it.
    ///
    /// # Errors
    ///
    /// The shared store could not be written.
    pub async fn create_auth_code(
        &self,
        client_id: &str,
        credentials: Credentials,
        context: &LoginContext,
    ) -> Result<String, AuthError> {
        let value = random_hex(self.inner.rng.as_ref(), 16);
        let code = AuthCode {
            client_id: client_id.to_owned(),
            created_at: self.now(),
            credentials,
            code_challenge: context.code_challenge.clone(),
            code_challenge_method: context.code_challenge_method.clone(),
        };
        if let Some(shared) = self.shared_codes() {
            let lifetime = self.inner.codes.lifetime().as_seconds_f64();
            shared
                .put(&shared_key(client_id, &value), &code.to_json(), lifetime)
                .await?;
            return Ok(value);
        }
        self.inner.codes.insert(value.clone(), code, self.now());
        Ok(value)
    }

    fn shared_codes(&self) -> Option<Arc<dyn crate::storage::SharedCodes>> {
        self.inner.store.storage().shared_codes()
    }

    /// Redeems an authorization code (single use, even when it turns out invalid). Codes whose
    /// credentials were linked but have since been removed are invalid. Does not revoke
    /// anything on reuse: token endpoints use [`Self::redeem_auth_code`].
    ///
    /// # Errors
    ///
    /// The shared store could not be read.
    pub async fn take_auth_code(
        &self,
        client_id: &str,
        code: &str,
    ) -> Result<Option<AuthCode>, AuthError> {
        if let Some(shared) = self.shared_codes() {
            return Ok(match shared.redeem(&shared_key(client_id, code)).await? {
                SharedRedemption::Valid(v) => AuthCode::from_json(&v)
                    .filter(|c| c.client_id == client_id)
                    .and_then(|c| self.usable_code(c)),
                SharedRedemption::Reused(_) | SharedRedemption::Invalid => None,
            });
        }
        let code = self.inner.codes.take(client_id, code, self.now());
        Ok(code.and_then(|c| self.usable_code(c)))
    }

    pub(super) fn usable_code(&self, code: AuthCode) -> Option<AuthCode> {
        if !code.credentials.is_new && self.user_by_credentials(&code.credentials.id).is_none() {
            return None;
        }
        Some(code)
    }

    /// Redeems an authorization code like [`Self::take_auth_code`]; a code presented again
    /// within its lifetime is invalid and revokes the refresh tokens already issued from it
    /// (RFC 9700 §4.2.4). Record each token issued from a code with
    /// [`Self::record_auth_code_token`].
    ///
    /// # Errors
    ///
    /// Revoking the tokens could not be saved.
    pub async fn redeem_auth_code(
        &self,
        client_id: &str,
        code: &str,
    ) -> Result<Option<AuthCode>, AuthError> {
        let redemption = match self.shared_codes() {
            Some(shared) => match shared.redeem(&shared_key(client_id, code)).await? {
                SharedRedemption::Valid(v) => match AuthCode::from_json(&v) {
                    Some(c) if c.client_id == client_id => Redemption::Valid(Box::new(c)),
                    _ => Redemption::Invalid,
                },
                SharedRedemption::Reused(tokens) => Redemption::Reused(tokens),
                SharedRedemption::Invalid => Redemption::Invalid,
            },
            None => self.inner.codes.redeem(client_id, code, self.now()),
        };
        match redemption {
            Redemption::Valid(code) => Ok(self.usable_code(*code)),
            Redemption::Reused(tokens) => {
                if !tokens.is_empty() {
                    self.revoke_many(&tokens).await?;
                }
                Ok(None)
            }
            Redemption::Invalid => Ok(None),
        }
    }

    /// Remembers that refresh token `refresh_token_id` was issued from `code`, so that a reuse
    /// of the code revokes it. When the code was presented again meanwhile, revokes the token
    /// now and returns `false` (the caller must not hand it out).
    ///
    /// # Errors
    ///
    /// Revoking the token could not be saved.
    pub async fn record_auth_code_token(
        &self,
        client_id: &str,
        code: &str,
        refresh_token_id: &str,
    ) -> Result<bool, AuthError> {
        let recorded = match self.shared_codes() {
            Some(shared) => {
                shared
                    .record_token(&shared_key(client_id, code), refresh_token_id)
                    .await?
            }
            None => self
                .inner
                .codes
                .record_token(client_id, code, refresh_token_id),
        };
        if recorded {
            return Ok(true);
        }
        self.revoke_many(&[refresh_token_id.to_owned()]).await?;
        Ok(false)
    }

    /// The authorization code table.
    pub fn auth_codes(&self) -> &AuthCodes {
        &self.inner.codes
    }
}

/// Key of a code in a shared store: bound to its client.
fn shared_key(client_id: &str, code: &str) -> String {
    format!("{client_id} {code}")
}
