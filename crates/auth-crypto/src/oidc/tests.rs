use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

const RSA1: &[u8] = include_bytes!("rsa1.der");
const RSA2: &[u8] = include_bytes!("rsa2.der");
const EC1: &[u8] = include_bytes!("ec1.der");
const NOW: i64 = 1_800_000_000;

fn jwks() -> Value {
    serde_json::from_str(include_str!("jwks.json")).unwrap()
}

fn expect() -> IdTokenExpectations<'static> {
    IdTokenExpectations {
        issuer: "http://127.0.0.1:4000",
        client_id: "hass",
        nonce: "n-0S6_WzA2Mj",
        now: NOW,
        leeway: 60,
    }
}

fn claims() -> Value {
    json!({
        "iss": "http://127.0.0.1:4000",
        "sub": "alice-sub",
        "aud": "hass",
        "exp": NOW + 300,
        "iat": NOW,
        "nonce": "n-0S6_WzA2Mj",
        "preferred_username": "alice",
    })
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn rs(kid: &str, claims: &Value) -> String {
    sign(
        Algorithm::RS256,
        Some(kid),
        &EncodingKey::from_rsa_der(RSA1),
        claims,
    )
}

fn with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

#[test]
fn a_good_rs256_token_verifies_and_gives_its_claims() {
    let claims = verify_id_token(&rs("rsa1", &claims()), &jwks(), &expect()).unwrap();
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["sub"], "alice-sub");
}

#[test]
fn es256_verifies_with_or_without_a_kid() {
    let key = EncodingKey::from_ec_der(EC1);
    let token = sign(Algorithm::ES256, Some("ec1"), &key, &claims());
    assert!(verify_id_token(&token, &jwks(), &expect()).is_ok());
    let token = sign(Algorithm::ES256, None, &key, &claims());
    assert!(verify_id_token(&token, &jwks(), &expect()).is_ok());
}

#[test]
fn a_token_signed_by_another_key_under_a_known_kid_is_refused() {
    // Re-signed: the attacker's key (rsa2's private key) claims to be rsa1.
    let token = sign(
        Algorithm::RS256,
        Some("rsa1"),
        &EncodingKey::from_rsa_der(RSA2),
        &claims(),
    );
    assert_eq!(
        verify_id_token(&token, &jwks(), &expect()),
        Err(IdTokenError::BadSignature)
    );
    // A payload changed after signing.
    let good = rs("rsa1", &claims());
    let parts: Vec<&str> = good.split('.').collect();
    let other = rs("rsa1", &with(json!({"preferred_username": "mallory"})));
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert_eq!(
        verify_id_token(&forged, &jwks(), &expect()),
        Err(IdTokenError::BadSignature)
    );
}

#[test]
fn an_unknown_kid_asks_for_a_refetch() {
    let token = rs("rotated", &claims());
    assert_eq!(
        verify_id_token(&token, &jwks(), &expect()),
        Err(IdTokenError::UnknownKey(Some("rotated".to_owned())))
    );
    assert_eq!(id_token_key_id(&token), Ok(Some("rotated".to_owned())));
}

#[test]
fn alg_none_and_hmac_with_the_public_key_are_refused() {
    use base64::Engine as _;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "rsa1"})),
        b64(&claims())
    );
    assert_eq!(
        verify_id_token(&none, &jwks(), &expect()),
        Err(IdTokenError::Malformed)
    );
    // HS256 keyed with the RSA key's public modulus (the classic confusion attack).
    let n = jwks()["keys"][0]["n"].as_str().unwrap().to_owned();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let token = sign(
            alg,
            Some("rsa1"),
            &EncodingKey::from_secret(n.as_bytes()),
            &claims(),
        );
        assert!(
            matches!(
                verify_id_token(&token, &jwks(), &expect()),
                Err(IdTokenError::AlgorithmNotAllowed(_))
            ),
            "{alg:?}"
        );
    }
    // An RS key offered for an ES token (kid of an RSA key) does not fit.
    let token = sign(
        Algorithm::ES256,
        Some("rsa1"),
        &EncodingKey::from_ec_der(EC1),
        &claims(),
    );
    assert_eq!(
        verify_id_token(&token, &jwks(), &expect()),
        Err(IdTokenError::UnknownKey(Some("rsa1".to_owned())))
    );
}

