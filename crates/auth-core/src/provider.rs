//! The auth provider contract: who a user is (username/password, trusted network, program, ...).

use std::any::Any;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use flow_engine::FlowResult;
use serde_json::{Map, Value};

use crate::error::AuthError;
use crate::models::{Credentials, RefreshToken, User, UserMeta};
use crate::registry::PluginIdentity;

/// What a login flow knows about the request that started it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoginContext {
    /// Remote IP of the request (after trusted-proxy handling).
    pub ip_address: Option<IpAddr>,
    /// Redirect URI given at flow start (checked when the flow finishes).
    pub redirect_uri: Option<String>,
    /// PKCE challenge, if the client sent one.
    pub code_challenge: Option<String>,
    /// PKCE method (`S256`).
    pub code_challenge_method: Option<String>,
    /// Whether the request came through a trusted proxy (never trusted by `trusted_networks`).
    pub via_trusted_proxy: bool,
    /// The OAuth client that started the login (for the sign-in history).
    pub client_id: Option<String>,
}

/// Why a provider operation failed.
#[derive(Debug, thiserror::Error)]
// Not `#[non_exhaustive]`: auth-http answers every variant in one exhaustive match (a new variant must be given its HTTP answer).
pub enum ProviderError {
    /// The user or credential does not exist.
    #[error("{0}")]
    InvalidUser(String),
    /// A new username is not acceptable; `key` is the translation key.
    #[error("{message}")]
    InvalidUsername {
        /// Translation key (`username_not_normalized`, `username_already_exists`).
        key: &'static str,
        /// Human-readable message.
        message: String,
        /// Placeholders for the translation.
        placeholders: Map<String, Value>,
    },
    /// Authentication was refused (e.g. a refresh from an untrusted network).
    #[error("{0}")]
    InvalidAuth(String),
    /// The provider cannot work (storage error, misconfiguration, program failure).
    #[error("{0}")]
    Failed(String),
}

impl From<crate::storage::StorageError> for ProviderError {
    fn from(error: crate::storage::StorageError) -> Self {
        ProviderError::Failed(error.to_string())
    }
}

/// Access to the auth store that providers need (credentials, users, linking).
#[async_trait]
pub trait AuthAccess: Send + Sync {
    /// Every stored credential of provider `(type, id)`.
    fn credentials_of(&self, provider_type: &str, provider_id: Option<&str>) -> Vec<Credentials>;
    /// Linked credentials (of any provider) whose data `username` is exactly `username`, with
    /// their owners' ids, in user order. The manager answers from an index, so a sign-in does
    /// not cost O(users); the default scans [`AuthAccess::users`].
    fn credentials_with_username(&self, username: &str) -> Vec<(String, Credentials)> {
        self.users()
            .into_iter()
            .flat_map(|user| {
                let id = user.id;
                user.credentials
                    .into_iter()
                    .filter(|c| c.data_str("username") == Some(username))
                    .map(move |c| (id.clone(), c))
            })
            .collect()
    }
    /// All users, in order.
    fn users(&self) -> Vec<User>;
    /// A user by id.
    fn user(&self, user_id: &str) -> Option<User>;
    /// A new, unlinked credential with a fresh id.
    fn new_credentials(
        &self,
        provider_type: &str,
        provider_id: Option<&str>,
        data: Map<String, Value>,
    ) -> Credentials;
    /// Links a credential to a user and saves durably.
    async fn link_credentials(
        &self,
        user_id: &str,
        credentials: Credentials,
    ) -> Result<Credentials, AuthError>;
    /// Replaces a linked credential's data and saves durably.
    async fn update_credential_data(
        &self,
        credential_id: &str,
        data: Map<String, Value>,
    ) -> Result<(), AuthError>;
}

/// One login flow's provider-specific steps. Return a form to ask for more input, an abort, or a
/// `create_entry` whose `data` object identifies the user (it is passed to
/// [`AuthProvider::get_or_create_credentials`]).
#[async_trait]
pub trait ProviderLoginFlow: Send {
    /// Runs `step_id` (`init` first) with validated input (None on first display).
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, ProviderError>;

    /// The login flow's id, given once before the first step (see [`external_state`]).
    fn bind_flow_id(&mut self, _flow_id: &str) {}
}

/// The `state` of an external login step (an identity provider's redirect back to us): the
/// flow's id, a `.`, and a random secret, so that the callback finds the flow without a table.
pub fn external_state(flow_id: &str, secret: &str) -> String {
    format!("{flow_id}.{secret}")
}

/// The flow id in an external login step's `state` (see [`external_state`]).
pub fn external_state_flow_id(state: &str) -> Option<&str> {
    let (flow_id, secret) = state.split_once('.')?;
    (!flow_id.is_empty() && !secret.is_empty()).then_some(flow_id)
}

