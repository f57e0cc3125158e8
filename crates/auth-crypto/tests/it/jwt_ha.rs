//! Access tokens issued by real Home Assistant (`tests/fixtures/ha-access-tokens.json`).

use auth_crypto::jwt::{
    AccessClaims, JwtError, encode_access_token, unverified_issuer, verify_access_token,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::fixture;

/// One HA-issued access token with the key of its refresh token.
pub struct HaToken {
    pub ha_version: String,
    pub refresh_token_id: String,
    pub jwt_key: String,
    pub jwt: String,
    pub iat: i64,
    pub exp: i64,
    pub header_json: String,
    pub payload_json: String,
}

impl HaToken {
    pub fn claims(&self) -> AccessClaims {
        AccessClaims {
            iss: self.refresh_token_id.clone(),
            iat: self.iat,
            exp: self.exp,
        }
    }

    pub fn key(&self) -> &[u8] {
        self.jwt_key.as_bytes()
    }
}

pub fn ha_tokens() -> Vec<HaToken> {
    let data = fixture("ha-access-tokens.json");
    let tokens: Vec<HaToken> = data["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| HaToken {
            ha_version: t["ha_version"].as_str().unwrap().to_owned(),
            refresh_token_id: t["refresh_token_id"].as_str().unwrap().to_owned(),
            jwt_key: t["jwt_key"].as_str().unwrap().to_owned(),
            jwt: t["jwt"].as_str().unwrap().to_owned(),
            iat: t["iat"].as_i64().unwrap(),
            exp: t["exp"].as_i64().unwrap(),
            header_json: t["header_json"].as_str().unwrap().to_owned(),
            payload_json: t["payload_json"].as_str().unwrap().to_owned(),
        })
        .collect();
    assert_eq!(tokens.len(), 22);
    assert!(tokens.iter().any(|t| t.ha_version == "2024.3.3"));
    assert!(tokens.iter().any(|t| t.ha_version == "2026.2.3"));
    tokens
}

/// The owner's first token from HA 2026.2.3, the one `FIXTURE.md` decodes.
pub fn owner_2026() -> HaToken {
    ha_tokens()
        .into_iter()
        .find(|t| t.refresh_token_id == "cca0df8ae6eb45cbb8e70fc65c82f5a3")
        .unwrap()
}

#[test]
fn every_ha_token_verifies_at_its_iat() {
    for t in ha_tokens() {
        assert_eq!(
            verify_access_token(&t.jwt, t.key(), &t.refresh_token_id, t.iat),
            Ok(t.claims()),
            "{} {}",
            t.ha_version,
            t.refresh_token_id
        );
    }
}

#[test]
fn reencoding_reproduces_ha_bytes() {
    for t in ha_tokens() {
        assert_eq!(
            encode_access_token(&t.claims(), t.key()),
            t.jwt,
            "{}",
            t.refresh_token_id
        );
        let mut parts = t.jwt.split('.');
        let header = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        let payload = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        assert_eq!(header, t.header_json.as_bytes());
        assert_eq!(payload, t.payload_json.as_bytes());
    }
}

#[test]
fn documented_example_decodes() {
    let t = owner_2026();
    assert_eq!(t.header_json, r#"{"alg":"HS256","typ":"JWT"}"#);
    assert_eq!(
        t.payload_json,
        r#"{"iss":"cca0df8ae6eb45cbb8e70fc65c82f5a3","iat":1795303495,"exp":1795305295}"#
    );
    assert_eq!(t.exp - t.iat, 1800);
}

#[test]
fn unverified_issuer_of_ha_tokens() {
    for t in ha_tokens() {
        assert_eq!(
            unverified_issuer(&t.jwt).as_deref(),
            Some(t.refresh_token_id.as_str())
        );
    }
}

#[test]
fn ha_offline_validation_time_is_accepted() {
    // HA itself re-validated the 2026.2.3 tokens at this Unix time (fixture.json).
    for t in ha_tokens()
        .into_iter()
        .filter(|t| t.ha_version == "2026.2.3")
    {
        assert!(verify_access_token(&t.jwt, t.key(), &t.refresh_token_id, 1_795_303_506).is_ok());
    }
}

#[test]
fn leeway_boundaries_on_ha_tokens() {
    for t in ha_tokens() {
        let v = |now: i64| verify_access_token(&t.jwt, t.key(), &t.refresh_token_id, now);
        // exp: rejected iff exp <= now - 10
        assert_eq!(v(t.exp), Ok(t.claims()));
        assert_eq!(v(t.exp + 9), Ok(t.claims()));
        assert_eq!(v(t.exp + 10), Err(JwtError::Expired));
        assert_eq!(v(t.exp + 11), Err(JwtError::Expired));
        // iat: rejected iff iat > now + 10
        assert_eq!(v(t.iat - 10), Ok(t.claims()));
        assert_eq!(v(t.iat - 11), Err(JwtError::NotYetValid));
    }
}

#[test]
fn key_is_the_ascii_text_of_jwt_key() {
    let t = owner_2026();
    let decoded = hex::decode(&t.jwt_key).unwrap();
    assert_eq!(
        verify_access_token(&t.jwt, &decoded, &t.refresh_token_id, t.iat),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn keys_of_other_refresh_tokens_do_not_verify() {
    let tokens = ha_tokens();
    let t = &tokens[0];
    for other in tokens.iter().filter(|o| o.jwt_key != t.jwt_key) {
        assert_eq!(
            verify_access_token(&t.jwt, other.key(), &t.refresh_token_id, t.iat),
            Err(JwtError::BadSignature)
        );
    }
}
