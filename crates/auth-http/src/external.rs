//! `GET /auth/oidc/callback`: where an identity provider sends the browser back during an
//! `oidc` login (an `external` step of a login flow). The query's `state` names the flow; the
//! flow's external step checks it, redeems the `code` and answers `external_done`. The browser
//! then goes back to the login page (`/auth/authorize?external_done=1`), which carries on with
//! the flow it saved before leaving.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::AuthHttp;

/// Where the browser is sent once the flow's external step is done.
pub const RESUME_LOCATION: &str = "/auth/authorize?external_done=1";
/// Query parameters passed on to the flow; others are ignored.
const PASSED: [&str; 3] = ["state", "code", "error"];
/// Longest value of a passed parameter.
const MAX_VALUE_LEN: usize = 4096;

/// `GET /auth/oidc/callback?state=...&code=...` (or `error=...`).
pub async fn callback(
    State(http): State<AuthHttp>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let mut params = Map::new();
    for (key, value) in query {
        if PASSED.contains(&key.as_str()) {
            if value.len() > MAX_VALUE_LEN || params.contains_key(&key) {
                return refused(StatusCode::BAD_REQUEST, "Invalid sign-in callback");
            }
            params.insert(key, Value::String(value));
        }
    }
    match http.manager().external_login_callback(params).await {
        Ok(response) if response.result.type_name() == "external_done" => {
            let mut done = StatusCode::SEE_OTHER.into_response();
            done.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static(RESUME_LOCATION));
            done.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            done
        }
        Ok(_) | Err(auth_core::flow_engine::FlowError::UnknownFlow) => refused(
            StatusCode::BAD_REQUEST,
            "This sign-in is not valid or has expired. Start again from the login page.",
        ),
        Err(auth_core::flow_engine::FlowError::InProgress) => refused(
            StatusCode::CONFLICT,
            "This sign-in is already being completed.",
        ),
        Err(error) => {
            tracing::error!(%error, "external login callback failed");
            refused(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in failed.")
        }
    }
}

fn refused(status: StatusCode, message: &'static str) -> Response {
    let mut response = (status, message).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
