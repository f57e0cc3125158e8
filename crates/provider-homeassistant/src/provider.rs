//! The provider: user table, password checks, admin operations and the [`AuthProvider`] impl.

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::registry::PasswordPolicy;
use auth_core::{
    AuthAccess, AuthProvider, Credentials, LoginContext, PasswordAdmin, PluginIdentity,
    ProviderError, ProviderLoginFlow, Storage, User, UserMeta,
};
use auth_crypto::HashScheme;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, MutexGuard};

use crate::flow::LoginSteps;
use crate::normalize::normalize_username;
use crate::store::{self, ProviderData, STORAGE_KEY, StoredUser};
use crate::{Config, DEFAULT_NAME, PROVIDER_TYPE};

/// bcrypt only looks at this many password bytes; longer passwords are never re-hashed (see
/// [`PasswordAdmin::validate_login`]).
const BCRYPT_MAX_PASSWORD_BYTES: usize = 72;

/// The `homeassistant` auth provider: usernames and passwords kept in
/// `.storage/auth_provider.homeassistant`.
///
/// Cheap to clone; clones share the user table. Admin operations (`add_auth`, `remove_auth`, …)
/// are its [`PasswordAdmin`] implementation, reached from an `Arc<dyn AuthProvider>` with
/// [`AuthProvider::password_admin`].
#[derive(Clone)]
pub struct HomeAssistantProvider {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    identity: PluginIdentity,
    storage: Arc<dyn Storage>,
    /// Set when another instance changed the store (see `auth_core::ChangeFlag`).
    changed: auth_core::ChangeFlag,
    policy: PasswordPolicy,
    rehash_legacy_hashes: bool,
    /// `None` until loaded. Mutations hold the lock across their save, so saves are serialised
    /// and the file always matches memory; password checks hold it only to read the table.
    data: Mutex<Option<ProviderData>>,
}

impl std::fmt::Debug for HomeAssistantProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HomeAssistantProvider")
            .field("identity", &self.inner.identity)
            .field("storage", &self.inner.storage.location(STORAGE_KEY))
            .field("rehash_legacy_hashes", &self.inner.rehash_legacy_hashes)
            .finish_non_exhaustive()
    }
}

fn user_not_found() -> ProviderError {
    ProviderError::InvalidUser("User not found".to_owned())
}

fn not_normalized(new_username: &str) -> ProviderError {
    let mut placeholders = Map::new();
    placeholders.insert(
        "new_username".to_owned(),
        Value::String(new_username.to_owned()),
    );
    ProviderError::InvalidUsername {
        key: "username_not_normalized",
        message: format!(
            "Username \"{new_username}\" is not normalized. Please make sure the username is lowercase and does not contain any whitespace"
        ),
        placeholders,
    }
}

fn already_exists(username: &str) -> ProviderError {
    let mut placeholders = Map::new();
    placeholders.insert("username".to_owned(), Value::String(username.to_owned()));
    ProviderError::InvalidUsername {
        key: "username_already_exists",
        message: format!("Username \"{username}\" already exists"),
        placeholders,
    }
}

fn is_bcrypt(stored: &str) -> bool {
    auth_crypto::hash_scheme(stored) == Some(HashScheme::HaBcrypt)
}

/// Checks a new username against the table: normalised, and unique after normalisation.
fn validate_new_username(data: &ProviderData, new_username: &str) -> Result<(), ProviderError> {
    let normalized = normalize_username(new_username);
    if normalized != new_username {
        return Err(not_normalized(new_username));
    }
    if data
        .users
        .iter()
        .any(|u| normalize_username(&u.username) == normalized)
    {
        return Err(already_exists(new_username));
    }
    Ok(())
}

/// Refuses `username` (already normalised) when a credential of this provider other than
/// `except` carries it after normalisation: a new password entry under that name would sign in
/// as that credential's user (the owner's, say).
fn check_no_credential(
    auth: &dyn AuthAccess,
    username: &str,
    except: Option<&str>,
) -> Result<(), ProviderError> {
    let taken = auth
        .credentials_of(PROVIDER_TYPE, None)
        .iter()
        .filter(|c| Some(c.id.as_str()) != except)
        .any(|c| {
            c.data_str("username")
                .is_some_and(|u| normalize_username(u) == username)
        });
    if taken {
        return Err(already_exists(username));
    }
    Ok(())
}

