use super::*;

#[test]
fn constant_time_eq_basics() {
    assert!(constant_time_eq(b"", b""));
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
    assert!(!constant_time_eq(b"ab", b"abc"));
    assert!(!constant_time_eq(b"", b"a"));
    let a = [0xffu8; 128];
    let mut b = a;
    assert!(constant_time_eq(&a, &b));
    b[127] = 0;
    assert!(!constant_time_eq(&a, &b));
}

/// RFC 7636 appendix B (values recomputed with Python's hashlib/base64).
#[test]
fn pkce_rfc7636_appendix_b() {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    assert!(pkce_s256_matches(verifier, challenge));
}

#[test]
fn pkce_mismatch() {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    // One character of the verifier changed.
    assert!(!pkce_s256_matches(
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
        challenge
    ));
    // Challenge with padding, in standard base64, truncated, or the plain method.
    assert!(!pkce_s256_matches(verifier, &format!("{challenge}=")));
    assert!(!pkce_s256_matches(
        verifier,
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"
    ));
    assert!(!pkce_s256_matches(verifier, &challenge[..42]));
    assert!(!pkce_s256_matches(verifier, verifier));
    assert!(!pkce_s256_matches(verifier, ""));
}
