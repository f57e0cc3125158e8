//! Unit tests: Base32 as pyotp reads it, code windows, URL and QR rendering, the file format.

use auth_core::{MemoryStorage, SeededRng, StorageError, StoredDocument};
use serde_json::json;

use crate::otp::{self, Generator, InvalidSecret};
use crate::{setup, store};

fn vectors() -> Vec<serde_json::Value> {
    auth_testkit::fixture_json("totp-vectors.json")
        .as_array()
        .expect("a list of vectors")
        .clone()
}

#[test]
fn base32_decodes_like_pyotp() {
    assert_eq!(
        otp::decode_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap(),
        b"12345678901234567890"
    );
    // Case-insensitive.
    assert_eq!(
        otp::decode_base32("gezdgnbvgy3tqojqgezdgnbvgy3tqojq").unwrap(),
        b"12345678901234567890"
    );
    // Padding is added as needed: 16 chars (no padding), 34 chars (6 added), 2 chars (6 added).
    assert_eq!(
        otp::decode_base32("JBSWY3DPEHPK3PXP").unwrap(),
        b"Hello!\xde\xad\xbe\xef"
    );
    assert_eq!(
        otp::decode_base32("KRSXG5CTMVRXEZLUKN2XAZLSKNSWG4TFOQ").unwrap(),
        b"TestSecretSuperSecret"
    );
    assert_eq!(otp::decode_base32("ME").unwrap(), b"a");
    assert_eq!(otp::decode_base32("ME======").unwrap(), b"a");
    assert_eq!(otp::decode_base32("").unwrap(), b"");
    // Padding lengths that Base32 cannot produce (2, 5, 7) are refused.
    assert_eq!(otp::decode_base32("MFRGG"), Ok(b"abc".to_vec()));
    assert_eq!(otp::decode_base32("A"), Err(InvalidSecret));
    assert_eq!(otp::decode_base32("ABC"), Err(InvalidSecret));
    assert_eq!(otp::decode_base32("ABCDEF"), Err(InvalidSecret));
    // Characters outside the alphabet, padding in the middle, non-ASCII.
    assert_eq!(otp::decode_base32("MZXW6YQ1"), Err(InvalidSecret));
    assert_eq!(otp::decode_base32("MZ======MZXW6YTB"), Err(InvalidSecret));
    assert_eq!(otp::decode_base32("MZXW 6YTB"), Err(InvalidSecret));
    assert_eq!(otp::decode_base32("ＭＺＸＷ６ＹＴＢ"), Err(InvalidSecret));
}

#[test]
fn base32_round_trips() {
    let rng = SeededRng::new(3);
    for _ in 0..50 {
        let mut bytes = [0u8; 20];
        auth_core::Rng::fill(&rng, &mut bytes);
        let text = otp::encode_base32(&bytes);
        assert_eq!(text.len(), 32);
        assert_eq!(otp::decode_base32(&text).unwrap(), bytes);
    }
    assert_eq!(otp::encode_base32(b"a"), "ME");
    assert_eq!(otp::encode_base32(b"abc"), "MFRGG");
}

#[test]
fn new_secrets_are_32_base32_characters_from_the_rng() {
    let a = otp::new_secret(&SeededRng::new(1));
    let b = otp::new_secret(&SeededRng::new(1));
    let c = otp::new_secret(&SeededRng::new(2));
    assert_eq!(a, b, "secrets come from the injected rng");
    assert_ne!(a, c);
    for secret in [a, c] {
        assert_eq!(secret.len(), 32);
        assert!(
            secret
                .bytes()
                .all(|ch| ch.is_ascii_uppercase() || (b'2'..=b'7').contains(&ch))
        );
        assert_eq!(otp::decode_base32(&secret).unwrap().len(), 20);
    }
}

#[test]
fn every_vector_gives_its_codes() {
    for v in vectors() {
        let secret = v["secret"].as_str().unwrap();
        let time = v["unix_time"].as_i64().unwrap();
        let counter = v["counter"].as_u64().unwrap();
        assert_eq!(otp::counter_at(time), counter);
        let generator = Generator::new(&otp::decode_base32(secret).unwrap());
        assert_eq!(generator.code(counter), v["expected_code"], "{v}");
        assert_eq!(generator.code(counter - 1), v["prev_step_code"], "{v}");
        assert_eq!(generator.code(counter + 1), v["next_step_code"], "{v}");
        assert_eq!(crate::code_at(secret, time).unwrap(), v["expected_code"]);
    }
}

