//! Recovery codes: ten single-use codes a user with MFA keeps on paper, each accepted once at any
//! MFA step of a login in place of the module's code. Home Assistant has none; the store is ours,
//! `.storage/hass_auth.recovery_codes` (mode 0600):
//!
//! ```json
//! {
//!   "version": 1, "minor_version": 1, "key": "hass_auth.recovery_codes",
//!   "data": {"users": {"<user id>": {
//!     "salt": "<32 hex>", "created_at": "2026-12-04T16:00:00.000000+00:00",
//!     "codes": [{"hash": "<64 hex: sha256(salt || code)>", "used_at": null}]
//!   }}}
//! }
//! ```
//!
//! A code is 16 characters of RFC 4648 base32 (80 random bits), shown as `ABCD-EFGH-IJKL-MNOP`;
//! input is compared without dashes, spaces or case. Only hashes are stored, and the codes are
//! shown once, when they are made. Making new codes replaces every old one.

use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::error::AuthError;
use crate::rng::Rng;
use crate::storage::{
    SaveOptions, Storage, StorageError, StoredDocument, check_version, users_object,
};
use crate::timefmt::{parse_iso, to_iso};

/// Store key (file name under `.storage`).
pub const STORAGE_KEY: &str = "hass_auth.recovery_codes";
/// Major version of the document this build reads and writes.
pub const STORAGE_VERSION: u32 = 1;
/// How many codes a user gets at a time.
pub const CODES_PER_USER: usize = 10;
/// Characters of a code (without the dashes).
pub const CODE_LENGTH: usize = 16;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// One stored code.
#[derive(Clone, Debug, PartialEq)]
struct StoredCode {
    hash: String,
    used_at: Option<OffsetDateTime>,
}

/// One user's codes.
#[derive(Clone, Debug, PartialEq)]
struct UserCodes {
    salt: String,
    created_at: OffsetDateTime,
    codes: Vec<StoredCode>,
}

/// A user's recovery codes as the profile shows them (never the codes themselves).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryStatus {
    /// Codes not used yet.
    pub remaining: usize,
    /// Codes made at the last generation.
    pub total: usize,
    /// When they were made.
    pub created_at: OffsetDateTime,
}

