//! Password hashing, constant-time comparison, random tokens and HS256 JWTs for hass-auth.
//!
//! This is the only crate of the workspace that depends on cryptography crates
//! (`argon2`, `bcrypt`, `jsonwebtoken`, `subtle`, `rand`, `sha2`). Everything
//! else asks it for one of four things:
//!
//! * [`password`]: new passwords are hashed with **argon2id** (PHC strings,
//!   parameters from a [`PasswordPolicy`]); Home Assistant's stored hashes
//!   (base64 of a `$2b$12$…` bcrypt string, first 72 password bytes) still
//!   verify, and [`needs_rehash`] tells the caller to upgrade them after a
//!   successful login. [`dummy_verify`] equalises timing for unknown users.
//! * [`jwt`]: HS256 access tokens byte-identical to Home Assistant's
//!   (`{"alg":"HS256","typ":"JWT"}` header, `{"iss","iat","exp"}` payload),
//!   validated with Home Assistant's rules (10 s leeway, `HS256` only, …) against
//!   an injected clock; and signed paths (`authSig`).
//! * [`random`]: OS-CSPRNG bytes, hex secrets, UUID4 hex ids.
//! * [`constant_time_eq`] and [`pkce_s256_matches`] for comparing secrets.
//!
//! Hashing is slow on purpose (argon2id with OWASP's parameters ≈ 14 ms,
//! bcrypt cost 12 ≈ 220 ms): async callers run it on `spawn_blocking`.
//!
//! # Example
//!
//! ```
//! use auth_crypto::{hash_password, verify_password, needs_rehash, PasswordPolicy};
//! use auth_crypto::jwt::{encode_access_token, verify_access_token, AccessClaims};
//!
//! // Tests use cheap parameters; servers use `PasswordPolicy::owasp()` (the default).
//! let policy = PasswordPolicy::fast_for_tests();
//! let stored = hash_password("correct horse", &policy).unwrap();
//! assert!(stored.starts_with("$argon2id$v=19$"));
//! assert!(verify_password("correct horse", &stored).unwrap());
//! assert!(!verify_password("wrong horse", &stored).unwrap());
//! assert!(!needs_rehash(&stored, &policy));
//!
//! // A stored Home Assistant hash (base64 of the bcrypt string) verifies too,
//! // and should be replaced by an argon2id hash after the login succeeded.
//! let ha_stored = auth_crypto::ha_bcrypt_hash("hunter2", 4).unwrap();
//! assert!(verify_password("hunter2", &ha_stored).unwrap());
//! assert!(needs_rehash(&ha_stored, &policy));
//!
//! // Access tokens: the key is the refresh token's 128-hex `jwt_key`, as ASCII bytes.
//! let key = auth_crypto::random::new_secret_token();
//! let claims = AccessClaims { iss: "07d489bbc4a040249d76fdf5fb9b45ac".into(), iat: 1_795_299_487, exp: 1_795_301_287 };
//! let token = encode_access_token(&claims, key.as_bytes());
//! assert_eq!(verify_access_token(&token, key.as_bytes(), &claims.iss, claims.iat), Ok(claims));
//! ```
#![forbid(unsafe_code)]

pub mod hotp;
pub mod jwt;
pub mod oidc;
pub mod password;
pub mod random;

#[cfg(test)]
mod tests;

pub use jwt::{
    AccessClaims, JwtError, encode_access_token, encode_signed_path, unverified_issuer,
    verify_access_token, verify_signed_path,
};
pub use password::{
    HashScheme, PasswordError, PasswordPolicy, dummy_verify, dummy_verify_bcrypt, ha_bcrypt_hash,
    hash_password, hash_scheme, needs_rehash, verify_password,
};
pub use random::{fill_random, new_secret_token, new_uuid_hex, random_hex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Compares two byte strings in time independent of their contents (a length mismatch returns `false` at once).
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // subtle short-circuits only on a length mismatch; equal lengths are
    // compared without an early exit.
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The stored form of a recovery code: `SHA256(salt || code)` as lowercase hex. Recovery codes
/// carry 80 random bits, so a fast hash with a per-user salt keeps them out of reach of offline
/// guessing without a slow hash per login attempt.
#[must_use]
pub fn recovery_code_hash(salt: &[u8], code: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(code.as_bytes());
    hex::encode(hasher.finalize())
}

/// PKCE `S256` check (RFC 7636): `BASE64URL-NOPAD(SHA256(ASCII(code_verifier))) == code_challenge`, compared in constant time.
///
/// The format rules of the verifier and challenge (`^[A-Za-z0-9._~-]{43,128}$`,
/// `^[A-Za-z0-9_-]{43}$`) are the HTTP layer's business; this only compares.
#[must_use]
pub fn pkce_s256_matches(code_verifier: &str, code_challenge: &str) -> bool {
    let digest = Sha256::digest(code_verifier.as_bytes());
    let computed = URL_SAFE_NO_PAD.encode(digest);
    constant_time_eq(computed.as_bytes(), code_challenge.as_bytes())
}
