//! Request bodies: size limits with HA's 413 text, JSON objects whatever the content type, and
//! token-endpoint forms (url-encoded or multipart, repeated keys refused).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart};
use axum::http::{Request, StatusCode, header};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Reads the whole body, refusing more than `limit` bytes with HA's 413 message, and a body that
/// has not arrived within `timeout` with 408 (a client must not hold a connection by trickling).
pub async fn read_limited(
    request: Request<Body>,
    limit: usize,
    timeout: Duration,
) -> Result<(axum::http::request::Parts, Vec<u8>), ApiError> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|d| *d > limit as u64) {
        return Err(too_large(limit, declared));
    }
    let Ok(read) = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await else {
        return Err(ApiError::Text(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "408: Request Timeout\n\nThe request body did not arrive within {} seconds",
                timeout.as_secs()
            ),
        ));
    };
    match read {
        Ok(bytes) => Ok((parts, bytes.to_vec())),
        Err(error) if is_length_limit(&error) => Err(too_large(limit, limit as u64 + 1)),
        Err(_) => Err(ApiError::Text(
            StatusCode::BAD_REQUEST,
            "400: Bad Request\n\nThe request body could not be read".into(),
        )),
    }
}

/// Whether reading a body failed because it was longer than allowed.
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}

fn too_large(limit: usize, actual: u64) -> ApiError {
    ApiError::Text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Maximum request body size {limit} exceeded, actual body size {actual}"),
    )
}

/// Parses a JSON object body (HA's login page sends JSON as `text/plain`).
pub fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            "Message format incorrect: expected a mapping",
        )),
        Err(_) => Err(ApiError::message(StatusCode::BAD_REQUEST, "Invalid JSON.")),
    }
}

/// A schema problem in a JSON body, HA's wording.
pub fn format_error(detail: impl std::fmt::Display) -> ApiError {
    ApiError::message(
        StatusCode::BAD_REQUEST,
        format!("Message format incorrect: {detail}"),
    )
}

/// A required string field of a JSON body.
pub fn required_str<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format_error(format!("expected str at '{key}'"))),
        None => Err(format_error(format!(
            "required key not provided at '{key}'"
        ))),
    }
}

/// An optional string field of a JSON body.
pub fn optional_str<'a>(
    map: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, ApiError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format_error(format!("expected str at '{key}'"))),
    }
}

/// Refuses keys outside `allowed` (HA 2026.10+ wording: `not a valid option at 'key'`).
pub fn no_extra_keys(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(format_error(format!("not a valid option at '{extra}'"))),
        None => Ok(()),
    }
}

/// Why a token-endpoint form was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum FormError {
    /// A key was repeated or a value was a file: `invalid_request`.
    Invalid,
}

/// Parses the token endpoint's body: url-encoded or multipart; JSON and others yield no fields.
pub async fn token_form(
    request: Request<Body>,
    limit: usize,
    timeout: Duration,
) -> Result<Result<HashMap<String, String>, FormError>, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let (parts, bytes) = read_limited(request, limit, timeout).await?;
        let request = Request::from_parts(parts, Body::from(bytes));
        let Ok(mut multipart) = Multipart::from_request(request, &()).await else {
            return Ok(Err(FormError::Invalid));
        };
        let mut out = HashMap::new();
        loop {
            match multipart.next_field().await {
                Ok(Some(field)) => {
                    if field.file_name().is_some() {
                        return Ok(Err(FormError::Invalid));
                    }
                    let Some(name) = field.name().map(str::to_owned) else {
                        return Ok(Err(FormError::Invalid));
                    };
                    let Ok(value) = field.text().await else {
                        return Ok(Err(FormError::Invalid));
                    };
                    if out.insert(name, value).is_some() {
                        return Ok(Err(FormError::Invalid));
                    }
                }
                Ok(None) => return Ok(Ok(out)),
                Err(_) => return Ok(Err(FormError::Invalid)),
            }
        }
    }
    let (_parts, bytes) = read_limited(request, limit, timeout).await?;
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Ok(Ok(HashMap::new()));
    }
    let mut out = HashMap::new();
    for (key, value) in form_urlencoded::parse(&bytes) {
        if out.insert(key.into_owned(), value.into_owned()).is_some() {
            return Ok(Err(FormError::Invalid));
        }
    }
    Ok(Ok(out))
}
