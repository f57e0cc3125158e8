//! The MFA module contract: a second factor checked after the provider accepted the user, and
//! [`ChainEntry`], one module of a provider's required MFA chain.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use flow_engine::{Flow, Schema};
use serde_json::{Map, Value};

use crate::registry::PluginIdentity;

/// Why an MFA module operation failed.
#[derive(Debug, thiserror::Error)]
// Not `#[non_exhaustive]`: auth-http answers every variant in one exhaustive match (a new variant must be given its HTTP answer).
pub enum MfaError {
    /// The module cannot work (storage error, misconfiguration).
    #[error("{0}")]
    Failed(String),
    /// The input is not acceptable.
    #[error("{0}")]
    InvalidInput(String),
}

impl From<crate::storage::StorageError> for MfaError {
    fn from(error: crate::storage::StorageError) -> Self {
        MfaError::Failed(error.to_string())
    }
}

/// Who a login's MFA step is about.
///
/// Opt-in MFA (`auth_mfa_modules`) always has a user. A provider's required chain runs for the
/// login's credentials, which may not belong to a user yet (first sign-in): then `user_id` is
/// `None` and only modules that can recognise the login otherwise (e.g. by `username`) can be
/// passed without enrolment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MfaSubject {
    /// The user the credentials are linked to (`None` for credentials not linked yet).
    pub user_id: Option<String>,
    /// The login's username (see [`crate::AuthProvider::credential_username`]).
    pub username: Option<String>,
}

/// One named key of a user in a module that keeps several (see [`MfaModule::list_credentials`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MfaCredential {
    /// The key's id (unique within the user).
    pub id: String,
    /// The name the user gave it.
    pub name: String,
    /// When it was added (ISO 8601).
    pub created_at: String,
    /// When it last passed a login (ISO 8601), if ever.
    pub last_used_at: Option<String>,
}

/// An MFA module. Implementations register themselves with [`crate::register_mfa_module!`].
#[async_trait]
pub trait MfaModule: Any + Send + Sync {
    /// The module's config `type`, `id` and display name (the getters below read it).
    fn identity(&self) -> &PluginIdentity;
    /// Module id (config `id`, defaulting to the type).
    fn id(&self) -> &str {
        self.identity().module_id()
    }
    /// Module type.
    fn module_type(&self) -> &str {
        &self.identity().kind
    }
    /// Display name.
    fn name(&self) -> &str {
        &self.identity().name
    }
    /// Wrong codes allowed per login flow before it aborts (HA's `MAX_RETRY_TIME`).
    fn max_retry(&self) -> u32 {
        3
    }
    /// The fields asked for during login.
    fn input_schema(&self) -> Schema;
    /// Loads module data; run once at startup.
    async fn initialize(&self) -> Result<(), MfaError> {
        Ok(())
    }
    /// A setup flow enrolling `user_id`; `user_name` is the user's display name.
    async fn setup_flow(
        &self,
        user_id: &str,
        user_name: Option<&str>,
    ) -> Result<Box<dyn Flow>, MfaError>;
    /// Stores an enrolment directly; returns a module-specific result.
    async fn setup_user(&self, user_id: &str, data: &Map<String, Value>)
    -> Result<Value, MfaError>;
    /// Removes an enrolment.
    async fn depose_user(&self, user_id: &str) -> Result<(), MfaError>;
    /// Whether `user_id` is enrolled.
    async fn is_user_setup(&self, user_id: &str) -> Result<bool, MfaError>;
    /// Checks login input (already validated against [`MfaModule::input_schema`]).
    async fn validate(&self, user_id: &str, input: &Map<String, Value>) -> Result<bool, MfaError>;
    /// Called when the login `mfa` form is first shown (e.g. to send a code).
    async fn begin_login(&self, _user_id: &str) -> Result<(), MfaError> {
        Ok(())
    }
    /// Whether the login `subject` can pass this module without enrolling first (used by
    /// required chains). Default: [`MfaModule::is_user_setup`] of the user; `false` without one.
    async fn is_subject_setup(&self, subject: &MfaSubject) -> Result<bool, MfaError> {
        match &subject.user_id {
            Some(user_id) => self.is_user_setup(user_id).await,
            None => Ok(false),
        }
    }
    /// Checks login input for `subject` (used by required chains). Default:
    /// [`MfaModule::validate`] for the user; `false` without one.
    async fn validate_subject(
        &self,
        subject: &MfaSubject,
        input: &Map<String, Value>,
    ) -> Result<bool, MfaError> {
        match &subject.user_id {
            Some(user_id) => self.validate(user_id, input).await,
            None => Ok(false),
        }
    }
    /// Called when a chain's code form is first shown for `subject`. Default:
    /// [`MfaModule::begin_login`] for the user; nothing without one.
    async fn begin_login_subject(&self, subject: &MfaSubject) -> Result<(), MfaError> {
        match &subject.user_id {
            Some(user_id) => self.begin_login(user_id).await,
            None => Ok(()),
        }
    }
    /// Extra placeholders for the login `mfa` form of `user_id`, asked for every time the form
    /// is shown (e.g. a fresh WebAuthn challenge). Default: none.
    async fn login_placeholders(&self, _user_id: &str) -> Result<Map<String, Value>, MfaError> {
        Ok(Map::new())
    }
    /// The named keys `user_id` registered, for modules that keep several per user; `None` for
    /// modules that do not (the default).
    async fn list_credentials(
        &self,
        _user_id: &str,
    ) -> Result<Option<Vec<MfaCredential>>, MfaError> {
        Ok(None)
    }
    /// Removes one of `user_id`'s keys; `Ok(false)` when there is no such key (the default).
    async fn remove_credential(
        &self,
        _user_id: &str,
        _credential_id: &str,
    ) -> Result<bool, MfaError> {
        Ok(false)
    }
    /// The `.storage` key this module keeps its data in, if any. Two configured modules may not
    /// share one: each would overwrite the other's enrolments.
    fn storage_key(&self) -> Option<&str> {
        None
    }
}

/// One module of a provider's required MFA chain (config `modules:` on a provider entry): every
/// login through that provider must pass it, in chain order, before credentials are returned.
#[derive(Clone)]
pub struct ChainEntry {
    /// The module (the same instance as in `auth_mfa_modules` when the id is configured there).
    pub module: Arc<dyn MfaModule>,
    /// Whether a login that is not set up in the module enrols in it inside the login flow
    /// (`true`, the default) or is refused with `mfa_setup_required` (`false`).
    pub enroll: bool,
}

impl ChainEntry {
    /// A chain entry that enrols users not set up yet.
    pub fn new(module: Arc<dyn MfaModule>) -> Self {
        Self {
            module,
            enroll: true,
        }
    }

    /// Sets whether users not set up yet enrol during the login.
    pub fn enroll(mut self, enroll: bool) -> Self {
        self.enroll = enroll;
        self
    }
}

impl std::fmt::Debug for ChainEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainEntry")
            .field("module", &self.module.id())
            .field("enroll", &self.enroll)
            .finish()
    }
}
