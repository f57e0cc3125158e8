//! From a checked [`HostConfig`] to a running [`AuthManager`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use auth_core::registry::{
    PasswordPolicy, PluginConfigError, PluginContext, find_mfa_module, find_provider,
};
use auth_core::storage::StorageLock;
use auth_core::{
    AuthManager, ChainEntry, FileStorage, ManagerLimits, MfaModule, OsRng, SharedClock, SharedRng,
    Storage, SystemClock,
};

use crate::config::{ConfigLoader, HostConfig, PluginEntry, check_same_module};
use crate::error::HostError;

/// What a host chooses besides the configuration file.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// Time source (default: the system clock).
    pub clock: SharedClock,
    /// Random source (default: the OS generator).
    pub rng: SharedRng,
    /// Hashing parameters for new passwords (default: OWASP's argon2id minimum).
    pub password_policy: PasswordPolicy,
    /// Bounds of the manager's in-memory tables.
    pub limits: ManagerLimits,
    /// Where the stores live instead of `<config>/.storage` (e.g. a database); `None`: the file store.
    pub storage: Option<Arc<dyn Storage>>,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            rng: Arc::new(OsRng),
            password_policy: PasswordPolicy::default(),
            limits: ManagerLimits::default(),
            storage: None,
        }
    }
}

fn unknown_type(entry: &PluginEntry, noun: &str) -> HostError {
    entry
        .plugin_error(&PluginConfigError(format!(
            "unknown {noun} type '{}': not compiled into this build",
            entry.kind
        )))
        .into()
}

/// Builds an MFA module entry through its registration.
fn build_module(
    entry: &PluginEntry,
    context: &PluginContext,
) -> Result<Arc<dyn MfaModule>, HostError> {
    let registration =
        find_mfa_module(&entry.kind).ok_or_else(|| unknown_type(entry, "mfa module"))?;
    if registration.testing_only {
        tracing::warn!(
            module = entry.kind.as_str(),
            location = entry.location.as_str(),
            "INSECURE: the {} mfa module is for testing only; its codes are in the configuration",
            entry.kind
        );
    }
    (registration.build)(entry.spec.clone(), context)
        .map_err(|e| HostError::Config(entry.plugin_error(&e)))
}

/// Builds every configured provider and MFA module through its registration (with the
/// `http: trusted_proxies` in its context) and starts an [`AuthManager`] over `storage`.
///
/// A provider's required chain (`modules:`) uses one module instance per id: an id that is also
/// in `auth_mfa_modules` (or in an earlier chain) is that module, so a store such as
/// `.storage/auth_module.totp` is never held by two instances.
///
/// Over any storage, for example PostgreSQL or (here) memory:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::{path::Path, sync::Arc};
/// use auth_core::MemoryStorage;
/// use auth_host::{HostOptions, auth_manager_from_config, parse_config};
/// use provider_example_fork as _;
///
/// let text = "homeassistant:\n  auth_providers:\n    - type: example_fork\n      \
///             accounts: [{login: kiosk, secret: s3cret}]\n  auth_mfa_modules: []\n";
/// let config = parse_config(text, Path::new("configuration.yaml"))?;
/// let manager =
///     auth_manager_from_config(&config, Arc::new(MemoryStorage::new()), HostOptions::default())
///         .await?;
/// assert!(manager.auth_provider("example_fork", None).is_some());
/// # Ok(()) }
/// ```
pub async fn auth_manager_from_config(
    config: &HostConfig,
    storage: Arc<dyn Storage>,
    options: HostOptions,
) -> Result<AuthManager, HostError> {
    let context = PluginContext {
        storage: storage.clone(),
        clock: options.clock.clone(),
        rng: options.rng.clone(),
        password_policy: options.password_policy.clone(),
        trusted_proxies: config.http.trusted_proxies.clone(),
    };
    let mut builder = AuthManager::builder(storage)
        .clock(options.clock)
        .rng(options.rng)
        .limits(options.limits);
    // Module instances by id, with the entry that defined them.
    let mut modules: Vec<(&PluginEntry, Arc<dyn MfaModule>)> = Vec::new();
    for entry in &config.mfa_modules {
        let module = build_module(entry, &context)?;
        builder = builder.mfa_module(module.clone());
        modules.push((entry, module));
    }
    for entry in &config.providers {
        let registration =
            find_provider(&entry.kind).ok_or_else(|| unknown_type(entry, "auth provider"))?;
        if registration.testing_only {
            tracing::warn!(
                provider = entry.kind.as_str(),
                location = entry.location.as_str(),
                "INSECURE: the {} auth provider is for testing only; anyone who can read the configuration can log in",
                entry.kind
            );
        }
        let provider = (registration.build)(entry.spec.clone(), &context)
            .map_err(|e| HostError::Config(entry.plugin_error(&e)))?;
        let mut chain = Vec::with_capacity(entry.modules.len());
        for link in &entry.modules {
            let known = modules
                .iter()
                .find(|(first, _)| crate::config::module_id(first) == link.module_id());
            let module = match known {
                Some((first, module)) => {
                    check_same_module(&link.entry, first)?;
                    module.clone()
                }
                None => {
                    let module = build_module(&link.entry, &context)?;
                    modules.push((&link.entry, module.clone()));
                    module
                }
            };
            chain.push(ChainEntry::new(module).enroll(link.enroll));
        }
        builder = builder.provider_with_chain(provider, chain);
    }
    Ok(builder.build().await?)
}

