//! HS256 JSON Web Tokens: Home Assistant's access tokens and signed paths (`authSig`).
//!
//! # Encoding
//!
//! Tokens are byte-identical to the ones Home Assistant (PyJWT) issues: header
//! `{"alg":"HS256","typ":"JWT"}` (that key order), payload serialised compactly in
//! the given key order with Python's `json.dumps` string escaping (non-ASCII and
//! DEL as `\uXXXX`, `/` unescaped), base64url without padding, HMAC-SHA256 over
//! `header.payload`. The `jsonwebtoken` crate writes its header as
//! `{"typ":…,"alg":…}`, so the signing input is built here and only the MAC
//! comes from `jsonwebtoken::crypto`.
//!
//! # Validation rules
//!
//! These mirror PyJWT as Home Assistant calls it (`spec/tokens.md` §4.2, §8.2),
//! with `now` injected (an integer Unix time; for integer claims the comparisons
//! below give the same answers as PyJWT's fractional clock) and `leeway` = 10 s for
//! access tokens, 0 for signed paths:
//!
//! 1. at most [`MAX_TOKEN_LEN`] bytes, exactly three base64url (no padding) parts,
//!    header a JSON object, `kid` (if present) a string, no `b64: false`;
//! 2. header `alg` exactly `"HS256"`; anything else (`none`, `HS384`, `RS256`, a
//!    non-string) is [`JwtError::WrongAlgorithm`] before any signature check, and
//!    the signature is always checked as HMAC-SHA256 whatever the header says, so
//!    algorithm confusion is impossible; an empty key never verifies;
//! 3. signature (constant-time comparison), then the payload must be a JSON object;
//! 4. `exp` and `iat` required (absent or `null` → [`JwtError::MissingClaim`]);
//!    time claims must be JSON numbers (integers, or floats truncated toward zero
//!    like Python's `int()`; strings and booleans are rejected, which is stricter
//!    than PyJWT);
//! 5. **`iat`**: rejected iff `iat > now + leeway`;
//! 6. **`nbf`** (optional): rejected iff `nbf > now + leeway`;
//! 7. **`exp`**: rejected iff `exp <= now - leeway` (PyJWT's `_validate_exp`; a
//!    token is still accepted at `now = exp + leeway - 1` and rejected at
//!    `now = exp + leeway`; with no leeway a signed path is rejected at `now = exp`);
//! 8. access tokens: `iss` must be present and equal the expected issuer (an
//!    empty expected issuer never matches); signed paths: `iss` not checked;
//! 9. a truthy `aud` (non-empty string/array/object, non-zero number, `true`) is
//!    rejected, since no audience is expected;
//! 10. `sub` and `jti`, if present, must be strings.
//!
//! The first failing rule decides the [`JwtError`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::Serialize;
use serde_json::{Map, Value};

/// Longest token (in bytes) that is even looked at; Home Assistant rejects longer ones.
pub const MAX_TOKEN_LEN: usize = 8192;
/// Clock skew allowed when validating access tokens, in seconds.
pub const ACCESS_TOKEN_LEEWAY_SECS: u64 = 10;

/// The header Home Assistant writes, `{"alg":"HS256","typ":"JWT"}`, base64url without padding.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// The claims of a Home Assistant access token, serialised in this order: `iss`, `iat`, `exp`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccessClaims {
    /// Issuer: the id of the refresh token the access token was made from.
    pub iss: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds (`iat` + the refresh token's `access_token_expiration`).
    pub exp: i64,
}

