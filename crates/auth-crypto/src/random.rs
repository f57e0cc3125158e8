//! Randomness from the operating system's CSPRNG: raw bytes, hex secrets and UUID4 ids.
//!
//! Every function here reads the OS generator directly (`getrandom` through
//! `rand::rngs::SysRng`); nothing is seeded or cached in user space. The formats
//! match Home Assistant's: ids are `uuid.uuid4().hex` (32 lowercase hex
//! characters), refresh-token secrets and `jwt_key`s are `secrets.token_hex(64)`
//! (128 lowercase hex characters).
//!
//! Code that must be deterministic in tests (ids in `auth-core`, say) should take
//! its randomness through an injected `Rng` and use these functions only in the
//! production implementation.

use rand::TryRng as _;
use rand::rngs::SysRng;

/// Fills `buf` with bytes from the operating system's CSPRNG.
///
/// # Panics
///
/// If the operating system cannot provide random bytes. There is no safe way to
/// continue issuing secrets then, so this is treated like an allocation failure.
pub fn fill_random(buf: &mut [u8]) {
    if let Err(err) = SysRng.try_fill_bytes(buf) {
        panic!("the operating system's random number generator failed: {err}");
    }
}

/// Returns `n_bytes` random bytes as lowercase hex (`2 * n_bytes` characters).
#[must_use]
pub fn random_hex(n_bytes: usize) -> String {
    let mut bytes = vec![0u8; n_bytes];
    fill_random(&mut bytes);
    hex::encode(bytes)
}

/// Returns a new random (version 4) UUID as 32 lowercase hex characters without dashes, like Python's `uuid4().hex`.
#[must_use]
pub fn new_uuid_hex() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .simple()
        .to_string()
}

/// Returns a new 512-bit secret as 128 lowercase hex characters (refresh token values and `jwt_key`s).
#[must_use]
pub fn new_secret_token() -> String {
    random_hex(64)
}

#[cfg(test)]
mod tests;
