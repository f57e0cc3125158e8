//! [`AuthAccess`] for the manager: what providers may read and change.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::error::AuthError;
use crate::models::{Credentials, User};
use crate::provider::AuthAccess;
use crate::rng::new_uuid_hex;

use super::AuthManager;

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

    fn credentials_with_username(&self, username: &str) -> Vec<(String, Credentials)> {
        self.inner.store.read(|d| {
            d.credentials_with_username(username)
                .into_iter()
                .map(|(user, cred)| (user.id.clone(), cred.clone()))
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