/// Index of the first entry whose normalised username equals `normalize(username)`.
fn position(data: &ProviderData, username: &str) -> Option<usize> {
    let wanted = normalize_username(username);
    data.users
        .iter()
        .position(|u| normalize_username(&u.username) == wanted)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ProviderError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ProviderError::Failed(format!("password hashing task failed: {e}")))
}

impl HomeAssistantProvider {
    /// A provider over `storage`, hashing new passwords with `policy`; `name` defaults to
    /// `Home Assistant Local`. Nothing is read until first use or [`AuthProvider::initialize`].
    pub fn new(
        config: Config,
        name: Option<String>,
        storage: Arc<dyn Storage>,
        policy: PasswordPolicy,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                identity: PluginIdentity::new(
                    PROVIDER_TYPE,
                    None,
                    name.as_deref().unwrap_or(DEFAULT_NAME),
                ),
                changed: auth_core::ChangeFlag::new(storage.clone(), STORAGE_KEY),
                storage,
                policy,
                rehash_legacy_hashes: config.rehash_legacy_hashes,
                data: Mutex::new(None),
            }),
        }
    }

    /// Where the user table is stored (for messages).
    pub fn location(&self) -> String {
        self.inner.storage.location(STORAGE_KEY)
    }
}

impl Inner {
    /// The loaded table, loading it first if needed. A failed load leaves the slot empty, so the
    /// next call tries again (an unreadable file is never taken for an empty table).
    async fn loaded<'a>(
        &self,
        slot: &'a mut MutexGuard<'_, Option<ProviderData>>,
    ) -> Result<&'a mut ProviderData, ProviderError> {
        // Another instance's change (a shared database) is read before this one's next use.
        let changed = self.changed.take();
        let data = match slot.take() {
            Some(data) if !changed => data,
            _ => store::load(self.storage.as_ref()).await?,
        };
        Ok(slot.insert(data))
    }

    /// Applies `change` and saves; on any error memory is restored and nothing is written.
    async fn mutate(
        &self,
        change: impl FnOnce(&mut ProviderData) -> Result<(), ProviderError>,
    ) -> Result<(), ProviderError> {
        let mut guard = self.data.lock().await;
        let data = self.loaded(&mut guard).await?;
        let before = data.clone();
        if let Err(e) = change(data) {
            *data = before;
            return Err(e);
        }
        if let Err(e) = store::save(self.storage.as_ref(), data).await {
            *data = before;
            return Err(e.into());
        }
        Ok(())
    }

    async fn hash(&self, password: &str) -> Result<String, ProviderError> {
        let password = password.to_owned();
        let policy = self.policy.clone();
        blocking(move || auth_crypto::hash_password(&password, &policy))
            .await?
            .map_err(|e| ProviderError::Failed(e.to_string()))
    }

    pub(crate) async fn ensure_loaded(&self) -> Result<(), ProviderError> {
        let mut guard = self.data.lock().await;
        self.loaded(&mut guard).await.map(|_| ())
    }

    pub(crate) async fn validate_login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<bool, ProviderError> {
        let wanted = normalize_username(username);
        let (found, only_bcrypt) = {
            let mut guard = self.data.lock().await;
            let data = self.loaded(&mut guard).await?;
            // Scan every user, remembering the last match: no early exit.
            let mut found = None;
            for user in &data.users {
                if normalize_username(&user.username) == wanted {
                    found = Some(user.password.clone());
                }
            }
            let only_bcrypt =
                !data.users.is_empty() && data.users.iter().all(|u| is_bcrypt(&u.password));
            (found, only_bcrypt)
        };
        let owned = password.to_owned();
        let Some(stored) = found else {
            let policy = self.policy.clone();
            blocking(move || {
                if only_bcrypt {
                    auth_crypto::dummy_verify_bcrypt(&owned);
                } else {
                    auth_crypto::dummy_verify(&owned, &policy);
                }
            })
            .await?;
            return Ok(false);
        };
        let checked = stored.clone();
        let ok = blocking(move || auth_crypto::verify_password(&owned, &checked))
            .await?
            .map_err(|e| {
                ProviderError::Failed(format!(
                    "{}: the password hash of a user cannot be checked: {e}",
                    self.storage.location(STORAGE_KEY)
                ))
            })?;
        if ok
            && self.rehash_legacy_hashes
            && password.len() <= BCRYPT_MAX_PASSWORD_BYTES
            && is_bcrypt(&stored)
        {
            self.rehash(&wanted, &stored, password).await;
        }
        Ok(ok)
    }

    /// Replaces a verified bcrypt hash by an argon2id hash of the same password. Best effort: a
    /// failure is logged and the bcrypt hash stays.
    async fn rehash(&self, normalized: &str, old_hash: &str, password: &str) {
        let new_hash = match self.hash(password).await {
            Ok(hash) => hash,
            Err(error) => {
                tracing::warn!(%error, "cannot re-hash a legacy bcrypt password");
                return;
            }
        };
        let normalized = normalized.to_owned();
        let old_hash = old_hash.to_owned();
        let result = self
            .mutate(move |data| {
                // The last matching entry (the one validated), if its hash is still the old one.
                if let Some(user) = data
                    .users
                    .iter_mut()
                    .rev()
                    .find(|u| normalize_username(&u.username) == normalized)
                    .filter(|u| u.password == old_hash)
                {
                    user.password = new_hash;
                }
                Ok(())
            })
            .await;
        if let Err(error) = result {
            tracing::warn!(%error, "cannot save a re-hashed legacy bcrypt password; it stays bcrypt");
        }
    }
}

