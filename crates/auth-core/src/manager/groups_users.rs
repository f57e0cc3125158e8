//! Groups and users: creation, linking, updates, activation and removal.

use std::sync::Arc;

use crate::error::AuthError;
use crate::events::AuthEvent;
use crate::models::{Credentials, GROUP_ID_ADMIN, Group, RefreshToken, User};
use crate::permissions::Policy;
use crate::rng::new_uuid_hex;

use super::{AuthManager, UserUpdate};

impl AuthManager {
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

    pub(super) fn check_groups(&self, group_ids: &[String]) -> Result<(), AuthError> {
        self.inner.store.read(
            |d| match group_ids.iter().find(|g| !d.groups.contains_key(*g)) {
                Some(missing) => Err(AuthError::InvalidGroup(missing.clone())),
                None => Ok(()),
            },
        )
    }

    pub(super) fn new_user_id(&self) -> String {
        loop {
            let id = new_uuid_hex(self.inner.rng.as_ref());
            if self.inner.store.read(|d| !d.users.contains_key(&id)) {
                return id;
            }
        }
    }

    pub(super) async fn insert_user(&self, user: User) -> Result<User, AuthError> {
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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), auth_core::AuthError> {
    /// use std::sync::Arc;
    /// use auth_core::{AuthManager, MemoryStorage};
    /// let manager = AuthManager::builder(Arc::new(MemoryStorage::new())).build().await?;
    /// let owner = manager.create_user(Some("Ann".into()), vec!["system-admin".into()], false).await?;
    /// let guest = manager.create_user(Some("Bob".into()), vec!["system-users".into()], true).await?;
    /// assert!(owner.is_owner && !guest.is_owner && guest.local_only);
    /// # Ok(()) }
    /// ```
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

    pub(super) fn set_active(&self, user_id: &str, active: bool) {
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
        let tokens: Vec<String> = self
            .inner
            .store
            .read(|d| d.token_ids_of(user_id).cloned().collect());
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
        let tokens: Vec<String> = self
            .inner
            .store
            .read(|d| d.token_ids_of(user_id).cloned().collect());
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
}
