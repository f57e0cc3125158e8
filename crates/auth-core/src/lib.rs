//! Home Assistant's authentication model in Rust: users, groups and the owner, credentials,
//! refresh/access/long-lived tokens, permissions, login flows with MFA steps, and the
//! [`AuthManager`] that ties them together over a [`Storage`] in Home Assistant's `.storage` format.
//!
//! `auth-core` does no I/O except through [`Storage`]; time and randomness come in through
//! [`Clock`] and [`Rng`]. Providers and MFA modules are plugins implementing [`AuthProvider`] and
//! [`MfaModule`], registered with [`register_provider!`] and [`register_mfa_module!`].
//!
//! A host usually builds the manager from YAML with `auth-host`:
//!
//! ```yaml
//! homeassistant:
//!   auth_providers:
//!     - type: homeassistant
//!   auth_mfa_modules:
//!     - type: totp
//! ```
//!
//! or directly:
//!
//! ```no_run
//! # async fn demo() -> Result<(), auth_core::AuthError> {
//! use std::sync::Arc;
//! let storage = Arc::new(auth_core::FileStorage::new("/config/.storage"));
//! let manager = auth_core::AuthManager::builder(storage).build().await?;
//! let owner = manager.create_user(Some("Owner".into()), vec!["system-admin".into()], false).await?;
//! assert!(owner.is_owner);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod clock;
pub mod codes;
pub mod error;
pub mod events;
pub mod history;
pub mod journal;
pub mod login_flow;
pub mod manager;
pub mod mfa;
pub mod mfa_lockout;
pub mod mfa_setup;
pub mod models;
pub mod net;
pub mod password_admin;
pub mod permissions;
pub mod provider;
pub mod recovery;
pub mod registry;
pub mod rng;
pub mod stale;
pub mod storage;
pub mod store;
pub mod timefmt;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use error::AuthError;
pub use events::AuthEvent;
pub use journal::{FileJournal, Journal};
pub use manager::{AuthManager, AuthManagerBuilder, ManagerLimits, NewRefreshToken, UserUpdate};
pub use mfa::{ChainEntry, MfaCredential, MfaError, MfaModule, MfaSubject};
pub use mfa_lockout::MfaLockoutPolicy;
pub use models::{Credentials, Group, RefreshToken, TokenType, User, UserMeta};
pub use password_admin::PasswordAdmin;
pub use permissions::{Permissions, Policy, PolicyKey};
pub use provider::{AuthAccess, AuthProvider, LoginContext, ProviderError, ProviderLoginFlow};
pub use registry::{PluginConfigError, PluginContext, PluginIdentity, PluginSpec};
pub use rng::{OsRng, Rng, SeededRng, SharedRng};
pub use storage::{
    ChangeFlag, FileStorage, MemoryStorage, SaveOptions, SharedBans, SharedCodes, SharedRedemption,
    Storage, StorageError, StoreChange, StoredDocument,
};

/// Re-exports used by the registration macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use schemars;
}

/// Re-exported so plugins share one version.
pub use flow_engine;
/// Re-exported so plugins share one version.
pub use ipnet;

/// The README's examples, compiled and run as doctests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
