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