#[test]
fn issuer_audience_and_azp_are_checked() {
    let cases = [
        (
            json!({"iss": "http://127.0.0.1:4001"}),
            IdTokenError::WrongIssuer,
        ),
        (json!({"iss": null}), IdTokenError::MissingClaim("iss")),
        (json!({"aud": "other-client"}), IdTokenError::WrongAudience),
        (
            json!({"aud": ["other", "hass"]}),
            IdTokenError::WrongAudience,
        ),
        (
            json!({"aud": ["other", "hass"], "azp": "other"}),
            IdTokenError::WrongAudience,
        ),
        (json!({"azp": "other"}), IdTokenError::WrongAudience),
        (json!({"aud": null}), IdTokenError::MissingClaim("aud")),
    ];
    for (change, error) in cases {
        let token = rs("rsa1", &with(change.clone()));
        assert_eq!(
            verify_id_token(&token, &jwks(), &expect()),
            Err(error),
            "{change}"
        );
    }
    let token = rs(
        "rsa1",
        &with(json!({"aud": ["other", "hass"], "azp": "hass"})),
    );
    assert!(verify_id_token(&token, &jwks(), &expect()).is_ok());
}

#[test]
fn expiry_issued_at_and_not_before_use_the_leeway() {
    let at = |now: i64, c: Value| {
        let e = IdTokenExpectations { now, ..expect() };
        verify_id_token(&rs("rsa1", &with(c)), &jwks(), &e)
    };
    // exp = NOW + 300, leeway 60: accepted until NOW + 359, refused from NOW + 360.
    assert!(at(NOW + 359, json!({})).is_ok());
    assert_eq!(at(NOW + 360, json!({})), Err(IdTokenError::Expired));
    assert_eq!(
        at(NOW, json!({"exp": null})),
        Err(IdTokenError::MissingClaim("exp"))
    );
    assert_eq!(
        at(NOW, json!({"exp": "soon"})),
        Err(IdTokenError::MissingClaim("exp"))
    );
    assert!(at(NOW, json!({"iat": NOW + 60})).is_ok());
    assert_eq!(
        at(NOW, json!({"iat": NOW + 61})),
        Err(IdTokenError::NotYetValid)
    );
    assert_eq!(
        at(NOW, json!({"iat": null})),
        Err(IdTokenError::MissingClaim("iat"))
    );
    assert_eq!(
        at(NOW, json!({"nbf": NOW + 61})),
        Err(IdTokenError::NotYetValid)
    );
    assert!(at(NOW, json!({"nbf": NOW})).is_ok());
}

#[test]
fn the_nonce_must_be_the_one_sent() {
    let token = rs("rsa1", &with(json!({"nonce": "another"})));
    assert_eq!(
        verify_id_token(&token, &jwks(), &expect()),
        Err(IdTokenError::WrongNonce)
    );
    let token = rs("rsa1", &with(json!({"nonce": null})));
    assert_eq!(
        verify_id_token(&token, &jwks(), &expect()),
        Err(IdTokenError::MissingClaim("nonce"))
    );
}

#[test]
fn garbage_and_huge_tokens_are_errors_not_panics() {
    for token in ["", "a.b", "a.b.c", "....", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA"] {
        assert!(
            verify_id_token(token, &jwks(), &expect()).is_err(),
            "{token}"
        );
    }
    let huge = "a".repeat(MAX_ID_TOKEN_LEN + 1);
    assert_eq!(
        verify_id_token(&huge, &jwks(), &expect()),
        Err(IdTokenError::TooLong)
    );
    // A set that is not a set, or holds keys of unknown types, gives no key.
    let token = rs("rsa1", &claims());
    for set in [
        json!(null),
        json!({"keys": 3}),
        json!({"keys": [{"kty": "weird", "kid": "rsa1"}]}),
    ] {
        assert!(matches!(
            verify_id_token(&token, &set, &expect()),
            Err(IdTokenError::UnknownKey(_))
        ));
    }
}

#[test]
fn pkce_challenge_matches_rfc_7636_and_secrets_are_fresh() {
    // RFC 7636 appendix B.
    assert_eq!(
        pkce_s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    let verifier = new_pkce_verifier();
    assert_eq!(verifier.len(), 43);
    assert!(crate::pkce_s256_matches(
        &verifier,
        &pkce_s256_challenge(&verifier)
    ));
    assert_ne!(new_oidc_secret(), new_oidc_secret());
}
