//! Sign-in history: each user's last [`ENTRIES_PER_USER`] sign-ins and failed attempts (time,
//! IP, client, provider, second factors used), for the profile page. Home Assistant has none; the
//! store is ours, `.storage/hass_auth.sign_in_history` (mode 0600):
//!
//! ```json
//! {"version": 1, "minor_version": 1, "key": "hass_auth.sign_in_history",
//!  "data": {"users": {"<user id>": [
//!    {"time": "2026-12-04T16:00:00.000000+00:00", "result": "success", "ip": "192.168.1.20",
//!     "client_id": "http://192.168.1.5:8123/", "provider_type": "homeassistant",
//!     "provider_id": null, "mfa": ["totp"]}
//!  ]}}}
//! ```
//!
//! Newest first. It is an audit aid, not a promise: it is saved like usage metadata (debounced
//! by [`SAVE_DELAY`], flushed with [`crate::AuthManager::flush`]), so a crash may lose its last
//! second. A first sign-in has no user until the token exchange creates it: its entry waits
//! (bounded, in memory) under the credential id and joins the user's history then.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::storage::{
    SaveOptions, Storage, StorageError, StoredDocument, check_version, users_object,
};
use crate::store::SAVE_DELAY;
use crate::timefmt::{parse_iso, to_iso};

/// Store key (file name under `.storage`).
pub const STORAGE_KEY: &str = "hass_auth.sign_in_history";
/// Major version of the document this build reads and writes.
pub const STORAGE_VERSION: u32 = 1;
/// Entries kept per user (older ones are dropped).
pub const ENTRIES_PER_USER: usize = 20;
/// First sign-ins waiting for their user, at most.
const MAX_PENDING: usize = 256;

/// How a sign-in attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignInResult {
    /// Signed in (the login flow finished).
    Success,
    /// Wrong password (or other first-step refusal) for a known username.
    InvalidAuth,
    /// Wrong second-factor code.
    InvalidCode,
    /// Too many wrong codes: the login flow was ended.
    TooManyRetry,
}

impl SignInResult {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::InvalidAuth => "invalid_auth",
            Self::InvalidCode => "invalid_code",
            Self::TooManyRetry => "too_many_retry",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "success" => Self::Success,
            "invalid_auth" => Self::InvalidAuth,
            "invalid_code" => Self::InvalidCode,
            "too_many_retry" => Self::TooManyRetry,
            _ => return None,
        })
    }
}

/// One sign-in or failed attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct SignInEvent {
    /// When it happened.
    pub time: OffsetDateTime,
    /// How it ended.
    pub result: SignInResult,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The OAuth client that asked.
    pub client_id: Option<String>,
    /// Provider type.
    pub provider_type: String,
    /// Provider id.
    pub provider_id: Option<String>,
    /// Second factors passed (module ids, `recovery_code` for a recovery code).
    pub mfa: Vec<String>,
}

impl SignInEvent {
    /// The stored (and websocket) JSON of the event.
    pub fn to_json(&self) -> Value {
        json!({
            "time": to_iso(self.time),
            "result": self.result.as_str(),
            "ip": self.ip.map(|ip| ip.to_string()),
            "client_id": self.client_id,
            "provider_type": self.provider_type,
            "provider_id": self.provider_id,
            "mfa": self.mfa,
        })
    }

