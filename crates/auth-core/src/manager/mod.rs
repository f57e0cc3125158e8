//! The `AuthManager`: every user, group, credential and token operation of Home Assistant's
//! auth manager, with durable-before-acknowledge persistence.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use flow_engine::{FlowLimits, FlowManager};
use indexmap::IndexMap;
use parking_lot::Mutex;
use time::{Duration, OffsetDateTime};
use tokio::sync::broadcast;

use crate::clock::{SharedClock, SystemClock};
use crate::codes::{AuthCodes, DEFAULT_MAX_CODES};
use crate::error::AuthError;
use crate::events::AuthEvent;
use crate::history::SignInHistory;
use crate::mfa::{ChainEntry, MfaModule};
use crate::mfa_lockout::{MfaLockout, MfaLockoutPolicy};
use crate::models::{AUTH_CODE_EXPIRATION, Group, TokenType, User};
use crate::permissions::{Permissions, Policy, merge_policies};
use crate::provider::{AuthProvider, LoginContext, ProviderKey};
use crate::recovery::RecoveryCodes;
use crate::rng::{OsRng, SharedRng, random_hex};
use crate::storage::Storage;
use crate::store::{AuthStore, SAVE_DELAY};
use crate::timefmt::truncate_micros;

mod access;
mod access_tokens;
mod groups_users;
mod login;
mod mfa;
mod refresh_tokens;
/// Longest pause of [`AuthManager::spawn_expiry_task`] between two purges of abandoned flows and
/// codes.
pub const HOUSEKEEPING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Version string stored in new refresh tokens.
pub const SOFTWARE_VERSION: &str = concat!("hass-auth-", env!("CARGO_PKG_VERSION"));

/// Parameters of [`AuthManager::create_refresh_token`].
#[derive(Clone, Debug, Default)]
pub struct NewRefreshToken {
    /// OAuth client id (required for normal tokens, forbidden for system users).
    pub client_id: Option<String>,
    /// Client name (required for long-lived tokens).
    pub client_name: Option<String>,
    /// Client icon.
    pub client_icon: Option<String>,
    /// Token type; defaults to `system` for system users, else `normal`.
    pub token_type: Option<TokenType>,
    /// Access-token lifetime; defaults to 30 minutes.
    pub access_token_expiration: Option<Duration>,
    /// Credential used to sign in.
    pub credential_id: Option<String>,
}

/// Fields of [`AuthManager::update_user`]; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserUpdate {
    /// New name.
    pub name: Option<Option<String>>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
    /// Replace the group list.
    pub group_ids: Option<Vec<String>>,
    /// New local-only flag.
    pub local_only: Option<bool>,
}

/// Bounds of in-memory tables a client can grow.
#[derive(Clone, Debug)]
pub struct ManagerLimits {
    /// Login flows in progress at once, and their idle timeout.
    pub login_flows: FlowLimits,
    /// MFA setup flows in progress at once, and their idle timeout.
    pub mfa_setup_flows: FlowLimits,
    /// Unredeemed authorization codes held at once.
    pub max_auth_codes: usize,
    /// How long an authorization code can be redeemed (HA: 10 minutes).
    pub auth_code_lifetime: Duration,
    /// Wrong MFA codes per account across login flows, and the lockout they lead to.
    pub mfa_lockout: MfaLockoutPolicy,
}

impl Default for ManagerLimits {
    fn default() -> Self {
        Self {
            login_flows: FlowLimits::default(),
            mfa_setup_flows: FlowLimits::default(),
            max_auth_codes: DEFAULT_MAX_CODES,
            auth_code_lifetime: AUTH_CODE_EXPIRATION,
            mfa_lockout: MfaLockoutPolicy::default(),
        }
    }
}

type RevokeCallback = Box<dyn FnOnce() + Send>;

/// Builds an [`AuthManager`].
pub struct AuthManagerBuilder {
    storage: Arc<dyn Storage>,
    clock: SharedClock,
    rng: SharedRng,
    providers: Vec<(Arc<dyn AuthProvider>, Vec<ChainEntry>)>,
    modules: Vec<Arc<dyn MfaModule>>,
    limits: ManagerLimits,
}

impl AuthManagerBuilder {
    /// Uses `clock` instead of the system clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `rng` instead of the OS generator.
    pub fn rng(mut self, rng: SharedRng) -> Self {
        self.rng = rng;
        self
    }

