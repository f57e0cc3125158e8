//! The MFA module contract: a second factor checked after the provider accepted the user.

use std::any::Any;

use async_trait::async_trait;
use flow_engine::{Flow, Schema};
use serde_json::{Map, Value};

/// Why an MFA module operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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

/// An MFA module. Implementations register themselves with [`crate::register_mfa_module!`].
#[async_trait]
pub trait MfaModule: Send + Sync + 'static {
    /// Module id (config `id`, defaulting to the type).
    fn id(&self) -> &str;
    /// Module type.
    fn module_type(&self) -> &str;
    /// Display name.
    fn name(&self) -> &str;
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
    /// For downcasting to the concrete module.
    fn as_any(&self) -> &dyn Any;
}
