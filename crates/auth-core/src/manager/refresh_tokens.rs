//! Refresh tokens: creation, lookup, revocation and expiry.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use time::{Duration, OffsetDateTime};

use crate::error::AuthError;
use crate::events::AuthEvent;
use crate::models::{ACCESS_TOKEN_EXPIRATION, REFRESH_TOKEN_EXPIRATION, RefreshToken, TokenType};
use crate::rng::{new_secret, new_uuid_hex};
use crate::timefmt::to_unix_f64;

use super::{AuthManager, HOUSEKEEPING_INTERVAL, NewRefreshToken, RevokeHandle, SOFTWARE_VERSION};

impl AuthManager {
    // ----- refresh tokens -----

    /// Creates a refresh token, applying every rule of `spec/tokens.md` §2 in order; saved durably.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), auth_core::AuthError> {
    /// use std::sync::Arc;
    /// use auth_core::{AuthManager, MemoryStorage};
    /// use auth_core::{NewRefreshToken, TokenType};
    ///
    /// let manager = AuthManager::builder(Arc::new(MemoryStorage::new())).build().await?;
    /// let ann = manager.create_user(Some("Ann".into()), vec!["system-admin".into()], false).await?;
    /// let app = NewRefreshToken {
    ///     client_id: Some("https://home-assistant.io/iOS".into()),
    ///     ..Default::default()
    /// };
    /// let token = manager.create_refresh_token(&ann.id, app).await?;
    /// assert_eq!(token.token_type, TokenType::Normal);
    /// // A long-lived token needs a client name instead of a client id.
    /// let script = NewRefreshToken {
    ///     client_name: Some("backup script".into()),
    ///     token_type: Some(TokenType::LongLivedAccessToken),
    ///     ..Default::default()
    /// };
    /// assert!(manager.create_refresh_token(&ann.id, script).await.is_ok());
    /// # Ok(()) }
    /// ```
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
        self.inner.store.write_tokens(|t| t.insert(token));
        if let Err(e) = self.commit().await {
            self.inner.store.write_tokens(|t| t.remove(&id));
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
                .filter_map(|id| d.tokens.get(id).cloned())
                .collect()
        })
    }

    /// Revokes (deletes) a refresh token durably, then runs its revoke callbacks once.
    pub async fn remove_refresh_token(&self, id: &str) -> Result<(), AuthError> {
        self.revoke_many(&[id.to_owned()]).await
    }

    pub(super) async fn revoke_many(&self, ids: &[String]) -> Result<(), AuthError> {
        let removed: Vec<Arc<RefreshToken>> = self
            .inner
            .store
            .write_tokens(|t| ids.iter().filter_map(|id| t.remove(id)).collect());
        if let Err(e) = self.commit().await {
            // Not revoked after all: a token revoked in memory only would come back at the
            // next start, and the caller was told it failed.
            self.inner.store.write_tokens(|t| {
                for token in &removed {
                    t.insert((**token).clone());
                }
            });
            return Err(e);
        }
        for token in removed {
            self.run_revoke_callbacks(&token);
        }
        Ok(())
    }

    pub(super) fn run_revoke_callbacks(&self, token: &RefreshToken) {
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
        let found = self.inner.store.write_tokens(|d| {
            let before = (**d.get(id)?).clone();
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
            d.replace(token);
            Some(before)
        });
        let Some(before) = found else {
            return Err(AuthError::TokenNotFound);
        };
        if let Err(e) = self.commit().await {
            self.inner.store.write_tokens(|d| d.replace(before));
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
}
