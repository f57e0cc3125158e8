//! The JSON messages of the websocket API and the error a command answers with.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

/// `{"type": "auth_required", "ha_version": …}`.
pub(crate) fn auth_required(ha_version: &str) -> Value {
    json!({"type": "auth_required", "ha_version": ha_version})
}

/// `{"type": "auth_ok", "ha_version": …}`.
pub(crate) fn auth_ok(ha_version: &str) -> Value {
    json!({"type": "auth_ok", "ha_version": ha_version})
}

/// `{"type": "auth_invalid", "message": …}`.
pub(crate) fn auth_invalid(message: &str) -> Value {
    json!({"type": "auth_invalid", "message": message})
}

/// A successful command result.
pub(crate) fn result(id: &Value, result: Value) -> Value {
    json!({"id": id, "type": "result", "success": true, "result": result})
}

/// A failed command result.
pub(crate) fn error(id: &Value, error: &WsError) -> Value {
    let mut body = Map::new();
    body.insert("code".to_owned(), Value::String(error.code.to_string()));
    body.insert("message".to_owned(), Value::String(error.message.clone()));
    if let Some(translation) = &error.translation {
        body.insert(
            "translation_key".to_owned(),
            Value::String(translation.key.clone()),
        );
        body.insert(
            "translation_placeholders".to_owned(),
            translation.placeholders.clone(),
        );
        body.insert(
            "translation_domain".to_owned(),
            Value::String(translation.domain.to_owned()),
        );
    }
    json!({"id": id, "type": "result", "success": false, "error": body})
}

/// A translated Home Assistant error's translation fields.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Translation {
    pub key: String,
    pub placeholders: Value,
    pub domain: &'static str,
}

/// Why a command failed: HA's error `code` and `message`, plus translation fields for errors that
/// HA derives from translated exceptions.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WsError {
    pub code: Cow<'static, str>,
    pub message: String,
    pub translation: Option<Box<Translation>>,
}

impl WsError {
    /// An error with a code and a message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code: Cow::Borrowed(code),
            message: message.into(),
            translation: None,
        }
    }

    /// `invalid_format` with a validation message.
    pub fn invalid_format(message: impl Into<String>) -> Self {
        Self::new("invalid_format", message)
    }

    /// HA's `Unauthorized` exception.
    pub fn unauthorized() -> Self {
        Self::new("unauthorized", "Unauthorized")
    }

    /// Any other exception (HA: `unknown_error`, `Unknown error`).
    pub fn unknown() -> Self {
        Self::new("unknown_error", "Unknown error")
    }

    /// `unknown_error`, logging what really happened.
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "websocket command {context} failed");
        Self::unknown()
    }

    /// A Home Assistant error (`home_assistant_error`) with the text, trailing `.` stripped.
    pub fn home_assistant(message: &str) -> Self {
        Self::new(
            "home_assistant_error",
            message.strip_suffix('.').unwrap_or(message),
        )
    }

    /// A translated Home Assistant error of the `auth` domain.
    pub fn translated(message: &str, key: &str, placeholders: Map<String, Value>) -> Self {
        Self {
            translation: Some(Box::new(Translation {
                key: key.to_owned(),
                placeholders: Value::Object(placeholders),
                domain: "auth",
            })),
            ..Self::home_assistant(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translated_errors_have_ha_shape() {
        let mut placeholders = Map::new();
        placeholders.insert("new_username".into(), json!("Carol"));
        let error = WsError::translated(
            "Username \"Carol\" is not normalized. Please make sure the username is lowercase and does not contain any whitespace",
            "username_not_normalized",
            placeholders,
        );
        assert_eq!(
            super::error(&json!(16), &error).to_string(),
            json!({"id": 16, "type": "result", "success": false,
             "error": {"code": "home_assistant_error",
              "message": "Username \"Carol\" is not normalized. Please make sure the username is lowercase and does not contain any whitespace",
              "translation_key": "username_not_normalized",
              "translation_placeholders": {"new_username": "Carol"},
              "translation_domain": "auth"}})
            .to_string()
        );
        assert_eq!(
            super::error(&json!(1), &WsError::home_assistant("User not found.")).to_string(),
            r#"{"id":1,"type":"result","success":false,"error":{"code":"home_assistant_error","message":"User not found"}}"#
        );
    }
}
