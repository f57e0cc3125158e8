//! Signed paths (`authSig`): temporary unauthenticated GET/HEAD access to one URL (tokens.md §8).

use serde_json::{Value, json};

/// Query parameters that are neither signed nor kept.
const IGNORED: [&str; 2] = ["height", "width"];

fn params(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .filter(|(k, _)| !IGNORED.contains(&k.as_str()) && k != "authSig")
        .collect()
}

/// Signs `path` (which may carry a query) for `expires` seconds; `height`/`width` are dropped.
pub fn sign_path(
    secret: &str,
    path: &str,
    expires: i64,
    refresh_token_id: &str,
    now: i64,
) -> String {
    let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
    let kept = params(query);
    let payload = json!({
        "iss": refresh_token_id,
        "path": path_only,
        "params": kept.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "iat": now,
        "exp": now + expires,
    });
    let token = auth_crypto::jwt::encode_signed_path(&payload, secret.as_bytes());
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &kept {
        query.append_pair(k, v);
    }
    query.append_pair("authSig", &token);
    format!("{path_only}?{}", query.finish())
}

/// Verifies a signed request; returns the refresh token id it was signed with.
pub fn verify(secret: &str, path: &str, query: &str, now: i64) -> Option<String> {
    let token = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "authSig")
        .map(|(_, v)| v.into_owned())?;
    let claims = auth_crypto::jwt::verify_signed_path(&token, secret.as_bytes(), now).ok()?;
    if claims.get("path").and_then(Value::as_str) != Some(path) {
        return None;
    }
    let expected: Vec<Value> = params(query).iter().map(|(k, v)| json!([k, v])).collect();
    if claims.get("params") != Some(&Value::Array(expected)) {
        return None;
    }
    claims.get("iss").and_then(Value::as_str).map(str::to_owned)
}
