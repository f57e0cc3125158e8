//! argon2id hashing through the public API.

use auth_crypto::{
    HashScheme, PasswordError, PasswordPolicy, dummy_verify, hash_password, hash_scheme,
    needs_rehash, verify_password,
};

fn fast() -> PasswordPolicy {
    PasswordPolicy::fast_for_tests()
}

#[test]
fn phc_string_shape() {
    let stored = hash_password("hunter2", &fast()).unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
        "{stored}"
    );
    let fields: Vec<&str> = stored.split('$').collect();
    assert_eq!(fields.len(), 6, "{stored}");
    // 16-byte salt and 32-byte hash in unpadded standard base64.
    assert_eq!(fields[4].len(), 22, "{stored}");
    assert_eq!(fields[5].len(), 43, "{stored}");
    assert_eq!(hash_scheme(&stored), Some(HashScheme::Argon2id));
}

#[test]
fn owasp_policy_parameters_are_written() {
    let stored = hash_password("hunter2", &PasswordPolicy::owasp()).unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(verify_password("hunter2", &stored).unwrap());
}

#[test]
fn roundtrip_and_wrong_password() {
    let stored = hash_password("correct horse battery staple", &fast()).unwrap();
    assert!(verify_password("correct horse battery staple", &stored).unwrap());
    assert!(!verify_password("correct horse battery stapl", &stored).unwrap());
    assert!(!verify_password("Correct horse battery staple", &stored).unwrap());
    assert!(!verify_password("correct horse battery staple ", &stored).unwrap());
    assert!(!verify_password("", &stored).unwrap());
}

#[test]
fn salts_differ() {
    let a = hash_password("same", &fast()).unwrap();
    let b = hash_password("same", &fast()).unwrap();
    assert_ne!(a, b);
    assert!(verify_password("same", &a).unwrap());
    assert!(verify_password("same", &b).unwrap());
}

#[test]
fn unicode_passwords_are_not_normalised() {
    let nfc = "p\u{e4}ssw\u{f6}rd";
    let nfd = "pa\u{308}sswo\u{308}rd";
    let stored = hash_password(nfc, &fast()).unwrap();
    assert!(verify_password(nfc, &stored).unwrap());
    assert!(!verify_password(nfd, &stored).unwrap());
    let emoji = "密码🔑 Straße";
    let stored = hash_password(emoji, &fast()).unwrap();
    assert!(verify_password(emoji, &stored).unwrap());
    assert!(!verify_password("密码🔑 strasse", &stored).unwrap());
}

#[test]
fn long_passwords_are_not_truncated() {
    // Unlike bcrypt, argon2 uses every byte.
    let long = "x".repeat(1000);
    let stored = hash_password(&long, &fast()).unwrap();
    assert!(verify_password(&long, &stored).unwrap());
    assert!(!verify_password(&long[..72], &stored).unwrap());
    assert!(!verify_password(&"x".repeat(999), &stored).unwrap());
}

#[test]
fn empty_password() {
    let stored = hash_password("", &fast()).unwrap();
    assert!(verify_password("", &stored).unwrap());
    assert!(!verify_password(" ", &stored).unwrap());
    assert!(!verify_password("\0", &stored).unwrap());
}

#[test]
fn needs_rehash_cases() {
    let fast_hash = hash_password("pw", &fast()).unwrap();
    assert!(!needs_rehash(&fast_hash, &fast()));
    assert!(needs_rehash(&fast_hash, &PasswordPolicy::owasp()));
    for changed in [
        PasswordPolicy {
            memory_kib: 128,
            ..fast()
        },
        PasswordPolicy {
            iterations: 2,
            ..fast()
        },
        PasswordPolicy {
            parallelism: 2,
            ..fast()
        },
    ] {
        assert!(needs_rehash(&fast_hash, &changed), "{changed:?}");
    }
    let bcrypt = auth_crypto::ha_bcrypt_hash("pw", 4).unwrap();
    assert!(needs_rehash(&bcrypt, &fast()));
    assert!(needs_rehash("garbage", &fast()));
    assert!(needs_rehash("", &fast()));
}

#[test]
fn garbage_stored_hash_is_an_error_not_false() {
    let good = hash_password("pw", &fast()).unwrap();
    let cases = [
        "",
        "pw",
        "not a hash",
        "$argon2id$",
        "$argon2id$v=19$m=64,t=1,p=1$",
        "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$2b$12$CiuFGszHx9eNHxPuQcwBWez4CwDTOcLTX5CbOpV6gef2nYuXkY7BO",
        "JDJiJDEy",
        "JDJiJDEyJ!!!",
        good.rsplit_once('$').unwrap().0,
        &good.replacen("m=64", "m=99999999999", 1),
    ];
    for stored in cases {
        let result = verify_password("pw", stored);
        assert!(
            matches!(
                result,
                Err(PasswordError::UnrecognisedHash | PasswordError::MalformedHash(_))
            ),
            "{stored:?}: {result:?}"
        );
        assert_eq!(hash_scheme(stored), None, "{stored:?}");
    }
}

#[test]
fn error_messages_never_contain_the_password() {
    let password = "super-secret-password-123";
    let good = hash_password("pw", &fast()).unwrap();
    for stored in [
        "garbage".to_owned(),
        "$argon2id$v=19$m=x".to_owned(),
        good.rsplit_once('$').unwrap().0.to_owned(),
        good.replacen("m=64", "m=4294967295", 1),
    ] {
        let err = verify_password(password, &stored).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains(password), "{text}");
        assert!(!text.contains(&stored) || stored.len() < 8, "{text}");
    }
}

#[test]
fn dummy_verify_completes_for_any_policy() {
    dummy_verify("foo", &fast());
    dummy_verify("foo", &PasswordPolicy::owasp());
    // An invalid policy falls back to OWASP instead of skipping the work.
    dummy_verify(
        "foo",
        &PasswordPolicy {
            memory_kib: 0,
            iterations: 0,
            parallelism: 0,
        },
    );
}

/// Many threads hashing and verifying at once (more than there are CPUs, so some wait for a
/// computation slot): every result is right.
#[test]
fn concurrent_hashing_from_many_threads() {
    let policy = auth_crypto::PasswordPolicy {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..16)
            .map(|i| {
                let policy = &policy;
                scope.spawn(move || {
                    let password = format!("password {i}");
                    let stored = auth_crypto::hash_password(&password, policy).unwrap();
                    assert!(auth_crypto::verify_password(&password, &stored).unwrap());
                    assert!(!auth_crypto::verify_password("other", &stored).unwrap());
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
    });
}