/// Why a token was rejected. Messages never contain the token or the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    /// Not three base64url parts, or header/payload not a JSON object, or a malformed header field.
    #[error("token is not a well-formed JWS with JSON object header and payload")]
    Malformed,
    /// The header's `alg` is not exactly `HS256`.
    #[error("token algorithm is not HS256")]
    WrongAlgorithm,
    /// The HMAC-SHA256 signature does not match (or the key is empty).
    #[error("token signature does not verify")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `iat` or `nbf` is in the future (beyond the leeway).
    #[error("token is not yet valid")]
    NotYetValid,
    /// `iss` differs from the expected issuer, or is not a string.
    #[error("token issuer does not match")]
    WrongIssuer,
    /// The token carries a non-empty `aud` claim, but no audience is expected.
    #[error("token has an audience claim")]
    HasAudience,
    /// A required claim (`exp`, `iat`, or `iss` for access tokens) is absent or `null`.
    #[error("token lacks the required claim `{0}`")]
    MissingClaim(&'static str),
    /// A claim has the wrong type: `exp`/`iat`/`nbf` not a number, `sub`/`jti` not a string.
    #[error("token claim `{0}` has an invalid value")]
    InvalidClaim(&'static str),
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Encodes an access token exactly as Home Assistant does (header `{"alg":"HS256","typ":"JWT"}`, payload `{"iss":…,"iat":…,"exp":…}`).
///
/// `key` is used as given; Home Assistant passes the ASCII bytes of the refresh
/// token's 128-hex `jwt_key` (not its hex-decoded value).
#[must_use]
pub fn encode_access_token(claims: &AccessClaims, key: &[u8]) -> String {
    sign_payload(&python_json(claims), key)
}

/// Encodes a signed-path token: same header, `payload` serialised compactly in the value's own key order.
///
/// Home Assistant's payload is an object `{"iss","path","params","iat","exp"}`
/// (`spec/tokens.md` §8.1); this function signs whatever JSON value it is given.
#[must_use]
pub fn encode_signed_path(payload: &Value, key: &[u8]) -> String {
    sign_payload(&python_json(payload), key)
}

/// `HEADER_B64 . b64(payload) . b64(HMAC-SHA256(key, HEADER_B64 . b64(payload)))`.
fn sign_payload(payload_json: &[u8], key: &[u8]) -> String {
    let mut token = String::with_capacity(HEADER_B64.len() + payload_json.len() * 4 / 3 + 48);
    token.push_str(HEADER_B64);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload_json, &mut token);
    let signature = match jsonwebtoken::crypto::sign(
        token.as_bytes(),
        &EncodingKey::from_secret(key),
        Algorithm::HS256,
    ) {
        Ok(signature) => signature,
        // HMAC accepts keys of any length, and an HMAC key is always of the HMAC
        // family: the backend has no failure mode left for this call.
        Err(err) => unreachable!("HMAC-SHA256 signing cannot fail: {err}"),
    };
    token.push('.');
    token.push_str(&signature);
    token
}

/// Serialises `value` compactly the way Python's `json.dumps(…, separators=(",", ":"))` does (ASCII-only output).
fn python_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonJsonFormatter);
    match value.serialize(&mut ser) {
        Ok(()) => out,
        // Only maps with non-string keys or failing `Serialize` impls can fail;
        // the types serialised here are `AccessClaims` and `serde_json::Value`.
        Err(err) => unreachable!("JSON serialisation of a token payload failed: {err}"),
    }
}

/// serde_json's compact output with Python's `ensure_ascii=True` string escaping.
///
/// serde_json already escapes `"`, `\` and control characters exactly like Python
/// (`\b \f \n \r \t`, otherwise `\u00xx` in lowercase hex); Python additionally
/// escapes DEL and every non-ASCII character as `\uxxxx` (UTF-16 surrogate pairs
/// above U+FFFF).
struct PythonJsonFormatter;

impl serde_json::ser::Formatter for PythonJsonFormatter {
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> std::io::Result<()>
    where
        W: ?Sized + std::io::Write,
    {
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            if (' '..='~').contains(&ch) {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// A token split into its parts, with header and payload base64-decoded.
struct Parsed<'a> {
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'a str,
    header: Map<String, Value>,
    payload: Vec<u8>,
    signature_b64: &'a str,
}

fn b64_part(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)
}

fn parse(token: &str) -> Result<Parsed<'_>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::TooLong);
    }
    let (signing_input, signature_b64) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
    let (header_b64, payload_b64) = signing_input.split_once('.').ok_or(JwtError::Malformed)?;
    if payload_b64.contains('.') {
        return Err(JwtError::Malformed);
    }
    let header = match serde_json::from_slice::<Value>(&b64_part(header_b64)?) {
        Ok(Value::Object(map)) => map,
        _ => return Err(JwtError::Malformed),
    };
    if header.get("kid").is_some_and(|kid| !kid.is_string()) {
        return Err(JwtError::Malformed);
    }
    // RFC 7797 unencoded payloads: PyJWT then wants a detached payload; never ours.
    if header.get("b64") == Some(&Value::Bool(false)) {
        return Err(JwtError::Malformed);
    }
    let payload = b64_part(payload_b64)?;
    // The signature must at least be valid base64url (PyJWT decodes it up front).
    b64_part(signature_b64)?;
    Ok(Parsed {
        signing_input,
        header,
        payload,
        signature_b64,
    })
}

fn payload_object(payload: &[u8]) -> Result<Map<String, Value>, JwtError> {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed),
    }
}

/// Rules 1–3 of the module docs: structure, `alg`, signature, payload object.
fn verify_hs256(token: &str, key: &[u8]) -> Result<Map<String, Value>, JwtError> {
    let parsed = parse(token)?;
    if parsed.header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(JwtError::WrongAlgorithm);
    }
    if key.is_empty() {
        return Err(JwtError::BadSignature);
    }
    // The algorithm is fixed here, never taken from the header.
    let ok = jsonwebtoken::crypto::verify(
        parsed.signature_b64,
        parsed.signing_input.as_bytes(),
        &DecodingKey::from_secret(key),
        Algorithm::HS256,
    )
    .map_err(|_| JwtError::Malformed)?;
    if !ok {
        return Err(JwtError::BadSignature);
    }
    payload_object(&parsed.payload)
}

