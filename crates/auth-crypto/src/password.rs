//! Password hashing: argon2id for new hashes, Home Assistant's bcrypt format for existing ones.
//!
//! # Stored formats
//!
//! [`verify_password`] accepts exactly two formats and returns an error (never
//! `Ok(false)`) for anything else:
//!
//! * **argon2id** PHC strings, written by [`hash_password`]:
//!   `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>` (16-byte salt, 32-byte hash).
//! * **Home Assistant's format** ([`HashScheme::HaBcrypt`]): the standard base64
//!   (with padding) of the ASCII bcrypt string `$2b$12$…`, exactly as found in
//!   `.storage/auth_provider.homeassistant`. `$2a$` and `$2y$` are accepted too
//!   (they compute the same function); `$2x$` (the buggy variant) is not. Like
//!   Home Assistant, only the first 72 bytes of the UTF-8 password count, cut at a
//!   byte boundary even inside a multi-byte character; an embedded NUL is hashed
//!   like any other byte.
//!
//! Passwords are never normalised, trimmed or case-folded.
//!
//! # Upgrading
//!
//! After a successful [`verify_password`], call [`needs_rehash`]: it is `true` for
//! bcrypt hashes and for argon2id hashes whose parameters differ from the current
//! [`PasswordPolicy`]; the caller then stores [`hash_password`] of the password it
//! just verified.
//!
//! # Memory and concurrency
//!
//! An argon2id computation needs `m` KiB of working memory (19 MiB with OWASP's parameters).
//! At most as many computations as the machine has CPUs run at once (more would not finish
//! sooner); further callers wait. Their working memory is kept and reused (buffers up to
//! [`MAX_POOLED_MEMORY_KIB`]), so a burst of sign-ins does not leave a 19 MiB allocation behind
//! in every allocator arena of every thread that ever hashed (which took a 2-core server to
//! 875 MiB resident). Call these functions from blocking threads (`spawn_blocking`), never on
//! async workers.
//!
//! # Timing
//!
//! Login for an unknown user must cost as much as a wrong password, so that the
//! response time does not reveal which usernames exist: call [`dummy_verify`]
//! (argon2id under the current policy) or, while the store still holds bcrypt
//! hashes, [`dummy_verify_bcrypt`].

use std::fmt;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::random::fill_random;

/// Largest argon2 memory cost (KiB) this crate hashes or verifies with: 1 GiB.
///
/// A stored hash with absurd parameters (say `m=4294967295`) would otherwise make a
/// single verification allocate terabytes and abort the process.
pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
/// Largest argon2 iteration count this crate hashes or verifies with.
pub const MAX_ITERATIONS: u32 = 100;
/// Largest argon2 parallelism this crate hashes or verifies with.
pub const MAX_PARALLELISM: u32 = 64;

/// bcrypt cost Home Assistant uses for its password hashes.
pub const HA_BCRYPT_COST: u32 = 12;

/// Home Assistant's fixed dummy bcrypt hash (plain `$2b$` string, not base64), checked when no user matches.
pub const HA_DUMMY_BCRYPT_HASH: &str =
    "$2b$12$CiuFGszHx9eNHxPuQcwBWez4CwDTOcLTX5CbOpV6gef2nYuXkY7BO";

/// Number of password bytes bcrypt looks at; longer passwords are cut here.
const BCRYPT_MAX_PASSWORD_BYTES: usize = 72;
/// Salt length of new argon2id hashes.
const ARGON2_SALT_LEN: usize = 16;
/// Output length of new argon2id hashes.
const ARGON2_OUTPUT_LEN: usize = 32;
/// The argon2 version written and expected (0x13).
const ARGON2_VERSION: u32 = 19;

/// Cost parameters of argon2id hashing.
///
/// The default is [`PasswordPolicy::owasp`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PasswordPolicy {
    /// Memory cost in KiB (argon2 `m`).
    pub memory_kib: u32,
    /// Number of passes over the memory (argon2 `t`).
    pub iterations: u32,
    /// Number of lanes (argon2 `p`).
    pub parallelism: u32,
}