/// Every user's recovery codes, loaded at start; changes are saved before they are acknowledged.
#[derive(Debug)]
pub struct RecoveryCodes {
    storage: std::sync::Arc<dyn Storage>,
    users: std::sync::Arc<parking_lot::Mutex<IndexMap<String, UserCodes>>>,
    /// Serialises changes (check, change, save), so a code is redeemed once however many logins
    /// race (and another instance's change is read in between, never during one).
    write: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl RecoveryCodes {
    /// Loads the store; a file that cannot be read is an error naming it, never "no codes".
    pub async fn load(storage: std::sync::Arc<dyn Storage>) -> Result<Self, StorageError> {
        let users = match storage.load(STORAGE_KEY).await? {
            Some(doc) => parse(storage.as_ref(), &doc)?,
            None => IndexMap::new(),
        };
        let users = std::sync::Arc::new(parking_lot::Mutex::new(users));
        let write = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        let serialise = write.clone();
        crate::storage::reload_on_change(
            &storage,
            STORAGE_KEY,
            std::sync::Arc::downgrade(&users),
            move |storage, users| {
                let write = serialise.clone();
                async move {
                    let _write = write.lock().await;
                    let loaded = match storage.load(STORAGE_KEY).await {
                        Ok(Some(doc)) => parse(storage.as_ref(), &doc),
                        Ok(None) => Ok(IndexMap::new()),
                        Err(error) => Err(error),
                    };
                    match loaded {
                        Ok(loaded) => *users.lock() = loaded,
                        Err(error) => {
                            tracing::error!(%error, "reading recovery codes another instance changed failed");
                        }
                    }
                }
            },
        );
        Ok(Self {
            storage,
            users,
            write,
        })
    }

    /// The status of `user_id`'s codes, if they have any.
    pub fn status(&self, user_id: &str) -> Option<RecoveryStatus> {
        self.users.lock().get(user_id).map(|user| RecoveryStatus {
            remaining: user.codes.iter().filter(|c| c.used_at.is_none()).count(),
            total: user.codes.len(),
            created_at: user.created_at,
        })
    }

    /// Whether `user_id` has a code left.
    pub fn has_unused(&self, user_id: &str) -> bool {
        self.status(user_id).is_some_and(|s| s.remaining > 0)
    }

    /// Makes [`CODES_PER_USER`] new codes for `user_id`, replacing any old ones, and returns them
    /// formatted (`ABCD-EFGH-IJKL-MNOP`). Saved before it returns.
    pub async fn generate(
        &self,
        user_id: &str,
        rng: &dyn Rng,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, AuthError> {
        let mut salt = [0u8; 16];
        rng.fill(&mut salt);
        let codes: Vec<String> = (0..CODES_PER_USER).map(|_| new_code(rng)).collect();
        let entry = UserCodes {
            salt: hex::encode(salt),
            created_at: now,
            codes: codes
                .iter()
                .map(|code| StoredCode {
                    hash: auth_crypto::recovery_code_hash(&salt, code),
                    used_at: None,
                })
                .collect(),
        };
        let _write = self.write.lock().await;
        let previous = self.users.lock().insert(user_id.to_owned(), entry);
        if let Err(error) = self.save().await {
            let mut users = self.users.lock();
            match previous {
                Some(previous) => users.insert(user_id.to_owned(), previous),
                None => users.shift_remove(user_id),
            };
            return Err(error.into());
        }
        Ok(codes.iter().map(|c| format_code(c)).collect())
    }

    /// Uses up `candidate` if it is one of `user_id`'s unused codes: `Ok(true)` once it is saved
    /// as used. Every unused code is compared (in constant time), whichever matches.
    pub async fn redeem(
        &self,
        user_id: &str,
        candidate: &str,
        now: OffsetDateTime,
    ) -> Result<bool, AuthError> {
        let Some(candidate) = normalize(candidate) else {
            return Ok(false);
        };
        let _write = self.write.lock().await;
        let index = {
            let users = self.users.lock();
            let Some(user) = users.get(user_id) else {
                return Ok(false);
            };
            let Ok(salt) = hex::decode(&user.salt) else {
                return Ok(false);
            };
            let hash = auth_crypto::recovery_code_hash(&salt, &candidate);
            let mut found = None;
            for (i, code) in user.codes.iter().enumerate() {
                let same = auth_crypto::constant_time_eq(code.hash.as_bytes(), hash.as_bytes());
                if same && code.used_at.is_none() {
                    found = Some(i);
                }
            }
            found
        };
        let Some(index) = index else {
            return Ok(false);
        };
        self.set_used(user_id, index, Some(now));
        if let Err(error) = self.save().await {
            self.set_used(user_id, index, None);
            return Err(error.into());
        }
        Ok(true)
    }

    /// Forgets `user_id`'s codes (MFA reset, last module disabled, user removed). Saved before
    /// it returns; nothing to do when they have none.
    pub async fn remove_user(&self, user_id: &str) -> Result<(), AuthError> {
        let _write = self.write.lock().await;
        let Some(previous) = self.users.lock().shift_remove(user_id) else {
            return Ok(());
        };
        if let Err(error) = self.save().await {
            self.users.lock().insert(user_id.to_owned(), previous);
            return Err(error.into());
        }
        Ok(())
    }

    fn set_used(&self, user_id: &str, index: usize, used_at: Option<OffsetDateTime>) {
        if let Some(code) = self
            .users
            .lock()
            .get_mut(user_id)
            .and_then(|user| user.codes.get_mut(index))
        {
            code.used_at = used_at;
        }
    }

    async fn save(&self) -> Result<(), StorageError> {
        let doc = document(&self.users.lock());
        self.storage.save(&doc, SaveOptions { private: true }).await
    }
}

/// Whether `text` has the shape of a recovery code (16 base32 characters, dashes and spaces
/// ignored): a login's MFA field holding one is checked as a recovery code.
pub fn looks_like_code(text: &str) -> bool {
    normalize(text).is_some()
}

/// `text` without dashes and spaces, upper case, when it is a code's 16 base32 characters.
fn normalize(text: &str) -> Option<String> {
    let code: String = text
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == CODE_LENGTH && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

fn new_code(rng: &dyn Rng) -> String {
    // 10 bytes = 80 bits = 16 base32 characters of 5 bits each.
    let mut bytes = [0u8; 10];
    rng.fill(&mut bytes);
    let mut bits: u128 = 0;
    for byte in bytes {
        bits = (bits << 8) | u128::from(byte);
    }
    (0..CODE_LENGTH)
        .rev()
        .map(|i| ALPHABET[((bits >> (i * 5)) & 0x1f) as usize] as char)
        .collect()
}

fn format_code(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

fn parse(
    storage: &dyn Storage,
    doc: &StoredDocument,
) -> Result<IndexMap<String, UserCodes>, StorageError> {
    check_version(storage, doc, STORAGE_VERSION)?;
    let corrupt = |problem: String| StorageError::Corrupt {
        location: storage.location(STORAGE_KEY),
        problem,
    };
    let users = users_object(storage, STORAGE_KEY, doc)?;
    let mut out = IndexMap::new();
    for (user_id, entry) in users {
        let at = |field: &str| format!("data.users.{user_id}.{field}");
        let salt = entry
            .get("salt")
            .and_then(Value::as_str)
            .filter(|s| hex::decode(s).is_ok())
            .ok_or_else(|| corrupt(format!("field '{}' is not hex", at("salt"))))?;
        let created_at = entry
            .get("created_at")
            .and_then(Value::as_str)
            .and_then(parse_iso)
            .ok_or_else(|| corrupt(format!("field '{}' is not a time", at("created_at"))))?;
        let codes = entry
            .get("codes")
            .and_then(Value::as_array)
            .ok_or_else(|| corrupt(format!("field '{}' is not a list", at("codes"))))?;
        let codes = codes
            .iter()
            .enumerate()
            .map(|(i, code)| {
                let hash = code
                    .get("hash")
                    .and_then(Value::as_str)
                    .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .ok_or_else(|| {
                        corrupt(format!(
                            "field '{}' is not a hash",
                            at(&format!("codes[{i}].hash"))
                        ))
                    })?;
                let used_at = match code.get("used_at") {
                    None | Some(Value::Null) => None,
                    Some(value) => Some(value.as_str().and_then(parse_iso).ok_or_else(|| {
                        corrupt(format!(
                            "field '{}' is not a time",
                            at(&format!("codes[{i}].used_at"))
                        ))
                    })?),
                };
                Ok(StoredCode {
                    hash: hash.to_owned(),
                    used_at,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        out.insert(
            user_id.clone(),
            UserCodes {
                salt: salt.to_owned(),
                created_at,
                codes,
            },
        );
    }
    Ok(out)
}

fn document(users: &IndexMap<String, UserCodes>) -> StoredDocument {
    let users: Map<String, Value> = users
        .iter()
        .map(|(user_id, user)| {
            let codes: Vec<Value> = user
                .codes
                .iter()
                .map(|c| json!({"hash": c.hash, "used_at": c.used_at.map(to_iso)}))
                .collect();
            (
                user_id.clone(),
                json!({"salt": user.salt, "created_at": to_iso(user.created_at), "codes": codes}),
            )
        })
        .collect();
    StoredDocument::new(STORAGE_KEY, STORAGE_VERSION, 1, json!({ "users": users }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRng;
    use crate::storage::MemoryStorage;
    use std::sync::Arc;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_796_000_000).unwrap()
    }

    #[tokio::test]
    async fn codes_are_single_use_stored_hashed_and_survive_a_reload() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let store = RecoveryCodes::load(storage.clone()).await.unwrap();
        let rng = SeededRng::new(7);
        let codes = store.generate("u1", &rng, now()).await.unwrap();
        assert_eq!(codes.len(), CODES_PER_USER);
        for code in &codes {
            assert_eq!(code.len(), CODE_LENGTH + 3, "{code}");
            assert!(looks_like_code(code));
        }
        let saved = storage.load(STORAGE_KEY).await.unwrap().unwrap();
        let text = saved.data.to_string();
        for code in &codes {
            assert!(!text.contains(&code.replace('-', "")), "stored in clear");
        }
        // Any spelling of a code works once.
        let spelled = codes[3].to_lowercase().replace('-', " ");
        assert!(store.redeem("u1", &spelled, now()).await.unwrap());
        assert!(!store.redeem("u1", &codes[3], now()).await.unwrap());
        assert!(!store.redeem("u2", &codes[4], now()).await.unwrap());
        assert_eq!(store.status("u1").unwrap().remaining, CODES_PER_USER - 1);
        let reloaded = RecoveryCodes::load(storage.clone()).await.unwrap();
        assert_eq!(reloaded.status("u1").unwrap().remaining, CODES_PER_USER - 1);
        assert!(!reloaded.redeem("u1", &codes[3], now()).await.unwrap());
        assert!(reloaded.redeem("u1", &codes[4], now()).await.unwrap());
        // New codes replace the old ones.
        let fresh = reloaded.generate("u1", &rng, now()).await.unwrap();
        assert!(!reloaded.redeem("u1", &codes[5], now()).await.unwrap());
        assert!(reloaded.redeem("u1", &fresh[0], now()).await.unwrap());
        reloaded.remove_user("u1").await.unwrap();
        assert_eq!(reloaded.status("u1"), None);
        assert!(!reloaded.redeem("u1", &fresh[1], now()).await.unwrap());
    }

    #[test]
    fn only_code_shaped_input_is_a_code() {
        for text in ["123456", "", "ABCD-EFGH-IJKL-MNO1", "ABCDEFGHIJKLMNOPQ"] {
            assert!(!looks_like_code(text), "{text}");
        }
        assert!(looks_like_code("abcd-efgh-ijkl-mnop"));
        assert!(looks_like_code(" ABCD EFGH IJKL MNOP "));
    }

    #[tokio::test]
    async fn a_damaged_store_is_refused_with_the_field() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let doc = StoredDocument::new(
            STORAGE_KEY,
            1,
            1,
            json!({"users": {"u1": {"salt": "00", "created_at": "2026-12-04T16:00:00+00:00", "codes": [{"hash": "x"}]}}}),
        );
        storage
            .save(&doc, SaveOptions { private: true })
            .await
            .unwrap();
        let error = RecoveryCodes::load(storage).await.unwrap_err().to_string();
        assert!(error.contains("data.users.u1.codes[0].hash"), "{error}");
    }
}
