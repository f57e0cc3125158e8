//! Access tokens Home Assistant would reject, built from an HA-issued token and its key.

use auth_crypto::jwt::{
    JwtError, MAX_TOKEN_LEN, encode_signed_path, unverified_issuer, verify_access_token,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

use crate::jwt_ha::{HaToken, owner_2026};

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// A token with any header and payload text, signed with `alg` (HMAC family).
fn sign_raw(header: &str, payload: &str, key: &[u8], alg: Algorithm) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(payload));
    let sig = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_secret(key),
        alg,
    )
    .unwrap();
    format!("{signing_input}.{sig}")
}

const HS256_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn verify(t: &HaToken, token: &str) -> Result<auth_crypto::AccessClaims, JwtError> {
    verify_access_token(token, t.key(), &t.refresh_token_id, t.iat)
}

/// A payload like HA's for `t`, with changes; signed with HS256 and `t`'s key.
fn with_payload(t: &HaToken, payload: serde_json::Value) -> String {
    encode_signed_path(&payload, t.key())
}

fn base_payload(t: &HaToken) -> serde_json::Value {
    json!({"iss": t.refresh_token_id, "iat": t.iat, "exp": t.exp})
}

#[test]
fn helper_reproduces_the_ha_token() {
    let t = owner_2026();
    assert_eq!(
        sign_raw(HS256_HEADER, &t.payload_json, t.key(), Algorithm::HS256),
        t.jwt
    );
    assert_eq!(with_payload(&t, base_payload(&t)), t.jwt);
}

#[test]
fn wrong_key() {
    let t = owner_2026();
    assert_eq!(
        verify_access_token(&t.jwt, b"not the key", &t.refresh_token_id, t.iat),
        Err(JwtError::BadSignature)
    );
    let mut key = t.jwt_key.clone().into_bytes();
    key[127] ^= 1;
    assert_eq!(
        verify_access_token(&t.jwt, &key, &t.refresh_token_id, t.iat),
        Err(JwtError::BadSignature)
    );
    // An empty key never verifies, not even a token signed with it.
    let empty = sign_raw(HS256_HEADER, &t.payload_json, b"", Algorithm::HS256);
    assert_eq!(
        verify_access_token(&empty, b"", &t.refresh_token_id, t.iat),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn tampered_payload_or_signature() {
    let t = owner_2026();
    let parts: Vec<&str> = t.jwt.split('.').collect();
    let longer = t
        .payload_json
        .replace(&t.exp.to_string(), &(t.exp + 3600).to_string());
    let tampered = format!("{}.{}.{}", parts[0], b64(&longer), parts[2]);
    assert_eq!(verify(&t, &tampered), Err(JwtError::BadSignature));
    let other_iss = t
        .payload_json
        .replace(&t.refresh_token_id, "0da87881ddf24ee7a3dcbd4e8f290c4d");
    let tampered = format!("{}.{}.{}", parts[0], b64(&other_iss), parts[2]);
    assert_eq!(
        verify_access_token(
            &tampered,
            t.key(),
            "0da87881ddf24ee7a3dcbd4e8f290c4d",
            t.iat
        ),
        Err(JwtError::BadSignature)
    );
    // Signature of a different token, and a truncated signature.
    let other = with_payload(
        &t,
        json!({"iss": t.refresh_token_id, "iat": t.iat, "exp": t.exp + 1}),
    );
    let foreign_sig = other.rsplit_once('.').unwrap().1;
    let swapped = format!("{}.{}.{foreign_sig}", parts[0], parts[1]);
    assert_eq!(verify(&t, &swapped), Err(JwtError::BadSignature));
    let short = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..40]);
    assert_eq!(verify(&t, &short), Err(JwtError::BadSignature));
    let none = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(verify(&t, &none), Err(JwtError::BadSignature));
}

