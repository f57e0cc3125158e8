//! Authorization codes: single use, bound to a client id, 10 minutes, bounded in number.

use std::collections::HashMap;

use parking_lot::Mutex;
use time::{Duration, OffsetDateTime};

use crate::models::{AUTH_CODE_EXPIRATION, Credentials};

/// Default bound on codes held at once.
pub const DEFAULT_MAX_CODES: usize = 4096;

/// What a code stands for.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthCode {
    /// The client the code was issued to.
    pub client_id: String,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// The credentials it redeems to.
    pub credentials: Credentials,
    /// PKCE challenge given at flow start.
    pub code_challenge: Option<String>,
    /// PKCE method (`S256`).
    pub code_challenge_method: Option<String>,
}

/// The in-memory table of unredeemed codes.
#[derive(Debug)]
pub struct AuthCodes {
    codes: Mutex<HashMap<(String, String), AuthCode>>,
    max: usize,
    lifetime: Duration,
}

impl AuthCodes {
    /// A table holding at most `max` codes, each valid for 10 minutes (HA's lifetime).
    pub fn new(max: usize) -> Self {
        Self::with_lifetime(max, AUTH_CODE_EXPIRATION)
    }

    /// A table holding at most `max` codes, each valid for `lifetime`.
    pub fn with_lifetime(max: usize, lifetime: Duration) -> Self {
        Self {
            codes: Mutex::new(HashMap::new()),
            max: max.max(1),
            lifetime,
        }
    }

    /// Stores `code` for `value`; purges expired codes first and, when still full, drops the oldest.
    pub fn insert(&self, value: String, code: AuthCode, now: OffsetDateTime) {
        let mut codes = self.codes.lock();
        codes.retain(|_, c| now - c.created_at < self.lifetime);
        while codes.len() >= self.max {
            let oldest = codes
                .iter()
                .min_by_key(|(_, c)| c.created_at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(key) => {
                    codes.remove(&key);
                }
                None => break,
            }
        }
        codes.insert((code.client_id.clone(), value), code);
    }

    /// Takes the code for `(client_id, value)`: it is removed whether or not it is still valid;
    /// `None` when absent or expired.
    pub fn take(&self, client_id: &str, value: &str, now: OffsetDateTime) -> Option<AuthCode> {
        let code = self
            .codes
            .lock()
            .remove(&(client_id.to_owned(), value.to_owned()))?;
        (now - code.created_at < self.lifetime).then_some(code)
    }

    /// How long a code can be redeemed.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Number of codes held.
    pub fn len(&self) -> usize {
        self.codes.lock().len()
    }

    /// Whether no code is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops expired codes; returns how many.
    pub fn purge_expired(&self, now: OffsetDateTime) -> usize {
        let mut codes = self.codes.lock();
        let before = codes.len();
        codes.retain(|_, c| now - c.created_at < self.lifetime);
        before - codes.len()
    }
}