/// A configuration directory opened for serving: its `configuration.yaml`, a lock on its
/// `.storage`, and the [`AuthManager`] over it.
#[derive(Debug)]
pub struct Host {
    config_dir: PathBuf,
    config: HostConfig,
    storage: Arc<FileStorage>,
    manager: AuthManager,
    _lock: StorageLock,
}

impl Host {
    /// Opens `dir` (reads `dir/configuration.yaml`, locks `dir/.storage`) with default options.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), auth_host::HostError> {
    /// use provider_example_fork as _;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(
    ///     dir.path().join("configuration.yaml"),
    ///     "homeassistant:\n  auth_providers:\n    - type: example_fork\n      \
    ///      accounts: [{login: kiosk, secret: s3cret}]\n  auth_mfa_modules: []\n",
    /// )
    /// .unwrap();
    /// let host = auth_host::Host::from_config_dir(dir.path()).await?;
    /// assert_eq!(host.manager().auth_providers().len(), 1);
    /// assert!(host.storage().dir().ends_with(".storage"));
    /// // The `.storage` directory stays locked while `host` lives: a second server cannot open it.
    /// assert!(auth_host::Host::from_config_dir(dir.path()).await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn from_config_dir(dir: impl AsRef<Path>) -> Result<Self, HostError> {
        Self::from_config_dir_with(dir, HostOptions::default(), &ConfigLoader::new()).await
    }

    /// Opens `dir` with the given options and configuration loader.
    pub async fn from_config_dir_with(
        dir: impl AsRef<Path>,
        options: HostOptions,
        loader: &ConfigLoader,
    ) -> Result<Self, HostError> {
        let config_dir = dir.as_ref().to_owned();
        let config = loader.load(&config_dir.join("configuration.yaml"))?;
        Self::from_loaded_config(config_dir, config, options).await
    }

    /// Opens `dir` with a configuration already read from its `configuration.yaml` (by
    /// [`ConfigLoader::load`]): for a caller that needed a key of it first (the server's
    /// `storage:`), so that the file is read, and its warnings logged, once.
    pub async fn from_loaded_config(
        dir: impl AsRef<Path>,
        config: HostConfig,
        options: HostOptions,
    ) -> Result<Self, HostError> {
        let config_dir = dir.as_ref().to_owned();
        let storage = Arc::new(FileStorage::new(config_dir.join(".storage")));
        let lock = storage.lock()?;
        let stores: Arc<dyn Storage> = options.storage.clone().unwrap_or_else(|| storage.clone());
        let manager = auth_manager_from_config(&config, stores, options).await?;
        Ok(Self {
            config_dir,
            config,
            storage,
            manager,
            _lock: lock,
        })
    }

    /// The configuration directory.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// The checked configuration.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The `.storage` directory store.
    pub fn storage(&self) -> &Arc<FileStorage> {
        &self.storage
    }

    /// The auth manager.
    pub fn manager(&self) -> &AuthManager {
        &self.manager
    }
}
