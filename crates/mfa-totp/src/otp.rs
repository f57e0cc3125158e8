//! The one-time-password arithmetic: Base32 secrets, RFC 6238 codes, windows and comparisons.
//!
//! Codes are computed by `totp-rs`; everything around them (how a secret is decoded, which
//! counters are tried, how a submitted code is compared) follows Home Assistant (pyotp).

use auth_core::Rng;
use totp_rs::{Algorithm, Builder, Totp};
use unicode_normalization::UnicodeNormalization as _;

/// Seconds per time step (RFC 6238 default, as in Home Assistant).
pub const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const DIGITS: u8 = 6;

/// The Base32 alphabet (RFC 4648) secrets are written in.
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Bytes of a new secret: 20 bytes = 160 bits = 32 Base32 characters, like Home Assistant.
const SECRET_BYTES: usize = 20;

/// Smallest secret accepted for a *new* enrolment (RFC 4226 §4: at least 128 bits).
pub(crate) const MIN_NEW_SECRET_BYTES: usize = 16;

/// Secret used when a user has no enrolment, so that a check costs the same either way.
///
/// Home Assistant uses `FPPTH34D4E3MI2HG`, which is only 80 bits; this one is 160 bits like
/// every secret Home Assistant generates (HMAC-SHA1 costs the same for any key up to 64 bytes).
const DUMMY_SECRET: [u8; SECRET_BYTES] = *b"hass-auth-totp-dummy";

/// A stored secret that is not Base32.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSecret;

impl std::fmt::Display for InvalidSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the TOTP secret is not valid Base32")
    }
}

impl std::error::Error for InvalidSecret {}

/// A fresh secret: 32 characters drawn uniformly from `A-Z2-7` (160 random bits from `rng`).
pub(crate) fn new_secret(rng: &dyn Rng) -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rng.fill(&mut bytes);
    encode_base32(&bytes)
}

/// Base32 without padding (only used for whole 5-byte groups, so never padded anyway).
pub(crate) fn encode_base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes a secret the way pyotp does: case-insensitive, `=` padding added up to a multiple of
/// 8 characters, padding must be 0, 1, 3, 4 or 6 characters, trailing bits ignored.
pub(crate) fn decode_base32(secret: &str) -> Result<Vec<u8>, InvalidSecret> {
    if !secret.is_ascii() {
        return Err(InvalidSecret);
    }
    let mut chars: Vec<u8> = secret.bytes().map(|b| b.to_ascii_uppercase()).collect();
    while !chars.len().is_multiple_of(8) {
        chars.push(b'=');
    }
    let padding = chars.iter().rev().take_while(|&&c| c == b'=').count();
    if !matches!(padding, 0 | 1 | 3 | 4 | 6) {
        return Err(InvalidSecret);
    }
    let body = &chars[..chars.len() - padding];
    let mut out = Vec::with_capacity(body.len() * 5 / 8);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in body {
        let value = ALPHABET.iter().position(|&a| a == c).ok_or(InvalidSecret)?;
        acc = (acc << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    Ok(out)
}

/// The code generator for one secret.
///
/// `build_noncompliant` is deliberate: secrets Home Assistant accepted (pyotp takes any length,
/// e.g. 16-character/80-bit ones written by hand) must keep working after a migration. New
/// secrets are always 160 bits (see [`new_secret`]), and enrolments with a caller-supplied
/// secret are refused below 128 bits, so only legacy secrets take the non-compliant path.
pub(crate) struct Generator(Totp);

impl Generator {
    /// A generator for raw secret bytes.
    pub(crate) fn new(secret: &[u8]) -> Self {
        Self(
            Builder::new()
                .with_algorithm(Algorithm::SHA1)
                .with_digits(DIGITS)
                .with_step_duration(STEP_SECONDS)
                .with_skew(0)
                .with_secret(secret)
                .build_noncompliant(),
        )
    }

    /// The generator for the dummy secret (users without an enrolment).
    pub(crate) fn dummy() -> Self {
        Self::new(&DUMMY_SECRET)
    }

    /// The zero-padded code of time-step `counter`.
    pub(crate) fn code(&self, counter: u64) -> String {
        self.0.generate(counter * STEP_SECONDS).to_string()
    }

    /// Every counter in `counters` whose code equals `submitted` (already NFKC-normalised).
    ///
    /// All candidates are computed and compared in constant time; there is no early exit.
    pub(crate) fn matching(
        &self,
        submitted: &str,
        counters: impl IntoIterator<Item = u64>,
    ) -> Vec<u64> {
        let mut matched = Vec::new();
        for counter in counters {
            let candidate: String = self.code(counter).nfkc().collect();
            if auth_crypto::constant_time_eq(submitted.as_bytes(), candidate.as_bytes()) {
                matched.push(counter);
            }
        }
        matched
    }
}

/// The time-step counter for a Unix time (times before 1970 count as 0).
pub(crate) fn counter_at(unix_time: i64) -> u64 {
    u64::try_from(unix_time).unwrap_or(0) / STEP_SECONDS
}

/// Counters accepted at login: previous, current and next step (pyotp `valid_window=1`).
pub(crate) fn login_window(counter: u64) -> impl Iterator<Item = u64> {
    counter.saturating_sub(1)..=counter + 1
}

/// A submitted code as compared: NFKC-normalised (fullwidth digits become ASCII), not trimmed.
pub(crate) fn normalize(code: &str) -> String {
    code.nfkc().collect()
}

/// The code of `secret` (Base32, as stored) at `unix_time`: what an authenticator app shows.
///
/// ```
/// // RFC 6238's SHA-1 test key at the RFC's test time 59.
/// let code = mfa_totp::code_at("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59).unwrap();
/// assert_eq!(code, "287082");
/// ```
pub fn code_at(secret: &str, unix_time: i64) -> Result<String, InvalidSecret> {
    let bytes = decode_base32(secret)?;
    if bytes.is_empty() {
        return Err(InvalidSecret);
    }
    Ok(Generator::new(&bytes).code(counter_at(unix_time)))
}
