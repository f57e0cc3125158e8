//! Authorization codes: single use, bound to a client id, 10 minutes, bounded in number.
//!
//! A redeemed code is remembered (as `Entry::Redeemed`, with the refresh tokens issued from
//! it) until its lifetime ends, so that presenting it again revokes those tokens (RFC 9700
//! §4.2.4: a second redemption means the code leaked).

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

impl AuthCode {
    /// The code as JSON, for a store several instances share.
    pub fn to_json(&self) -> serde_json::Value {
        let c = &self.credentials;
        serde_json::json!({
            "client_id": self.client_id,
            "created_at": self.created_at.unix_timestamp_nanos().to_string(),
            "credentials": {
                "id": c.id,
                "auth_provider_type": c.auth_provider_type,
                "auth_provider_id": c.auth_provider_id,
                "data": c.data,
                "is_new": c.is_new,
            },
            "code_challenge": self.code_challenge,
            "code_challenge_method": self.code_challenge_method,
        })
    }

    /// Reads [`AuthCode::to_json`]'s form; `None` when misshapen.
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        let text = |v: &serde_json::Value, k: &str| v.get(k)?.as_str().map(str::to_owned);
        let c = v.get("credentials")?;
        let nanos: i128 = v.get("created_at")?.as_str()?.parse().ok()?;
        Some(Self {
            client_id: text(v, "client_id")?,
            created_at: OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?,
            credentials: Credentials {
                id: text(c, "id")?,
                auth_provider_type: text(c, "auth_provider_type")?,
                auth_provider_id: text(c, "auth_provider_id"),
                data: c.get("data")?.as_object()?.clone(),
                is_new: c.get("is_new")?.as_bool()?,
            },
            code_challenge: text(v, "code_challenge"),
            code_challenge_method: text(v, "code_challenge_method"),
        })
    }
}

/// Key of a code: `(client_id, value)`.
type CodeKey = (String, String);

/// A code held in the table.
#[derive(Debug)]
enum Entry {
    /// Not redeemed yet.
    Live(AuthCode),
    /// Redeemed within its lifetime.
    Redeemed {
        /// When the code was issued.
        created_at: OffsetDateTime,
        /// Refresh tokens issued from it so far.
        tokens: Vec<String>,
        /// Presented again after its redemption.
        reused: bool,
    },
}

impl Entry {
    fn created_at(&self) -> OffsetDateTime {
        match self {
            Entry::Live(code) => code.created_at,
            Entry::Redeemed { created_at, .. } => *created_at,
        }
    }
}

/// What presenting a code found.
#[derive(Debug, PartialEq)]
pub enum Redemption {
    /// A valid code, now marked redeemed.
    Valid(Box<AuthCode>),
    /// A code redeemed before, within its lifetime: the refresh tokens issued from it (to be
    /// revoked; given out once).
    Reused(Vec<String>),
    /// Unknown or expired.
    Invalid,
}

/// Codes by key, and their keys in the order they were issued (oldest first). Redeemed codes
/// stay until they expire or are pushed out as the oldest; `order` entries whose code is gone
/// are skipped when met and compacted away.
#[derive(Debug, Default)]
struct Table {
    codes: HashMap<CodeKey, Entry>,
    order: VecDeque<(OffsetDateTime, CodeKey)>,
}

impl Table {
    /// Whether an `order` entry still names a held code.
    fn is_live(&self, created_at: OffsetDateTime, key: &CodeKey) -> bool {
        self.codes
            .get(key)
            .is_some_and(|c| c.created_at() == created_at)
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
        table.codes.insert(key, Entry::Live(code));
        // Keys of forgotten codes stay in `order` until met; keep it within twice the bound.
        if table.order.len() > 2 * self.max {
            let Table { codes, order } = &mut *table;
            order.retain(|(created_at, key)| {
                codes
                    .get(key)
                    .is_some_and(|c| c.created_at() == *created_at)
            });
        }
    }