#[async_trait]
impl PasswordAdmin for HomeAssistantProvider {
    fn normalize_username(&self, username: &str) -> String {
        normalize_username(username)
    }

    /// Checks a username and password (see the crate docs for timing and re-hashing);
    /// `Ok(false)` for an unknown user or a wrong password.
    ///
    /// # Errors
    ///
    /// The store cannot be read, or the user's stored hash is unusable.
    async fn validate_login(&self, username: &str, password: &str) -> Result<bool, ProviderError> {
        self.inner.validate_login(username, password).await
    }

    /// Adds a user. `username` must already be normalised and must be new; saved before returning.
    ///
    /// # Errors
    ///
    /// `InvalidUsername` (`username_not_normalized` / `username_already_exists`), or a
    /// storage/hashing failure (nothing changed).
    async fn add_auth(&self, username: &str, password: &str) -> Result<(), ProviderError> {
        // Cheap checks first, so a refused name costs no hashing.
        {
            let mut guard = self.inner.data.lock().await;
            let data = self.inner.loaded(&mut guard).await?;
            validate_new_username(data, username)?;
        }
        let hash = self.inner.hash(password).await?;
        let username = username.to_owned();
        self.inner
            .mutate(move |data| {
                validate_new_username(data, &username)?;
                data.users.push(StoredUser {
                    username,
                    password: hash,
                    extra: Map::new(),
                });
                Ok(())
            })
            .await
    }

    /// Adds a password entry for `username` and links a new credential for it to `user_id`, as
    /// one step for logins: the table stays locked from the entry's save until the credential is
    /// linked (or the entry is taken back), so no login can validate the new password and find no
    /// credential, or another user's. `username` must be normalised and used by neither an entry
    /// nor a credential of this provider; both are checked before anything is written.
    ///
    /// # Errors
    ///
    /// `InvalidUsername` (`username_not_normalized` / `username_already_exists`), or a
    /// storage/hashing/linking failure (nothing changed).
    async fn add_credentials(
        &self,
        auth: &dyn AuthAccess,
        user_id: &str,
        username: &str,
        password: &str,
    ) -> Result<Credentials, ProviderError> {
        PasswordAdmin::check_new_username(self, auth, username).await?;
        let hash = self.inner.hash(password).await?;
        let mut guard = self.inner.data.lock().await;
        let data = self.inner.loaded(&mut guard).await?;
        validate_new_username(data, username)?;
        check_no_credential(auth, username, None)?;
        data.users.push(StoredUser {
            username: username.to_owned(),
            password: hash,
            extra: Map::new(),
        });
        if let Err(e) = store::save(self.inner.storage.as_ref(), data).await {
            data.users.pop();
            return Err(e.into());
        }
        let mut credential_data = Map::new();
        credential_data.insert("username".to_owned(), Value::String(username.to_owned()));
        let credentials = auth.new_credentials(PROVIDER_TYPE, None, credential_data);
        match auth.link_credentials(user_id, credentials).await {
            Ok(linked) => Ok(linked),
            Err(error) => {
                data.users.pop();
                if let Err(undo) = store::save(self.inner.storage.as_ref(), data).await {
                    tracing::error!(
                        file = %self.location(),
                        error = %undo,
                        "cannot take back a password entry whose credential was not linked"
                    );
                }
                Err(ProviderError::Failed(error.to_string()))
            }
        }
    }