/// An auth provider. Implementations register themselves with [`crate::register_provider!`].
///
/// A test that needs the concrete type upcasts: `(provider.as_ref() as &dyn Any).downcast_ref()`;
/// hosts use capabilities such as [`AuthProvider::password_admin`] instead.
#[async_trait]
pub trait AuthProvider: Any + Send + Sync {
    /// The provider's config `type`, `id` and display name (the getters below read it).
    fn identity(&self) -> &PluginIdentity;
    /// The config `type`.
    fn provider_type(&self) -> &str {
        &self.identity().kind
    }
    /// The config `id` (None when not configured).
    fn provider_id(&self) -> Option<&str> {
        self.identity().id.as_deref()
    }
    /// Display name (config `name` or the provider's default).
    fn name(&self) -> &str {
        &self.identity().name
    }
    /// Whether users of this provider are asked for MFA after the first step.
    fn supports_mfa(&self) -> bool {
        true
    }
    /// Loads provider data; run once at startup.
    async fn initialize(&self) -> Result<(), ProviderError> {
        Ok(())
    }
    /// Whether the provider is offered to and may start a login for this request.
    fn can_start_login(&self, _context: &LoginContext) -> bool {
        true
    }
    /// Creates the provider's steps for one login flow.
    async fn login_flow(
        &self,
        context: &LoginContext,
        auth: Arc<dyn AuthAccess>,
    ) -> Result<Box<dyn ProviderLoginFlow>, ProviderError>;
    /// Maps a finished flow's data to an existing credential or a new unsaved one. Default: the
    /// credential of this provider whose `data.username` equals the flow's `username` exactly
    /// ([`credentials_by_exact_username`]).
    async fn get_or_create_credentials(
        &self,
        data: &Map<String, Value>,
        auth: &dyn AuthAccess,
    ) -> Result<Credentials, ProviderError> {
        credentials_by_exact_username(auth, self.provider_type(), self.provider_id(), data)
    }
    /// The username a login with `credentials` is known by, for MFA modules that key entries by
    /// username (a provider's required chain). Default: the credentials' data `username`.
    fn credential_username(&self, credentials: &Credentials) -> Option<String> {
        credentials.data_str("username").map(str::to_owned)
    }
    /// Metadata for creating the user at first sign-in.
    async fn user_meta_for_credentials(
        &self,
        credentials: &Credentials,
    ) -> Result<UserMeta, ProviderError>;
    /// Runs whenever an access token is minted from a refresh token obtained through this provider.
    async fn validate_refresh_token(
        &self,
        _token: &RefreshToken,
        _remote_ip: Option<IpAddr>,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
    /// Cleanup before a credential of this provider is removed.
    async fn will_remove_credentials(
        &self,
        _credentials: &Credentials,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
    /// Re-verifies a signed-in user (password change); `data` holds e.g. `password`.
    async fn verify_step_up(
        &self,
        _user: &User,
        _data: &Map<String, Value>,
    ) -> Result<(), ProviderError> {
        Err(ProviderError::InvalidAuth(
            "step-up verification is not supported by this provider".to_owned(),
        ))
    }
    /// The provider's local-password administration, when it keeps usernames and passwords
    /// that an administrator manages (the `homeassistant` provider). Default: none.
    fn password_admin(&self) -> Option<&dyn crate::password_admin::PasswordAdmin> {
        None
    }
}

/// The key of a provider: `(type, id)`.
pub type ProviderKey = (String, Option<String>);

/// The `username` + `password` form shared by the username/password providers.
pub fn username_password_schema() -> flow_engine::Schema {
    flow_engine::Schema::new(vec![
        flow_engine::Field::string("username").required(),
        flow_engine::Field::string("password").required(),
    ])
}

/// A form's `errors` object with one `base` error, e.g. `{"base": "invalid_auth"}`.
pub fn base_error(key: &str) -> Map<String, Value> {
    let mut errors = Map::new();
    errors.insert("base".to_owned(), Value::String(key.to_owned()));
    errors
}

/// The credential of provider `(type, id)` whose `data.username` equals the login's `username`
/// exactly, or a new unsaved one with `{"username": ...}`.
pub fn credentials_by_exact_username(
    auth: &dyn AuthAccess,
    provider_type: &str,
    provider_id: Option<&str>,
    data: &Map<String, Value>,
) -> Result<Credentials, ProviderError> {
    let username = data
        .get("username")
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::Failed("login result without a username".to_owned()))?;
    let existing = auth
        .credentials_with_username(username)
        .into_iter()
        .map(|(_, c)| c)
        .find(|c| c.belongs_to(provider_type, provider_id));
    if let Some(existing) = existing {
        return Ok(existing);
    }
    let mut new_data = Map::new();
    new_data.insert("username".to_owned(), Value::String(username.to_owned()));
    Ok(auth.new_credentials(provider_type, provider_id, new_data))
}
