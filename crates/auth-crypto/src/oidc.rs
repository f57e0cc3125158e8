//! OpenID Connect: ID-token verification against an issuer's JWK set, PKCE `S256` challenges and
//! random `state`/`nonce` values, for the `oidc` auth provider.
//!
//! # ID-token rules ([`verify_id_token`])
//!
//! 1. at most [`MAX_ID_TOKEN_LEN`] bytes; a compact JWS whose header parses (an `alg` that
//!    `jsonwebtoken` does not know, such as `none`, is [`IdTokenError::Malformed`]);
//! 2. `alg` must be one of the asymmetric algorithms ([`ALLOWED_ALGORITHMS`]: RS*, PS*, ES256,
//!    ES384, EdDSA); `none` and HS* are refused before any key is looked at, so a public key can
//!    never be used as an HMAC secret;
//! 3. the key: with a `kid`, the set's key of that id ([`IdTokenError::UnknownKey`] when there is
//!    none: the caller refetches the set once and tries again); without one, every key of the
//!    set whose type fits the algorithm is tried. Keys marked `use: enc`, or whose own `alg`
//!    differs from the header's, are never used. Header `jwk`/`jku`/`x5u` are ignored;
//! 4. the signature (by `jsonwebtoken`), then the payload must be a JSON object;
//! 5. `iss` equals the configured issuer exactly;
//! 6. `aud` (string or list) contains the client id; with several audiences `azp` must be
//!    present and equal the client id, and an `azp` that is present must always equal it;
//! 7. `exp` is required: rejected iff `exp <= now - leeway`; `iat` is required: rejected iff
//!    `iat > now + leeway`; `nbf` (optional): rejected iff `nbf > now + leeway`;
//! 8. `nonce` is required and compared in constant time with the one sent.
//!
//! `now` is passed in (Unix seconds) so that expiry is tested without waiting.

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::constant_time_eq;

/// Longest ID token (in bytes) that is even looked at.
pub const MAX_ID_TOKEN_LEN: usize = 16 * 1024;
/// Keys of a JWK set looked at, at most (the rest are ignored).
pub const MAX_JWKS_KEYS: usize = 64;
/// The signature algorithms an ID token may use.
pub const ALLOWED_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why an ID token was refused. Messages never contain the token or a key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdTokenError {
    /// Longer than [`MAX_ID_TOKEN_LEN`].
    #[error("ID token is longer than {MAX_ID_TOKEN_LEN} bytes")]
    TooLong,
    /// Not a compact JWS with a readable header and a JSON object payload.
    #[error("ID token is not a well-formed JWS")]
    Malformed,
    /// `alg` is `none`, HS* or another algorithm not in [`ALLOWED_ALGORITHMS`].
    #[error("ID token algorithm {0} is not allowed")]
    AlgorithmNotAllowed(String),
    /// No key of the set fits (unknown `kid`, or no key of the algorithm's type).
    #[error("no key of the issuer's JWK set fits the ID token (kid {0:?})")]
    UnknownKey(Option<String>),
    /// The signature does not verify with the key.
    #[error("ID token signature is invalid")]
    BadSignature,
    /// A required claim is missing or has the wrong JSON type.
    #[error("ID token claim {0} is missing or not valid")]
    MissingClaim(&'static str),
    /// `iss` is not the configured issuer.
    #[error("ID token issuer does not match")]
    WrongIssuer,
    /// `aud` does not contain the client id, or `azp` names another client.
    #[error("ID token audience does not match the client id")]
    WrongAudience,
    /// `exp` has passed.
    #[error("ID token has expired")]
    Expired,
    /// `iat` or `nbf` lies in the future.
    #[error("ID token is not valid yet (iat or nbf in the future)")]
    NotYetValid,
    /// `nonce` is not the one sent with the authorization request.
    #[error("ID token nonce does not match")]
    WrongNonce,
}

/// What an ID token must say to be accepted.
#[derive(Clone, Debug)]
pub struct IdTokenExpectations<'a> {
    /// The issuer (`iss`), exactly as the discovery document gives it.
    pub issuer: &'a str,
    /// Our client id (`aud`, `azp`).
    pub client_id: &'a str,
    /// The nonce sent with the authorization request.
    pub nonce: &'a str,
    /// The current time, Unix seconds.
    pub now: i64,
    /// Clock skew allowed for `exp`, `iat` and `nbf`, seconds.
    pub leeway: i64,
}

