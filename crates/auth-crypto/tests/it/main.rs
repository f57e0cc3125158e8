//! Integration tests of auth-crypto against golden data made by real Home Assistant.

mod argon2;
mod bcrypt_ha;
mod jwt_ha;
mod jwt_reject;
mod proptests;
mod signed_path;

use std::path::PathBuf;

/// Reads and parses a file from `tests/fixtures/`.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}
