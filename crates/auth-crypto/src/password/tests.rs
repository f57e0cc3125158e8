use super::*;

#[test]
fn policies() {
    assert_eq!(
        PasswordPolicy::owasp(),
        PasswordPolicy {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1
        }
    );
    assert_eq!(PasswordPolicy::default(), PasswordPolicy::owasp());
    assert!(PasswordPolicy::owasp().validate().is_ok());
    assert!(PasswordPolicy::fast_for_tests().validate().is_ok());
    for bad in [
        PasswordPolicy {
            memory_kib: 0,
            iterations: 1,
            parallelism: 1,
        },
        PasswordPolicy {
            memory_kib: 64,
            iterations: 0,
            parallelism: 1,
        },
        PasswordPolicy {
            memory_kib: 64,
            iterations: 1,
            parallelism: 0,
        },
        PasswordPolicy {
            memory_kib: 64,
            iterations: 1,
            parallelism: 16,
        },
        PasswordPolicy {
            memory_kib: MAX_MEMORY_KIB + 1,
            iterations: 1,
            parallelism: 1,
        },
        PasswordPolicy {
            memory_kib: 64,
            iterations: MAX_ITERATIONS + 1,
            parallelism: 1,
        },
    ] {
        assert!(
            matches!(bad.validate(), Err(PasswordError::InvalidPolicy(_))),
            "{bad:?}"
        );
        assert!(matches!(
            hash_password("pw", &bad),
            Err(PasswordError::InvalidPolicy(_))
        ));
    }
}

#[test]
fn bcrypt_input_cuts_at_72_bytes_even_inside_a_character() {
    assert_eq!(bcrypt_input(""), b"");
    assert_eq!(bcrypt_input("abc"), b"abc");
    let euros = "€".repeat(25); // 75 bytes
    assert_eq!(bcrypt_input(&euros), &euros.as_bytes()[..72]);
    let straddle = format!("{}é", "a".repeat(71)); // c3 is byte 72, a9 byte 73
    assert_eq!(bcrypt_input(&straddle).len(), 72);
    assert_eq!(bcrypt_input(&straddle)[71], 0xc3);
}

#[test]
fn dummy_phc_parses_with_the_policy_parameters() {
    for policy in [PasswordPolicy::fast_for_tests(), PasswordPolicy::owasp()] {
        let phc = dummy_argon2_phc(&policy);
        assert_eq!(hash_scheme(&phc), Some(HashScheme::Argon2id), "{phc}");
        assert!(!needs_rehash(&phc, &policy), "{phc}");
    }
    assert!(!verify_password("foo", &dummy_argon2_phc(&PasswordPolicy::fast_for_tests())).unwrap());
}

#[test]
fn classification() {
    assert!(matches!(
        parse_stored(""),
        Err(PasswordError::UnrecognisedHash)
    ));
    assert!(matches!(
        parse_stored("plain text"),
        Err(PasswordError::UnrecognisedHash)
    ));
    // A bare bcrypt string is not Home Assistant's format.
    assert!(matches!(
        parse_stored(HA_DUMMY_BCRYPT_HASH),
        Err(PasswordError::UnrecognisedHash)
    ));
    assert!(matches!(
        parse_stored("$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"),
        Err(PasswordError::UnrecognisedHash)
    ));
    assert!(matches!(
        parse_stored("$argon2id$"),
        Err(PasswordError::MalformedHash(_))
    ));
    // Base64 of something that is not a bcrypt string.
    assert!(matches!(
        parse_stored(&STANDARD.encode("$2z$12$abc")),
        Err(PasswordError::MalformedHash(_))
    ));
    assert!(matches!(
        parse_stored(&STANDARD.encode("$2b$12$short")),
        Err(PasswordError::MalformedHash(_))
    ));
    // The buggy $2x$ variant is refused.
    let x = HA_DUMMY_BCRYPT_HASH.replacen("$2b$", "$2x$", 1);
    assert!(matches!(
        parse_stored(&STANDARD.encode(x)),
        Err(PasswordError::MalformedHash(_))
    ));
    // Absurd argon2 parameters are refused before any work is done.
    let huge =
        dummy_argon2_phc(&PasswordPolicy::fast_for_tests()).replacen("m=64", "m=4294967295", 1);
    assert!(matches!(
        parse_stored(&huge),
        Err(PasswordError::MalformedHash(_))
    ));
    // Wrong argon2 version.
    let v16 = dummy_argon2_phc(&PasswordPolicy::fast_for_tests()).replacen("v=19", "v=16", 1);
    assert!(matches!(
        parse_stored(&v16),
        Err(PasswordError::MalformedHash(_))
    ));
}
