//! The one place where errors become HTTP responses.

use auth_core::flow_engine::FlowError;
use auth_core::{AuthError, MfaError, ProviderError};
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

/// HA's answer to an unexpected error (http-api.md §1): `500` with aiohttp's plain text.
pub fn internal_error() -> ApiError {
    ApiError::Text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "500 Internal Server Error\n\nServer got itself in trouble".into(),
    )
}

/// The body style an [`AuthError`] is answered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `{"message", "code"?}`, HA's JSON views.
    Message,
    /// `{"error", "error_description"?}`, the OAuth token endpoint.
    OAuth,
}

/// How one [`AuthError`] is answered, whatever the body style.
struct Answer {
    status: StatusCode,
    /// The OAuth `error` code.
    oauth_error: &'static str,
    /// What the client is told; `None`: the error's own text as message, no OAuth description.
    message: Option<String>,
    /// A machine-readable `code` of the message style.
    code: Option<&'static str>,
    /// Only the OAuth style tells this one; HA's JSON views answer it with their plain 500.
    oauth_only: bool,
}

impl Answer {
    fn new(status: StatusCode, oauth_error: &'static str, message: Option<String>) -> Self {
        Self {
            status,
            oauth_error,
            message,
            code: None,
            oauth_only: false,
        }
    }

    fn bad_request(message: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", Some(message))
    }

    fn denied(message: String) -> Self {
        Self::new(StatusCode::FORBIDDEN, "access_denied", Some(message))
    }

    fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            Some(message.into()),
        )
    }

    fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", None)
    }
}

/// The one match from [`AuthError`] (and the provider, MFA and flow errors it carries) to its
/// HTTP answer. Exhaustive on purpose: a new variant does not compile until it is given one.
fn answer(error: &AuthError) -> Answer {
    use AuthError as E;
    match error {
        E::Invalid(message) => Answer::bad_request(message.clone()),
        E::UserNotFound => Answer::new(
            StatusCode::NOT_FOUND,
            "invalid_request",
            Some(error.to_string()),
        ),
        E::TokenNotFound => Answer::new(StatusCode::BAD_REQUEST, "invalid_grant", None),
        E::InvalidGroup(_) | E::UnknownMfaModule(_) => Answer::bad_request(error.to_string()),
        E::CannotDeactivateOwner | E::CannotRemoveOwner | E::MfaRequired { .. } => {
            Answer::denied(error.to_string())
        }
        E::CredentialAlreadyLinked => Answer::bad_request("Credential already linked".to_owned()),
        E::DuplicateCredentials => Answer::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            Some(error.to_string()),
        ),
        E::UnknownProvider { .. } | E::InvalidAuth(_) => Answer::denied(error.to_string()),
        E::Overloaded(message) => Answer::unavailable(message.clone()),
        // RFC 6749's "retry later" at the token endpoint; HA's views have no such answer.
        E::Storage(_) => Answer {
            oauth_only: true,
            ..Answer::unavailable("The auth store could not be written; nothing was changed")
        },
        E::Provider(provider) => match provider {
            ProviderError::InvalidUser(message) => Answer::bad_request(message.clone()),
            ProviderError::InvalidUsername { key, message, .. } => Answer {
                code: Some(key),
                ..Answer::bad_request(message.clone())
            },
            ProviderError::InvalidAuth(message) => Answer::denied(message.clone()),
            ProviderError::Failed(_) => Answer::internal(),
        },
        E::Mfa(mfa) => match mfa {
            MfaError::InvalidInput(message) => Answer::bad_request(message.clone()),
            MfaError::Failed(_) => Answer::internal(),
        },
        E::Flow(flow) => match flow {
            FlowError::UnknownFlow => Answer::new(
                StatusCode::NOT_FOUND,
                "invalid_request",
                Some("Invalid flow specified".to_owned()),
            ),
            FlowError::UnknownStep(_) => {
                Answer::bad_request("Handler does not support init".to_owned())
            }
            FlowError::InvalidInput(_) => Answer::bad_request("User input malformed".to_owned()),
            FlowError::InProgress => Answer::new(
                StatusCode::CONFLICT,
                "invalid_request",
                Some("Flow request already in progress".to_owned()),
            ),
            FlowError::TooManyFlows => Answer::unavailable("Too many login flows in progress"),
            FlowError::Handler(_) => Answer::internal(),
        },
    }
}

impl ApiError {
    /// The HTTP answer to `error` in `style`. Failures the client cannot act on are HA's plain
    /// 500 in either style (and logged here); refusals keep their message.
    pub fn from_auth(error: AuthError, style: Style) -> ApiError {
        let answer = answer(&error);
        if answer.status == StatusCode::INTERNAL_SERVER_ERROR
            || (answer.oauth_only && style == Style::Message)
        {
            tracing::error!(%error, "request failed");
            return internal_error();
        }
        if answer.status.is_server_error() {
            tracing::warn!(%error, "request refused for now");
        }
        match style {
            Style::Message => ApiError::Message {
                status: answer.status,
                message: answer.message.unwrap_or_else(|| error.to_string()),
                code: answer.code,
            },
            Style::OAuth => ApiError::OAuth {
                status: answer.status,
                error: answer.oauth_error,
                description: answer.message,
            },
        }
    }
}
