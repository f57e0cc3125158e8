//! `ApiError::from_auth`: every `AuthError` family gets its HTTP answer (issue 16 item 6).

use auth_core::flow_engine::{FlowError, InvalidInput};
use auth_core::{AuthError, MfaError, ProviderError, StorageError};
use auth_http::ApiError;
use auth_http::error::Style;
use axum::http::StatusCode;

fn message(error: AuthError) -> ApiError {
    ApiError::from_auth(error, Style::Message)
}

fn oauth(error: AuthError) -> ApiError {
    ApiError::from_auth(error, Style::OAuth)
}

fn msg(status: StatusCode, text: &str) -> ApiError {
    ApiError::message(status, text)
}

fn plain_500() -> ApiError {
    auth_http::error::internal_error()
}

#[test]
fn refusals_of_a_request_are_400_with_the_reason() {
    assert_eq!(
        message(AuthError::Invalid("User is not active".into())),
        msg(StatusCode::BAD_REQUEST, "User is not active")
    );
    assert_eq!(
        oauth(AuthError::Invalid("User is not active".into())),
        ApiError::oauth_described(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "User is not active"
        )
    );
    assert_eq!(
        message(AuthError::InvalidGroup("system-nope".into())),
        msg(
            StatusCode::BAD_REQUEST,
            "Invalid group specified system-nope"
        )
    );
    assert_eq!(
        message(AuthError::UnknownMfaModule("sms".into())),
        msg(
            StatusCode::BAD_REQUEST,
            "Unable find multi-factor auth module: sms"
        )
    );
    assert_eq!(
        message(AuthError::CredentialAlreadyLinked),
        msg(StatusCode::BAD_REQUEST, "Credential already linked")
    );
    assert_eq!(
        oauth(AuthError::DuplicateCredentials),
        ApiError::oauth_described(StatusCode::BAD_REQUEST, "invalid_grant", "Sign in again")
    );
}

#[test]
fn missing_users_and_tokens() {
    assert_eq!(
        message(AuthError::UserNotFound),
        msg(StatusCode::NOT_FOUND, "User not found")
    );
    // The token endpoint's bare `invalid_grant`, as Home Assistant answers an unknown token.
    assert_eq!(
        oauth(AuthError::TokenNotFound),
        ApiError::oauth("invalid_grant")
    );
    assert_eq!(
        message(AuthError::TokenNotFound),
        msg(StatusCode::BAD_REQUEST, "Refresh token not found")
    );
}

#[test]
fn denials_are_403_access_denied() {
    for (error, text) in [
        (
            AuthError::InvalidAuth("User is not active".into()),
            "User is not active",
        ),
        (
            AuthError::UnknownProvider {
                provider_type: "command_line".into(),
                provider_id: None,
            },
            "Auth provider command_line (id None) is not configured",
        ),
        (AuthError::CannotRemoveOwner, "Unable to remove the owner"),
        (
            AuthError::CannotDeactivateOwner,
            "Unable to deactivate the owner",
        ),
    ] {
        assert_eq!(
            oauth(error),
            ApiError::oauth_described(StatusCode::FORBIDDEN, "access_denied", text)
        );
    }
    let required = AuthError::MfaRequired {
        module_id: "totp".into(),
        provider: "Company SSO".into(),
    };
    assert_eq!(message(required).status(), StatusCode::FORBIDDEN);
}

#[test]
fn overload_and_storage_failures_are_503_so_clients_retry() {
    assert_eq!(
        oauth(AuthError::Overloaded("Too many codes".into())),
        ApiError::oauth_described(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "Too many codes"
        )
    );
    let storage = || {
        AuthError::Storage(StorageError::Corrupt {
            location: "/config/.storage/auth".into(),
            problem: "disk full".into(),
        })
    };
    // The store's path is not told to the client.
    assert_eq!(
        oauth(storage()),
        ApiError::oauth_described(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The auth store could not be written; nothing was changed"
        )
    );
    // HA's JSON views have no "retry" answer: their plain 500 (http-api.md §1).
    assert_eq!(message(storage()), plain_500());
}

#[test]
fn provider_errors() {
    assert_eq!(
        message(AuthError::Provider(ProviderError::InvalidUsername {
            key: "username_already_exists",
            message: "Username already exists".into(),
            placeholders: Default::default(),
        })),
        ApiError::coded(
            StatusCode::BAD_REQUEST,
            "Username already exists",
            "username_already_exists"
        )
    );
    assert_eq!(
        message(AuthError::Provider(ProviderError::InvalidUser(
            "no such user".into()
        ))),
        msg(StatusCode::BAD_REQUEST, "no such user")
    );
    assert_eq!(
        oauth(AuthError::Provider(ProviderError::InvalidAuth(
            "locked".into()
        ))),
        ApiError::oauth_described(StatusCode::FORBIDDEN, "access_denied", "locked")
    );
    // A provider that broke tells the client nothing about why: HA's plain 500 in both styles.
    let failed = || AuthError::Provider(ProviderError::Failed("secret detail".into()));
    assert_eq!(message(failed()), plain_500());
    assert_eq!(oauth(failed()), plain_500());
}

#[test]
fn mfa_errors() {
    assert_eq!(
        message(AuthError::Mfa(MfaError::InvalidInput(
            "bad code length".into()
        ))),
        msg(StatusCode::BAD_REQUEST, "bad code length")
    );
    assert_eq!(
        oauth(AuthError::Mfa(MfaError::Failed("module broke".into()))),
        plain_500()
    );
}

#[test]
fn flow_errors_keep_home_assistants_messages() {
    let flow = |error| message(AuthError::Flow(error));
    assert_eq!(
        flow(FlowError::UnknownFlow),
        msg(StatusCode::NOT_FOUND, "Invalid flow specified")
    );
    assert_eq!(
        flow(FlowError::UnknownStep("init".into())),
        msg(StatusCode::BAD_REQUEST, "Handler does not support init")
    );
    assert_eq!(
        flow(FlowError::InvalidInput(InvalidInput {
            errors: vec![("username".into(), "required".into())]
        })),
        msg(StatusCode::BAD_REQUEST, "User input malformed")
    );
    assert_eq!(
        flow(FlowError::InProgress),
        msg(StatusCode::CONFLICT, "Flow request already in progress")
    );
    assert_eq!(
        flow(FlowError::TooManyFlows),
        msg(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many login flows in progress"
        )
    );
    assert_eq!(flow(FlowError::Handler("boom".into())), plain_500());
}
