use super::*;
use serde_json::json;

#[test]
fn header_constant_is_base64_of_header_json() {
    assert_eq!(
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        HEADER_B64
    );
}

/// Expected strings produced with CPython's `json.dumps(v, separators=(",", ":"))`.
#[test]
fn python_json_escaping_matches_cpython() {
    let cases = [
        ("a/b", r#""a/b""#),
        ("é", r#""\u00e9""#),
        ("😀", r#""\ud83d\ude00""#),
        ("\u{7f}", r#""\u007f""#),
        ("\u{1}\n\t\"\\", r#""\u0001\n\t\"\\""#),
        ("Straße-ΣΑΣ", r#""Stra\u00dfe-\u03a3\u0391\u03a3""#),
        ("", r#""""#),
    ];
    for (input, expected) in cases {
        let out = String::from_utf8(python_json(&json!(input))).unwrap();
        assert_eq!(out, expected, "input {input:?}");
    }
}

#[test]
fn python_json_is_compact_and_keeps_key_order() {
    let value = json!({"z": 1, "a": [1, -2, {"k": null}], "m": true});
    assert_eq!(
        String::from_utf8(python_json(&value)).unwrap(),
        r#"{"z":1,"a":[1,-2,{"k":null}],"m":true}"#
    );
    let claims = AccessClaims {
        iss: "abc".into(),
        iat: 1,
        exp: -2,
    };
    assert_eq!(
        String::from_utf8(python_json(&claims)).unwrap(),
        r#"{"iss":"abc","iat":1,"exp":-2}"#
    );
}

#[test]
fn claim_int_accepts_numbers_only() {
    assert_eq!(claim_int(&json!(1_795_303_495_i64)), Some(1_795_303_495));
    assert_eq!(claim_int(&json!(-5)), Some(-5));
    assert_eq!(claim_int(&json!(1_795_303_495.0)), Some(1_795_303_495));
    // Python's int() truncates toward zero.
    assert_eq!(claim_int(&json!(10.9)), Some(10));
    assert_eq!(claim_int(&json!(-10.9)), Some(-10));
    assert_eq!(claim_int(&json!(u64::MAX)), Some(i64::MAX));
    assert_eq!(claim_int(&json!(1e300)), Some(i64::MAX));
    assert_eq!(claim_int(&json!(-1e300)), Some(i64::MIN));
    for bad in [
        json!("1"),
        json!(true),
        json!(null),
        json!([1]),
        json!({"a": 1}),
    ] {
        assert_eq!(claim_int(&bad), None, "{bad}");
    }
}

#[test]
fn truthy_follows_python() {
    for falsy in [
        json!(null),
        json!(false),
        json!(0),
        json!(0.0),
        json!(""),
        json!([]),
        json!({}),
    ] {
        assert!(!truthy(&falsy), "{falsy}");
    }
    for t in [
        json!(true),
        json!(1),
        json!(-0.5),
        json!("x"),
        json!([""]),
        json!({"a": null}),
    ] {
        assert!(truthy(&t), "{t}");
    }
}

fn claims(pairs: Value) -> Map<String, Value> {
    match pairs {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

#[test]
fn validate_claims_boundaries() {
    let c = claims(json!({"iss": "i", "iat": 100, "exp": 200}));
    // iat: rejected iff iat > now + leeway
    assert_eq!(validate_claims(&c, 90, 10, Some("i")), Ok((100, 200)));
    assert_eq!(
        validate_claims(&c, 89, 10, Some("i")),
        Err(JwtError::NotYetValid)
    );
    assert_eq!(validate_claims(&c, 100, 0, None), Ok((100, 200)));
    assert_eq!(validate_claims(&c, 99, 0, None), Err(JwtError::NotYetValid));
    // exp: rejected iff exp <= now - leeway
    assert_eq!(validate_claims(&c, 209, 10, Some("i")), Ok((100, 200)));
    assert_eq!(
        validate_claims(&c, 210, 10, Some("i")),
        Err(JwtError::Expired)
    );
    assert_eq!(validate_claims(&c, 199, 0, None), Ok((100, 200)));
    assert_eq!(validate_claims(&c, 200, 0, None), Err(JwtError::Expired));
    // No overflow at the extremes.
    assert_eq!(
        validate_claims(&c, i64::MAX, 10, None),
        Err(JwtError::Expired)
    );
    assert_eq!(
        validate_claims(&c, i64::MIN, 10, None),
        Err(JwtError::NotYetValid)
    );
}

#[test]
fn validate_claims_optional_claims() {
    let base = json!({"iss": "i", "iat": 100, "exp": 200});
    let with = |k: &str, v: Value| {
        let mut m = claims(base.clone());
        m.insert(k.into(), v);
        m
    };
    assert_eq!(
        validate_claims(&with("nbf", json!(110)), 100, 10, None),
        Ok((100, 200))
    );
    assert_eq!(
        validate_claims(&with("nbf", json!(111)), 100, 10, None),
        Err(JwtError::NotYetValid)
    );
    assert_eq!(
        validate_claims(&with("nbf", json!(null)), 100, 10, None),
        Err(JwtError::InvalidClaim("nbf"))
    );
    assert_eq!(
        validate_claims(&with("aud", json!("")), 100, 10, None),
        Ok((100, 200))
    );
    assert_eq!(
        validate_claims(&with("aud", json!([])), 100, 10, None),
        Ok((100, 200))
    );
    assert_eq!(
        validate_claims(&with("aud", json!("x")), 100, 10, None),
        Err(JwtError::HasAudience)
    );
    assert_eq!(
        validate_claims(&with("sub", json!("s")), 100, 10, None),
        Ok((100, 200))
    );
    assert_eq!(
        validate_claims(&with("sub", json!(1)), 100, 10, None),
        Err(JwtError::InvalidClaim("sub"))
    );
    assert_eq!(
        validate_claims(&with("jti", json!(null)), 100, 10, None),
        Err(JwtError::InvalidClaim("jti"))
    );
    assert_eq!(
        validate_claims(&with("iat", json!("100")), 100, 10, None),
        Err(JwtError::InvalidClaim("iat"))
    );
    assert_eq!(
        validate_claims(&with("exp", json!(null)), 100, 10, None),
        Err(JwtError::MissingClaim("exp"))
    );
    assert_eq!(
        validate_claims(&with("exp", json!(false)), 100, 10, None),
        Err(JwtError::InvalidClaim("exp"))
    );
}

#[test]
fn validate_claims_issuer() {
    let c = claims(json!({"iss": "i", "iat": 100, "exp": 200}));
    assert_eq!(
        validate_claims(&c, 100, 10, Some("j")),
        Err(JwtError::WrongIssuer)
    );
    let c = claims(json!({"iss": 5, "iat": 100, "exp": 200}));
    assert_eq!(
        validate_claims(&c, 100, 10, Some("5")),
        Err(JwtError::WrongIssuer)
    );
    let c = claims(json!({"iat": 100, "exp": 200}));
    assert_eq!(
        validate_claims(&c, 100, 10, Some("i")),
        Err(JwtError::MissingClaim("iss"))
    );
    assert_eq!(validate_claims(&c, 100, 10, None), Ok((100, 200)));
    // An empty expected issuer never matches, even an empty `iss`.
    let c = claims(json!({"iss": "", "iat": 100, "exp": 200}));
    assert_eq!(
        validate_claims(&c, 100, 10, Some("")),
        Err(JwtError::WrongIssuer)
    );
}

#[test]
fn parse_rejects_structural_problems() {
    let payload = URL_SAFE_NO_PAD.encode(r#"{"iss":"i","iat":1,"exp":2}"#);
    let sig = URL_SAFE_NO_PAD.encode([0u8; 32]);
    let good = format!("{HEADER_B64}.{payload}.{sig}");
    assert!(parse(&good).is_ok());
    for bad in [
        String::new(),
        "a.b".to_owned(),
        format!("{HEADER_B64}.{payload}"),
        format!("{HEADER_B64}.{payload}.{sig}.x"),
        format!("{HEADER_B64}.{payload}.{sig}="),
        format!("{HEADER_B64}=.{payload}.{sig}"),
        format!("{HEADER_B64}.{payload}.!!"),
        format!("{}.{payload}.{sig}", URL_SAFE_NO_PAD.encode("[1]")),
        format!(
            "{}.{payload}.{sig}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":1}"#)
        ),
        format!(
            "{}.{payload}.{sig}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","b64":false}"#)
        ),
    ] {
        assert_eq!(parse(&bad).err(), Some(JwtError::Malformed), "{bad}");
    }
    let long = format!("{good}{}", "A".repeat(MAX_TOKEN_LEN));
    assert_eq!(parse(&long).err(), Some(JwtError::TooLong));
}