impl PasswordPolicy {
    /// OWASP's minimum argon2id parameters, also the `argon2` crate's defaults: 19 MiB, t=2, p=1 (≈ 14 ms per hash).
    #[must_use]
    pub fn owasp() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }

    /// Cheap parameters for tests only (64 KiB, t=1, p=1); **never use them in production**, they offer no protection against guessing.
    #[must_use]
    pub fn fast_for_tests() -> Self {
        Self {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    /// Checks that argon2 accepts these parameters and that they are within this crate's limits.
    ///
    /// # Errors
    ///
    /// [`PasswordError::InvalidPolicy`] naming the offending parameter.
    pub fn validate(&self) -> Result<(), PasswordError> {
        self.to_params().map(|_| ())
    }

    fn to_params(&self) -> Result<Params, PasswordError> {
        check_limits(self.memory_kib, self.iterations, self.parallelism)
            .map_err(PasswordError::InvalidPolicy)?;
        Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(ARGON2_OUTPUT_LEN),
        )
        .map_err(|e| PasswordError::InvalidPolicy(e.to_string()))
    }
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self::owasp()
    }
}

/// Why a password could not be hashed or checked. A wrong password is not an error: it is `Ok(false)`.
///
/// No message ever contains the password or the stored hash.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The stored value is neither an argon2id PHC string nor Home Assistant's base64-wrapped bcrypt hash.
    #[error("stored password hash is in an unrecognised format")]
    UnrecognisedHash,
    /// The stored value looks like a supported format but cannot be used (what is wrong is in the message).
    #[error("stored password hash is malformed: {0}")]
    MalformedHash(String),
    /// The [`PasswordPolicy`] is rejected by argon2 or exceeds this crate's limits.
    #[error("invalid password policy: {0}")]
    InvalidPolicy(String),
    /// Computing a new hash failed (random number generator, unsupported bcrypt cost, …).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// The scheme of a stored password hash, as found by [`hash_scheme`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashScheme {
    /// An argon2id PHC string (`$argon2id$v=19$…`), written by this crate.
    Argon2id,
    /// Home Assistant's format: standard base64 of a `$2a$`/`$2b$`/`$2y$` bcrypt string.
    HaBcrypt,
}

impl fmt::Display for HashScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Argon2id => "argon2id",
            Self::HaBcrypt => "bcrypt (Home Assistant)",
        })
    }
}

/// A stored hash, parsed.
enum Stored {
    Argon2(Box<PasswordHash>),
    /// The decoded bcrypt string (`$2b$12$…`, 60 ASCII bytes).
    Bcrypt(String),
}

fn check_limits(m: u32, t: u32, p: u32) -> Result<(), String> {
    if m > MAX_MEMORY_KIB {
        return Err(format!(
            "argon2 memory cost {m} KiB exceeds the limit of {MAX_MEMORY_KIB} KiB"
        ));
    }
    if t > MAX_ITERATIONS {
        return Err(format!(
            "argon2 iteration count {t} exceeds the limit of {MAX_ITERATIONS}"
        ));
    }
    if p > MAX_PARALLELISM {
        return Err(format!(
            "argon2 parallelism {p} exceeds the limit of {MAX_PARALLELISM}"
        ));
    }
    Ok(())
}

