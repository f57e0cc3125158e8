//! The token endpoint and revocation: `/auth/token`, `/auth/revoke` (http-api.md §6–§7).

use std::collections::HashMap;

use auth_core::{AuthError, NewRefreshToken};
use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{auth_token_form, request_origin};
use crate::AuthHttp;
use crate::body::FormError;
use crate::error::{ApiError, Style, json_response};
use crate::indieauth::verify_client_id;
use crate::net::{ClientAddr, RequestBase};

fn token_success(body: Value) -> Response {
    let mut response = json_response(StatusCode::OK, &body);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

pub async fn token(
    State(http): State<AuthHttp>,
    Extension(client): Extension<ClientAddr>,
    request: Request<Body>,
) -> Response {
    let base = RequestBase::of(&request);
    let url = request.uri().to_string();
    let form = match auth_token_form(&http, request).await {
        Ok(form) => form,
        Err(error) => return error.into_response(),
    };
    let result = match form {
        Err(FormError::Invalid) => Err(ApiError::oauth("invalid_request")),
        Ok(form) => {
            if form.get("action").map(String::as_str) == Some("revoke") {
                return match revoke_token(&http, form.get("token")).await {
                    Ok(()) => (StatusCode::OK, "").into_response(),
                    Err(error) => error.into_response(),
                };
            }
            match form.get("grant_type").map(String::as_str) {
                Some("authorization_code") => grant_code(&http, &client, &base, &form).await,
                Some("refresh_token") => grant_refresh(&http, &client, &base, &form).await,
                _ => Err(ApiError::oauth("unsupported_grant_type")),
            }
        }
    };
    match result {
        Ok(response) => response,
        Err(error) => {
            http.bans().record_failure(client.ip, &url);
            error.into_response()
        }
    }
}

fn invalid_request(description: &str) -> ApiError {
    ApiError::oauth_described(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn is_pkce_verifier(text: &str) -> bool {
    (43..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

async fn grant_code(
    http: &AuthHttp,
    client: &ClientAddr,
    base: &RequestBase,
    form: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let manager = http.manager();
    let client_id = form
        .get("client_id")
        .filter(|c| verify_client_id(c, request_origin(base).as_ref()));
    let Some(client_id) = client_id else {
        return Err(invalid_request("Invalid client id"));
    };
    let Some(code) = form.get("code") else {
        return Err(invalid_request("Invalid code"));
    };
    // A code presented a second time revokes what its first redemption issued (RFC 9700 §4.2.4).
    let Some(stored) = manager
        .redeem_auth_code(client_id, code)
        .await
        .map_err(oauth_error)?
    else {
        return Err(invalid_request("Invalid code"));
    };
    let verifier = form.get("code_verifier").filter(|v| !v.is_empty());
    match (&stored.code_challenge, verifier) {
        (Some(_), None) => return Err(invalid_request("Code verifier required")),
        (Some(challenge), Some(verifier)) => {
            if !is_pkce_verifier(verifier) || !auth_crypto::pkce_s256_matches(verifier, challenge) {
                return Err(ApiError::oauth_described(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid code verifier",
                ));
            }
        }
        (None, Some(_)) => {
            return Err(invalid_request(
                "Code verifier provided but no code challenge was present",
            ));
        }
        (None, None) => {}
    }
    let user = manager
        .get_or_create_user(&stored.credentials)
        .await
        .map_err(oauth_error)?;
    if let Some(reason) = manager.user_not_allowed_reason(&user, client.ip) {
        return Err(ApiError::oauth_described(
            StatusCode::FORBIDDEN,
            "access_denied",
            reason,
        ));
    }
    let credential_id = manager
        .user_by_credentials(&stored.credentials.id)
        .map(|_| stored.credentials.id.clone());
    let params = NewRefreshToken {
        client_id: Some(client_id.clone()),
        credential_id,
        ..Default::default()
    };
    let refresh = manager
        .create_refresh_token(&user.id, params)
        .await
        .map_err(|error| match error {
            AuthError::Invalid(message) => {
                ApiError::oauth_described(StatusCode::FORBIDDEN, "access_denied", message)
            }
            other => oauth_error(other),
        })?;
    if !manager
        .record_auth_code_token(client_id, code, &refresh.id)
        .await
        .map_err(oauth_error)?
    {
        // The code came back while this redemption was under way: neither gets tokens.
        return Err(invalid_request("Invalid code"));
    }
    let access = manager
        .create_access_token(&refresh.id, client.ip)
        .await
        .map_err(oauth_error)?;
    Ok(token_success(json!({
        "access_token": access,
        "token_type": "Bearer",
        "refresh_token": refresh.token,
        "expires_in": refresh.access_token_expiration.whole_seconds(),
        "ha_auth_provider": stored.credentials.auth_provider_type,
    })))
}

/// The token endpoint's answer to a failure, in OAuth style (see [`ApiError::from_auth`]).
fn oauth_error(error: AuthError) -> ApiError {
    ApiError::from_auth(error, Style::OAuth)
}

async fn grant_refresh(
    http: &AuthHttp,
    client: &ClientAddr,
    base: &RequestBase,
    form: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let manager = http.manager();
    let client_id = form.get("client_id");
    if let Some(id) = client_id
        && !verify_client_id(id, request_origin(base).as_ref())
    {
        return Err(invalid_request("Invalid client id"));
    }
    let Some(value) = form.get("refresh_token") else {
        return Err(ApiError::oauth("invalid_request"));
    };
    let Some(refresh) = manager.refresh_token_by_value(value) else {
        return Err(ApiError::oauth("invalid_grant"));
    };
    if refresh.client_id.as_ref() != client_id {
        return Err(ApiError::oauth("invalid_request"));
    }
    let user = manager
        .user(&refresh.user_id)
        .ok_or_else(|| ApiError::oauth("invalid_grant"))?;
    if let Some(reason) = manager.user_not_allowed_reason(&user, client.ip) {
        return Err(ApiError::oauth_described(
            StatusCode::FORBIDDEN,
            "access_denied",
            reason,
        ));
    }
    let access = manager
        .create_access_token(&refresh.id, client.ip)
        .await
        .map_err(oauth_error)?;
    Ok(token_success(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": refresh.access_token_expiration.whole_seconds(),
    })))
}

/// Revokes the refresh token `token` names (unknown tokens are fine, as in RFC 7009). A token
/// that could not be removed durably is still valid: that is a 503 (RFC 7009 §2.2.1), never a
/// 200 the client would take for a revocation.
async fn revoke_token(http: &AuthHttp, token: Option<&String>) -> Result<(), ApiError> {
    let Some(value) = token else { return Ok(()) };
    if let Some(refresh) = http.manager().refresh_token_by_value(value)
        && let Err(error) = http.manager().remove_refresh_token(&refresh.id).await
    {
        tracing::error!(%error, "revoking a refresh token failed");
        return Err(ApiError::oauth_described(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The auth store could not be written; the token is still valid",
        ));
    }
    Ok(())
}

pub async fn revoke(State(http): State<AuthHttp>, request: Request<Body>) -> Response {
    match auth_token_form(&http, request).await {
        Ok(Ok(form)) => {
            if let Err(error) = revoke_token(&http, form.get("token")).await {
                return error.into_response();
            }
        }
        Ok(Err(_)) => {}
        Err(error) => return error.into_response(),
    }
    (StatusCode::OK, "").into_response()
}