    /// Adds a provider (login screen order = order added).
    pub fn provider(mut self, provider: Arc<dyn AuthProvider>) -> Self {
        self.providers.push((provider, Vec::new()));
        self
    }

    /// Adds a provider whose logins must pass every module of `chain`, in order, before the
    /// flow returns credentials (then the user's own opt-in MFA, if any module they enabled is
    /// not in the chain). A module id may appear once per chain; a module whose id is also added
    /// with [`AuthManagerBuilder::mfa_module`] (or used by another chain) must be the same
    /// instance, so that one store is never held twice.
    pub fn provider_with_chain(
        mut self,
        provider: Arc<dyn AuthProvider>,
        chain: Vec<ChainEntry>,
    ) -> Self {
        self.providers.push((provider, chain));
        self
    }

    /// Adds an MFA module.
    pub fn mfa_module(mut self, module: Arc<dyn MfaModule>) -> Self {
        self.modules.push(module);
        self
    }

    /// Sets the table limits.
    pub fn limits(mut self, limits: ManagerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Loads the store, initialises providers and modules. A store that cannot be read is an
    /// error (never treated as empty); a provider that fails to initialise is logged and kept.
    pub async fn build(self) -> Result<AuthManager, AuthError> {
        let store = AuthStore::new(self.storage.clone(), self.clock.clone());
        store.ensure_loaded().await?;
        let recovery = RecoveryCodes::load(self.storage.clone()).await?;
        let history = SignInHistory::load(self.storage.clone()).await?;
        let mut providers = IndexMap::new();
        let mut chains = HashMap::new();
        let mut modules = IndexMap::new();
        for module in self.modules {
            if modules.contains_key(module.id()) {
                return Err(AuthError::Invalid(format!(
                    "Duplicate mfa module {} found. Please add unique IDs if you want to have the same mfa module twice",
                    module.module_type()
                )));
            }
            modules.insert(module.id().to_owned(), module);
        }
        // Every module instance once, by id: the opt-in ones, then those only used by chains.
        let mut all_modules: IndexMap<String, Arc<dyn MfaModule>> = modules.clone();
        for (provider, chain) in self.providers {
            let key = (
                provider.provider_type().to_owned(),
                provider.provider_id().map(str::to_owned),
            );
            if providers.contains_key(&key) {
                return Err(AuthError::Invalid(format!(
                    "Duplicate auth provider {} found. Please add unique IDs if you want to have the same auth provider twice",
                    key.0
                )));
            }
            check_chain(&key, &chain, &mut all_modules)?;
            if !chain.is_empty() {
                chains.insert(key.clone(), chain);
            }
            providers.insert(key, provider);
        }
        let mut store_owners: HashMap<&str, &str> = HashMap::new();
        for module in all_modules.values() {
            if let Some(key) = module.storage_key()
                && let Some(other) = store_owners.insert(key, module.id())
            {
                return Err(AuthError::Invalid(format!(
                    "MFA modules {other} and {} would both keep their data in .storage/{key} and overwrite each other's enrolments: configure only one of them",
                    module.id()
                )));
            }
        }
        let init = providers
            .values()
            .map(|p| async move { (p.provider_type().to_owned(), p.initialize().await) });
        // Unlike HA, a plugin that cannot load its data stops the start: its store may be
        // unreadable, and treating it as empty would let users in without their second factor
        // or lose their passwords on the next save.
        for (kind, result) in futures_join_all(init).await {
            if let Err(error) = result {
                tracing::error!(provider = kind, %error, "auth provider failed to initialise");
                return Err(AuthError::Provider(error));
            }
        }
        for module in all_modules.values() {
            if let Err(error) = module.initialize().await {
                tracing::error!(module = module.id(), %error, "MFA module failed to initialise");
                return Err(AuthError::Mfa(error));
            }
        }
        let rng = self.rng.clone();
        let flow_ids: Arc<dyn Fn() -> String + Send + Sync> =
            Arc::new(move || random_hex(rng.as_ref(), 16));
        let (events, _) = broadcast::channel(256);
        let mfa_lockout = MfaLockout::new(self.limits.mfa_lockout.clone(), self.clock.clone());
        Ok(AuthManager {
            inner: Arc::new(Inner {
                store,
                providers,
                chains,
                modules,
                clock: self.clock,
                rng: self.rng,
                events,
                login_flows: FlowManager::new(self.limits.login_flows.clone(), flow_ids.clone()),
                mfa_setup_flows: FlowManager::new(self.limits.mfa_setup_flows.clone(), flow_ids),
                codes: AuthCodes::with_lifetime(
                    self.limits.max_auth_codes,
                    self.limits.auth_code_lifetime,
                ),
                mfa_lockout,
                revoke_callbacks: Mutex::new(HashMap::new()),
                revoked_keys: crate::stale::RevokedKeys::default(),
                callback_ids: AtomicU64::new(1),
                user_creation: tokio::sync::Mutex::new(()),
                recovery,
                history,
            }),
        })
    }
}

/// A chain names each module once, and a module id means one instance everywhere.
fn check_chain(
    key: &ProviderKey,
    chain: &[ChainEntry],
    all_modules: &mut IndexMap<String, Arc<dyn MfaModule>>,
) -> Result<(), AuthError> {
    for (i, entry) in chain.iter().enumerate() {
        let id = entry.module.id();
        if chain[..i].iter().any(|e| e.module.id() == id) {
            return Err(AuthError::Invalid(format!(
                "The MFA chain of auth provider {} lists mfa module {id} twice",
                key.0
            )));
        }
        match all_modules.get(id) {
            Some(known) if Arc::ptr_eq(known, &entry.module) => {}
            Some(_) => {
                return Err(AuthError::Invalid(format!(
                    "The MFA chain of auth provider {} has its own instance of mfa module {id}; reuse the configured module or give the chain entry another id",
                    key.0
                )));
            }
            None => {
                all_modules.insert(id.to_owned(), entry.module.clone());
            }
        }
    }
    Ok(())
}

async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut out = Vec::new();
    for future in futures {
        out.push(future.await);
    }
    out
}