fn parse_stored(stored: &str) -> Result<Stored, PasswordError> {
    if stored.starts_with('$') {
        if !stored.starts_with("$argon2id$") {
            // `$argon2i$`, `$argon2d$`, a bare (not base64-wrapped) bcrypt string, …
            return Err(PasswordError::UnrecognisedHash);
        }
        let phc = PasswordHash::new(stored).map_err(|e| {
            PasswordError::MalformedHash(format!("invalid argon2id PHC string: {e}"))
        })?;
        if phc.version != Some(ARGON2_VERSION) {
            return Err(PasswordError::MalformedHash(
                "argon2id hash without version 19 (v=19)".into(),
            ));
        }
        if phc.salt.is_none() || phc.hash.is_none() {
            return Err(PasswordError::MalformedHash(
                "argon2id PHC string without salt or hash".into(),
            ));
        }
        let params = Params::try_from(&phc)
            .map_err(|e| PasswordError::MalformedHash(format!("invalid argon2 parameters: {e}")))?;
        check_limits(params.m_cost(), params.t_cost(), params.p_cost())
            .map_err(PasswordError::MalformedHash)?;
        return Ok(Stored::Argon2(Box::new(phc)));
    }

    // Home Assistant: base64(bcrypt string). Base64 of "$2" always starts with "JDJ".
    if !stored.starts_with("JDJ") {
        return Err(PasswordError::UnrecognisedHash);
    }
    let decoded = STANDARD
        .decode(stored)
        .map_err(|_| PasswordError::UnrecognisedHash)?;
    let bcrypt_str = String::from_utf8(decoded).map_err(|_| PasswordError::UnrecognisedHash)?;
    let prefix = bcrypt_str.get(..4).unwrap_or("");
    if !matches!(prefix, "$2a$" | "$2b$" | "$2y$") {
        return Err(if bcrypt_str.starts_with("$2") {
            PasswordError::MalformedHash("unsupported bcrypt variant".into())
        } else {
            PasswordError::UnrecognisedHash
        });
    }
    let parts: bcrypt::HashParts = bcrypt_str
        .parse()
        .map_err(|e: bcrypt::BcryptError| PasswordError::MalformedHash(e.to_string()))?;
    if !(4..=31).contains(&parts.get_cost()) {
        return Err(PasswordError::MalformedHash(format!(
            "bcrypt cost {} is outside 4..=31",
            parts.get_cost()
        )));
    }
    Ok(Stored::Bcrypt(bcrypt_str))
}

/// The first 72 bytes of the UTF-8 password: all bcrypt ever looks at.
fn bcrypt_input(password: &str) -> &[u8] {
    let bytes = password.as_bytes();
    &bytes[..bytes.len().min(BCRYPT_MAX_PASSWORD_BYTES)]
}

/// Largest argon2 working memory (KiB) kept for reuse after a computation; bigger buffers (from
/// unusual stored parameters) are freed.
pub const MAX_POOLED_MEMORY_KIB: u32 = 64 * 1024;

/// Working memory for argon2 computations, and the bound on how many run at once.
mod argon2_memory {
    use std::sync::{Condvar, Mutex, OnceLock, PoisonError};

    use argon2::Block;

    struct Pool {
        free: Vec<Vec<Block>>,
        running: usize,
    }

    static POOL: Mutex<Pool> = Mutex::new(Pool {
        free: Vec::new(),
        running: 0,
    });
    static RELEASED: Condvar = Condvar::new();