#[test]
fn expired_and_not_yet_valid() {
    let t = owner_2026();
    assert_eq!(
        verify_access_token(&t.jwt, t.key(), &t.refresh_token_id, t.exp + 11),
        Err(JwtError::Expired)
    );
    assert_eq!(
        verify_access_token(&t.jwt, t.key(), &t.refresh_token_id, t.exp + 9).map(|c| c.exp),
        Ok(t.exp)
    );
    // iat more than 10 s in the future.
    let future = with_payload(
        &t,
        json!({"iss": t.refresh_token_id, "iat": t.iat + 11, "exp": t.exp}),
    );
    assert_eq!(verify(&t, &future), Err(JwtError::NotYetValid));
    let near = with_payload(
        &t,
        json!({"iss": t.refresh_token_id, "iat": t.iat + 10, "exp": t.exp}),
    );
    assert_eq!(verify(&t, &near).map(|c| c.iat), Ok(t.iat + 10));
    // nbf
    let nbf = with_payload(
        &t,
        json!({"iss": t.refresh_token_id, "iat": t.iat, "exp": t.exp, "nbf": t.iat + 11}),
    );
    assert_eq!(verify(&t, &nbf), Err(JwtError::NotYetValid));
    let nbf_ok = with_payload(
        &t,
        json!({"iss": t.refresh_token_id, "iat": t.iat, "exp": t.exp, "nbf": t.iat + 10}),
    );
    assert!(verify(&t, &nbf_ok).is_ok());
    // lifespan 0 (an LLAT with lifespan=0 days): only valid within the leeway.
    let zero = with_payload(
        &t,
        json!({"iss": t.refresh_token_id, "iat": t.iat, "exp": t.iat}),
    );
    assert!(verify_access_token(&zero, t.key(), &t.refresh_token_id, t.iat + 9).is_ok());
    assert_eq!(
        verify_access_token(&zero, t.key(), &t.refresh_token_id, t.iat + 10),
        Err(JwtError::Expired)
    );
}

#[test]
fn alg_none_is_rejected() {
    let t = owner_2026();
    let header = r#"{"alg":"none","typ":"JWT"}"#;
    let unsigned = format!("{}.{}.", b64(header), b64(&t.payload_json));
    assert_eq!(verify(&t, &unsigned), Err(JwtError::WrongAlgorithm));
    // Even with a signature that would verify as HS256.
    let signed = sign_raw(header, &t.payload_json, t.key(), Algorithm::HS256);
    assert_eq!(verify(&t, &signed), Err(JwtError::WrongAlgorithm));
}

