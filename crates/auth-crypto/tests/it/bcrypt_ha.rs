//! Home Assistant's bcrypt hashes (`tests/fixtures/bcrypt-ha.json`).
//!
//! bcrypt cost 12 takes ~220 ms per check, and there are 81 checks, so the entries
//! are spread over two threads.

use auth_crypto::{
    HashScheme, PasswordError, PasswordPolicy, hash_scheme, needs_rehash, verify_password,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::fixture;

struct Entry {
    password: String,
    stored: String,
    bcrypt_hash: String,
    utf8_bytes: usize,
    note: String,
    does_not_verify: Vec<String>,
    also_verifies: Vec<String>,
}

fn strings(v: &serde_json::Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(|a| a.as_array())
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn entries() -> Vec<Entry> {
    let data = fixture("bcrypt-ha.json");
    let list = data.as_array().unwrap();
    assert_eq!(list.len(), 30);
    list.iter()
        .map(|e| Entry {
            password: e["password"].as_str().unwrap().to_owned(),
            stored: e["stored_hash_as_in_storage_file"]
                .as_str()
                .unwrap()
                .to_owned(),
            bcrypt_hash: e["bcrypt_hash"].as_str().unwrap().to_owned(),
            utf8_bytes: usize::try_from(e["password_utf8_bytes"].as_u64().unwrap()).unwrap(),
            note: e["note"].as_str().unwrap().to_owned(),
            does_not_verify: strings(e, "does_not_verify"),
            also_verifies: strings(e, "also_verifies"),
        })
        .collect()
}

/// One line per check that went wrong (empty when all is well).
fn check_entry(e: &Entry) -> Vec<String> {
    let mut failures = Vec::new();
    let mut expect =
        |candidate: &str, want: bool, what: &str| match verify_password(candidate, &e.stored) {
            Ok(got) if got == want => {}
            other => failures.push(format!(
                "{what} ({} bytes) against entry {:?}: expected Ok({want}), got {other:?}",
                candidate.len(),
                e.note
            )),
        };
    expect(&e.password, true, "password");
    for wrong in &e.does_not_verify {
        expect(wrong, false, "does_not_verify");
    }
    for other in &e.also_verifies {
        expect(other, true, "also_verifies");
    }
    failures
}

#[test]
fn fixture_is_consistent() {
    for e in entries() {
        assert_eq!(e.password.len(), e.utf8_bytes, "{}", e.note);
        assert_eq!(STANDARD.encode(&e.bcrypt_hash), e.stored, "{}", e.note);
        assert!(e.bcrypt_hash.starts_with("$2b$12$"), "{}", e.note);
    }
}

#[test]
fn every_ha_hash_verifies_and_rejects_as_home_assistant_does() {
    let entries = entries();
    let total: usize = entries
        .iter()
        .map(|e| 1 + e.does_not_verify.len() + e.also_verifies.len())
        .sum();
    assert_eq!(total, 81);
    let (even, odd): (Vec<_>, Vec<_>) = entries.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = [even, odd]
            .into_iter()
            .map(|half| {
                s.spawn(move || {
                    half.iter()
                        .flat_map(|(_, e)| check_entry(e))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ha_hashes_are_classified_and_flagged_for_rehash() {
    for e in entries() {
        assert_eq!(
            hash_scheme(&e.stored),
            Some(HashScheme::HaBcrypt),
            "{}",
            e.note
        );
        assert!(
            needs_rehash(&e.stored, &PasswordPolicy::owasp()),
            "{}",
            e.note
        );
        // The bare bcrypt string (not base64-wrapped) is not a stored format.
        assert!(matches!(
            verify_password(&e.password, &e.bcrypt_hash),
            Err(PasswordError::UnrecognisedHash)
        ));
    }
}

#[test]
fn ha_bcrypt_hash_roundtrip_and_format() {
    // Cost 4 keeps this fast; Home Assistant uses 12.
    for password in ["", "owner-pass", "nul\0byte", &"€".repeat(25)] {
        let stored = auth_crypto::ha_bcrypt_hash(password, 4).unwrap();
        let decoded = String::from_utf8(STANDARD.decode(&stored).unwrap()).unwrap();
        assert!(decoded.starts_with("$2b$04$"), "{decoded}");
        assert_eq!(decoded.len(), 60);
        assert!(verify_password(password, &stored).unwrap());
        assert!(!verify_password("other", &stored).unwrap());
    }
    // Only the first 72 bytes count, cut inside a character if need be.
    let stored = auth_crypto::ha_bcrypt_hash(&"€".repeat(25), 4).unwrap();
    assert!(verify_password(&format!("{}€xyz", "€".repeat(23)), &stored).unwrap());
    assert!(!verify_password(&"€".repeat(23), &stored).unwrap());
    assert!(matches!(
        auth_crypto::ha_bcrypt_hash("x", 3),
        Err(PasswordError::Hashing(_))
    ));
}

#[test]
fn bcrypt_variants_2a_and_2y_are_accepted() {
    let stored = auth_crypto::ha_bcrypt_hash("variant", 4).unwrap();
    let bcrypt = String::from_utf8(STANDARD.decode(&stored).unwrap()).unwrap();
    for prefix in ["$2a$", "$2y$"] {
        let other = STANDARD.encode(bcrypt.replacen("$2b$", prefix, 1));
        assert_eq!(hash_scheme(&other), Some(HashScheme::HaBcrypt));
        assert!(verify_password("variant", &other).unwrap());
        assert!(!verify_password("variant!", &other).unwrap());
    }
}

#[test]
fn dummy_hash_is_home_assistants() {
    // HA's dummy hash is one of the fixture entries (password "foo"), so the
    // fixture test above also shows it verifies like any other hash.
    let data = fixture("bcrypt-ha.json");
    let dummy = data
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == "homeassistant/auth/providers/homeassistant.py")
        .unwrap();
    assert_eq!(
        dummy["bcrypt_hash"],
        auth_crypto::password::HA_DUMMY_BCRYPT_HASH
    );
    assert_eq!(dummy["password"], "foo");
    auth_crypto::dummy_verify_bcrypt("foo");
    auth_crypto::dummy_verify_bcrypt(&"x".repeat(1000));
}