    /// Presents the code for `(client_id, value)`: a valid code is marked redeemed (it never
    /// redeems twice), an expired one is forgotten, a redeemed one is reported with the tokens
    /// issued from it.
    pub fn redeem(&self, client_id: &str, value: &str, now: OffsetDateTime) -> Redemption {
        let mut table = self.table.lock();
        let key = (client_id.to_owned(), value.to_owned());
        let Some(entry) = table.codes.get_mut(&key) else {
            return Redemption::Invalid;
        };
        if now - entry.created_at() >= self.lifetime {
            table.codes.remove(&key);
            return Redemption::Invalid;
        }
        let created_at = entry.created_at();
        match entry {
            Entry::Redeemed { tokens, reused, .. } => {
                *reused = true;
                Redemption::Reused(std::mem::take(tokens))
            }
            Entry::Live(_) => {
                let redeemed = Entry::Redeemed {
                    created_at,
                    tokens: Vec::new(),
                    reused: false,
                };
                match std::mem::replace(entry, redeemed) {
                    Entry::Live(code) => Redemption::Valid(Box::new(code)),
                    Entry::Redeemed { .. } => Redemption::Invalid,
                }
            }
        }
    }

    /// Takes the code for `(client_id, value)` (see [`Self::redeem`]); `None` unless valid.
    pub fn take(&self, client_id: &str, value: &str, now: OffsetDateTime) -> Option<AuthCode> {
        match self.redeem(client_id, value, now) {
            Redemption::Valid(code) => Some(*code),
            Redemption::Reused(_) | Redemption::Invalid => None,
        }
    }

    /// Remembers that refresh token `token_id` was issued from the redeemed code; `false` when
    /// the code was presented again meanwhile (the token must then be revoked too). A code no
    /// longer held (expired, pushed out) cannot be tracked: `true`.
    pub fn record_token(&self, client_id: &str, value: &str, token_id: &str) -> bool {
        let mut table = self.table.lock();
        match table
            .codes
            .get_mut(&(client_id.to_owned(), value.to_owned()))
        {
            Some(Entry::Redeemed { reused: true, .. }) => false,
            Some(Entry::Redeemed { tokens, .. }) => {
                tokens.push(token_id.to_owned());
                true
            }
            Some(Entry::Live(_)) | None => true,
        }
    }

    /// How long a code can be redeemed.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Number of codes held that can still be redeemed.
    pub fn len(&self) -> usize {
        self.table
            .lock()
            .codes
            .values()
            .filter(|c| matches!(c, Entry::Live(_)))
            .count()
    }

    /// Whether no redeemable code is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops expired codes (and expired memories of redeemed ones); returns how many codes that
    /// were never redeemed went.
    pub fn purge_expired(&self, now: OffsetDateTime) -> usize {
        let mut table = self.table.lock();
        let lifetime = self.lifetime;
        let Table { codes, order } = &mut *table;
        let mut dropped = 0;
        codes.retain(|_, c| {
            let keep = now - c.created_at() < lifetime;
            if !keep && matches!(c, Entry::Live(_)) {
                dropped += 1;
            }
            keep
        });
        order.retain(|(created_at, key)| {
            codes
                .get(key)
                .is_some_and(|c| c.created_at() == *created_at)
        });
        dropped
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
    fn a_second_redemption_gives_out_the_tokens_once_and_stops_later_ones() {
        let table = AuthCodes::new(8);
        let now = start();
        table.insert("v".into(), code("c", now), now);
        assert!(matches!(table.redeem("c", "v", now), Redemption::Valid(_)));
        assert!(table.record_token("c", "v", "t1"));
        assert_eq!(
            table.redeem("c", "v", now),
            Redemption::Reused(vec!["t1".to_owned()])
        );
        assert_eq!(table.redeem("c", "v", now), Redemption::Reused(Vec::new()));
        assert!(
            !table.record_token("c", "v", "t2"),
            "a token issued after the reuse must be revoked too"
        );
        assert_eq!(
            table.redeem("c", "v", now + AUTH_CODE_EXPIRATION),
            Redemption::Invalid,
            "forgotten once expired"
        );
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
