//! Errors of the auth manager. A wrong password or code is not an error: it is a form with
//! `errors.base`; these are refusals and failures.

use crate::mfa::MfaError;
use crate::provider::ProviderError;
use crate::storage::StorageError;

/// Why an [`crate::AuthManager`] operation failed. Messages are Home Assistant's where it has one.
#[derive(Debug, thiserror::Error)]
// Not `#[non_exhaustive]`: auth-http answers every variant in one exhaustive match (a new variant must be given its HTTP answer).
pub enum AuthError {
    /// A request that breaks a rule (HA's `ValueError`), with HA's message.
    #[error("{0}")]
    Invalid(String),
    /// No user with that id.
    #[error("User not found")]
    UserNotFound,
    /// No refresh token with that id.
    #[error("Refresh token not found")]
    TokenNotFound,
    /// A group id that does not exist.
    #[error("Invalid group specified {0}")]
    InvalidGroup(String),
    /// The owner cannot be deactivated.
    #[error("Unable to deactivate the owner")]
    CannotDeactivateOwner,
    /// The owner cannot be removed.
    #[error("Unable to remove the owner")]
    CannotRemoveOwner,
    /// The credential belongs to another user.
    #[error("Credential is already linked to a user")]
    CredentialAlreadyLinked,
    /// Another sign-in already created an account for the same identity.
    #[error("Sign in again")]
    DuplicateCredentials,
    /// The credential's provider `(type, id)` is not configured.
    #[error("Auth provider {provider_type} (id {provider_id:?}) is not configured")]
    UnknownProvider {
        /// Provider type.
        provider_type: String,
        /// Provider id.
        provider_id: Option<String>,
    },
    /// No MFA module with that id.
    #[error("Unable find multi-factor auth module: {0}")]
    UnknownMfaModule(String),
    /// The user may not drop an enrolment that a provider's required chain needs.
    #[error(
        "{provider} requires it to sign in; an administrator can reset it (hass-auth user reset-mfa)"
    )]
    MfaRequired {
        /// The module.
        module_id: String,
        /// Display name of the provider requiring it.
        provider: String,
    },
    /// Authentication refused (e.g. refresh-token hook, inactive user).
    #[error("{0}")]
    InvalidAuth(String),
    /// Too many flows or codes in progress.
    #[error("{0}")]
    Overloaded(String),
    /// Storage failed; what was asked was not done.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// An MFA module failed.
    #[error(transparent)]
    Mfa(#[from] MfaError),
    /// A flow failed.
    #[error(transparent)]
    Flow(#[from] flow_engine::FlowError),
}
