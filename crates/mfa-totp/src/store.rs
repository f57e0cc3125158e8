//! The persisted format: `.storage/auth_module.totp`, exactly as Home Assistant writes it.
//!
//! ```json
//! {
//!   "version": 1,
//!   "minor_version": 1,
//!   "key": "auth_module.totp",
//!   "data": {
//!     "users": {
//!       "277733626f56457a92a02e9ed1381f1a": "5O4XYKQRNBRTVGTLJOBAVBXMBTRGIUGF"
//!     }
//!   }
//! }
//! ```

use auth_core::storage::{check_version, users_object};
use auth_core::{Storage, StorageError, StoredDocument};
use indexmap::IndexMap;
use serde_json::{Map, Value};

/// Store key (file name under `.storage`).
pub const STORAGE_KEY: &str = "auth_module.totp";
/// Major version of the document this build reads and writes.
pub const STORAGE_VERSION: u32 = 1;
/// Minor version written.
pub const STORAGE_MINOR_VERSION: u32 = 1;

/// User id -> Base32 secret, in file order.
pub(crate) type Secrets = IndexMap<String, String>;

/// Parses a loaded document. Anything of the wrong shape (a missing `users` key included) is an
/// error naming the file, never "empty".
pub(crate) fn parse(storage: &dyn Storage, doc: &StoredDocument) -> Result<Secrets, StorageError> {
    check_version(storage, doc, STORAGE_VERSION)?;
    let corrupt = |problem: String| StorageError::Corrupt {
        location: storage.location(STORAGE_KEY),
        problem,
    };
    let users = users_object(storage, STORAGE_KEY, doc)?;
    users
        .iter()
        .map(|(user_id, secret)| match secret {
            Value::String(secret) => Ok((user_id.clone(), secret.clone())),
            _ => Err(corrupt(format!(
                "the secret of user '{user_id}' in 'data.users' is not a string"
            ))),
        })
        .collect()
}

/// The document to save for `secrets`.
pub(crate) fn document(secrets: &Secrets) -> StoredDocument {
    let users: Map<String, Value> = secrets
        .iter()
        .map(|(user_id, secret)| (user_id.clone(), Value::String(secret.clone())))
        .collect();
    let mut data = Map::new();
    data.insert("users".to_owned(), Value::Object(users));
    StoredDocument::new(
        STORAGE_KEY,
        STORAGE_VERSION,
        STORAGE_MINOR_VERSION,
        Value::Object(data),
    )
}
