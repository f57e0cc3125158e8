//! The persisted format: `.storage/auth_module.notify`, exactly as Home Assistant writes it
//! (storage.md §2.4). Codes are never stored.
//!
//! ```json
//! {
//!   "version": 1,
//!   "minor_version": 1,
//!   "key": "auth_module.notify",
//!   "data": {
//!     "users": {
//!       "277733626f56457a92a02e9ed1381f1a": {"notify_service": "mobile_app_phone", "target": null}
//!     }
//!   }
//! }
//! ```

use auth_core::storage::{check_version, users_object};
use auth_core::{Storage, StorageError, StoredDocument};
use indexmap::IndexMap;
use serde_json::{Map, Value, json};

/// Store key (file name under `.storage`).
pub const STORAGE_KEY: &str = "auth_module.notify";
/// Major version of the document this build reads and writes.
pub const STORAGE_VERSION: u32 = 1;
/// Minor version written.
pub const STORAGE_MINOR_VERSION: u32 = 1;

/// Where one user's codes go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifySetting {
    /// The notify service (a key of the module's `services`).
    pub notify_service: String,
    /// The service's target (e.g. a phone number), if any.
    pub target: Option<String>,
}

/// User id -> setting, in file order.
pub(crate) type Settings = IndexMap<String, NotifySetting>;

/// Parses a loaded document; a wrong shape is an error naming the file, never "empty".
pub(crate) fn parse(storage: &dyn Storage, doc: &StoredDocument) -> Result<Settings, StorageError> {
    check_version(storage, doc, STORAGE_VERSION)?;
    let corrupt = |problem: String| StorageError::Corrupt {
        location: storage.location(STORAGE_KEY),
        problem,
    };
    let users = users_object(storage, STORAGE_KEY, doc)?;
    users
        .iter()
        .map(|(user_id, entry)| {
            let service = entry.get("notify_service").and_then(Value::as_str);
            let target = match entry.get("target") {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(t)) => Ok(Some(t.clone())),
                Some(_) => Err(()),
            };
            match (service, target) {
                (Some(service), Ok(target)) => Ok((
                    user_id.clone(),
                    NotifySetting {
                        notify_service: service.to_owned(),
                        target,
                    },
                )),
                _ => Err(corrupt(format!(
                    "the entry of user '{user_id}' in 'data.users' needs a string 'notify_service' and a string or null 'target'"
                ))),
            }
        })
        .collect()
}

/// The document to save for `settings`.
pub(crate) fn document(settings: &Settings) -> StoredDocument {
    let users: Map<String, Value> = settings
        .iter()
        .map(|(user_id, s)| {
            (
                user_id.clone(),
                json!({"notify_service": s.notify_service, "target": s.target}),
            )
        })
        .collect();
    StoredDocument::new(
        STORAGE_KEY,
        STORAGE_VERSION,
        STORAGE_MINOR_VERSION,
        json!({ "users": users }),
    )
}
