//! Access tokens: minting, validation and stale-token detection.

use std::net::IpAddr;
use std::sync::Arc;

use crate::error::AuthError;
use crate::models::{REFRESH_TOKEN_EXPIRATION, RefreshToken, User};
use crate::net::user_not_allowed_reason;
use crate::timefmt::to_unix_f64;

use super::AuthManager;

impl AuthManager {
    // ----- access tokens -----

    /// Mints an access token (JWT) from a refresh token: provider re-validation, usage logging,
    /// sliding expiry (saved debounced), then the JWT.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), auth_core::AuthError> {
    /// use std::sync::Arc;
    /// use auth_core::{AuthManager, MemoryStorage};
    /// use auth_core::NewRefreshToken;
    ///
    /// let manager = AuthManager::builder(Arc::new(MemoryStorage::new())).build().await?;
    /// let ann = manager.create_user(Some("Ann".into()), vec!["system-admin".into()], false).await?;
    /// let app = NewRefreshToken { client_id: Some("https://example.com/".into()), ..Default::default() };
    /// let refresh = manager.create_refresh_token(&ann.id, app).await?;
    /// let jwt = manager.create_access_token(&refresh.id, None).await?;
    /// assert_eq!(manager.validate_access_token(&jwt).map(|t| t.id.clone()), Some(refresh.id.clone()));
    /// manager.remove_refresh_token(&refresh.id).await?;
    /// assert!(manager.validate_access_token(&jwt).is_none(), "revoked with its refresh token");
    /// # Ok(()) }
    /// ```
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
        let updated = self.inner.store.write_tokens(|d| {
            let current = d.get(token_id)?;
            let mut t = (**current).clone();
            t.last_used_at = Some(now);
            t.last_used_ip = remote_ip.map(|ip| ip.to_string());
            if t.expire_at.is_some_and(|at| at != 0.0) {
                t.expire_at = Some(to_unix_f64(now + REFRESH_TOKEN_EXPIRATION));
            }
            d.replace(t.clone());
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
}