#[test]
fn other_algorithms_are_rejected() {
    let t = owner_2026();
    for (alg_name, alg) in [("HS512", Algorithm::HS512), ("HS384", Algorithm::HS384)] {
        let header = format!(r#"{{"alg":"{alg_name}","typ":"JWT"}}"#);
        let resigned = sign_raw(&header, &t.payload_json, t.key(), alg);
        assert_eq!(
            verify(&t, &resigned),
            Err(JwtError::WrongAlgorithm),
            "{alg_name}"
        );
    }
    // A header naming another algorithm over an HS256 signature (algorithm confusion).
    for header in [
        r#"{"alg":"RS256","typ":"JWT"}"#,
        r#"{"alg":"hs256","typ":"JWT"}"#,
        r#"{"alg":"HS256 ","typ":"JWT"}"#,
        r#"{"alg":["HS256"],"typ":"JWT"}"#,
        r#"{"alg":null,"typ":"JWT"}"#,
        r#"{"typ":"JWT"}"#,
    ] {
        let token = sign_raw(header, &t.payload_json, t.key(), Algorithm::HS256);
        assert_eq!(
            verify(&t, &token),
            Err(JwtError::WrongAlgorithm),
            "{header}"
        );
    }
    // An HS512 signature under an HS256 header.
    let hs512 = sign_raw(HS256_HEADER, &t.payload_json, t.key(), Algorithm::HS512);
    assert_eq!(verify(&t, &hs512), Err(JwtError::BadSignature));
}

#[test]
fn header_variations_pyjwt_accepts() {
    let t = owner_2026();
    // PyJWT does not look at `typ` or the key order of the header.
    for header in [
        r#"{"alg":"HS256"}"#,
        r#"{"typ":"JWT","alg":"HS256"}"#,
        r#"{"alg":"HS256","typ":"at+jwt","kid":"k"}"#,
    ] {
        let token = sign_raw(header, &t.payload_json, t.key(), Algorithm::HS256);
        assert_eq!(verify(&t, &token), Ok(t.claims()), "{header}");
    }
    let bad_kid = sign_raw(
        r#"{"alg":"HS256","kid":7}"#,
        &t.payload_json,
        t.key(),
        Algorithm::HS256,
    );
    assert_eq!(verify(&t, &bad_kid), Err(JwtError::Malformed));
}

#[test]
fn too_long() {
    let t = owner_2026();
    let padding = "A".repeat(MAX_TOKEN_LEN + 1 - t.jwt.len());
    let long = format!("{}{padding}", t.jwt);
    assert_eq!(long.len(), MAX_TOKEN_LEN + 1);
    assert_eq!(verify(&t, &long), Err(JwtError::TooLong));
    assert_eq!(unverified_issuer(&long), None);
    // A signed token with a long but allowed payload still verifies...
    let filler = "x".repeat(5000);
    let big = with_payload(
        &t,
        json!({"iss": t.refresh_token_id, "iat": t.iat, "exp": t.exp, "x": filler}),
    );
    assert!(big.len() <= MAX_TOKEN_LEN);
    assert!(verify(&t, &big).is_ok());
    // ...and one just over the limit does not, whatever its signature.
    let filler = "x".repeat(6500);
    let huge = with_payload(
        &t,
        json!({"iss": t.refresh_token_id, "iat": t.iat, "exp": t.exp, "x": filler}),
    );
    assert!(huge.len() > MAX_TOKEN_LEN);
    assert_eq!(verify(&t, &huge), Err(JwtError::TooLong));
}

#[test]
fn malformed_tokens() {
    let t = owner_2026();
    let parts: Vec<&str> = t.jwt.split('.').collect();
    for bad in [
        String::new(),
        ".".to_owned(),
        "..".to_owned(),
        "abc".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[2]),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        format!("{}.{}*.{}", parts[0], parts[1], parts[2]),
        format!("{}+.{}.{}", parts[0], parts[1], parts[2]),
        // Standard-alphabet base64 is not base64url.
        format!("{}.{}.+{}", parts[0], parts[1], &parts[2][1..]),
        format!(" {}", t.jwt),
        format!("Bearer {}", t.jwt),
        format!("{}.{}.{}", b64("not json"), parts[1], parts[2]),
        format!("{}.{}.{}", b64("[]"), parts[1], parts[2]),
    ] {
        assert_eq!(verify(&t, &bad), Err(JwtError::Malformed), "{bad:?}");
        assert_eq!(unverified_issuer(&bad), None, "{bad:?}");
    }
    // A correctly signed payload that is not a JSON object.
    for payload in ["[1,2]", "\"str\"", "42", "not json"] {
        let token = sign_raw(HS256_HEADER, payload, t.key(), Algorithm::HS256);
        assert_eq!(verify(&t, &token), Err(JwtError::Malformed), "{payload}");
        assert_eq!(unverified_issuer(&token), None);
    }
}

#[test]
fn missing_or_invalid_time_claims() {
    let t = owner_2026();
    let iss = &t.refresh_token_id;
    let cases = [
        (
            json!({"iss": iss, "iat": t.iat}),
            JwtError::MissingClaim("exp"),
        ),
        (
            json!({"iss": iss, "exp": t.exp}),
            JwtError::MissingClaim("iat"),
        ),
        (json!({"iss": iss}), JwtError::MissingClaim("exp")),
        (
            json!({"iss": iss, "iat": null, "exp": t.exp}),
            JwtError::MissingClaim("iat"),
        ),
        (
            json!({"iss": iss, "iat": t.iat, "exp": t.exp.to_string()}),
            JwtError::InvalidClaim("exp"),
        ),
        (
            json!({"iss": iss, "iat": [t.iat], "exp": t.exp}),
            JwtError::InvalidClaim("iat"),
        ),
        (
            json!({"iss": iss, "iat": t.iat, "exp": t.exp, "nbf": "0"}),
            JwtError::InvalidClaim("nbf"),
        ),
    ];
    for (payload, expected) in cases {
        assert_eq!(
            verify(&t, &with_payload(&t, payload.clone())),
            Err(expected),
            "{payload}"
        );
    }
}

