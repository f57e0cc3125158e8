//! Discovery: the OAuth metadata documents, `/.well-known/change-password` and `/api/`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::unauthorized;
use crate::Authenticated;
use crate::error::{ApiError, json_response};
use crate::net::RequestBase;

const SERVICE_DOCUMENTATION: &str =
    "https://contributors.home-assistant.io/core/internals/auth-api/";

pub async fn oauth_metadata(request_base: RequestBase) -> Response {
    let base = request_base.url();
    let prefix = base.clone().unwrap_or_default();
    let mut body = json!({
        "authorization_endpoint": format!("{prefix}/auth/authorize"),
        "token_endpoint": format!("{prefix}/auth/token"),
        "revocation_endpoint": format!("{prefix}/auth/revoke"),
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "client_id_metadata_document_supported": true,
        "code_challenge_methods_supported": ["S256"],
        "response_types_supported": ["code"],
        "service_documentation": SERVICE_DOCUMENTATION,
    });
    if let Some(base) = base {
        body["issuer"] = Value::String(base);
    }
    json_response(StatusCode::OK, &body)
}

pub async fn protected_resource(base: RequestBase) -> Response {
    match base.url() {
        Some(base) => json_response(
            StatusCode::OK,
            &json!({"resource": base, "authorization_servers": [base], "resource_documentation": SERVICE_DOCUMENTATION}),
        ),
        None => ApiError::message(StatusCode::NOT_FOUND, "No URL available").into_response(),
    }
}

pub async fn change_password() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/profile")]).into_response()
}

pub async fn api_root(base: RequestBase, auth: Option<Authenticated>) -> Response {
    match auth {
        Some(_) => json_response(StatusCode::OK, &json!({"message": "API running."})),
        None => unauthorized(&base),
    }
}
