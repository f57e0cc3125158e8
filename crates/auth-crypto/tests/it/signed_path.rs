//! Signed paths (`authSig`), `spec/tokens.md` §8.
//!
//! Expected tokens were computed with CPython's standard library exactly as PyJWT
//! does for Home Assistant's `async_sign_path`:
//! `json.dumps(payload, separators=(",", ":"))`, HMAC-SHA256, base64url without padding.

use auth_crypto::jwt::{JwtError, encode_signed_path, verify_access_token, verify_signed_path};
use serde_json::{Value, json};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn ha_example() -> Value {
    json!({
        "iss": "07d489bbc4a040249d76fdf5fb9b45ac",
        "path": "/api/x",
        "params": [["a", "1"]],
        "iat": 1_795_299_487,
        "exp": 1_795_299_517
    })
}

const HA_EXAMPLE_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiIwN2Q0ODliYmM0YTA0MDI0OWQ3NmZkZjVmYjliNDVhYyIsInBhdGgiOiIvYXBpL3giLCJwYXJhbXMiOltbImEiLCIxIl1dLCJpYXQiOjE3OTUyOTk0ODcsImV4cCI6MTc5NTI5OTUxN30.9Wk0n6qH9k22BfQlOeJyJ5dHY6cFC0lTwINJlDhYK8s";

#[test]
fn key_is_128_bytes() {
    assert_eq!(KEY.len(), 128);
}

#[test]
fn ha_example_encodes_like_pyjwt() {
    assert_eq!(encode_signed_path(&ha_example(), KEY), HA_EXAMPLE_TOKEN);
}

#[test]
fn non_ascii_is_escaped_like_python() {
    let payload = json!({
        "iss": "07d489bbc4a040249d76fdf5fb9b45ac",
        "path": "/api/caméra/😀",
        "params": [["q", "ä b"], ["z", "/"]],
        "iat": 1_795_299_487,
        "exp": 1_795_299_517
    });
    let expected = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiIwN2Q0ODliYmM0YTA0MDI0OWQ3NmZkZjVmYjliNDVhYyIsInBhdGgiOiIvYXBpL2NhbVx1MDBlOXJhL1x1ZDgzZFx1ZGUwMCIsInBhcmFtcyI6W1sicSIsIlx1MDBlNCBiIl0sWyJ6IiwiLyJdXSwiaWF0IjoxNzk1Mjk5NDg3LCJleHAiOjE3OTUyOTk1MTd9.7AMQI6zKGHjhV3vKuW17oXxwuxe6tC1fYh6xhZy6L3c";
    assert_eq!(encode_signed_path(&payload, KEY), expected);
    assert_eq!(
        verify_signed_path(expected, KEY, 1_795_299_487),
        Ok(payload)
    );
}

#[test]
fn roundtrip_keeps_payload_and_key_order() {
    let payload = verify_signed_path(HA_EXAMPLE_TOKEN, KEY, 1_795_299_487).unwrap();
    assert_eq!(payload, ha_example());
    let keys: Vec<&str> = payload
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["iss", "path", "params", "iat", "exp"]);
}

#[test]
fn no_leeway() {
    let v = |now| verify_signed_path(HA_EXAMPLE_TOKEN, KEY, now);
    // exp: rejected iff exp <= now (PyJWT: exp <= now - leeway, leeway 0).
    assert!(v(1_795_299_516).is_ok());
    assert_eq!(v(1_795_299_517), Err(JwtError::Expired));
    assert_eq!(v(1_795_299_527), Err(JwtError::Expired));
    // iat: rejected iff iat > now.
    assert!(v(1_795_299_487).is_ok());
    assert_eq!(v(1_795_299_486), Err(JwtError::NotYetValid));
}

#[test]
fn issuer_is_not_checked_but_time_claims_are_required() {
    let no_iss = json!({"path": "/api/x", "params": [], "iat": 100, "exp": 200});
    let token = encode_signed_path(&no_iss, KEY);
    assert_eq!(verify_signed_path(&token, KEY, 150), Ok(no_iss));
    let no_exp = json!({"iss": "x", "path": "/", "params": [], "iat": 100});
    let token = encode_signed_path(&no_exp, KEY);
    assert_eq!(
        verify_signed_path(&token, KEY, 150),
        Err(JwtError::MissingClaim("exp"))
    );
    let no_iat = json!({"iss": "x", "path": "/", "params": [], "exp": 200});
    let token = encode_signed_path(&no_iat, KEY);
    assert_eq!(
        verify_signed_path(&token, KEY, 150),
        Err(JwtError::MissingClaim("iat"))
    );
}

#[test]
fn wrong_key_or_tampering() {
    assert_eq!(
        verify_signed_path(HA_EXAMPLE_TOKEN, b"another secret", 1_795_299_487),
        Err(JwtError::BadSignature)
    );
    let mut other = ha_example();
    other["path"] = json!("/api/y");
    let resigned = encode_signed_path(&other, b"another secret");
    let (_, foreign_payload_sig) = resigned.split_once('.').unwrap();
    let (header, _) = HA_EXAMPLE_TOKEN.split_once('.').unwrap();
    let spliced = format!("{header}.{foreign_payload_sig}");
    assert_eq!(
        verify_signed_path(&spliced, KEY, 1_795_299_487),
        Err(JwtError::BadSignature)
    );
    assert_eq!(
        verify_signed_path(HA_EXAMPLE_TOKEN, b"", 1_795_299_487),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn access_token_rules_differ_only_in_leeway_and_issuer() {
    // A signed-path token is a valid HS256 JWT; as an access token its 10 s leeway applies.
    let payload = verify_access_token(
        HA_EXAMPLE_TOKEN,
        KEY,
        "07d489bbc4a040249d76fdf5fb9b45ac",
        1_795_299_526,
    )
    .unwrap();
    assert_eq!(payload.exp, 1_795_299_517);
    assert_eq!(
        verify_signed_path(HA_EXAMPLE_TOKEN, KEY, 1_795_299_526),
        Err(JwtError::Expired)
    );
}