struct Inner {
    store: Arc<AuthStore>,
    providers: IndexMap<ProviderKey, Arc<dyn AuthProvider>>,
    chains: HashMap<ProviderKey, Vec<ChainEntry>>,
    modules: IndexMap<String, Arc<dyn MfaModule>>,
    clock: SharedClock,
    rng: SharedRng,
    events: broadcast::Sender<AuthEvent>,
    login_flows: FlowManager<LoginContext>,
    mfa_setup_flows: FlowManager<String>,
    codes: AuthCodes,
    mfa_lockout: MfaLockout,
    revoke_callbacks: Mutex<HashMap<String, Vec<(u64, RevokeCallback)>>>,
    /// Keys of recently revoked refresh tokens, to tell stale access tokens from forged ones.
    revoked_keys: crate::stale::RevokedKeys,
    callback_ids: AtomicU64,
    user_creation: tokio::sync::Mutex<()>,
    recovery: RecoveryCodes,
    history: Arc<SignInHistory>,
}

/// Home Assistant's auth manager. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct AuthManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuthManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthManager")
            .field(
                "providers",
                &self.inner.providers.keys().collect::<Vec<_>>(),
            )
            .field(
                "mfa_modules",
                &self.inner.modules.keys().collect::<Vec<_>>(),
            )
            .field("mfa_chains", &self.inner.chains)
            .finish_non_exhaustive()
    }
}

/// Handle of a registered revoke callback; see [`AuthManager::on_revoke`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeHandle {
    token_id: String,
    id: u64,
}