    fn max_running() -> usize {
        static MAX: OnceLock<usize> = OnceLock::new();
        *MAX.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Gives a computation slot and its memory back, even if the computation panicked.
    struct Slot(Option<Vec<Block>>);

    impl Drop for Slot {
        fn drop(&mut self) {
            let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
            pool.running -= 1;
            if let Some(blocks) = self.0.take()
                && blocks.len() <= super::MAX_POOLED_MEMORY_KIB as usize
            {
                pool.free.push(blocks);
            }
            drop(pool);
            RELEASED.notify_one();
        }
    }

    /// Runs `f` with `count` blocks of working memory, once fewer than one computation per CPU
    /// is running.
    pub(super) fn with_blocks<R>(count: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
        let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
        while pool.running >= max_running() {
            pool = RELEASED.wait(pool).unwrap_or_else(PoisonError::into_inner);
        }
        pool.running += 1;
        let blocks = pool.free.pop().unwrap_or_default();
        drop(pool);
        let mut slot = Slot(Some(blocks));
        let blocks = slot.0.as_mut().expect("just set");
        if blocks.len() < count {
            blocks.resize(count, Block::new());
        }
        f(&mut blocks[..count])
    }
}

/// Computes a raw argon2id (v=19) hash of `password` into `out` with pooled working memory.
fn argon2id_into(
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let count = argon2.params().block_count();
    argon2_memory::with_blocks(count, |blocks| {
        argon2.hash_password_into_with_memory(password, salt, out, blocks)
    })
}

fn verify_argon2(password: &[u8], phc: &PasswordHash) -> Result<bool, PasswordError> {
    let malformed = |e: &dyn fmt::Display| {
        PasswordError::MalformedHash(format!("argon2id verification failed: {e}"))
    };
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        return Ok(false);
    };
    let params = Params::try_from(phc).map_err(|e| malformed(&e))?;
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let computed = &mut buffer[..expected.len()];
    argon2id_into(params, password, salt, computed).map_err(|e| malformed(&e))?;
    // `Output`'s equality is constant-time.
    let computed = Output::new(computed).map_err(|e| malformed(&e))?;
    Ok(computed == *expected)
}

fn verify_bcrypt(password: &str, bcrypt_str: &str) -> Result<bool, PasswordError> {
    bcrypt::verify(bcrypt_input(password), bcrypt_str)
        .map_err(|e| PasswordError::MalformedHash(e.to_string()))
}