    /// Whether [`Self::add_credentials`] would take `username`: normalised, and used by neither an
    /// entry nor a credential of this provider. Writes nothing.
    ///
    /// # Errors
    ///
    /// `InvalidUsername` (`username_not_normalized` / `username_already_exists`), or the store
    /// cannot be read.
    async fn check_new_username(
        &self,
        auth: &dyn AuthAccess,
        username: &str,
    ) -> Result<(), ProviderError> {
        let mut guard = self.inner.data.lock().await;
        let data = self.inner.loaded(&mut guard).await?;
        validate_new_username(data, username)?;
        check_no_credential(auth, username, None)
    }

    /// Removes every entry whose normalised name matches (an older file may hold several, and
    /// a login checks the last one); saved before returning.
    ///
    /// # Errors
    ///
    /// `InvalidUser("User not found")`, or a storage failure (nothing changed).
    async fn remove_auth(&self, username: &str) -> Result<(), ProviderError> {
        let wanted = normalize_username(username);
        self.inner
            .mutate(move |data| {
                let before = data.users.len();
                data.users
                    .retain(|u| normalize_username(&u.username) != wanted);
                if data.users.len() == before {
                    return Err(user_not_found());
                }
                Ok(())
            })
            .await
    }

    /// Sets a new password (hashed with argon2id) for the user whose normalised name matches;
    /// saved before returning.
    ///
    /// # Errors
    ///
    /// `InvalidUser("User not found")`, or a storage/hashing failure (nothing changed).
    async fn change_password(
        &self,
        username: &str,
        new_password: &str,
    ) -> Result<(), ProviderError> {
        {
            let mut guard = self.inner.data.lock().await;
            let data = self.inner.loaded(&mut guard).await?;
            position(data, username).ok_or_else(user_not_found)?;
        }
        let hash = self.inner.hash(new_password).await?;
        let username = username.to_owned();
        self.inner
            .mutate(move |data| {
                let index = position(data, &username).ok_or_else(user_not_found)?;
                data.users[index].password = hash;
                Ok(())
            })
            .await
    }

    /// Renames the entry behind `credential` to `new_username` (which must be normalised and
    /// unused, by entries and by other credentials of this provider) and updates the credential's
    /// `data.username` in the auth store. The table stays locked until both are saved, so a login
    /// sees either the old name or the new one.
    ///
    /// The provider file is saved first, then the credential; if the credential cannot be saved
    /// the rename is rolled back, so the two never disagree.
    ///
    /// # Errors
    ///
    /// `InvalidUsername`, `InvalidUser("User not found")` (also for a credential of another
    /// provider), or a storage failure.
    async fn change_username(
        &self,
        auth: &dyn AuthAccess,
        credential: &Credentials,
        new_username: &str,
    ) -> Result<(), ProviderError> {
        if !credential.belongs_to(PROVIDER_TYPE, None) {
            return Err(user_not_found());
        }
        let old_username = credential
            .data_str("username")
            .ok_or_else(user_not_found)?
            .to_owned();
        let mut guard = self.inner.data.lock().await;
        let data = self.inner.loaded(&mut guard).await?;
        validate_new_username(data, new_username)?;
        check_no_credential(auth, new_username, Some(&credential.id))?;
        let index = position(data, &old_username).ok_or_else(user_not_found)?;
        let previous = data.users[index].username.clone();
        data.users[index].username = new_username.to_owned();
        if let Err(e) = store::save(self.inner.storage.as_ref(), data).await {
            data.users[index].username = previous;
            return Err(e.into());
        }
        let mut new_data = credential.data.clone();
        new_data.insert(
            "username".to_owned(),
            Value::String(new_username.to_owned()),
        );
        if let Err(e) = auth.update_credential_data(&credential.id, new_data).await {
            data.users[index].username = previous;
            if let Err(rollback) = store::save(self.inner.storage.as_ref(), data).await {
                tracing::error!(
                    file = %self.location(),
                    error = %rollback,
                    "cannot roll back a username change; the provider file and the auth store disagree"
                );
            }
            return Err(ProviderError::Failed(e.to_string()));
        }
        Ok(())
    }