impl AuthManager {
    /// A builder over `storage` with the system clock and OS randomness.
    ///
    /// Every operation below is durable before it returns; `FileStorage::new("/config/.storage")`
    /// keeps the data where Home Assistant does. A password provider from the test kit stands in
    /// for `provider-homeassistant`:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), auth_core::AuthError> {
    /// use std::sync::Arc;
    /// use auth_core::{AuthManager, MemoryStorage};
    /// use auth_testkit::fakes::PasswordProvider;
    ///
    /// let manager = AuthManager::builder(Arc::new(MemoryStorage::new()))
    ///     .provider(Arc::new(PasswordProvider::with_users("test", &[("ann", "pw")])))
    ///     .build()
    ///     .await?;
    /// assert_eq!(manager.auth_providers().len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn builder(storage: Arc<dyn Storage>) -> AuthManagerBuilder {
        AuthManagerBuilder {
            storage,
            clock: Arc::new(SystemClock),
            rng: Arc::new(OsRng),
            providers: Vec::new(),
            modules: Vec::new(),
            limits: ManagerLimits::default(),
        }
    }

    /// The auth store.
    pub fn store(&self) -> &Arc<AuthStore> {
        &self.inner.store
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The random source.
    pub fn rng(&self) -> &SharedRng {
        &self.inner.rng
    }

    fn now(&self) -> OffsetDateTime {
        truncate_micros(self.inner.clock.now())
    }

    fn emit(&self, event: AuthEvent) {
        let _ = self.inner.events.send(event);
    }

    /// Subscribes to change events.
    pub fn subscribe(&self) -> broadcast::Receiver<AuthEvent> {
        self.inner.events.subscribe()
    }

    /// Writes pending changes (call on shutdown).
    pub async fn flush(&self) -> Result<(), AuthError> {
        self.inner.store.flush().await?;
        Ok(self.inner.history.flush().await?)
    }

    /// Every user's recent sign-ins and failed attempts.
    pub fn sign_in_history(&self) -> &Arc<SignInHistory> {
        &self.inner.history
    }

    // ----- providers and modules -----

    /// Providers in config order.
    pub fn auth_providers(&self) -> Vec<Arc<dyn AuthProvider>> {
        self.inner.providers.values().cloned().collect()
    }

    /// The provider `(type, id)`.
    pub fn auth_provider(
        &self,
        provider_type: &str,
        provider_id: Option<&str>,
    ) -> Option<Arc<dyn AuthProvider>> {
        self.inner
            .providers
            .get(&(provider_type.to_owned(), provider_id.map(str::to_owned)))
            .cloned()
    }

    /// The required MFA chain of provider `(type, id)` (empty when it has none).
    pub fn mfa_chain(&self, provider_type: &str, provider_id: Option<&str>) -> &[ChainEntry] {
        self.inner
            .chains
            .get(&(provider_type.to_owned(), provider_id.map(str::to_owned)))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// MFA modules in config order (the opt-in ones; modules only used by chains are not here).
    pub fn mfa_modules(&self) -> Vec<Arc<dyn MfaModule>> {
        self.inner.modules.values().cloned().collect()
    }

    /// The MFA module `id`.
    pub fn mfa_module(&self, id: &str) -> Option<Arc<dyn MfaModule>> {
        self.inner.modules.get(id).cloned()
    }

    // ----- queries -----

    /// All users, in creation order.
    pub fn users(&self) -> Vec<User> {
        self.inner
            .store
            .read(|d| d.users.values().cloned().collect())
    }

    /// The user `id`.
    pub fn user(&self, id: &str) -> Option<User> {
        self.inner.store.read(|d| d.users.get(id).cloned())
    }

    /// The first owner.
    pub fn owner(&self) -> Option<User> {
        self.inner
            .store
            .read(|d| d.users.values().find(|u| u.is_owner).cloned())
    }

    /// All groups.
    pub fn groups(&self) -> Vec<Group> {
        self.inner
            .store
            .read(|d| d.groups.values().cloned().collect())
    }

    /// The group `id`.
    pub fn group(&self, id: &str) -> Option<Group> {
        self.inner.store.read(|d| d.groups.get(id).cloned())
    }

    /// The user owning credential `credential_id`.
    pub fn user_by_credentials(&self, credential_id: &str) -> Option<User> {
        self.inner
            .store
            .read(|d| d.owner_of_credential(credential_id).cloned())
    }

    /// A user's effective permissions.
    pub fn permissions(&self, user: &User) -> Permissions {
        if user.is_owner {
            return Permissions::Owner;
        }
        self.inner.store.read(|d| {
            let policies: Vec<&Policy> = user
                .group_ids
                .iter()
                .filter_map(|g| d.groups.get(g))
                .map(|g| &g.policy)
                .collect();
            Permissions::Policy(merge_policies(policies))
        })
    }

    // ----- durability helpers -----

    async fn commit(&self) -> Result<(), AuthError> {
        Ok(self.inner.store.save_now().await?)
    }

    fn commit_later(&self) {
        self.inner.store.schedule_save(SAVE_DELAY);
    }
}