/// Hashes `password` with argon2id under `policy`, returning a PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
///
/// The salt is 16 bytes from the OS CSPRNG; the hash is 32 bytes.
///
/// # Errors
///
/// [`PasswordError::InvalidPolicy`] for parameters argon2 rejects or beyond
/// [`MAX_MEMORY_KIB`]/[`MAX_ITERATIONS`]/[`MAX_PARALLELISM`];
/// [`PasswordError::Hashing`] if argon2 fails.
pub fn hash_password(password: &str, policy: &PasswordPolicy) -> Result<String, PasswordError> {
    let params = policy.to_params()?;
    let mut salt = [0u8; ARGON2_SALT_LEN];
    fill_random(&mut salt);
    let mut out = [0u8; ARGON2_OUTPUT_LEN];
    let hashing = |e: &dyn fmt::Display| PasswordError::Hashing(e.to_string());
    argon2id_into(params.clone(), password.as_bytes(), &salt, &mut out).map_err(|e| hashing(&e))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(ARGON2_VERSION),
        params: ParamsString::try_from(&params).map_err(|e| hashing(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| hashing(&e))?),
        hash: Some(Output::new(&out).map_err(|e| hashing(&e))?),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a stored argon2id PHC string or Home Assistant bcrypt hash; `Ok(false)` means wrong password.
///
/// # Errors
///
/// [`PasswordError::UnrecognisedHash`] when `stored` is in neither format,
/// [`PasswordError::MalformedHash`] when it is damaged or its parameters are out of
/// range. A stored value that cannot be checked is never reported as a wrong password.
pub fn verify_password(password: &str, stored: &str) -> Result<bool, PasswordError> {
    match parse_stored(stored)? {
        Stored::Argon2(phc) => verify_argon2(password.as_bytes(), &phc),
        Stored::Bcrypt(bcrypt_str) => verify_bcrypt(password, &bcrypt_str),
    }
}

/// The scheme of a stored hash, or `None` when [`verify_password`] would reject it as unrecognised or malformed.
#[must_use]
pub fn hash_scheme(stored: &str) -> Option<HashScheme> {
    match parse_stored(stored).ok()? {
        Stored::Argon2(_) => Some(HashScheme::Argon2id),
        Stored::Bcrypt(_) => Some(HashScheme::HaBcrypt),
    }
}

/// Whether `stored` should be replaced by a fresh [`hash_password`] under `policy` (after a successful verify).
///
/// `true` for Home Assistant bcrypt hashes, for argon2id hashes whose `m`, `t`, `p`
/// or output length differ from the policy, and for anything unparseable. `false`
/// only for an argon2id hash made with exactly this policy.
#[must_use]
pub fn needs_rehash(stored: &str, policy: &PasswordPolicy) -> bool {
    match parse_stored(stored) {
        Ok(Stored::Argon2(phc)) => {
            let Ok(params) = Params::try_from(&*phc) else {
                return true;
            };
            params.m_cost() != policy.memory_kib
                || params.t_cost() != policy.iterations
                || params.p_cost() != policy.parallelism
                || phc.hash.as_ref().map(Output::len) != Some(ARGON2_OUTPUT_LEN)
        }
        Ok(Stored::Bcrypt(_)) | Err(_) => true,
    }
}

/// Burns the time of one argon2id verification under `policy`, for logins with an unknown username.
///
/// Home Assistant runs a bcrypt check against a fixed dummy hash here. This crate
/// hashes new passwords with argon2id, so parity is with an argon2id verification:
/// the password is checked, through the same code path as [`verify_password`],
/// against a PHC string with the policy's parameters, a fixed salt and an all-zero
/// hash (which no password matches). Nothing needs to be computed or cached
/// beforehand, so even the first call costs the same as a real verification. An
/// invalid policy falls back to [`PasswordPolicy::owasp`].
pub fn dummy_verify(password: &str, policy: &PasswordPolicy) {
    let policy = if policy.validate().is_ok() {
        policy.clone()
    } else {
        PasswordPolicy::owasp()
    };
    let stored = dummy_argon2_phc(&policy);
    let _ = std::hint::black_box(verify_password(password, &stored));
}

/// The PHC string [`dummy_verify`] checks against.
fn dummy_argon2_phc(policy: &PasswordPolicy) -> String {
    // Fixed, public salt: this hash protects nothing.
    let salt = Salt::new(b"hass-auth-dummy!").map(|s| s.to_string());
    let output = Output::new(&[0u8; ARGON2_OUTPUT_LEN]).map(|o| o.to_string());
    match (salt, output) {
        (Ok(salt), Ok(output)) => format!(
            "$argon2id$v={ARGON2_VERSION}$m={},t={},p={}${salt}${output}",
            policy.memory_kib, policy.iterations, policy.parallelism
        ),
        // Unreachable: both lengths are within the PHC limits.
        _ => String::new(),
    }
}

/// Burns the time of one Home Assistant bcrypt verification (cost 12), like Home Assistant does for unknown users.
///
/// Checks the password against [`HA_DUMMY_BCRYPT_HASH`]. Use it instead of
/// [`dummy_verify`] while the store still holds bcrypt hashes, so that unknown
/// users cost as much as users who have not logged in since the migration.
pub fn dummy_verify_bcrypt(password: &str) {
    let _ = std::hint::black_box(bcrypt::verify(bcrypt_input(password), HA_DUMMY_BCRYPT_HASH));
}

/// Hashes `password` the way Home Assistant stores it: base64 of a `$2b$` bcrypt hash of the first 72 UTF-8 bytes.
///
/// Home Assistant uses cost [`HA_BCRYPT_COST`] (12); tests may use 4. Meant for
/// compatibility tests and for exporting a store back to Home Assistant, not for
/// new hashes in hass-auth (use [`hash_password`]).
///
/// # Errors
///
/// [`PasswordError::Hashing`] if the cost is outside bcrypt's range 4..=31.
pub fn ha_bcrypt_hash(password: &str, cost: u32) -> Result<String, PasswordError> {
    let parts = bcrypt::hash_with_result(bcrypt_input(password), cost)
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
    Ok(STANDARD.encode(parts.format_for_version(bcrypt::Version::TwoB)))
}

#[cfg(test)]
mod tests;
