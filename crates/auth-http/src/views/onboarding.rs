//! Onboarding: `/api/onboarding*` (http-api.md §10).

use auth_core::{Credentials, LoginContext};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{auth_body, authenticated_string_pair, internal_error};
use crate::body::{self, no_extra_keys, required_str};
use crate::error::{ApiError, Style, json_response};
use crate::{AuthHttp, Authenticated};

pub async fn onboarding_status(State(http): State<AuthHttp>) -> Response {
    json_response(StatusCode::OK, &http.onboarding().status())
}

pub async fn onboarding_users(State(http): State<AuthHttp>, request: Request<Body>) -> Response {
    let bytes = match auth_body(&http, request).await {
        Ok(bytes) => bytes,
        Err(error) => return error.into_response(),
    };
    // HA validates the body before its handler looks at the step.
    let parsed = body::json_object(&bytes).and_then(|map| {
        no_extra_keys(
            &map,
            &["name", "username", "password", "client_id", "language"],
        )?;
        let fields: Result<Vec<String>, ApiError> =
            ["name", "username", "password", "client_id", "language"]
                .iter()
                .map(|k| required_str(&map, k).map(str::to_owned))
                .collect();
        fields
    });
    let fields = match parsed {
        Ok(fields) => fields,
        Err(error) => return error.into_response(),
    };
    let [name, username, password, client_id, _language] =
        <[String; 5]>::try_from(fields).expect("five fields");
    let _guard = http.inner.onboarding_lock.lock().await;
    if http.onboarding().is_done("user") {
        return ApiError::message(StatusCode::FORBIDDEN, "User step already done").into_response();
    }
    match create_owner(&http, &name, &username, &password, &client_id).await {
        Ok(code) => json_response(StatusCode::OK, &json!({"auth_code": code})),
        Err(error) => error.into_response(),
    }
}

async fn create_owner(
    http: &AuthHttp,
    name: &str,
    username: &str,
    password: &str,
    client_id: &str,
) -> Result<String, ApiError> {
    let manager = http.manager();
    let not_configured = || {
        ApiError::message(
            StatusCode::BAD_REQUEST,
            "No auth provider with local usernames and passwords (type homeassistant) is configured",
        )
    };
    let provider = auth_core::password_admin::password_admin_provider(&manager.auth_providers())
        .ok_or_else(not_configured)?;
    let internal = |error: &dyn std::fmt::Display| {
        tracing::error!(%error, "onboarding failed");
        internal_error()
    };
    let admin = provider.password_admin().ok_or_else(not_configured)?;
    if let Err(error) = admin.add_auth(username, password).await {
        return Err(ApiError::from_auth(error.into(), Style::Message));
    }
    let undo = || async {
        if let Err(error) = admin.remove_auth(username).await {
            tracing::error!(%error, "could not undo a half-done onboarding");
        }
    };
    let user = match manager
        .create_user(
            Some(name.to_owned()),
            vec![auth_core::models::GROUP_ID_ADMIN.to_owned()],
            false,
        )
        .await
    {
        Ok(user) => user,
        Err(error) => {
            undo().await;
            return Err(internal(&error));
        }
    };
    if !user.is_owner && manager.store().storage().changes().is_some() {
        // Another instance on the same database onboarded its owner meanwhile. (One process
        // serialises onboardings; there a non-owner here follows a half-failed onboarding.)
        if let Err(error) = manager.remove_user(&user.id).await {
            tracing::error!(%error, "could not undo a half-done onboarding");
        }
        undo().await;
        return Err(ApiError::message(
            StatusCode::FORBIDDEN,
            "User step already done",
        ));
    }
    let mut data = Map::new();
    data.insert("username".to_owned(), Value::String(username.to_owned()));
    let access: &dyn auth_core::AuthAccess = manager;
    let credentials: Credentials = match provider.get_or_create_credentials(&data, access).await {
        Ok(credentials) => credentials,
        Err(error) => return Err(internal(&error)),
    };
    let mut linked = credentials.clone();
    if let Err(error) = manager.link_user(&user.id, credentials).await {
        return Err(internal(&error));
    }
    linked.is_new = false;
    http.onboarding()
        .mark_done("user")
        .await
        .map_err(|e| internal(&e))?;
    manager
        .create_auth_code(client_id, linked, &LoginContext::default())
        .await
        .map_err(|e| internal(&e))
}

pub async fn onboarding_integration(
    State(http): State<AuthHttp>,
    auth: Option<Authenticated>,
    request: Request<Body>,
) -> Response {
    // Not one of the unauthenticated views with the small limit (http-api.md §1).
    let (caller, client_id, redirect_uri) =
        match authenticated_string_pair(&http, &auth, request, ["client_id", "redirect_uri"]).await
        {
            Ok(parsed) => parsed,
            Err(response) => return response,
        };
    // One request at a time, as in HA: a second one waits for the first to finish (and to save
    // the step), then finds the step done.
    let _guard = http.inner.onboarding_lock.lock().await;
    if http.onboarding().is_done("integration") {
        return ApiError::message(StatusCode::FORBIDDEN, "Integration step already done")
            .into_response();
    }
    if let Err(error) = http.onboarding().mark_done("integration").await {
        tracing::error!(%error, "saving the onboarding integration step failed");
        return internal_error().into_response();
    }
    if !http
        .redirect_uri_allowed(&client_id, &redirect_uri, false)
        .await
    {
        return ApiError::message(StatusCode::BAD_REQUEST, "invalid client id or redirect uri")
            .into_response();
    }
    let manager = http.manager();
    let credentials = caller.refresh_token.credential_id.as_ref().and_then(|id| {
        manager
            .user_by_credentials(id)?
            .credentials
            .into_iter()
            .find(|c| &c.id == id)
    });
    match credentials {
        Some(credentials) => {
            match manager
                .create_auth_code(&client_id, credentials, &LoginContext::default())
                .await
            {
                Ok(code) => json_response(StatusCode::OK, &json!({"auth_code": code})),
                Err(error) => ApiError::from_auth(error, Style::Message).into_response(),
            }
        }
        None => ApiError::message(StatusCode::FORBIDDEN, "Credentials for user not available")
            .into_response(),
    }
}
