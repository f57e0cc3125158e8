//! The one place where errors become HTTP responses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A failed request, in one of Home Assistant's three error body styles.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// `{"message": ..., "code"?: ...}` (HA's JSON views).
    Message {
        /// HTTP status.
        status: StatusCode,
        /// Human-readable message.
        message: String,
        /// Machine-readable code.
        code: Option<&'static str>,
    },
    /// `{"error": ..., "error_description"?: ...}` (the OAuth token endpoint).
    OAuth {
        /// HTTP status.
        status: StatusCode,
        /// OAuth error code.
        error: &'static str,
        /// Description.
        description: Option<String>,
    },
    /// A plain-text `"<status>: <reason>"` body, like aiohttp's HTTP exceptions.
    Plain(StatusCode),
    /// A plain-text body with a custom text.
    Text(StatusCode, String),
}

impl ApiError {
    /// A `{"message"}` error.
    pub fn message(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError::Message {
            status,
            message: message.into(),
            code: None,
        }
    }

    /// A `{"message", "code"}` error.
    pub fn coded(status: StatusCode, message: impl Into<String>, code: &'static str) -> Self {
        ApiError::Message {
            status,
            message: message.into(),
            code: Some(code),
        }
    }

    /// An OAuth error without description.
    pub fn oauth(error: &'static str) -> Self {
        ApiError::OAuth {
            status: StatusCode::BAD_REQUEST,
            error,
            description: None,
        }
    }

    /// An OAuth error with a description.
    pub fn oauth_described(
        status: StatusCode,
        error: &'static str,
        description: impl Into<String>,
    ) -> Self {
        ApiError::OAuth {
            status,
            error,
            description: Some(description.into()),
        }
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Message { status, .. } | ApiError::OAuth { status, .. } => *status,
            ApiError::Plain(status) | ApiError::Text(status, _) => *status,
        }
    }
}

/// A JSON response with HA's compact serialisation.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A plain-text response.
pub fn text_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Message {
                status,
                message,
                code,
            } => {
                let body = match code {
                    Some(code) => json!({"message": message, "code": code}),
                    None => json!({"message": message}),
                };
                json_response(status, &body)
            }
            ApiError::OAuth {
                status,
                error,
                description,
            } => {
                let body = match description {
                    Some(description) => json!({"error": error, "error_description": description}),
                    None => json!({"error": error}),
                };
                json_response(status, &body)
            }
            ApiError::Plain(status) => text_response(
                status,
                format!(
                    "{}: {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("Error")
                ),
            ),
            ApiError::Text(status, text) => text_response(status, text),
        }
    }
}
