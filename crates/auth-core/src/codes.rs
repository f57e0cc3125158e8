//! Authorization codes: single use, bound to a client id, 10 minutes, bounded in number.

use std::collections::{HashMap, VecDeque};

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

/// Key of a code: `(client_id, value)`.
type CodeKey = (String, String);

/// Codes by key, and their keys in the order they were issued (oldest first). Taking a code
/// leaves its key in `order`; such stale entries are skipped when met and compacted away.
#[derive(Debug, Default)]
struct Table {
    codes: HashMap<CodeKey, AuthCode>,
    order: VecDeque<(OffsetDateTime, CodeKey)>,
}

impl Table {
    /// Whether an `order` entry still names a held code.
    fn is_live(&self, created_at: OffsetDateTime, key: &CodeKey) -> bool {
        self.codes
            .get(key)
            .is_some_and(|c| c.created_at == created_at)
    }

    /// Drops the oldest entry of `order` (and its code when still held).
    fn pop_oldest(&mut self) {
        if let Some((created_at, key)) = self.order.pop_front()
            && self.is_live(created_at, &key)
        {
            self.codes.remove(&key);
        }
    }
}

/// The in-memory table of unredeemed codes. Issuing and redeeming cost O(1) (amortised) however
/// full the table is.
#[derive(Debug)]
pub struct AuthCodes {
    table: Mutex<Table>,
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
            table: Mutex::new(Table::default()),
            max: max.max(1),
            lifetime,
        }
    }

    /// Stores `code` for `value`; drops expired codes from the old end first and, when still
    /// full, the oldest codes.
    pub fn insert(&self, value: String, code: AuthCode, now: OffsetDateTime) {
        let mut table = self.table.lock();
        while let Some((created_at, key)) = table.order.front() {
            let expired = now - *created_at >= self.lifetime;
            if expired || !table.is_live(*created_at, key) {
                table.pop_oldest();
            } else {
                break;
            }
        }
        while table.codes.len() >= self.max && !table.order.is_empty() {
            table.pop_oldest();
        }
        let key = (code.client_id.clone(), value);
        table.order.push_back((code.created_at, key.clone()));
        table.codes.insert(key, code);
        // Keys of redeemed codes stay in `order` until met; keep it within twice the bound.
        if table.order.len() > 2 * self.max {
            let Table { codes, order } = &mut *table;
            order.retain(|(created_at, key)| {
                codes.get(key).is_some_and(|c| c.created_at == *created_at)
            });
        }
    }

    /// Takes the code for `(client_id, value)`: it is removed whether or not it is still valid;
    /// `None` when absent or expired.
    pub fn take(&self, client_id: &str, value: &str, now: OffsetDateTime) -> Option<AuthCode> {
        let code = self
            .table
            .lock()
            .codes
            .remove(&(client_id.to_owned(), value.to_owned()))?;
        (now - code.created_at < self.lifetime).then_some(code)
    }

    /// How long a code can be redeemed.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Number of codes held.
    pub fn len(&self) -> usize {
        self.table.lock().codes.len()
    }

    /// Whether no code is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops expired codes; returns how many.
    pub fn purge_expired(&self, now: OffsetDateTime) -> usize {
        let mut table = self.table.lock();
        let before = table.codes.len();
        let lifetime = self.lifetime;
        let Table { codes, order } = &mut *table;
        codes.retain(|_, c| now - c.created_at < lifetime);
        order.retain(|(created_at, key)| {
            codes.get(key).is_some_and(|c| c.created_at == *created_at)
        });
        before - codes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(client: &str, at: OffsetDateTime) -> AuthCode {
        AuthCode {
            client_id: client.into(),
            created_at: at,
            credentials: Credentials {
                id: "c".into(),
                auth_provider_type: "t".into(),
                auth_provider_id: None,
                data: Default::default(),
                is_new: true,
            },
            code_challenge: None,
            code_challenge_method: None,
        }
    }

    fn start() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_000_000).expect("valid time")
    }

    #[test]
    fn redeemed_codes_leave_no_unbounded_trace() {
        let table = AuthCodes::new(8);
        let now = start();
        for i in 0..10_000 {
            table.insert(format!("v{i}"), code("c", now), now);
            assert!(table.take("c", &format!("v{i}"), now).is_some());
            assert!(table.table.lock().order.len() <= 16);
        }
        assert!(table.is_empty());
    }

    #[test]
    fn expired_codes_go_from_the_old_end_and_live_ones_stay() {
        let table = AuthCodes::with_lifetime(100, Duration::seconds(10));
        let now = start();
        for i in 0..5 {
            table.insert(
                format!("old{i}"),
                code("c", now + Duration::seconds(i)),
                now + Duration::seconds(i),
            );
        }
        assert!(
            table
                .take("c", "old4", now + Duration::seconds(4))
                .is_some()
        );
        let later = now + Duration::seconds(12);
        table.insert("new".into(), code("c", later), later);
        // old0..old2 expired (>= 10 s); old3 is still within its lifetime.
        assert_eq!(table.len(), 2);
        assert!(table.take("c", "old3", later).is_some());
        assert!(table.take("c", "new", later).is_some());
    }

    #[test]
    fn a_full_table_drops_the_oldest_live_code_skipping_redeemed_ones() {
        let table = AuthCodes::new(3);
        let now = start();
        for name in ["a", "b", "c"] {
            table.insert(name.into(), code("x", now), now);
        }
        assert!(table.take("x", "a", now).is_some());
        table.insert("d".into(), code("x", now), now);
        table.insert("e".into(), code("x", now), now);
        assert_eq!(table.len(), 3);
        assert!(
            table.take("x", "b", now).is_none(),
            "b was the oldest live code"
        );
        for name in ["c", "d", "e"] {
            assert!(table.take("x", name, now).is_some(), "{name}");
        }
    }
}
