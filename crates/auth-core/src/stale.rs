//! Recognising *stale* access tokens: ones we issued that have expired, or whose refresh token
//! was revoked a short while ago. A phone left signed in retries with such a token; it is not a
//! password guess and must not count towards an IP ban (issue 18 item 4).

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;

/// How many revoked refresh tokens' keys are remembered (oldest forgotten first).
pub const MAX_REMEMBERED_REVOCATIONS: usize = 4096;

/// The signing keys of recently revoked refresh tokens, bounded, in memory only.
#[derive(Debug, Default)]
pub(crate) struct RevokedKeys {
    inner: Mutex<Remembered>,
}

#[derive(Debug, Default)]
struct Remembered {
    keys: HashMap<String, String>,
    order: VecDeque<String>,
}

impl RevokedKeys {
    /// Remembers that refresh token `id` (signing key `jwt_key`) was revoked.
    pub(crate) fn remember(&self, id: &str, jwt_key: &str) {
        let mut inner = self.inner.lock();
        if inner
            .keys
            .insert(id.to_owned(), jwt_key.to_owned())
            .is_none()
        {
            inner.order.push_back(id.to_owned());
        }
        while inner.order.len() > MAX_REMEMBERED_REVOCATIONS {
            if let Some(oldest) = inner.order.pop_front() {
                inner.keys.remove(&oldest);
            }
        }
    }

    /// The signing key of revoked refresh token `id`, if it is still remembered.
    pub(crate) fn key_of(&self, id: &str) -> Option<String> {
        self.inner.lock().keys.get(id).cloned()
    }

    /// How many revocations are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_revocations_are_forgotten_first() {
        let keys = RevokedKeys::default();
        for i in 0..MAX_REMEMBERED_REVOCATIONS + 10 {
            keys.remember(&format!("t{i}"), &format!("k{i}"));
        }
        assert_eq!(keys.len(), MAX_REMEMBERED_REVOCATIONS);
        assert_eq!(keys.key_of("t0"), None);
        assert_eq!(keys.key_of("t9"), None);
        assert_eq!(keys.key_of("t10").as_deref(), Some("k10"));
        let last = MAX_REMEMBERED_REVOCATIONS + 9;
        assert_eq!(keys.key_of(&format!("t{last}")), Some(format!("k{last}")));
    }
}