#[test]
fn float_time_claims_are_truncated_like_python_int() {
    let t = owner_2026();
    let token = with_payload(
        &t,
        json!({"iss": t.refresh_token_id, "iat": t.iat as f64, "exp": t.exp as f64 + 0.75}),
    );
    assert_eq!(verify(&t, &token), Ok(t.claims()));
}

#[test]
fn audience_present() {
    let t = owner_2026();
    for aud in [json!("hass"), json!(["a"]), json!(1), json!(true)] {
        let token = with_payload(
            &t,
            json!({"iss": t.refresh_token_id, "iat": t.iat, "exp": t.exp, "aud": aud}),
        );
        assert_eq!(verify(&t, &token), Err(JwtError::HasAudience), "{aud}");
    }
    // Empty audiences are ignored, as PyJWT does.
    for aud in [json!(""), json!([]), json!(null)] {
        let token = with_payload(
            &t,
            json!({"iss": t.refresh_token_id, "iat": t.iat, "exp": t.exp, "aud": aud}),
        );
        assert_eq!(verify(&t, &token), Ok(t.claims()), "{aud}");
    }
}

#[test]
fn sub_and_jti_must_be_strings() {
    let t = owner_2026();
    let ok = with_payload(
        &t,
        json!({"iss": t.refresh_token_id, "iat": t.iat, "exp": t.exp, "sub": "u", "jti": "j"}),
    );
    assert_eq!(verify(&t, &ok), Ok(t.claims()));
    let sub = with_payload(
        &t,
        json!({"iss": t.refresh_token_id, "iat": t.iat, "exp": t.exp, "sub": 1}),
    );
    assert_eq!(verify(&t, &sub), Err(JwtError::InvalidClaim("sub")));
    let jti = with_payload(
        &t,
        json!({"iss": t.refresh_token_id, "iat": t.iat, "exp": t.exp, "jti": {}}),
    );
    assert_eq!(verify(&t, &jti), Err(JwtError::InvalidClaim("jti")));
}

#[test]
fn wrong_issuer() {
    let t = owner_2026();
    assert_eq!(
        verify_access_token(&t.jwt, t.key(), "0da87881ddf24ee7a3dcbd4e8f290c4d", t.iat),
        Err(JwtError::WrongIssuer)
    );
    assert_eq!(
        verify_access_token(&t.jwt, t.key(), "", t.iat),
        Err(JwtError::WrongIssuer)
    );
    let no_iss = with_payload(&t, json!({"iat": t.iat, "exp": t.exp}));
    assert_eq!(verify(&t, &no_iss), Err(JwtError::MissingClaim("iss")));
    assert_eq!(unverified_issuer(&no_iss), None);
    let numeric = with_payload(&t, json!({"iss": 5, "iat": t.iat, "exp": t.exp}));
    assert_eq!(
        verify_access_token(&numeric, t.key(), "5", t.iat),
        Err(JwtError::WrongIssuer)
    );
    assert_eq!(unverified_issuer(&numeric), None);
}

#[test]
fn unverified_issuer_ignores_signature_and_time() {
    let t = owner_2026();
    let parts: Vec<&str> = t.jwt.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(r#"{"iss":"someone","exp":0}"#),
        parts[2]
    );
    assert_eq!(unverified_issuer(&forged).as_deref(), Some("someone"));
    let none_alg = format!("{}.{}.", b64(r#"{"alg":"none"}"#), parts[1]);
    assert_eq!(
        unverified_issuer(&none_alg).as_deref(),
        Some(t.refresh_token_id.as_str())
    );
}
