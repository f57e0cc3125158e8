//! Errors of loading the configuration and of building the manager from it.

use std::fmt;
use std::path::PathBuf;

/// A position in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file (as given, or as reached through `!include`).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Why a configuration was rejected. Every message starts with `file:line:column`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A configuration file could not be read.
    #[error("{}: cannot read the configuration: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML (or not one document).
    #[error("{location}: invalid YAML: {message}")]
    Syntax {
        /// Where.
        location: Location,
        /// What the parser said.
        message: String,
    },
    /// A value is not what was expected (including `!secret`, `!env_var`, `!include` failures).
    #[error("{location}: {key_path}: {message}")]
    Invalid {
        /// Where.
        location: Location,
        /// Dotted path of the value, e.g. `homeassistant.auth_providers[1].type`.
        key_path: String,
        /// What was expected.
        message: String,
    },
    /// A provider or MFA module rejected its entry.
    #[error("{location}: {key_path} (type {kind}): {message}")]
    Plugin {
        /// Where (the offending key when it could be found, else the entry).
        location: Location,
        /// Path of the entry, e.g. `homeassistant.auth_providers[1]`.
        key_path: String,
        /// The entry's `type`.
        kind: String,
        /// The plugin's message.
        message: String,
    },
    /// Two linked plugin crates register one `type` (a build problem, not a file's).
    #[error(transparent)]
    DuplicatePlugin(#[from] auth_core::registry::DuplicateRegistration),
    /// A settings store (`.storage/http`) cannot be used.
    #[error("{}: {message}", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// Where the problem is, when it is inside a file.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::Read { .. }
            | ConfigError::Store { .. }
            | ConfigError::DuplicatePlugin(_) => None,
            ConfigError::Syntax { location, .. }
            | ConfigError::Invalid { location, .. }
            | ConfigError::Plugin { location, .. } => Some(location),
        }
    }
}

/// Why [`crate::auth_manager_from_config`] or [`crate::Host`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The configuration is invalid (or a plugin refused its entry when built).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The storage directory is in use by another process (or cannot be locked).
    #[error("cannot lock the storage directory: {0}")]
    Storage(#[from] auth_core::StorageError),
    /// The auth manager could not start (e.g. an unreadable `.storage/auth`).
    #[error("cannot start the auth manager: {0}")]
    Auth(#[from] auth_core::AuthError),
}