    fn from_json(value: &Value) -> Option<Self> {
        Some(Self {
            time: parse_iso(value.get("time")?.as_str()?)?,
            result: SignInResult::parse(value.get("result")?.as_str()?)?,
            ip: match value.get("ip")? {
                Value::Null => None,
                ip => Some(ip.as_str()?.parse().ok()?),
            },
            client_id: opt_string(value.get("client_id")?)?,
            provider_type: value.get("provider_type")?.as_str()?.to_owned(),
            provider_id: opt_string(value.get("provider_id")?)?,
            mfa: value
                .get("mfa")?
                .as_array()?
                .iter()
                .map(|m| m.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()?,
        })
    }
}

fn opt_string(value: &Value) -> Option<Option<String>> {
    match value {
        Value::Null => Some(None),
        Value::String(text) => Some(Some(text.clone())),
        _ => None,
    }
}

#[derive(Debug, Default)]
struct State {
    users: IndexMap<String, VecDeque<SignInEvent>>,
    /// First sign-ins by credential id, oldest first.
    pending: VecDeque<(String, SignInEvent)>,
}

/// Every user's entries as stored (none when the store does not exist).
async fn read(
    storage: &dyn Storage,
) -> Result<IndexMap<String, VecDeque<SignInEvent>>, StorageError> {
    let mut out = IndexMap::new();
    if let Some(doc) = storage.load(STORAGE_KEY).await? {
        check_version(storage, &doc, STORAGE_VERSION)?;
        let corrupt = |problem: String| StorageError::Corrupt {
            location: storage.location(STORAGE_KEY),
            problem,
        };
        let users = users_object(storage, STORAGE_KEY, &doc)?;
        for (user_id, entries) in users {
            let entries = entries
                .as_array()
                .ok_or_else(|| corrupt(format!("field 'data.users.{user_id}' is not a list")))?;
            let events = entries
                .iter()
                .enumerate()
                .map(|(i, entry)| {
                    SignInEvent::from_json(entry).ok_or_else(|| {
                        corrupt(format!("entry 'data.users.{user_id}[{i}]' is malformed"))
                    })
                })
                .take(ENTRIES_PER_USER)
                .collect::<Result<VecDeque<_>, _>>()?;
            out.insert(user_id.clone(), events);
        }
    }
    Ok(out)
}

/// Every user's recent sign-ins; see the module docs.
#[derive(Debug)]
pub struct SignInHistory {
    storage: Arc<dyn Storage>,
    state: parking_lot::Mutex<State>,
    dirty: AtomicBool,
    save_scheduled: AtomicBool,
    save_lock: tokio::sync::Mutex<()>,
}

impl SignInHistory {
    /// Loads the store; a file that cannot be read is an error naming it.
    pub async fn load(storage: Arc<dyn Storage>) -> Result<Arc<Self>, StorageError> {
        let state = State {
            users: read(storage.as_ref()).await?,
            pending: VecDeque::new(),
        };
        let this = Arc::new(Self {
            storage,
            state: parking_lot::Mutex::new(state),
            dirty: AtomicBool::new(false),
            save_scheduled: AtomicBool::new(false),
            save_lock: tokio::sync::Mutex::new(()),
        });
        crate::storage::reload_on_change(
            &this.storage,
            STORAGE_KEY,
            Arc::downgrade(&this),
            |_, this| async move {
                if let Err(error) = this.reload().await {
                    tracing::error!(%error, "reading the sign-in history another instance changed failed");
                }
            },
        );
        Ok(this)
    }

    /// Reads the store again (another instance changed it); this instance's unsaved entries are
    /// saved first (a database writes only the users whose entries changed), so none is lost.
    async fn reload(&self) -> Result<(), StorageError> {
        let _saving = self.save_lock.lock().await;
        if self.dirty.swap(false, Ordering::AcqRel) {
            let doc = self.document();
            if let Err(error) = self.storage.save(&doc, SaveOptions { private: true }).await {
                self.dirty.store(true, Ordering::Release);
                return Err(error);
            }
        }
        let users = read(self.storage.as_ref()).await?;
        if !self.dirty.load(Ordering::Acquire) {
            self.state.lock().users = users;
        }
        Ok(())
    }