/// A time claim as an integer: JSON integers as they are (saturating beyond
/// `i64`), floats truncated toward zero like Python's `int()`. Anything else
/// (strings, booleans, null, arrays, objects) is `None`.
fn claim_int(value: &Value) -> Option<i64> {
    let Value::Number(n) = value else {
        return None;
    };
    if let Some(i) = n.as_i64() {
        Some(i)
    } else if n.as_u64().is_some() {
        Some(i64::MAX)
    } else {
        // `as` saturates at the i64 bounds; JSON cannot express NaN or infinities.
        n.as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.trunc() as i64)
    }
}

/// Python truthiness of a JSON value (`not payload["aud"]` in PyJWT).
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Rules 4–10 of the module docs. Returns `(iat, exp)`.
fn validate_claims(
    payload: &Map<String, Value>,
    now_unix: i64,
    leeway: i64,
    expected_issuer: Option<&str>,
) -> Result<(i64, i64), JwtError> {
    let required = |name: &'static str| {
        payload
            .get(name)
            .filter(|v| !v.is_null())
            .ok_or(JwtError::MissingClaim(name))
    };
    let exp_value = required("exp")?;
    let iat_value = required("iat")?;

    // i128: no overflow for any i64 `now` or claim.
    let now = i128::from(now_unix);
    let leeway = i128::from(leeway);

    let iat = claim_int(iat_value).ok_or(JwtError::InvalidClaim("iat"))?;
    if i128::from(iat) > now + leeway {
        return Err(JwtError::NotYetValid);
    }
    if let Some(nbf_value) = payload.get("nbf") {
        let nbf = claim_int(nbf_value).ok_or(JwtError::InvalidClaim("nbf"))?;
        if i128::from(nbf) > now + leeway {
            return Err(JwtError::NotYetValid);
        }
    }
    let exp = claim_int(exp_value).ok_or(JwtError::InvalidClaim("exp"))?;
    if i128::from(exp) <= now - leeway {
        return Err(JwtError::Expired);
    }
    if let Some(expected) = expected_issuer {
        match payload.get("iss") {
            None => return Err(JwtError::MissingClaim("iss")),
            Some(Value::String(iss)) if !expected.is_empty() && iss == expected => {}
            Some(_) => return Err(JwtError::WrongIssuer),
        }
    }
    if payload.get("aud").is_some_and(truthy) {
        return Err(JwtError::HasAudience);
    }
    for name in ["sub", "jti"] {
        if payload.get(name).is_some_and(|v| !v.is_string()) {
            return Err(JwtError::InvalidClaim(name));
        }
    }
    Ok((iat, exp))
}

/// The `iss` claim of a token, without verifying anything but its shape (Home Assistant's lookup step).
///
/// `None` if the token is longer than [`MAX_TOKEN_LEN`], is not three base64url
/// parts, its header or payload is not a JSON object, or `iss` is absent or not a
/// string. Use the result only to find the key, then call [`verify_access_token`].
#[must_use]
pub fn unverified_issuer(token: &str) -> Option<String> {
    let parsed = parse(token).ok()?;
    match payload_object(&parsed.payload).ok()?.remove("iss")? {
        Value::String(iss) => Some(iss),
        _ => None,
    }
}

/// Verifies an access token with Home Assistant's rules (see the module docs: HS256 only, 10 s leeway, `iss` must equal `expected_issuer`).
///
/// `key` is the refresh token's `jwt_key` as ASCII bytes, `now_unix` the current
/// Unix time in seconds.
///
/// # Errors
///
/// The [`JwtError`] of the first rule the token breaks.
pub fn verify_access_token(
    token: &str,
    key: &[u8],
    expected_issuer: &str,
    now_unix: i64,
) -> Result<AccessClaims, JwtError> {
    let payload = verify_hs256(token, key)?;
    let leeway = ACCESS_TOKEN_LEEWAY_SECS as i64;
    let (iat, exp) = validate_claims(&payload, now_unix, leeway, Some(expected_issuer))?;
    Ok(AccessClaims {
        iss: expected_issuer.to_owned(),
        iat,
        exp,
    })
}

/// Verifies a signed-path token (`authSig`): HS256, `exp`/`iat` required, **no** leeway, `iss` not checked; returns the payload object.
///
/// Checking `path`, `params` and the `iss` refresh token against the request is
/// the caller's job (`spec/tokens.md` §8.2).
///
/// # Errors
///
/// The [`JwtError`] of the first rule the token breaks.
pub fn verify_signed_path(token: &str, key: &[u8], now_unix: i64) -> Result<Value, JwtError> {
    let payload = verify_hs256(token, key)?;
    validate_claims(&payload, now_unix, 0, None)?;
    Ok(Value::Object(payload))
}

#[cfg(test)]
mod tests;
