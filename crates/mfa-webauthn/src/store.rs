//! The persisted format: `.storage/auth_module.webauthn` (Home Assistant's envelope; Home
//! Assistant itself has no such module).
//!
//! ```json
//! {
//!   "version": 1,
//!   "minor_version": 1,
//!   "key": "auth_module.webauthn",
//!   "data": {
//!     "users": {
//!       "277733626f56457a92a02e9ed1381f1a": {
//!         "user_handle": "0b5c3c0e-6f0a-4f51-9f0e-6c1d8c0f4a11",
//!         "credentials": [
//!           {
//!             "id": "base64url credential id",
//!             "name": "YubiKey",
//!             "created_at": "2026-12-04T16:00:00.000000+00:00",
//!             "last_used_at": null,
//!             "passkey": { "cred": { "counter": 3, "...": "webauthn-rs's Passkey" } }
//!           }
//!         ]
//!       }
//!     }
//!   }
//! }
//! ```

use auth_core::storage::{check_version, users_object};
use auth_core::{Storage, StorageError, StoredDocument};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use webauthn_rs::prelude::{Passkey, Uuid};

/// Store key (file name under `.storage`).
pub const STORAGE_KEY: &str = "auth_module.webauthn";
/// Major version of the document this build reads and writes.
pub const STORAGE_VERSION: u32 = 1;
/// Minor version written.
pub const STORAGE_MINOR_VERSION: u32 = 1;

/// One registered key of a user.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StoredKey {
    /// The credential id, base64url without padding (what the browser calls `id`).
    pub(crate) id: String,
    /// The name the user gave it.
    pub(crate) name: String,
    /// When it was registered (ISO 8601).
    pub(crate) created_at: String,
    /// When it last signed a login (ISO 8601).
    #[serde(default)]
    pub(crate) last_used_at: Option<String>,
    /// The public key, algorithm and signature counter (webauthn-rs's own format).
    pub(crate) passkey: Passkey,
}

/// A user's keys and the WebAuthn user handle they were registered under.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct UserKeys {
    /// The random user handle given to authenticators (never the user id).
    pub(crate) user_handle: Uuid,
    /// Registered keys, oldest first.
    pub(crate) credentials: Vec<StoredKey>,
}

/// User id -> keys, in file order.
pub(crate) type Users = IndexMap<String, UserKeys>;

/// Parses a loaded document; anything of the wrong shape is an error naming the file and the user.
pub(crate) fn parse(storage: &dyn Storage, doc: &StoredDocument) -> Result<Users, StorageError> {
    check_version(storage, doc, STORAGE_VERSION)?;
    let corrupt = |problem: String| StorageError::Corrupt {
        location: storage.location(STORAGE_KEY),
        problem,
    };
    let users = users_object(storage, STORAGE_KEY, doc)?;
    users
        .iter()
        .map(|(user_id, keys)| {
            serde_json::from_value::<UserKeys>(keys.clone())
                .map(|keys| (user_id.clone(), keys))
                .map_err(|e| corrupt(format!("the keys of user '{user_id}' in 'data.users': {e}")))
        })
        .collect()
}

/// The document to save for `users`.
pub(crate) fn document(users: &Users) -> Result<StoredDocument, serde_json::Error> {
    let mut map = Map::new();
    for (user_id, keys) in users {
        map.insert(user_id.clone(), serde_json::to_value(keys)?);
    }
    let mut data = Map::new();
    data.insert("users".to_owned(), Value::Object(map));
    Ok(StoredDocument::new(
        STORAGE_KEY,
        STORAGE_VERSION,
        STORAGE_MINOR_VERSION,
        Value::Object(data),
    ))
}