/// The key id (`kid`) in an ID token's header, without verifying anything.
pub fn id_token_key_id(token: &str) -> Result<Option<String>, IdTokenError> {
    if token.len() > MAX_ID_TOKEN_LEN {
        return Err(IdTokenError::TooLong);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
    Ok(header.kid)
}

/// Verifies `token` against the JWK set `jwks` (the JSON of the issuer's `jwks_uri`) and the
/// expectations; returns the claims. See the module docs for the rules.
pub fn verify_id_token(
    token: &str,
    jwks: &Value,
    expect: &IdTokenExpectations<'_>,
) -> Result<Map<String, Value>, IdTokenError> {
    if token.len() > MAX_ID_TOKEN_LEN {
        return Err(IdTokenError::TooLong);
    }
    if token.split('.').count() != 3 {
        return Err(IdTokenError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
    let alg = header.alg;
    if !ALLOWED_ALGORITHMS.contains(&alg) {
        return Err(IdTokenError::AlgorithmNotAllowed(format!("{alg:?}")));
    }
    let candidates = candidate_keys(jwks, alg, header.kid.as_deref());
    if candidates.is_empty() {
        return Err(IdTokenError::UnknownKey(header.kid));
    }
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    let mut claims = None;
    let mut error = IdTokenError::BadSignature;
    for key in candidates {
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) => {
                if matches!(
                    e.kind(),
                    jsonwebtoken::errors::ErrorKind::Json(_)
                        | jsonwebtoken::errors::ErrorKind::Base64(_)
                        | jsonwebtoken::errors::ErrorKind::Utf8(_)
                        | jsonwebtoken::errors::ErrorKind::InvalidToken
                ) {
                    error = IdTokenError::Malformed;
                }
            }
        }
    }
    let claims = claims.ok_or(error)?;
    check_claims(&claims, expect)?;
    Ok(claims)
}

/// The decoding keys of `jwks` that may verify a token signed with `alg` (and key id `kid`).
fn candidate_keys(jwks: &Value, alg: Algorithm, kid: Option<&str>) -> Vec<DecodingKey> {
    let Some(keys) = jwks.get("keys").and_then(Value::as_array) else {
        return Vec::new();
    };
    keys.iter()
        .take(MAX_JWKS_KEYS)
        // A key of a type this crate does not know is skipped, not an error for the whole set.
        .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
        .filter(|jwk| match kid {
            Some(kid) => jwk.common.key_id.as_deref() == Some(kid),
            None => true,
        })
        .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .filter(|jwk| match jwk.common.key_algorithm {
            Some(own) => key_algorithm_is(own, alg),
            None => true,
        })
        .filter_map(|jwk| DecodingKey::from_jwk(&jwk).ok())
        .filter(|key| alg.family() == key.family())
        .collect()
}

/// Whether a key's own `alg` names `alg` (both enums spell the algorithms the same way).
fn key_algorithm_is(own: KeyAlgorithm, alg: Algorithm) -> bool {
    format!("{own:?}") == format!("{alg:?}")
}

fn check_claims(
    claims: &Map<String, Value>,
    expect: &IdTokenExpectations<'_>,
) -> Result<(), IdTokenError> {
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(IdTokenError::MissingClaim("iss"))?;
    if expect.issuer.is_empty() || iss != expect.issuer {
        return Err(IdTokenError::WrongIssuer);
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => return Err(IdTokenError::MissingClaim("aud")),
    };
    if !audiences.contains(&expect.client_id) {
        return Err(IdTokenError::WrongAudience);
    }
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == expect.client_id => {}
        Some(_) => return Err(IdTokenError::WrongAudience),
        None if audiences.len() > 1 => return Err(IdTokenError::WrongAudience),
        None => {}
    }
    let exp = time_claim(claims, "exp")?.ok_or(IdTokenError::MissingClaim("exp"))?;
    if exp <= expect.now - expect.leeway {
        return Err(IdTokenError::Expired);
    }
    let iat = time_claim(claims, "iat")?.ok_or(IdTokenError::MissingClaim("iat"))?;
    if iat > expect.now + expect.leeway {
        return Err(IdTokenError::NotYetValid);
    }
    if let Some(nbf) = time_claim(claims, "nbf")?
        && nbf > expect.now + expect.leeway
    {
        return Err(IdTokenError::NotYetValid);
    }
    let nonce = claims
        .get("nonce")
        .and_then(Value::as_str)
        .ok_or(IdTokenError::MissingClaim("nonce"))?;
    if expect.nonce.is_empty() || !constant_time_eq(nonce.as_bytes(), expect.nonce.as_bytes()) {
        return Err(IdTokenError::WrongNonce);
    }
    Ok(())
}

/// A numeric date claim (`None` when absent; a non-number is an error). Fractions are cut off.
fn time_claim(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<i64>, IdTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.trunc() as i64))
            .map(Some)
            .ok_or(IdTokenError::MissingClaim(name)),
        Some(_) => Err(IdTokenError::MissingClaim(name)),
    }
}

/// A new PKCE code verifier: 32 random bytes, base64url without padding (43 characters).
pub fn new_pkce_verifier() -> String {
    random_b64(32)
}

/// The PKCE `S256` challenge of `verifier`: `BASE64URL-NOPAD(SHA256(verifier))`.
pub fn pkce_s256_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// A new random `state` or `nonce` value: 32 random bytes, base64url without padding.
pub fn new_oidc_secret() -> String {
    random_b64(32)
}

fn random_b64(len: usize) -> String {
    use base64::Engine as _;
    let mut bytes = vec![0u8; len];
    crate::random::fill_random(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests;