    /// `user_id`'s entries, newest first.
    pub fn of(&self, user_id: &str) -> Vec<SignInEvent> {
        self.state
            .lock()
            .users
            .get(user_id)
            .map(|events| events.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Adds an entry to `user_id`'s history (saved shortly after).
    pub fn record(self: &Arc<Self>, user_id: &str, event: SignInEvent) {
        {
            let mut state = self.state.lock();
            push(&mut state, user_id, event);
        }
        self.schedule_save();
    }

    /// Keeps the entry of a first sign-in (no user yet) under its credential id.
    pub fn record_pending(&self, credential_id: &str, event: SignInEvent) {
        let mut state = self.state.lock();
        state.pending.retain(|(id, _)| id != credential_id);
        if state.pending.len() >= MAX_PENDING {
            state.pending.pop_front();
        }
        state.pending.push_back((credential_id.to_owned(), event));
    }

    /// Moves the waiting first sign-in of `credential_id` (if any) into `user_id`'s history.
    pub fn claim_pending(self: &Arc<Self>, credential_id: &str, user_id: &str) {
        let claimed = {
            let mut state = self.state.lock();
            let position = state.pending.iter().position(|(id, _)| id == credential_id);
            match position.and_then(|i| state.pending.remove(i)) {
                Some((_, event)) => {
                    push(&mut state, user_id, event);
                    true
                }
                None => false,
            }
        };
        if claimed {
            self.schedule_save();
        }
    }

    /// Forgets a removed user's history.
    pub fn remove_user(self: &Arc<Self>, user_id: &str) {
        let removed = self.state.lock().users.shift_remove(user_id).is_some();
        if removed {
            self.schedule_save();
        }
    }

    /// Saves now if anything changed since the last save.
    pub async fn flush(&self) -> Result<(), StorageError> {
        let _saving = self.save_lock.lock().await;
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let doc = self.document();
        let result = self.storage.save(&doc, SaveOptions { private: true }).await;
        if result.is_err() {
            self.dirty.store(true, Ordering::Release);
        }
        result
    }

    fn schedule_save(self: &Arc<Self>) {
        self.dirty.store(true, Ordering::Release);
        if self.save_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.save_scheduled.store(false, Ordering::Release);
            return;
        };
        let this = Arc::clone(self);
        runtime.spawn(async move {
            tokio::time::sleep(SAVE_DELAY).await;
            this.save_scheduled.store(false, Ordering::Release);
            if let Err(error) = this.flush().await {
                tracing::error!(%error, "cannot save the sign-in history");
            }
        });
    }

    fn document(&self) -> StoredDocument {
        let state = self.state.lock();
        let users: Map<String, Value> = state
            .users
            .iter()
            .map(|(user_id, events)| {
                (
                    user_id.clone(),
                    Value::Array(events.iter().map(SignInEvent::to_json).collect()),
                )
            })
            .collect();
        StoredDocument::new(STORAGE_KEY, STORAGE_VERSION, 1, json!({ "users": users }))
    }
}

fn push(state: &mut State, user_id: &str, event: SignInEvent) {
    let events = state.users.entry(user_id.to_owned()).or_default();
    events.push_front(event);
    events.truncate(ENTRIES_PER_USER);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    fn event(seconds: i64, result: SignInResult) -> SignInEvent {
        SignInEvent {
            time: OffsetDateTime::from_unix_timestamp(1_796_000_000 + seconds).unwrap(),
            result,
            ip: Some("192.168.1.20".parse().unwrap()),
            client_id: Some("http://hass.local:8123/".into()),
            provider_type: "homeassistant".into(),
            provider_id: None,
            mfa: vec!["totp".into()],
        }
    }

    #[tokio::test]
    async fn history_is_bounded_newest_first_and_survives_a_reload() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let history = SignInHistory::load(storage.clone()).await.unwrap();
        for i in 0..25 {
            history.record("u1", event(i, SignInResult::Success));
        }
        history.record("u1", event(100, SignInResult::InvalidCode));
        history.record_pending("cred", event(200, SignInResult::Success));
        history.claim_pending("cred", "u2");
        history.claim_pending("cred", "u3");
        history.flush().await.unwrap();
        let reloaded = SignInHistory::load(storage).await.unwrap();
        let u1 = reloaded.of("u1");
        assert_eq!(u1.len(), ENTRIES_PER_USER);
        assert_eq!(u1[0], event(100, SignInResult::InvalidCode));
        assert_eq!(u1[1], event(24, SignInResult::Success));
        assert_eq!(reloaded.of("u2"), vec![event(200, SignInResult::Success)]);
        assert!(reloaded.of("u3").is_empty());
    }
}
