//! Talking to the identity provider: discovery (cached), the JWK set (cached, fetched again
//! when a token names a key it does not hold), the token endpoint, and ID-token verification.

use std::time::Duration;

use auth_crypto::oidc::{IdTokenError, IdTokenExpectations, verify_id_token};
use indieauth_fetch::{FetchOptions, JsonClient};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::config::Config;

/// Bytes read at most from any answer of the identity provider.
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// Clock skew allowed for the ID token's `exp`, `iat` and `nbf`, seconds.
pub const ID_TOKEN_LEEWAY_SECS: i64 = 60;

/// Why talking to the identity provider failed; each maps to an abort reason of the flow.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    /// The identity provider could not be reached or gave an unusable answer.
    #[error("identity provider unreachable: {0}")]
    Unreachable(String),
    /// The identity provider refused (error redirect, token endpoint error) or the ID token is
    /// not valid.
    #[error("sign-in refused: {0}")]
    Refused(String),
}

impl IdpError {
    /// The abort reason shown to the client.
    pub fn reason(&self) -> &'static str {
        match self {
            IdpError::Unreachable(_) => "cannot_connect",
            IdpError::Refused(_) => "invalid_auth",
        }
    }
}

/// The endpoints of the discovery document we use.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// `issuer`, as the document gives it (compared with the ID token's `iss`).
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization: String,
    /// `token_endpoint`.
    pub token: String,
    /// `jwks_uri`.
    pub jwks: String,
}

/// One identity provider (shared by every flow of a provider).
#[derive(Debug)]
pub struct Idp {
    client: JsonClient,
    endpoints: Mutex<Option<Endpoints>>,
    jwks: Mutex<Option<Value>>,
}

impl Idp {
    /// A client for the provider of `config` (nothing is fetched yet).
    pub fn new(config: &Config) -> Result<Self, String> {
        let client = JsonClient::new(FetchOptions {
            timeout: Duration::from_secs(config.timeout),
            max_body_bytes: MAX_ANSWER_BYTES,
            ..FetchOptions::default()
        })
        .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            endpoints: Mutex::new(None),
            jwks: Mutex::new(None),
        })
    }

    /// The discovery document's endpoints, fetched at the first use and kept.
    pub async fn endpoints(&self, config: &Config) -> Result<Endpoints, IdpError> {
        let mut cached = self.endpoints.lock().await;
        if let Some(endpoints) = cached.as_ref() {
            return Ok(endpoints.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            config.issuer.trim_end_matches('/')
        );
        let doc = self
            .client
            .get_json(&url)
            .await
            .map_err(|e| IdpError::Unreachable(e.to_string()))?;
        let field = |name: &str| {
            doc.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| IdpError::Unreachable(format!("{url}: no {name}")))
        };
        let endpoints = Endpoints {
            issuer: field("issuer")?,
            authorization: field("authorization_endpoint")?,
            token: field("token_endpoint")?,
            jwks: field("jwks_uri")?,
        };
        if endpoints.issuer.trim_end_matches('/') != config.issuer.trim_end_matches('/') {
            return Err(IdpError::Unreachable(format!(
                "{url}: issuer {:?} is not the configured issuer",
                endpoints.issuer
            )));
        }
        *cached = Some(endpoints.clone());
        Ok(endpoints)
    }

    /// Exchanges `code` at the token endpoint and returns the verified ID token's claims.
    pub async fn redeem(
        &self,
        config: &Config,
        code: &str,
        verifier: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Map<String, Value>, IdpError> {
        let endpoints = self.endpoints(config).await?;
        let answer = self
            .client
            .post_form(
                &endpoints.token,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", &config.redirect_uri),
                    ("code_verifier", verifier),
                ],
                Some((&config.client_id, &config.client_secret)),
            )
            .await
            .map_err(|e| IdpError::Unreachable(e.to_string()))?;
        if answer.status != 200 {
            let error = answer
                .body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("?");
            return Err(IdpError::Refused(format!(
                "token endpoint answered {} ({error})",
                answer.status
            )));
        }
        let id_token = answer
            .body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| IdpError::Refused("token endpoint gave no id_token".to_owned()))?;
        let expect = IdTokenExpectations {
            issuer: &endpoints.issuer,
            client_id: &config.client_id,
            nonce,
            now,
            leeway: ID_TOKEN_LEEWAY_SECS,
        };
        self.verify(&endpoints, id_token, &expect).await
    }

    /// Verifies against the cached JWK set, fetching it (again) when it is missing or does not
    /// hold the token's key: that is how a key rotation at the identity provider is followed.
    async fn verify(
        &self,
        endpoints: &Endpoints,
        id_token: &str,
        expect: &IdTokenExpectations<'_>,
    ) -> Result<Map<String, Value>, IdpError> {
        let mut jwks = self.jwks.lock().await;
        if let Some(set) = jwks.as_ref() {
            match verify_id_token(id_token, set, expect) {
                Err(IdTokenError::UnknownKey(_)) => {}
                other => return other.map_err(|e| IdpError::Refused(e.to_string())),
            }
        }
        let set = self
            .client
            .get_json(&endpoints.jwks)
            .await
            .map_err(|e| IdpError::Unreachable(e.to_string()))?;
        let verified = verify_id_token(id_token, &set, expect);
        *jwks = Some(set);
        verified.map_err(|e| IdpError::Refused(e.to_string()))
    }
}
