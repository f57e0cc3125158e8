//! The password-administration capability a provider may offer: local usernames and passwords
//! that an administrator adds, changes, renames and removes (the
//! `config/auth_provider/homeassistant/*` websocket commands, onboarding and the command line).
//!
//! Hosts never name the provider crate that implements it: they ask a configured provider for
//! [`AuthProvider::password_admin`] (or take the first provider offering it with
//! [`password_admin_provider`]), so the provider's crate can be left out of a build.

use std::sync::Arc;

use async_trait::async_trait;

use crate::models::{Credentials, User};
use crate::provider::{AuthAccess, AuthProvider, ProviderError};

/// Administration of a provider's local usernames and passwords. Every change is saved before
/// the call returns; a refused or failed call changes nothing.
#[async_trait]
pub trait PasswordAdmin: Send + Sync + 'static {
    /// `username` as the provider compares it (e.g. trimmed and case-folded), so that callers
    /// looking for a user's credential match exactly as a login would.
    fn normalize_username(&self, username: &str) -> String;

    /// The stored usernames, in storage order.
    async fn usernames(&self) -> Result<Vec<String>, ProviderError>;

    /// Checks a username and password; `Ok(false)` for an unknown user or a wrong password.
    async fn validate_login(&self, username: &str, password: &str) -> Result<bool, ProviderError>;

    /// Adds a password entry without linking a credential to any user.
    ///
    /// `InvalidUsername` when the name is not normalised or taken.
    async fn add_auth(&self, username: &str, password: &str) -> Result<(), ProviderError>;

    /// Adds a password entry for `username` and links a new credential for it to `user_id`, as
    /// one step for logins (no login can see the entry without the credential).
    ///
    /// `InvalidUsername` when the name is not normalised or used by an entry or a credential.
    async fn add_credentials(
        &self,
        auth: &dyn AuthAccess,
        user_id: &str,
        username: &str,
        password: &str,
    ) -> Result<Credentials, ProviderError>;

    /// Whether [`PasswordAdmin::add_credentials`] would take `username`; writes nothing.
    async fn check_new_username(
        &self,
        auth: &dyn AuthAccess,
        username: &str,
    ) -> Result<(), ProviderError>;

    /// Removes the password entry of `username` (compared normalised).
    ///
    /// `InvalidUser` when there is none.
    async fn remove_auth(&self, username: &str) -> Result<(), ProviderError>;

    /// Sets a new password for `username` (compared normalised).
    ///
    /// `InvalidUser` when there is no such entry.
    async fn change_password(
        &self,
        username: &str,
        new_password: &str,
    ) -> Result<(), ProviderError>;

    /// Renames the entry behind `credential` and the credential's `data.username` together.
    ///
    /// `InvalidUsername` for a refused new name, `InvalidUser` for a credential this provider
    /// does not know.
    async fn change_username(
        &self,
        auth: &dyn AuthAccess,
        credential: &Credentials,
        new_username: &str,
    ) -> Result<(), ProviderError>;
}

/// The first of `providers` (in configuration order) that offers [`PasswordAdmin`].
pub fn password_admin_provider(
    providers: &[Arc<dyn AuthProvider>],
) -> Option<Arc<dyn AuthProvider>> {
    providers
        .iter()
        .find(|p| p.password_admin().is_some())
        .cloned()
}

/// `user`'s first credential of `provider`.
pub fn credential_of<'a>(provider: &dyn AuthProvider, user: &'a User) -> Option<&'a Credentials> {
    user.credentials
        .iter()
        .find(|c| c.belongs_to(provider.provider_type(), provider.provider_id()))
}

/// `data.username` of `user`'s first credential of `provider`.
pub fn username_of(provider: &dyn AuthProvider, user: &User) -> Option<String> {
    credential_of(provider, user)
        .and_then(|c| c.data_str("username"))
        .map(str::to_owned)
}
