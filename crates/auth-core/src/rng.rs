//! Randomness as an injected dependency: ids, secrets and flow ids come from here.

use std::sync::Arc;

/// A source of random bytes. Production uses the OS CSPRNG ([`OsRng`]).
pub trait Rng: Send + Sync + std::fmt::Debug {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's cryptographically secure generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&self, buf: &mut [u8]) {
        auth_crypto::fill_random(buf);
    }
}

/// Shared handle to a random source.
pub type SharedRng = Arc<dyn Rng>;

/// A UUID version 4 as 32 lowercase hex characters (HA's `uuid4().hex`).
pub fn new_uuid_hex(rng: &dyn Rng) -> String {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    hex::encode(bytes)
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(rng: &dyn Rng, n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rng.fill(&mut bytes);
    hex::encode(bytes)
}

/// A 128-hex-character secret (64 random bytes): refresh tokens and JWT keys.
pub fn new_secret(rng: &dyn Rng) -> String {
    random_hex(rng, 64)
}

/// A deterministic generator for tests (splitmix64). Never use it for real secrets.
#[derive(Debug)]
pub struct SeededRng {
    state: parking_lot::Mutex<u64>,
}

impl SeededRng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: parking_lot::Mutex::new(seed),
        }
    }
}

impl Rng for SeededRng {
    fn fill(&self, buf: &mut [u8]) {
        let mut state = self.state.lock();
        for chunk in buf.chunks_mut(8) {
            *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}
