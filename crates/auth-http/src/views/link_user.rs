//! `/auth/link_user`: links the credentials of a code to the caller.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::authenticated_string_pair;
use crate::error::{ApiError, Style, json_response};
use crate::{AuthHttp, Authenticated};

pub async fn link_user(
    State(http): State<AuthHttp>,
    auth: Option<Authenticated>,
    request: Request<Body>,
) -> Response {
    let (caller, code, client_id) =
        match authenticated_string_pair(&http, &auth, request, ["code", "client_id"]).await {
            Ok(parsed) => parsed,
            Err(response) => return response,
        };
    let manager = http.manager();
    let stored = match manager.take_auth_code(&client_id, &code).await {
        Ok(stored) => stored.filter(|c| c.code_challenge.is_none()),
        Err(error) => return ApiError::from_auth(error, Style::Message).into_response(),
    };
    let Some(stored) = stored else {
        return ApiError::message(StatusCode::BAD_REQUEST, "Invalid code").into_response();
    };
    match manager.link_user(&caller.user.id, stored.credentials).await {
        Ok(()) => json_response(StatusCode::OK, &json!({"message": "User linked"})),
        Err(error) => ApiError::from_auth(error, Style::Message).into_response(),
    }
}