    /// The stored usernames, in file order.
    ///
    /// # Errors
    ///
    /// The store cannot be read.
    async fn usernames(&self) -> Result<Vec<String>, ProviderError> {
        let mut guard = self.inner.data.lock().await;
        let data = self.inner.loaded(&mut guard).await?;
        Ok(data.users.iter().map(|u| u.username.clone()).collect())
    }
}

#[async_trait]
impl AuthProvider for HomeAssistantProvider {
    fn identity(&self) -> &PluginIdentity {
        &self.inner.identity
    }

    async fn initialize(&self) -> Result<(), ProviderError> {
        self.inner.ensure_loaded().await
    }

    async fn login_flow(
        &self,
        _context: &LoginContext,
        _auth: Arc<dyn AuthAccess>,
    ) -> Result<Box<dyn ProviderLoginFlow>, ProviderError> {
        Ok(Box::new(LoginSteps::new(self.inner.clone())))
    }

    async fn get_or_create_credentials(
        &self,
        data: &Map<String, Value>,
        auth: &dyn AuthAccess,
    ) -> Result<Credentials, ProviderError> {
        let username = data
            .get("username")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::Failed("login result without a username".to_owned()))?;
        let wanted = normalize_username(username);
        // Credentials store the normalised name: an indexed lookup. Only data from before
        // usernames were normalised (or a first sign-in) falls back to a scan of them all.
        let indexed = auth
            .credentials_with_username(&wanted)
            .into_iter()
            .map(|(_, c)| c)
            .find(|c| c.belongs_to(PROVIDER_TYPE, None));
        let existing = indexed.or_else(|| {
            auth.credentials_of(PROVIDER_TYPE, None)
                .into_iter()
                .find(|c| {
                    c.data_str("username")
                        .is_some_and(|u| normalize_username(u) == wanted)
                })
        });
        if let Some(credentials) = existing {
            return Ok(credentials);
        }
        let mut new_data = Map::new();
        new_data.insert("username".to_owned(), Value::String(wanted));
        Ok(auth.new_credentials(PROVIDER_TYPE, None, new_data))
    }

    async fn user_meta_for_credentials(
        &self,
        credentials: &Credentials,
    ) -> Result<UserMeta, ProviderError> {
        Ok(UserMeta {
            name: credentials.data_str("username").map(str::to_owned),
            is_active: true,
            group: None,
            local_only: None,
        })
    }

    async fn will_remove_credentials(
        &self,
        credentials: &Credentials,
    ) -> Result<(), ProviderError> {
        let Some(username) = credentials.data_str("username") else {
            return Ok(());
        };
        match self.remove_auth(username).await {
            Ok(()) | Err(ProviderError::InvalidUser(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn verify_step_up(
        &self,
        user: &User,
        data: &Map<String, Value>,
    ) -> Result<(), ProviderError> {
        let Some(username) = auth_core::password_admin::username_of(self, user) else {
            return Err(ProviderError::InvalidAuth(
                "The user has no credentials for this auth provider".to_owned(),
            ));
        };
        let Some(Value::String(password)) = data.get("password") else {
            return Err(ProviderError::InvalidAuth(
                "A password is required".to_owned(),
            ));
        };
        if self.validate_login(&username, password).await? {
            Ok(())
        } else {
            Err(ProviderError::InvalidAuth("Invalid password".to_owned()))
        }
    }

    fn password_admin(&self) -> Option<&dyn PasswordAdmin> {
        Some(self)
    }
}