#[test]
fn setup_confirmation_accepts_the_current_step_only() {
    for v in vectors() {
        let bytes = otp::decode_base32(v["secret"].as_str().unwrap()).unwrap();
        let counter = otp::counter_at(v["unix_time"].as_i64().unwrap());
        let only = v["setup_flow_accepts_only"].as_str().unwrap();
        assert!(setup::confirms(&bytes, only, counter), "{v}");
        assert!(
            setup::confirms(
                &bytes,
                v["nfkc_equivalent_also_accepted"].as_str().unwrap(),
                counter
            ),
            "{v}"
        );
        for other in ["prev_step_code", "next_step_code"] {
            let code = v[other].as_str().unwrap();
            if code != only {
                assert!(!setup::confirms(&bytes, code, counter), "{other} of {v}");
            }
        }
    }
}

#[test]
fn login_window_is_previous_current_next() {
    assert_eq!(otp::login_window(10).collect::<Vec<_>>(), [9, 10, 11]);
    assert_eq!(otp::login_window(0).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(otp::counter_at(-5), 0);
    assert_eq!(otp::counter_at(59), 1);
    assert_eq!(otp::counter_at(60), 2);
}

#[test]
fn codes_are_compared_after_nfkc_and_without_trimming() {
    assert_eq!(otp::normalize("２８７０８２"), "287082");
    assert_eq!(otp::normalize(" 287082"), " 287082");
    let generator =
        Generator::new(&otp::decode_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap());
    assert_eq!(generator.matching("287082", otp::login_window(1)), [1]);
    assert_eq!(generator.matching("755224", otp::login_window(1)), [0]);
    for bad in [
        "287 082", " 287082", "287082 ", "28708", "2870820", "", "287083",
    ] {
        assert!(
            generator.matching(bad, otp::login_window(1)).is_empty(),
            "{bad:?}"
        );
    }
}

#[test]
fn the_dummy_secret_is_160_bits_and_matches_nothing_in_particular() {
    // Built without tripping totp-rs's 128-bit minimum (which Home Assistant's 80-bit dummy
    // would); its codes are just codes.
    let dummy = Generator::dummy();
    assert_eq!(dummy.code(1).len(), 6);
}

#[test]
fn provisioning_uri_matches_home_assistant() {
    let fixture = auth_testkit::fixture_json("ha-2026.2.3/fixture.json");
    let calls = fixture["calls"].as_array().unwrap();
    let shown = calls
        .iter()
        .find(|c| c["what"] == "unicode ws: auth/setup_mfa totp (start)")
        .expect("the setup call is recorded");
    let placeholders = &shown["response"]["result"]["description_placeholders"];
    let secret = placeholders["code"].as_str().unwrap();
    assert_eq!(
        crate::provisioning_uri(secret, Some("Jörg Straße")),
        placeholders["url"].as_str().unwrap()
    );
    assert_eq!(
        crate::provisioning_uri("ABC", None),
        "otpauth://totp/Home%20Assistant:None?secret=ABC&issuer=Home%20Assistant"
    );
    assert_eq!(
        crate::provisioning_uri("ABC", Some("a/b:c?d&e=f%g_h.i-j~k+l")),
        "otpauth://totp/Home%20Assistant:a/b%3Ac%3Fd%26e%3Df%25g_h.i-j~k%2Bl?secret=ABC&issuer=Home%20Assistant"
    );
}

#[test]
fn qr_code_is_an_inline_svg() {
    let svg = crate::qr_code_svg(&crate::provisioning_uri(
        "5O4XYKQRNBRTVGTLJOBAVBXMBTRGIUGF",
        Some("Jörg Straße"),
    ));
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(svg.ends_with("</svg>"));
    assert!(!svg.contains('\n') && !svg.contains("<?xml"));
    // Too long for any QR code: empty, not a panic.
    assert_eq!(crate::qr_code_svg(&"x".repeat(10_000)), "");
}

#[test]
fn store_document_round_trips_and_rejects_bad_shapes() {
    let storage = MemoryStorage::new();
    let doc = StoredDocument::new(
        store::STORAGE_KEY,
        1,
        1,
        json!({"users": {"b": "SECRETB", "a": "SECRETA"}}),
    );
    let secrets = store::parse(&storage, &doc).unwrap();
    assert_eq!(
        secrets.keys().collect::<Vec<_>>(),
        ["b", "a"],
        "file order kept"
    );
    assert_eq!(store::document(&secrets), doc);

    let empty = StoredDocument::new(store::STORAGE_KEY, 1, 1, json!({"users": {}}));
    assert!(store::parse(&storage, &empty).unwrap().is_empty());

    for (data, version) in [
        // HA reads a missing `users` as "nobody enrolled"; we refuse it (fail closed).
        (json!({}), 1),
        (json!([]), 1),
        (json!({"users": []}), 1),
        (json!({"users": {"a": 1}}), 1),
        (json!({"users": {}}), 2),
    ] {
        let doc = StoredDocument::new(store::STORAGE_KEY, version, 1, data);
        let err = store::parse(&storage, &doc).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Corrupt { .. } | StorageError::UnsupportedVersion { .. }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("memory:auth_module.totp"), "{err}");
    }
}
