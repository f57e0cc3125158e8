//! The persisted format of `.storage/auth_provider.homeassistant`, compatible with Home Assistant:
//!
//! ```json
//! {"version": 1, "minor_version": 1, "key": "auth_provider.homeassistant",
//!  "data": {"users": [{"username": "alice", "password": "JDJiJDEyJ…"}]}}
//! ```
//!
//! `password` is either Home Assistant's base64-wrapped bcrypt hash or, for passwords set by
//! hass-auth, an argon2id PHC string (`$argon2id$v=19$…`), which Home Assistant cannot read.
//! Keys this crate does not know (at the top of `data` or in a user entry) are kept as they are.

use auth_core::storage::check_version;
use auth_core::{SaveOptions, Storage, StorageError, StoredDocument};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Store key (file name under `.storage`).
pub const STORAGE_KEY: &str = "auth_provider.homeassistant";
/// Major version of the stored document.
pub const STORAGE_VERSION: u32 = 1;
/// Minor version of the stored document.
pub const STORAGE_MINOR_VERSION: u32 = 1;

/// One `users` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredUser {
    /// The username as stored (older files may hold non-normalised names).
    pub username: String,
    /// The password hash (HA bcrypt or argon2id).
    pub password: String,
    /// Keys written by someone else; preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The document's `data`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProviderData {
    /// Users in file order.
    pub users: Vec<StoredUser>,
    /// Keys written by someone else; preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Loads the provider data: a missing file (or one holding `{}`) is an empty user list; a file
/// that cannot be parsed is an error naming the file (it is never treated as empty).
pub(crate) async fn load(storage: &dyn Storage) -> Result<ProviderData, StorageError> {
    let Some(doc) = storage.load(STORAGE_KEY).await? else {
        return Ok(ProviderData::default());
    };
    check_version(storage, &doc, STORAGE_VERSION)?;
    parse(&storage.location(STORAGE_KEY), doc.data)
}

fn parse(location: &str, data: Value) -> Result<ProviderData, StorageError> {
    if !data.is_object() {
        return Err(StorageError::Corrupt {
            location: location.to_owned(),
            problem: "field 'data' is not a JSON object".to_owned(),
        });
    }
    serde_json::from_value(data).map_err(|e| StorageError::Corrupt {
        location: location.to_owned(),
        problem: format!("field 'data' does not hold a user list: {e}"),
    })
}

/// Writes the provider data durably (private file, atomic replace).
pub(crate) async fn save(storage: &dyn Storage, data: &ProviderData) -> Result<(), StorageError> {
    let value = serde_json::to_value(data).map_err(|e| StorageError::Corrupt {
        location: storage.location(STORAGE_KEY),
        problem: format!("cannot serialise provider data: {e}"),
    })?;
    let doc = StoredDocument::new(STORAGE_KEY, STORAGE_VERSION, STORAGE_MINOR_VERSION, value);
    storage.save(&doc, SaveOptions { private: true }).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_with_unknown_keys_in_order() {
        let data = json!({
            "users": [{"username": "a", "password": "p", "note": 1}],
            "future": true,
        });
        let parsed = parse("x", data.clone()).expect("parses");
        assert_eq!(parsed.users[0].username, "a");
        assert_eq!(serde_json::to_value(&parsed).expect("serialises"), data);
        let text = serde_json::to_string(&parsed).expect("serialises");
        assert_eq!(
            text,
            r#"{"users":[{"username":"a","password":"p","note":1}],"future":true}"#
        );
    }

    #[test]
    fn rejects_bad_shapes_naming_the_location() {
        for bad in [
            json!(null),
            json!([]),
            json!({}),
            json!({"users": {}}),
            json!({"users": [{"username": "a"}]}),
            json!({"users": [{"username": 1, "password": "p"}]}),
        ] {
            let err = parse("/cfg/.storage/auth_provider.homeassistant", bad.clone())
                .expect_err("must be rejected");
            assert!(
                err.to_string()
                    .starts_with("/cfg/.storage/auth_provider.homeassistant: "),
                "{bad}: {err}"
            );
        }
    }
}
