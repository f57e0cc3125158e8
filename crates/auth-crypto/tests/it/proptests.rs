//! Property tests: the token parsers never panic, and encoding round-trips.

use auth_crypto::jwt::{
    AccessClaims, encode_access_token, unverified_issuer, verify_access_token, verify_signed_path,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(token in any::<String>(), key in any::<Vec<u8>>(), now in any::<i64>()) {
        let _ = unverified_issuer(&token);
        prop_assert!(verify_access_token(&token, &key, "iss", now).is_err());
        prop_assert!(verify_signed_path(&token, &key, now).is_err());
    }

    #[test]
    fn jwt_shaped_strings_never_panic(
        token in "[A-Za-z0-9_=+/-]{0,60}(\\.[A-Za-z0-9_=+/-]{0,60}){0,4}",
        now in any::<i64>(),
    ) {
        let _ = unverified_issuer(&token);
        let _ = verify_access_token(&token, b"k", "iss", now);
        let _ = verify_signed_path(&token, b"k", now);
    }

    #[test]
    fn encode_then_verify_roundtrips(
        iss in "\\PC{1,40}",
        iat in -1_000_000_000_000i64..1_000_000_000_000,
        lifetime in 0i64..1_000_000_000,
        key in proptest::collection::vec(any::<u8>(), 1..200),
    ) {
        let claims = AccessClaims { iss: iss.clone(), iat, exp: iat + lifetime };
        let token = encode_access_token(&claims, &key);
        prop_assert!(token.is_ascii());
        prop_assert_eq!(unverified_issuer(&token), Some(iss.clone()));
        prop_assert_eq!(verify_access_token(&token, &key, &iss, iat), Ok(claims));
    }
}

mod against_ha_tokens {
    //! Properties over a real token Home Assistant issued, and its key.

    use auth_crypto::jwt::{JwtError, MAX_TOKEN_LEN, verify_access_token};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey};
    use proptest::prelude::*;

    use crate::jwt_ha::owner_2026;

    fn hs256(header: &str, payload: &str, key: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig = jsonwebtoken::crypto::sign(
            input.as_bytes(),
            &EncodingKey::from_secret(key),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{input}.{sig}")
    }

    fn decoded(token: &str) -> Option<Vec<Vec<u8>>> {
        token
            .split('.')
            .map(|part| URL_SAFE_NO_PAD.decode(part).ok())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the header names (none, other HMACs, asymmetric algorithms, case or space
        /// variants, non-strings), only "HS256" verifies, even over a valid HS256 signature.
        #[test]
        fn only_hs256_verifies(alg in prop_oneof![
            Just("\"none\"".to_owned()), Just("\"None\"".to_owned()), Just("\"HS384\"".to_owned()),
            Just("\"HS512\"".to_owned()), Just("\"RS256\"".to_owned()), Just("\"ES256\"".to_owned()),
            Just("\"PS256\"".to_owned()), Just("\"EdDSA\"".to_owned()), Just("\"hs256\"".to_owned()),
            Just("\"HS256\\u0000\"".to_owned()), Just("null".to_owned()), Just("256".to_owned()),
            Just("[\"HS256\"]".to_owned()), Just("{}".to_owned()),
            "\"[A-Za-z0-9 ]{0,8}\"",
        ]) {
            let t = owner_2026();
            let header = format!("{{\"alg\":{alg},\"typ\":\"JWT\"}}");
            let token = hs256(&header, &t.payload_json, t.key());
            let result = verify_access_token(&token, t.key(), &t.refresh_token_id, t.iat);
            if alg == "\"HS256\"" {
                prop_assert!(result.is_ok());
            } else {
                prop_assert!(result.is_err(), "alg {} verified", alg);
            }
        }

        /// Tokens longer than the limit are refused as too long, whatever they hold.
        #[test]
        fn huge_tokens_are_refused(extra in 1usize..200_000, fill in "[A-Za-z0-9_.-]") {
            let t = owner_2026();
            let token = format!("{}{}", t.jwt, fill.repeat(MAX_TOKEN_LEN + extra - t.jwt.len()));
            prop_assert_eq!(
                verify_access_token(&token, t.key(), &t.refresh_token_id, t.iat),
                Err(JwtError::TooLong)
            );
        }

        /// One character of a valid token changed (to anything, base64 or not): refused,
        /// unless the three parts still decode to exactly the same bytes.
        #[test]
        fn mutated_tokens_are_refused(at in any::<prop::sample::Index>(), to in any::<char>()) {
            let t = owner_2026();
            let mut chars: Vec<char> = t.jwt.chars().collect();
            let i = at.index(chars.len());
            prop_assume!(chars[i] != to);
            chars[i] = to;
            let token: String = chars.into_iter().collect();
            let result = verify_access_token(&token, t.key(), &t.refresh_token_id, t.iat);
            if result.is_ok() {
                prop_assert_eq!(decoded(&token), decoded(&t.jwt), "a different token verified");
            }
        }

        /// Claims of any JSON type under a valid signature never panic the verifier; nothing
        /// verifies without the right issuer and a valid expiry. (Like PyJWT, any numeric `iat`
        /// not in the future is accepted.)
        #[test]
        fn any_claims_never_panic(
            iss in prop_oneof![Just("\"ISS\"".to_owned()), Just("null".to_owned()), Just("7".to_owned()), Just("[]".to_owned())],
            iat in prop_oneof![Just("0".to_owned()), Just("\"0\"".to_owned()), Just("1e400".to_owned()), Just("-9223372036854775809".to_owned()), Just("1.5".to_owned()), Just("null".to_owned())],
            exp in prop_oneof![Just("9999999999".to_owned()), Just("\"9\"".to_owned()), Just("1e400".to_owned()), Just("18446744073709551616".to_owned()), Just("{}".to_owned())],
        ) {
            let t = owner_2026();
            let iss = iss.replace("ISS", &t.refresh_token_id);
            let payload = format!("{{\"iss\":{iss},\"iat\":{iat},\"exp\":{exp}}}");
            let token = hs256(r#"{"alg":"HS256","typ":"JWT"}"#, &payload, t.key());
            let result = verify_access_token(&token, t.key(), &t.refresh_token_id, 1);
            let right_iss_and_exp = iss.contains(&t.refresh_token_id)
                && matches!(exp.as_str(), "9999999999" | "18446744073709551616");
            if result.is_ok() {
                prop_assert!(right_iss_and_exp, "payload {} verified", payload);
            }
            if right_iss_and_exp && matches!(iat.as_str(), "0" | "1.5") {
                prop_assert!(result.is_ok(), "payload {} refused", payload);
            }
        }
    }
}
