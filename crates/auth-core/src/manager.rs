//! The `AuthManager`: every user, group, credential and token operation of Home Assistant's
//! auth manager, with durable-before-acknowledge persistence.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use flow_engine::{FlowError, FlowLimits, FlowManager, FlowResponse};
use indexmap::IndexMap;
use parking_lot::Mutex;
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};
use tokio::sync::broadcast;

use crate::clock::{SharedClock, SystemClock};
use crate::codes::{AuthCode, AuthCodes, DEFAULT_MAX_CODES, Redemption};
use crate::error::AuthError;
use crate::events::AuthEvent;
use crate::history::SignInHistory;
use crate::login_flow::{LoginFlow, credentials_from_flow_data};
use crate::mfa::{ChainEntry, MfaModule};
use crate::mfa_lockout::{MfaLockout, MfaLockoutPolicy};
use crate::models::{
    ACCESS_TOKEN_EXPIRATION, AUTH_CODE_EXPIRATION, Credentials, GROUP_ID_ADMIN, Group,
    REFRESH_TOKEN_EXPIRATION, RefreshToken, TokenType, User,
};
use crate::net::user_not_allowed_reason;
use crate::permissions::{Permissions, Policy, merge_policies};
use crate::provider::{AuthAccess, AuthProvider, LoginContext, ProviderKey};
use crate::recovery::RecoveryCodes;
use crate::rng::{OsRng, SharedRng, new_secret, new_uuid_hex, random_hex};
use crate::storage::Storage;
use crate::store::{AuthStore, SAVE_DELAY};
use crate::timefmt::{to_unix_f64, truncate_micros};

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

    // ----- groups -----

    /// Creates a custom group with a policy (validated against HA's policy schema).
    pub async fn create_group(
        &self,
        name: Option<String>,
        policy: Policy,
    ) -> Result<Group, AuthError> {
        policy
            .validate()
            .map_err(|e| AuthError::Invalid(format!("Invalid policy: {e}")))?;
        let group = Group {
            id: new_uuid_hex(self.inner.rng.as_ref()),
            name,
            policy,
            system_generated: false,
        };
        self.inner
            .store
            .write(|d| d.groups.insert(group.id.clone(), group.clone()));
        if let Err(e) = self.commit().await {
            self.inner.store.write(|d| d.groups.shift_remove(&group.id));
            return Err(e);
        }
        Ok(group)
    }

    // ----- users -----

    fn check_groups(&self, group_ids: &[String]) -> Result<(), AuthError> {
        self.inner.store.read(
            |d| match group_ids.iter().find(|g| !d.groups.contains_key(*g)) {
                Some(missing) => Err(AuthError::InvalidGroup(missing.clone())),
                None => Ok(()),
            },
        )
    }

    fn new_user_id(&self) -> String {
        loop {
            let id = new_uuid_hex(self.inner.rng.as_ref());
            if self.inner.store.read(|d| !d.users.contains_key(&id)) {
                return id;
            }
        }
    }

    async fn insert_user(&self, user: User) -> Result<User, AuthError> {
        self.inner
            .store
            .write(|d| d.users.insert(user.id.clone(), user.clone()));
        if let Err(e) = self.commit().await {
            self.inner.store.write(|d| d.remove_user(&user.id));
            return Err(e);
        }
        self.emit(AuthEvent::UserAdded {
            user_id: user.id.clone(),
        });
        Ok(user)
    }

    /// Creates a user; the first non-system user becomes the owner.
    pub async fn create_user(
        &self,
        name: Option<String>,
        group_ids: Vec<String>,
        local_only: bool,
    ) -> Result<User, AuthError> {
        self.check_groups(&group_ids)?;
        let _guard = self.inner.user_creation.lock().await;
        let is_owner = self
            .inner
            .store
            .read(|d| !d.users.values().any(|u| !u.system_generated));
        let user = User {
            id: self.new_user_id(),
            name,
            is_owner,
            is_active: true,
            system_generated: false,
            local_only,
            group_ids,
            credentials: Vec::new(),
        };
        self.insert_user(user).await
    }

    /// Creates a system user (service account); never the owner.
    pub async fn create_system_user(
        &self,
        name: Option<String>,
        group_ids: Vec<String>,
        local_only: bool,
    ) -> Result<User, AuthError> {
        self.check_groups(&group_ids)?;
        let user = User {
            id: self.new_user_id(),
            name,
            is_owner: false,
            is_active: true,
            system_generated: true,
            local_only,
            group_ids,
            credentials: Vec::new(),
        };
        self.insert_user(user).await
    }

    /// The user for credentials from a finished login: the linked one, or a new (never owner) user
    /// made from the provider's metadata.
    pub async fn get_or_create_user(&self, credentials: &Credentials) -> Result<User, AuthError> {
        let _guard = self.inner.user_creation.lock().await;
        if !credentials.is_new {
            return self
                .user_by_credentials(&credentials.id)
                .ok_or_else(|| AuthError::Invalid("Unable to find the user.".to_owned()));
        }
        let provider = self
            .auth_provider(
                &credentials.auth_provider_type,
                credentials.auth_provider_id.as_deref(),
            )
            .ok_or_else(|| AuthError::UnknownProvider {
                provider_type: credentials.auth_provider_type.clone(),
                provider_id: credentials.auth_provider_id.clone(),
            })?;
        let duplicate = self.inner.store.read(|d| {
            d.users.values().flat_map(|u| &u.credentials).any(|c| {
                c.belongs_to(
                    &credentials.auth_provider_type,
                    credentials.auth_provider_id.as_deref(),
                ) && c.data == credentials.data
            })
        });
        if duplicate {
            return Err(AuthError::DuplicateCredentials);
        }
        let meta = provider.user_meta_for_credentials(credentials).await?;
        let group = meta.group.unwrap_or_else(|| GROUP_ID_ADMIN.to_owned());
        self.check_groups(std::slice::from_ref(&group))?;
        let user = User {
            id: self.new_user_id(),
            name: meta.name,
            is_owner: false,
            is_active: meta.is_active,
            system_generated: false,
            local_only: meta.local_only.unwrap_or(false),
            group_ids: vec![group],
            credentials: Vec::new(),
        };
        let user_id = user.id.clone();
        self.inner.store.write(|d| {
            d.users.insert(user.id.clone(), user);
            d.attach_credential(&user_id, credentials.clone());
        });
        if let Err(e) = self.commit().await {
            self.inner.store.write(|d| d.remove_user(&user_id));
            return Err(e);
        }
        self.emit(AuthEvent::UserAdded {
            user_id: user_id.clone(),
        });
        self.inner.history.claim_pending(&credentials.id, &user_id);
        self.user(&user_id).ok_or(AuthError::UserNotFound)
    }

    /// Links `credentials` to `user_id` (no-op when already linked to that user).
    pub async fn link_user(
        &self,
        user_id: &str,
        credentials: Credentials,
    ) -> Result<(), AuthError> {
        let outcome = self.inner.store.read(|d| {
            if !d.users.contains_key(user_id) {
                return Err(AuthError::UserNotFound);
            }
            match d.owner_of_credential(&credentials.id) {
                Some(owner) if owner.id == user_id => Ok(false),
                Some(_) => Err(AuthError::CredentialAlreadyLinked),
                None => Ok(true),
            }
        })?;
        if !outcome {
            return Ok(());
        }
        let cred_id = credentials.id.clone();
        self.inner
            .store
            .write(|d| d.attach_credential(user_id, credentials));
        if let Err(e) = self.commit().await {
            self.inner.store.write(|d| d.detach_credential(&cred_id));
            return Err(e);
        }
        Ok(())
    }

    /// Updates a user; `is_active: false` on the owner fails after the other fields were applied (as HA).
    pub async fn update_user(&self, user_id: &str, update: UserUpdate) -> Result<User, AuthError> {
        if let Some(groups) = &update.group_ids {
            self.check_groups(groups)?;
        }
        let before = self.inner.store.write(|d| match d.users.get_mut(user_id) {
            Some(user) => {
                let before = (user.name.clone(), user.group_ids.clone(), user.local_only);
                if let Some(name) = update.name.clone() {
                    user.name = name;
                }
                if let Some(groups) = update.group_ids.clone() {
                    user.group_ids = groups;
                }
                if let Some(local_only) = update.local_only {
                    user.local_only = local_only;
                }
                Some(before)
            }
            None => None,
        });
        let Some((name, group_ids, local_only)) = before else {
            return Err(AuthError::UserNotFound);
        };
        if let Err(e) = self.commit().await {
            self.inner.store.write(|d| {
                if let Some(user) = d.users.get_mut(user_id) {
                    (user.name, user.group_ids, user.local_only) = (name, group_ids, local_only);
                }
            });
            return Err(e);
        }
        let result = match update.is_active {
            Some(true) => self.activate_user(user_id).await,
            Some(false) => self.deactivate_user(user_id).await,
            None => Ok(()),
        };
        // As Home Assistant: a refused (de)activation fails the call before the event.
        result?;
        self.emit(AuthEvent::UserUpdated {
            user_id: user_id.to_owned(),
        });
        self.user(user_id).ok_or(AuthError::UserNotFound)
    }

    /// Marks a user active.
    pub async fn activate_user(&self, user_id: &str) -> Result<(), AuthError> {
        let was_active = self.inner.store.write(|d| {
            d.users
                .get_mut(user_id)
                .map(|u| std::mem::replace(&mut u.is_active, true))
        });
        let Some(was_active) = was_active else {
            return Err(AuthError::UserNotFound);
        };
        if let Err(e) = self.commit().await {
            self.set_active(user_id, was_active);
            return Err(e);
        }
        Ok(())
    }

    fn set_active(&self, user_id: &str, active: bool) {
        self.inner.store.write(|d| {
            if let Some(user) = d.users.get_mut(user_id) {
                user.is_active = active;
            }
        });
    }

    /// Marks a user inactive and revokes all its refresh tokens; the owner cannot be deactivated.
    pub async fn deactivate_user(&self, user_id: &str) -> Result<(), AuthError> {
        let user = self.user(user_id).ok_or(AuthError::UserNotFound)?;
        if user.is_owner {
            return Err(AuthError::CannotDeactivateOwner);
        }
        self.set_active(user_id, false);
        let tokens: Vec<String> = self.inner.store.read(|d| d.token_ids_of(user_id).to_vec());
        if let Err(e) = self.revoke_many(&tokens).await {
            self.set_active(user_id, user.is_active);
            return Err(e);
        }
        Ok(())
    }

    /// Removes a credential: provider cleanup, unlink, and revocation of the sessions made with it.
    pub async fn remove_credentials(&self, credential_id: &str) -> Result<(), AuthError> {
        let Some(user) = self.user_by_credentials(credential_id) else {
            return Err(AuthError::Invalid("Credential not found".to_owned()));
        };
        let cred = user
            .credentials
            .iter()
            .find(|c| c.id == credential_id)
            .cloned()
            .ok_or(AuthError::UserNotFound)?;
        if let Some(provider) =
            self.auth_provider(&cred.auth_provider_type, cred.auth_provider_id.as_deref())
        {
            provider.will_remove_credentials(&cred).await?;
        }
        let detached = self
            .inner
            .store
            .write(|d| d.detach_credential(credential_id));
        let tokens: Vec<String> = self.inner.store.read(|d| {
            d.token_ids_of(&user.id)
                .iter()
                .filter(|id| {
                    d.tokens
                        .get(*id)
                        .is_some_and(|t| t.credential_id.as_deref() == Some(credential_id))
                })
                .cloned()
                .collect()
        });
        if let Err(e) = self.revoke_many(&tokens).await {
            // The file still links the credential: so does memory (the provider's own cleanup
            // above cannot be taken back).
            if let Some((user_id, credential)) = detached {
                self.inner
                    .store
                    .write(|d| d.attach_credential(&user_id, credential));
            }
            return Err(e);
        }
        Ok(())
    }

    /// Removes a user: credentials (with provider cleanup), tokens (with callbacks), then the user.
    pub async fn remove_user(&self, user_id: &str) -> Result<(), AuthError> {
        let user = self.user(user_id).ok_or(AuthError::UserNotFound)?;
        if user.is_owner {
            return Err(AuthError::CannotRemoveOwner);
        }
        for cred in &user.credentials {
            if let Some(provider) =
                self.auth_provider(&cred.auth_provider_type, cred.auth_provider_id.as_deref())
            {
                provider.will_remove_credentials(cred).await?;
            }
        }
        let tokens: Vec<String> = self.inner.store.read(|d| d.token_ids_of(user_id).to_vec());
        let (removed, gone) = self.inner.store.write(|d| {
            let removed: Vec<Arc<RefreshToken>> =
                tokens.iter().filter_map(|id| d.remove_token(id)).collect();
            (removed, d.remove_user(user_id))
        });
        if let Err(e) = self.commit().await {
            self.inner.store.write(|d| {
                if let Some(mut user) = gone {
                    let credentials = std::mem::take(&mut user.credentials);
                    d.users.insert(user.id.clone(), user);
                    for credential in credentials {
                        d.attach_credential(user_id, credential);
                    }
                }
                for token in &removed {
                    d.insert_token((**token).clone());
                }
            });
            return Err(e);
        }
        for token in removed {
            self.run_revoke_callbacks(&token);
        }
        if let Err(error) = self.inner.recovery.remove_user(user_id).await {
            tracing::error!(%error, "cannot forget the recovery codes of a removed user");
        }
        self.inner.history.remove_user(user_id);
        self.emit(AuthEvent::UserRemoved {
            user_id: user_id.to_owned(),
        });
        Ok(())
    }

    // ----- MFA -----

    /// Enabled MFA modules of a user: module id -> name, in config order.
    pub async fn enabled_mfa(&self, user_id: &str) -> IndexMap<String, String> {
        let mut out = IndexMap::new();
        for module in self.inner.modules.values() {
            match module.is_user_setup(user_id).await {
                Ok(true) => {
                    out.insert(module.id().to_owned(), module.name().to_owned());
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(module = module.id(), %error, "cannot read MFA enrolment")
                }
            }
        }
        out
    }

    /// Like [`AuthManager::enabled_mfa`], but a module that cannot tell (e.g. its store cannot be
    /// read) is an error instead of "not enabled"; the login flow uses this to fail closed.
    pub async fn try_enabled_mfa(
        &self,
        user_id: &str,
    ) -> Result<IndexMap<String, String>, AuthError> {
        let mut out = IndexMap::new();
        for module in self.inner.modules.values() {
            if module.is_user_setup(user_id).await? {
                out.insert(module.id().to_owned(), module.name().to_owned());
            }
        }
        Ok(out)
    }

    fn mfa_target(
        &self,
        user_id: &str,
        module_id: &str,
        verb: &str,
    ) -> Result<Arc<dyn MfaModule>, AuthError> {
        let user = self.user(user_id).ok_or(AuthError::UserNotFound)?;
        if user.system_generated {
            return Err(AuthError::Invalid(format!(
                "System generated users cannot {verb} multi-factor auth module."
            )));
        }
        self.mfa_module(module_id)
            .ok_or_else(|| AuthError::UnknownMfaModule(module_id.to_owned()))
    }

    /// Enrols a user in a module directly (the module's setup-user routine).
    pub async fn enable_user_mfa(
        &self,
        user_id: &str,
        module_id: &str,
        data: &Map<String, Value>,
    ) -> Result<Value, AuthError> {
        let module = self.mfa_target(user_id, module_id, "enable")?;
        Ok(module.setup_user(user_id, data).await?)
    }

    /// The name of a provider the user signs in with whose required chain (`modules:`) holds
    /// module `module_id`, if any: such an enrolment is not the user's to drop.
    pub fn mfa_required_by(&self, user_id: &str, module_id: &str) -> Option<String> {
        let user = self.user(user_id)?;
        user.credentials.iter().find_map(|c| {
            let chain = self.mfa_chain(&c.auth_provider_type, c.auth_provider_id.as_deref());
            chain
                .iter()
                .any(|entry| entry.module.id() == module_id)
                .then(|| {
                    self.auth_provider(&c.auth_provider_type, c.auth_provider_id.as_deref())
                        .map_or_else(|| c.auth_provider_type.clone(), |p| p.name().to_owned())
                })
        })
    }

    /// Removes the user's own enrolment in a module, as the user asked: refused with
    /// [`AuthError::MfaRequired`] when a provider the user signs in with requires the module
    /// (also when the module is the opt-in module of the same id). An administrator resets a
    /// required enrolment with [`Self::disable_user_mfa`].
    pub async fn disable_own_mfa(&self, user_id: &str, module_id: &str) -> Result<(), AuthError> {
        if let Some(provider) = self.mfa_required_by(user_id, module_id) {
            return Err(AuthError::MfaRequired {
                module_id: module_id.to_owned(),
                provider,
            });
        }
        self.disable_user_mfa(user_id, module_id).await
    }

    /// Removes a user's enrolment in a module (an administrator's reset: no chain check); with
    /// the last module go their recovery codes.
    pub async fn disable_user_mfa(&self, user_id: &str, module_id: &str) -> Result<(), AuthError> {
        let module = self.mfa_target(user_id, module_id, "disable")?;
        module.depose_user(user_id).await?;
        if self.user_mfa_modules(user_id).await?.is_empty() {
            self.inner.recovery.remove_user(user_id).await?;
        }
        Ok(())
    }

    /// Every module a user is set up in, opt-in or only in a provider's required chain (each
    /// instance once).
    async fn user_mfa_modules(&self, user_id: &str) -> Result<Vec<Arc<dyn MfaModule>>, AuthError> {
        let mut out: Vec<Arc<dyn MfaModule>> = Vec::new();
        let chained = self.inner.chains.values().flatten().map(|e| &e.module);
        for module in self.inner.modules.values().chain(chained) {
            if !out.iter().any(|m| m.id() == module.id()) && module.is_user_setup(user_id).await? {
                out.push(module.clone());
            }
        }
        Ok(out)
    }

    /// The recovery codes of every user.
    pub fn recovery_codes(&self) -> &RecoveryCodes {
        &self.inner.recovery
    }

    /// Makes ten new recovery codes for a user with MFA (replacing the old ones) and returns
    /// them; they are never shown again.
    pub async fn generate_recovery_codes(&self, user_id: &str) -> Result<Vec<String>, AuthError> {
        let user = self.user(user_id).ok_or(AuthError::UserNotFound)?;
        if user.system_generated {
            return Err(AuthError::Invalid(
                "System generated users cannot have recovery codes.".to_owned(),
            ));
        }
        if self.user_mfa_modules(user_id).await?.is_empty() {
            return Err(AuthError::Invalid(
                "Recovery codes need multi-factor authentication: enable a module first."
                    .to_owned(),
            ));
        }
        self.inner
            .recovery
            .generate(user_id, self.inner.rng.as_ref(), self.now())
            .await
    }

    /// Whether `code` is a current second factor of the user: one of their unused recovery codes
    /// (used up by this check), or a code one of their modules accepts (typed into the module's
    /// first input field). `false` when they have no second factor.
    pub async fn verify_second_factor(&self, user_id: &str, code: &str) -> Result<bool, AuthError> {
        if crate::recovery::looks_like_code(code) {
            return self.inner.recovery.redeem(user_id, code, self.now()).await;
        }
        for module in self.user_mfa_modules(user_id).await? {
            let Some(field) = module
                .input_schema()
                .fields()
                .first()
                .map(|f| f.name.clone())
            else {
                continue;
            };
            let mut input = Map::new();
            input.insert(field, Value::String(code.to_owned()));
            if module.validate(user_id, &input).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// An administrator's reset of a user's second factors (lost device): every MFA enrolment
    /// (or only module `only`'s, required by a provider or not) is removed, the recovery codes
    /// too when no module is left, and the user's sign-in sessions (refresh tokens of type
    /// `normal`) are revoked; long-lived tokens stay. Returns the ids of the modules that were
    /// reset. Who may ask is the caller's business.
    pub async fn reset_user_mfa(
        &self,
        user_id: &str,
        only: Option<&str>,
    ) -> Result<Vec<String>, AuthError> {
        let user = self.user(user_id).ok_or(AuthError::UserNotFound)?;
        if user.system_generated {
            return Err(AuthError::Invalid(
                "System generated users have no multi-factor auth modules.".to_owned(),
            ));
        }
        if let Some(only) = only
            && self.mfa_module(only).is_none()
            && !self
                .inner
                .chains
                .values()
                .flatten()
                .any(|e| e.module.id() == only)
        {
            return Err(AuthError::UnknownMfaModule(only.to_owned()));
        }
        let mut reset = Vec::new();
        for module in self.user_mfa_modules(user_id).await? {
            if only.is_some_and(|only| only != module.id()) {
                continue;
            }
            module.depose_user(user_id).await?;
            reset.push(module.id().to_owned());
        }
        if self.user_mfa_modules(user_id).await?.is_empty() {
            self.inner.recovery.remove_user(user_id).await?;
        }
        for token in self.refresh_tokens_of(user_id) {
            if token.token_type == TokenType::Normal {
                self.remove_refresh_token(&token.id).await?;
            }
        }
        tracing::warn!(user_id, modules = ?reset, "multi-factor authentication reset");
        Ok(reset)
    }

    /// Starts an MFA setup flow for `user_id` in module `module_id` (a user holds at most
    /// `max_flows_per_owner` setup flows; the next drops their oldest).
    pub async fn start_mfa_setup(
        &self,
        module_id: &str,
        user_id: &str,
    ) -> Result<FlowResponse, AuthError> {
        let module = self.mfa_target(user_id, module_id, "enable")?;
        let name = self.user(user_id).and_then(|u| u.name);
        let mut flow = module.setup_flow(user_id, name.as_deref()).await?;
        // Replacing an enrolment needs the current second factor first.
        if module.setup_replaces_enrolment() && module.is_user_setup(user_id).await? {
            flow = Box::new(crate::mfa_setup::ReauthFirst::new(
                module.clone(),
                user_id.to_owned(),
                flow,
            ));
        }
        Ok(self
            .inner
            .mfa_setup_flows
            .start_owned(
                Some(user_id),
                Value::String(module_id.to_owned()),
                user_id.to_owned(),
                flow,
            )
            .await?)
    }

    /// Wrong-code counters of MFA logins (see [`crate::mfa_lockout`]).
    pub(crate) fn mfa_lockout(&self) -> &MfaLockout {
        &self.inner.mfa_lockout
    }

    /// Until when `user_id`'s MFA code step refuses codes after too many wrong ones (`None`
    /// when it does not).
    pub fn mfa_locked_until(&self, user_id: &str) -> Option<OffsetDateTime> {
        self.inner
            .mfa_lockout
            .locked_until(&crate::login_flow::lockout_key(Some(user_id), None))
    }

    /// How many accounts have wrong MFA codes counted (bounded by
    /// [`MfaLockoutPolicy::max_tracked`]).
    pub fn mfa_lockout_tracked(&self) -> usize {
        self.inner.mfa_lockout.tracked()
    }

    /// The MFA setup flows table.
    pub fn mfa_setup_flows(&self) -> &FlowManager<String> {
        &self.inner.mfa_setup_flows
    }

    // ----- refresh tokens -----

    /// Creates a refresh token, applying every rule of `spec/tokens.md` §2 in order; saved durably.
    pub async fn create_refresh_token(
        &self,
        user_id: &str,
        params: NewRefreshToken,
    ) -> Result<Arc<RefreshToken>, AuthError> {
        let user = self.user(user_id).ok_or(AuthError::UserNotFound)?;
        if !user.is_active {
            return Err(AuthError::Invalid("User is not active".to_owned()));
        }
        if user.system_generated && params.client_id.is_some() {
            return Err(AuthError::Invalid(
                "System generated users cannot have refresh tokens connected to a client."
                    .to_owned(),
            ));
        }
        let token_type = params.token_type.unwrap_or(if user.system_generated {
            TokenType::System
        } else {
            TokenType::Normal
        });
        let now = self.now();
        let expire_at =
            (token_type == TokenType::Normal).then(|| to_unix_f64(now + REFRESH_TOKEN_EXPIRATION));
        if user.system_generated != (token_type == TokenType::System) {
            return Err(AuthError::Invalid(
                "System generated users can only have system type refresh tokens".to_owned(),
            ));
        }
        if token_type == TokenType::Normal && params.client_id.is_none() {
            return Err(AuthError::Invalid(
                "Client is required to generate a refresh token.".to_owned(),
            ));
        }
        if token_type == TokenType::LongLivedAccessToken {
            let Some(name) = params.client_name.as_deref() else {
                return Err(AuthError::Invalid(
                    "Client_name is required for long-lived access token".to_owned(),
                ));
            };
            // HA compares the name as given with the stored one, before "" becomes null: a
            // null-named LLAT never matches, so any number of LLATs named "" can exist.
            let taken = self.inner.store.read(|d| {
                d.token_ids_of(user_id)
                    .iter()
                    .filter_map(|id| d.tokens.get(id))
                    .any(|t| {
                        t.token_type == TokenType::LongLivedAccessToken
                            && t.client_name.as_deref() == Some(name)
                    })
            });
            if taken {
                return Err(AuthError::Invalid(format!("{name} already exists")));
            }
        }
        let token = RefreshToken {
            id: loop {
                let id = new_uuid_hex(self.inner.rng.as_ref());
                if self.inner.store.read(|d| !d.tokens.contains_key(&id)) {
                    break id;
                }
            },
            user_id: user_id.to_owned(),
            client_id: params.client_id,
            client_name: params.client_name.filter(|s| !s.is_empty()),
            client_icon: params.client_icon.filter(|s| !s.is_empty()),
            token_type,
            created_at: now,
            access_token_expiration: params
                .access_token_expiration
                .unwrap_or(ACCESS_TOKEN_EXPIRATION),
            token: new_secret(self.inner.rng.as_ref()),
            jwt_key: new_secret(self.inner.rng.as_ref()),
            last_used_at: None,
            last_used_ip: None,
            expire_at,
            credential_id: params.credential_id,
            version: Some(SOFTWARE_VERSION.to_owned()),
        };
        let id = token.id.clone();
        self.inner.store.write(|d| d.insert_token(token));
        if let Err(e) = self.commit().await {
            self.inner.store.write(|d| d.remove_token(&id));
            return Err(e);
        }
        self.refresh_token(&id).ok_or(AuthError::TokenNotFound)
    }

    /// The refresh token `id`.
    pub fn refresh_token(&self, id: &str) -> Option<Arc<RefreshToken>> {
        self.inner.store.read(|d| d.tokens.get(id).cloned())
    }

    /// The refresh token whose secret is `value` (indexed lookup, constant-time confirmation).
    pub fn refresh_token_by_value(&self, value: &str) -> Option<Arc<RefreshToken>> {
        self.inner.store.read(|d| d.token_by_value(value).cloned())
    }

    /// A user's refresh tokens, in creation order.
    pub fn refresh_tokens_of(&self, user_id: &str) -> Vec<Arc<RefreshToken>> {
        self.inner.store.read(|d| {
            d.token_ids_of(user_id)
                .iter()
                .filter_map(|id| d.tokens.get(id).cloned())
                .collect()
        })
    }

    /// Revokes (deletes) a refresh token durably, then runs its revoke callbacks once.
    pub async fn remove_refresh_token(&self, id: &str) -> Result<(), AuthError> {
        self.revoke_many(&[id.to_owned()]).await
    }

    async fn revoke_many(&self, ids: &[String]) -> Result<(), AuthError> {
        let removed: Vec<Arc<RefreshToken>> = self
            .inner
            .store
            .write(|d| ids.iter().filter_map(|id| d.remove_token(id)).collect());
        if let Err(e) = self.commit().await {
            // Not revoked after all: a token revoked in memory only would come back at the
            // next start, and the caller was told it failed.
            self.inner.store.write(|d| {
                for token in &removed {
                    d.insert_token((**token).clone());
                }
            });
            return Err(e);
        }
        for token in removed {
            self.run_revoke_callbacks(&token);
        }
        Ok(())
    }

    fn run_revoke_callbacks(&self, token: &RefreshToken) {
        self.inner.revoked_keys.remember(&token.id, &token.jwt_key);
        let callbacks = self
            .inner
            .revoke_callbacks
            .lock()
            .remove(&token.id)
            .unwrap_or_default();
        for (_, callback) in callbacks {
            callback();
        }
        self.emit(AuthEvent::RefreshTokenRevoked {
            token_id: token.id.clone(),
            user_id: token.user_id.clone(),
        });
    }

    /// Registers `callback` to run once when refresh token `token_id` is revoked.
    pub fn on_revoke(
        &self,
        token_id: &str,
        callback: impl FnOnce() + Send + 'static,
    ) -> RevokeHandle {
        let id = self.inner.callback_ids.fetch_add(1, Ordering::Relaxed);
        self.inner
            .revoke_callbacks
            .lock()
            .entry(token_id.to_owned())
            .or_default()
            .push((id, Box::new(callback)));
        RevokeHandle {
            token_id: token_id.to_owned(),
            id,
        }
    }

    /// Unregisters a revoke callback (e.g. when a websocket closes on its own).
    pub fn cancel_on_revoke(&self, handle: &RevokeHandle) {
        let mut callbacks = self.inner.revoke_callbacks.lock();
        if let Some(list) = callbacks.get_mut(&handle.token_id) {
            list.retain(|(id, _)| *id != handle.id);
            if list.is_empty() {
                callbacks.remove(&handle.token_id);
            }
        }
    }

    /// Enables or disables the sliding expiry of a refresh token.
    pub async fn set_refresh_token_expiry(&self, id: &str, enable: bool) -> Result<(), AuthError> {
        let now = self.now();
        let found = self.inner.store.write(|d| {
            let before = (**d.tokens.get(id)?).clone();
            let mut token = before.clone();
            if enable {
                if token.expire_at.is_none() {
                    token.expire_at = Some(to_unix_f64(
                        token.last_used_at.unwrap_or(now) + REFRESH_TOKEN_EXPIRATION,
                    ));
                }
            } else {
                token.expire_at = None;
            }
            d.replace_token(token);
            Some(before)
        });
        let Some(before) = found else {
            return Err(AuthError::TokenNotFound);
        };
        if let Err(e) = self.commit().await {
            self.inner.store.write(|d| d.replace_token(before));
            return Err(e);
        }
        Ok(())
    }

    /// Removes every refresh token whose `expire_at` has passed (with callbacks); returns how many.
    pub async fn remove_expired_refresh_tokens(&self) -> Result<usize, AuthError> {
        let now = self.now();
        let expired: Vec<String> = self.inner.store.read(|d| {
            d.tokens
                .values()
                .filter(|t| t.is_expired(now))
                .map(|t| t.id.clone())
                .collect()
        });
        if expired.is_empty() {
            return Ok(0);
        }
        self.revoke_many(&expired).await?;
        Ok(expired.len())
    }

    /// When the next expiry run is due: the earliest `expire_at`, at most 90 days from now.
    pub fn next_expiry_run(&self) -> OffsetDateTime {
        let now = self.now();
        let latest = to_unix_f64(now + REFRESH_TOKEN_EXPIRATION);
        let next = self.inner.store.read(|d| {
            d.tokens
                .values()
                .filter_map(|t| t.expire_at)
                .filter(|at| *at != 0.0)
                .fold(latest, f64::min)
        });
        crate::timefmt::from_unix_f64(next).unwrap_or(now)
    }

    /// Spawns the background task that deletes expired refresh tokens (HA's expiry scheduler)
    /// and, at least every [`HOUSEKEEPING_INTERVAL`] (or the shortest flow idle timeout or code
    /// lifetime, if shorter), drops idle login and MFA setup flows and expired authorization
    /// codes, so that what abandoned clients left behind is freed even when no new request
    /// comes in.
    pub fn spawn_expiry_task(&self) -> tokio::task::JoinHandle<()> {
        let manager = self.clone();
        let code_lifetime = std::time::Duration::try_from(self.inner.codes.lifetime())
            .unwrap_or(HOUSEKEEPING_INTERVAL);
        let interval = HOUSEKEEPING_INTERVAL
            .min(self.inner.login_flows.limits().idle_timeout)
            .min(self.inner.mfa_setup_flows.limits().idle_timeout)
            .min(code_lifetime)
            .max(std::time::Duration::from_millis(100));
        tokio::spawn(async move {
            loop {
                let wait = (manager.next_expiry_run() - manager.now()).max(Duration::ZERO);
                let wait = std::time::Duration::try_from(wait)
                    .unwrap_or(std::time::Duration::from_secs(1));
                tokio::time::sleep(wait.min(interval)).await;
                manager.purge_abandoned();
                if let Err(error) = manager.remove_expired_refresh_tokens().await {
                    tracing::error!(%error, "removing expired refresh tokens failed");
                }
            }
        })
    }

    /// Drops idle login and MFA setup flows and expired authorization codes; returns how many
    /// entries were dropped.
    pub fn purge_abandoned(&self) -> usize {
        self.inner.login_flows.purge_expired()
            + self.inner.mfa_setup_flows.purge_expired()
            + self.inner.codes.purge_expired(self.now())
    }

    // ----- access tokens -----

    /// Mints an access token (JWT) from a refresh token: provider re-validation, usage logging,
    /// sliding expiry (saved debounced), then the JWT.
    pub async fn create_access_token(
        &self,
        token_id: &str,
        remote_ip: Option<IpAddr>,
    ) -> Result<String, AuthError> {
        let token = self
            .refresh_token(token_id)
            .ok_or(AuthError::TokenNotFound)?;
        let now = self.now();
        if token.is_expired(now) {
            return Err(AuthError::InvalidAuth(
                "Refresh token has expired".to_owned(),
            ));
        }
        if let Some(cred_id) = &token.credential_id {
            let cred = self
                .user_by_credentials(cred_id)
                .and_then(|u| u.credentials.into_iter().find(|c| &c.id == cred_id));
            if let Some(cred) = cred {
                let provider = self
                    .auth_provider(&cred.auth_provider_type, cred.auth_provider_id.as_deref())
                    .ok_or_else(|| AuthError::UnknownProvider {
                        provider_type: cred.auth_provider_type.clone(),
                        provider_id: cred.auth_provider_id.clone(),
                    })?;
                provider
                    .validate_refresh_token(&token, remote_ip)
                    .await
                    .map_err(|e| AuthError::InvalidAuth(e.to_string()))?;
            }
        }
        let updated = self.inner.store.write(|d| {
            let current = d.tokens.get(token_id)?;
            let mut t = (**current).clone();
            t.last_used_at = Some(now);
            t.last_used_ip = remote_ip.map(|ip| ip.to_string());
            if t.expire_at.is_some_and(|at| at != 0.0) {
                t.expire_at = Some(to_unix_f64(now + REFRESH_TOKEN_EXPIRATION));
            }
            d.replace_token(t.clone());
            Some(t)
        });
        let token = updated.ok_or(AuthError::TokenNotFound)?;
        self.commit_later();
        let iat = now.unix_timestamp();
        let exp = iat + token.access_token_expiration.whole_seconds();
        let claims = auth_crypto::jwt::AccessClaims {
            iss: token.id.clone(),
            iat,
            exp,
        };
        Ok(auth_crypto::jwt::encode_access_token(
            &claims,
            token.jwt_key.as_bytes(),
        ))
    }

    /// Validates an access token: the refresh token it names must exist and its user be active.
    pub fn validate_access_token(&self, jwt: &str) -> Option<Arc<RefreshToken>> {
        let issuer = auth_crypto::jwt::unverified_issuer(jwt)?;
        let (token, active) = self.inner.store.read(|d| {
            let token = d.tokens.get(&issuer)?.clone();
            let active = d.users.get(&token.user_id).is_some_and(|u| u.is_active);
            Some((token, active))
        })?;
        let now = self.inner.clock.now().unix_timestamp();
        auth_crypto::jwt::verify_access_token(jwt, token.jwt_key.as_bytes(), &token.id, now)
            .ok()?;
        active.then_some(token)
    }

    /// Whether `jwt` is a *stale* access token: one this server issued (its signature verifies)
    /// that has expired, or whose refresh token was revoked while this process ran (the last
    /// [`crate::stale::MAX_REMEMBERED_REVOCATIONS`] revocations are remembered). A client
    /// retrying with one is not guessing, so it is not counted as a failed login.
    pub fn is_stale_access_token(&self, jwt: &str) -> bool {
        let Some(issuer) = auth_crypto::jwt::unverified_issuer(jwt) else {
            return false;
        };
        let live_key = self
            .inner
            .store
            .read(|d| d.tokens.get(&issuer).map(|t| t.jwt_key.clone()));
        let now = self.inner.clock.now().unix_timestamp();
        match live_key {
            Some(key) => matches!(
                auth_crypto::jwt::verify_access_token(jwt, key.as_bytes(), &issuer, now),
                Err(auth_crypto::jwt::JwtError::Expired)
            ),
            None => self.inner.revoked_keys.key_of(&issuer).is_some_and(|key| {
                matches!(
                    auth_crypto::jwt::verify_access_token(jwt, key.as_bytes(), &issuer, now),
                    Ok(_) | Err(auth_crypto::jwt::JwtError::Expired)
                )
            }),
        }
    }

    /// `Some(reason)` when `user` may not authenticate from `remote` (inactive, or local-only from
    /// afar); `remote` is `None` when the request's remote address is not an IP.
    pub fn user_not_allowed_reason(
        &self,
        user: &User,
        remote: Option<IpAddr>,
    ) -> Option<&'static str> {
        user_not_allowed_reason(user, remote)
    }

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
    pub fn create_auth_code(
        &self,
        client_id: &str,
        credentials: Credentials,
        context: &LoginContext,
    ) -> String {
        let value = random_hex(self.inner.rng.as_ref(), 16);
        let code = AuthCode {
            client_id: client_id.to_owned(),
            created_at: self.now(),
            credentials,
            code_challenge: context.code_challenge.clone(),
            code_challenge_method: context.code_challenge_method.clone(),
        };
        self.inner.codes.insert(value.clone(), code, self.now());
        value
    }

    /// Redeems an authorization code (single use, even when it turns out invalid). Codes whose
    /// credentials were linked but have since been removed are invalid. Does not revoke
    /// anything on reuse: token endpoints use [`Self::redeem_auth_code`].
    pub fn take_auth_code(&self, client_id: &str, code: &str) -> Option<AuthCode> {
        let code = self.inner.codes.take(client_id, code, self.now())?;
        self.usable_code(code)
    }

    fn usable_code(&self, code: AuthCode) -> Option<AuthCode> {
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
        match self.inner.codes.redeem(client_id, code, self.now()) {
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
        if self
            .inner
            .codes
            .record_token(client_id, code, refresh_token_id)
        {
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

#[async_trait]
impl AuthAccess for AuthManager {
    fn credentials_of(&self, provider_type: &str, provider_id: Option<&str>) -> Vec<Credentials> {
        self.inner.store.read(|d| {
            d.users
                .values()
                .flat_map(|u| &u.credentials)
                .filter(|c| c.belongs_to(provider_type, provider_id))
                .cloned()
                .collect()
        })
    }

    fn users(&self) -> Vec<User> {
        AuthManager::users(self)
    }

    fn user(&self, user_id: &str) -> Option<User> {
        AuthManager::user(self, user_id)
    }

    fn new_credentials(
        &self,
        provider_type: &str,
        provider_id: Option<&str>,
        data: Map<String, Value>,
    ) -> Credentials {
        Credentials {
            id: new_uuid_hex(self.inner.rng.as_ref()),
            auth_provider_type: provider_type.to_owned(),
            auth_provider_id: provider_id.map(str::to_owned),
            data,
            is_new: true,
        }
    }

    async fn link_credentials(
        &self,
        user_id: &str,
        credentials: Credentials,
    ) -> Result<Credentials, AuthError> {
        let mut linked = credentials.clone();
        self.link_user(user_id, credentials).await?;
        linked.is_new = false;
        Ok(linked)
    }

    async fn update_credential_data(
        &self,
        credential_id: &str,
        data: Map<String, Value>,
    ) -> Result<(), AuthError> {
        let previous = self
            .inner
            .store
            .read(|d| {
                d.owner_of_credential(credential_id)
                    .and_then(|u| u.credentials.iter().find(|c| c.id == credential_id))
                    .map(|c| c.data.clone())
            })
            .ok_or_else(|| AuthError::Invalid("Credential not found".to_owned()))?;
        self.inner
            .store
            .write(|d| d.set_credential_data(credential_id, data));
        if let Err(e) = self.commit().await {
            self.inner
                .store
                .write(|d| d.set_credential_data(credential_id, previous));
            return Err(e);
        }
        Ok(())
    }
}
