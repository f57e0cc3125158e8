//! The API's views (http-api.md §3–§13).

use std::collections::HashMap;

use auth_core::flow_engine::{FlowError, FlowResponse, FlowResult};
use auth_core::{AuthError, Credentials, LoginContext, NewRefreshToken};
use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::body::{self, FormError, format_error, no_extra_keys, optional_str, required_str};
use crate::error::{ApiError, json_response};
use crate::indieauth::{RequestOrigin, verify_client_id};
use crate::net::{ClientAddr, RequestBase};
use crate::{AuthHttp, Authenticated, www_authenticate};

const SERVICE_DOCUMENTATION: &str =
    "https://contributors.home-assistant.io/core/internals/auth-api/";

/// `(scheme, host, port)` the client addressed.
fn request_origin(base: &RequestBase) -> Option<RequestOrigin> {
    let url = url::Url::parse(&format!("{}/", base.url()?)).ok()?;
    Some(RequestOrigin {
        scheme: base.scheme.to_owned(),
        host: url.host_str()?.to_lowercase(),
        port: url.port_or_known_default()?,
    })
}

fn unauthorized(base: &RequestBase) -> Response {
    let mut response = ApiError::Plain(StatusCode::UNAUTHORIZED).into_response();
    if let Some(base) = base.url() {
        let (name, value) = www_authenticate(&base);
        response.headers_mut().insert(name, value);
    }
    response
}

fn require_auth(auth: &Option<Extension<Authenticated>>) -> Option<Authenticated> {
    auth.as_ref().map(|a| a.0.clone())
}

/// Unknown routes: HA's plain 404.
pub async fn not_found() -> Response {
    ApiError::Plain(StatusCode::NOT_FOUND).into_response()
}

/// HA's answer to an unexpected error (http-api.md §1): `500` with aiohttp's plain text.
pub(crate) fn internal_error() -> ApiError {
    ApiError::Text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "500 Internal Server Error\n\nServer got itself in trouble".into(),
    )
}

// ----- discovery -----

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

pub async fn api_root(base: RequestBase, auth: Option<Extension<Authenticated>>) -> Response {
    match require_auth(&auth) {
        Some(_) => json_response(StatusCode::OK, &json!({"message": "API running."})),
        None => unauthorized(&base),
    }
}

// ----- providers -----

fn login_context(client: &ClientAddr) -> LoginContext {
    LoginContext {
        ip_address: client.ip,
        via_trusted_proxy: client.via_proxy,
        ..Default::default()
    }
}

pub async fn providers(
    State(http): State<AuthHttp>,
    Extension(client): Extension<ClientAddr>,
) -> Response {
    if !http.onboarding().is_done("user") {
        return ApiError::coded(
            StatusCode::BAD_REQUEST,
            "Onboarding not finished",
            "onboarding_required",
        )
        .into_response();
    }
    let Some(ip) = client.ip else {
        return ApiError::coded(
            StatusCode::BAD_REQUEST,
            "Invalid remote IP",
            "invalid_remote_ip",
        )
        .into_response();
    };
    let providers: Vec<Value> = http
        .manager()
        .providers_for(&login_context(&client))
        .iter()
        .map(|p| json!({"name": p.name(), "id": p.provider_id(), "type": p.provider_type()}))
        .collect();
    let remember = auth_core::net::is_local(crate::net::canonical(ip));
    json_response(
        StatusCode::OK,
        &json!({"providers": providers, "preselect_remember_me": remember}),
    )
}

// ----- login flow -----

/// HA's HTTP rendering of a login-flow result (flows.md §2.1); `code` replaces create_entry data.
fn flow_json(response: &FlowResponse, code: Option<&str>) -> Value {
    match &response.result {
        FlowResult::CreateEntry {
            description,
            description_placeholders,
            ..
        } => json!({
            "type": "create_entry",
            "flow_id": response.flow_id,
            "handler": response.handler,
            "description": description,
            "description_placeholders": description_placeholders,
            "result": code,
        }),
        _ => response.to_json(),
    }
}

fn is_pkce_challenge(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The body of an unauthenticated auth endpoint, within its size limit and time.
async fn auth_body(http: &AuthHttp, request: Request<Body>) -> Result<Vec<u8>, ApiError> {
    let options = http.options();
    body::read_limited(request, options.auth_body_limit, options.body_timeout)
        .await
        .map(|(_, bytes)| bytes)
}

/// The token endpoints' form, within the same limits as [`auth_body`].
async fn auth_token_form(
    http: &AuthHttp,
    request: Request<Body>,
) -> Result<Result<std::collections::HashMap<String, String>, body::FormError>, ApiError> {
    let options = http.options();
    body::token_form(request, options.auth_body_limit, options.body_timeout).await
}

pub async fn login_flow_start(
    State(http): State<AuthHttp>,
    Extension(client): Extension<ClientAddr>,
    request: Request<Body>,
) -> Response {
    let base = RequestBase::of(&request);
    let url = request.uri().to_string();
    let bytes = match auth_body(&http, request).await {
        Ok(bytes) => bytes,
        Err(error) => return error.into_response(),
    };
    let data = match parse_start(&bytes) {
        Ok(data) => data,
        Err(error) => return error.into_response(),
    };
    let result = start_flow(&http, &client, &base, data).await;
    finish_response(&http, &client, &url, result).await
}

struct StartRequest {
    client_id: String,
    handler: (String, Option<String>),
    redirect_uri: String,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    response_type: Option<String>,
}

fn parse_start(bytes: &[u8]) -> Result<StartRequest, ApiError> {
    let map = body::json_object(bytes)?;
    no_extra_keys(
        &map,
        &[
            "client_id",
            "handler",
            "redirect_uri",
            "code_challenge",
            "code_challenge_method",
            "response_type",
            "type",
        ],
    )?;
    let client_id = required_str(&map, "client_id")?;
    let redirect_uri = required_str(&map, "redirect_uri")?;
    for (key, value) in [("client_id", client_id), ("redirect_uri", redirect_uri)] {
        if value.chars().count() > 2048 {
            return Err(format_error(format!(
                "length of value must be at most 2048 at '{key}'"
            )));
        }
    }
    let handler = match map.get("handler") {
        Some(Value::Array(items)) if items.len() == 2 => {
            let kind = items[0]
                .as_str()
                .ok_or_else(|| format_error("expected str at 'handler[0]'"))?;
            let id = match &items[1] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                _ => return Err(format_error("expected str or None at 'handler[1]'")),
            };
            (kind.to_owned(), id)
        }
        Some(Value::Array(items)) if items.len() < 2 => {
            return Err(format_error(
                "length of value must be at least 2 at 'handler'",
            ));
        }
        Some(Value::Array(_)) => {
            return Err(format_error(
                "length of value must be at most 2 at 'handler'",
            ));
        }
        Some(_) => return Err(format_error("expected a list at 'handler'")),
        None => return Err(format_error("required key not provided at 'handler'")),
    };
    let code_challenge = optional_str(&map, "code_challenge")?.map(str::to_owned);
    if let Some(challenge) = &code_challenge
        && !is_pkce_challenge(challenge)
    {
        return Err(format_error(
            "value does not match the required pattern at 'code_challenge'",
        ));
    }
    optional_str(&map, "type")?;
    Ok(StartRequest {
        client_id: client_id.to_owned(),
        handler,
        redirect_uri: redirect_uri.to_owned(),
        code_challenge,
        code_challenge_method: optional_str(&map, "code_challenge_method")?.map(str::to_owned),
        response_type: optional_str(&map, "response_type")?.map(str::to_owned),
    })
}

/// The outcome of a flow request before the finishing checks: the flow response plus the client id
/// to bind a code to.
type FlowOutcome = Result<(FlowResponse, String, LoginContext), ApiError>;

async fn start_flow(
    http: &AuthHttp,
    client: &ClientAddr,
    base: &RequestBase,
    data: StartRequest,
) -> FlowOutcome {
    if !verify_client_id(&data.client_id, request_origin(base).as_ref()) {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            "Invalid client id",
        ));
    }
    if data.response_type.as_deref().is_some_and(|r| r != "code") {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            "Response type not supported",
        ));
    }
    if data.code_challenge_method.is_some() && data.code_challenge.is_none() {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            "code_challenge required when code_challenge_method is provided",
        ));
    }
    if data.code_challenge.is_some() && data.code_challenge_method.as_deref() != Some("S256") {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            "Transform algorithm not supported",
        ));
    }
    let context = LoginContext {
        ip_address: client.ip,
        redirect_uri: Some(data.redirect_uri),
        code_challenge: data.code_challenge,
        code_challenge_method: data.code_challenge_method,
        via_trusted_proxy: client.via_proxy,
        client_id: Some(data.client_id.clone()),
    };
    let started = http
        .manager()
        .start_login_flow(&data.handler.0, data.handler.1.as_deref(), context.clone())
        .await;
    match started {
        Ok(Some(response)) => Ok((response, data.client_id, context)),
        Ok(None) => Err(ApiError::message(
            StatusCode::NOT_FOUND,
            "Invalid handler specified",
        )),
        Err(error) => Err(flow_failure(error)),
    }
}

fn flow_failure(error: AuthError) -> ApiError {
    match error {
        AuthError::Flow(FlowError::TooManyFlows) => ApiError::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many login flows in progress",
        ),
        AuthError::Flow(FlowError::UnknownStep(_)) => {
            ApiError::message(StatusCode::BAD_REQUEST, "Handler does not support init")
        }
        other => {
            tracing::error!(error = %other, "login flow failed");
            internal_error()
        }
    }
}

/// Applies http-api.md §5.2's finishing rules and counts failures.
async fn finish_response(
    http: &AuthHttp,
    client: &ClientAddr,
    url: &str,
    outcome: FlowOutcome,
) -> Response {
    let (response, client_id, context) = match outcome {
        Ok(ok) => ok,
        Err(error) => {
            if error.status().as_u16() >= 400 {
                http.bans().record_failure(client.ip, url);
            }
            return error.into_response();
        }
    };
    match &response.result {
        FlowResult::CreateEntry { data, .. } => {
            match finish_login(http, client, &context, data, &client_id).await {
                Ok(code) => {
                    http.bans().reset(client.ip);
                    json_response(StatusCode::OK, &flow_json(&response, Some(&code)))
                }
                Err(error) => {
                    http.bans().record_failure(client.ip, url);
                    error.into_response()
                }
            }
        }
        FlowResult::Form {
            errors: Some(errors),
            ..
        } if matches!(
            errors.get("base").and_then(Value::as_str),
            Some("invalid_auth" | "invalid_code" | "mfa_locked")
        ) =>
        {
            // A code refused because the account is locked out is a guess all the same.
            http.bans().record_failure(client.ip, url);
            json_response(StatusCode::OK, &flow_json(&response, None))
        }
        // The wrong code that used up the flow's retries counts like the ones before it.
        FlowResult::Abort { reason, .. } if reason == "too_many_retry" => {
            http.bans().record_failure(client.ip, url);
            json_response(StatusCode::OK, &flow_json(&response, None))
        }
        _ => json_response(StatusCode::OK, &flow_json(&response, None)),
    }
}

async fn finish_login(
    http: &AuthHttp,
    client: &ClientAddr,
    context: &LoginContext,
    data: &Value,
    client_id: &str,
) -> Result<String, ApiError> {
    let manager = http.manager();
    let credentials = manager
        .credentials_from_flow(data)
        .ok_or_else(internal_error)?;
    let redirect_uri = context.redirect_uri.clone().unwrap_or_default();
    let pkce = context.code_challenge_method.as_deref() == Some("S256");
    if !http
        .redirect_uri_allowed(client_id, &redirect_uri, pkce)
        .await
    {
        return Err(ApiError::message(
            StatusCode::FORBIDDEN,
            "Invalid redirect URI",
        ));
    }
    if let Some(user) = manager.user_by_credentials(&credentials.id)
        && let Some(reason) = manager.user_not_allowed_reason(&user, client.ip)
    {
        return Err(ApiError::message(
            StatusCode::FORBIDDEN,
            format!("Login blocked: {reason}"),
        ));
    }
    Ok(manager.create_auth_code(client_id, credentials, context))
}

/// The flow's client must be the one that started it (as for its steps): a flow's current form
/// can hold a secret being enrolled (a required chain's new TOTP secret), and aborting it would
/// cut someone else's sign-in short.
fn check_flow_client(http: &AuthHttp, client: &ClientAddr, flow_id: &str) -> Result<(), ApiError> {
    let Some(context) = http.manager().login_flows().context(flow_id) else {
        return Err(ApiError::message(
            StatusCode::NOT_FOUND,
            "Invalid flow specified",
        ));
    };
    if context.ip_address != client.ip {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            "IP address changed",
        ));
    }
    Ok(())
}

pub async fn login_flow_get(
    State(http): State<AuthHttp>,
    Extension(client): Extension<ClientAddr>,
    Path(flow_id): Path<String>,
) -> Response {
    if let Err(error) = check_flow_client(&http, &client, &flow_id) {
        return error.into_response();
    }
    match http.manager().login_flows().current(&flow_id) {
        Some(response) => json_response(StatusCode::OK, &flow_json(&response, None)),
        None => ApiError::message(StatusCode::NOT_FOUND, "Invalid flow specified").into_response(),
    }
}

pub async fn login_flow_delete(
    State(http): State<AuthHttp>,
    Extension(client): Extension<ClientAddr>,
    Path(flow_id): Path<String>,
) -> Response {
    if let Err(error) = check_flow_client(&http, &client, &flow_id) {
        return error.into_response();
    }
    match http.manager().login_flows().abort(&flow_id) {
        Ok(()) => json_response(StatusCode::OK, &json!({"message": "Flow aborted"})),
        Err(_) => {
            ApiError::message(StatusCode::NOT_FOUND, "Invalid flow specified").into_response()
        }
    }
}

pub async fn login_flow_step(
    State(http): State<AuthHttp>,
    Extension(client): Extension<ClientAddr>,
    Path(flow_id): Path<String>,
    request: Request<Body>,
) -> Response {
    let base = RequestBase::of(&request);
    let url = request.uri().to_string();
    let bytes = match auth_body(&http, request).await {
        Ok(bytes) => bytes,
        Err(error) => return error.into_response(),
    };
    let mut map = match body::json_object(&bytes) {
        Ok(map) => map,
        Err(error) => return error.into_response(),
    };
    let client_id = match map.remove("client_id") {
        Some(Value::String(s)) => s,
        Some(_) => return format_error("expected str at 'client_id'").into_response(),
        None => return format_error("required key not provided at 'client_id'").into_response(),
    };
    // Counted against the ban threshold from now until its failure (if any) is recorded.
    let _attempt = match http.bans().begin_attempt(client.ip) {
        Ok(attempt) => attempt,
        Err(crate::bans::Refused::Banned) => {
            return ApiError::Plain(StatusCode::FORBIDDEN).into_response();
        }
        Err(_) => {
            return ApiError::message(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many login attempts in progress",
            )
            .into_response();
        }
    };
    let outcome = step_flow(&http, &client, &base, &flow_id, client_id, map).await;
    finish_response(&http, &client, &url, outcome).await
}

async fn step_flow(
    http: &AuthHttp,
    client: &ClientAddr,
    base: &RequestBase,
    flow_id: &str,
    client_id: String,
    input: Map<String, Value>,
) -> FlowOutcome {
    if !verify_client_id(&client_id, request_origin(base).as_ref()) {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            "Invalid client id",
        ));
    }
    check_flow_client(http, client, flow_id)?;
    let flows = http.manager().login_flows();
    let Some(context) = flows.context(flow_id) else {
        return Err(ApiError::message(
            StatusCode::NOT_FOUND,
            "Invalid flow specified",
        ));
    };
    match flows.configure(flow_id, Some(input)).await {
        Ok(response) => Ok((response, client_id, context)),
        Err(FlowError::InProgress) => Err(ApiError::message(
            StatusCode::CONFLICT,
            "Flow request already in progress",
        )),
        Err(FlowError::UnknownFlow) => Err(ApiError::message(
            StatusCode::NOT_FOUND,
            "Invalid flow specified",
        )),
        Err(FlowError::InvalidInput(_)) => Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            "User input malformed",
        )),
        Err(other) => Err(flow_failure(AuthError::Flow(other))),
    }
}

// ----- token endpoint -----

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
        .map_err(server_error)?
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
    let user = match manager.get_or_create_user(&stored.credentials).await {
        Ok(user) => user,
        Err(AuthError::DuplicateCredentials) => {
            return Err(ApiError::oauth_described(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Sign in again",
            ));
        }
        Err(error) => return Err(server_error(error)),
    };
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
            other => server_error(other),
        })?;
    if !manager
        .record_auth_code_token(client_id, code, &refresh.id)
        .await
        .map_err(server_error)?
    {
        // The code came back while this redemption was under way: neither gets tokens.
        return Err(invalid_request("Invalid code"));
    }
    let access = manager
        .create_access_token(&refresh.id, client.ip)
        .await
        .map_err(access_error)?;
    Ok(token_success(json!({
        "access_token": access,
        "token_type": "Bearer",
        "refresh_token": refresh.token,
        "expires_in": refresh.access_token_expiration.whole_seconds(),
        "ha_auth_provider": stored.credentials.auth_provider_type,
    })))
}

fn access_error(error: AuthError) -> ApiError {
    match error {
        AuthError::InvalidAuth(message) => {
            ApiError::oauth_described(StatusCode::FORBIDDEN, "access_denied", message)
        }
        AuthError::UnknownProvider { .. } => {
            ApiError::oauth_described(StatusCode::FORBIDDEN, "access_denied", error.to_string())
        }
        AuthError::TokenNotFound => ApiError::oauth("invalid_grant"),
        other => server_error(other),
    }
}

/// A failure the token endpoint did not expect: HA's plain 500 (http-api.md §1 and §6 give it no
/// OAuth shape). A store that could not be written is a 503 in OAuth shape instead, so that a
/// client knows nothing was changed and may retry.
fn server_error(error: AuthError) -> ApiError {
    tracing::error!(%error, "token endpoint failed");
    match error {
        AuthError::Storage(_) => ApiError::oauth_described(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The auth store could not be written; nothing was changed",
        ),
        _ => internal_error(),
    }
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
        .map_err(access_error)?;
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

// ----- link user -----

/// For authenticated views: the caller, and the two required strings `keys` of a JSON body that
/// holds nothing else (body up to `body_limit`). The error is the response to send.
async fn authenticated_string_pair(
    http: &AuthHttp,
    auth: &Option<Extension<Authenticated>>,
    request: Request<Body>,
    keys: [&str; 2],
) -> Result<(Authenticated, String, String), Response> {
    let Some(caller) = require_auth(auth) else {
        return Err(unauthorized(&RequestBase::of(&request)));
    };
    let (_, bytes) = body::read_limited(
        request,
        http.options().body_limit,
        http.options().body_timeout,
    )
    .await
    .map_err(IntoResponse::into_response)?;
    let parse = || -> Result<(String, String), ApiError> {
        let map = body::json_object(&bytes)?;
        no_extra_keys(&map, &keys)?;
        Ok((
            required_str(&map, keys[0])?.to_owned(),
            required_str(&map, keys[1])?.to_owned(),
        ))
    };
    let (first, second) = parse().map_err(IntoResponse::into_response)?;
    Ok((caller, first, second))
}

pub async fn link_user(
    State(http): State<AuthHttp>,
    auth: Option<Extension<Authenticated>>,
    request: Request<Body>,
) -> Response {
    let (caller, code, client_id) =
        match authenticated_string_pair(&http, &auth, request, ["code", "client_id"]).await {
            Ok(parsed) => parsed,
            Err(response) => return response,
        };
    let manager = http.manager();
    let stored = manager
        .take_auth_code(&client_id, &code)
        .filter(|c| c.code_challenge.is_none());
    let Some(stored) = stored else {
        return ApiError::message(StatusCode::BAD_REQUEST, "Invalid code").into_response();
    };
    match manager.link_user(&caller.user.id, stored.credentials).await {
        Ok(()) => json_response(StatusCode::OK, &json!({"message": "User linked"})),
        Err(AuthError::CredentialAlreadyLinked) => {
            ApiError::message(StatusCode::BAD_REQUEST, "Credential already linked").into_response()
        }
        Err(error) => {
            tracing::error!(%error, "linking credentials failed");
            internal_error().into_response()
        }
    }
}

// ----- onboarding -----

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
        return Err(match error {
            auth_core::ProviderError::InvalidUsername { key, message, .. } => {
                ApiError::coded(StatusCode::BAD_REQUEST, message, key)
            }
            other => internal(&other),
        });
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
    Ok(manager.create_auth_code(client_id, linked, &LoginContext::default()))
}

pub async fn onboarding_integration(
    State(http): State<AuthHttp>,
    auth: Option<Extension<Authenticated>>,
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
            let code = manager.create_auth_code(&client_id, credentials, &LoginContext::default());
            json_response(StatusCode::OK, &json!({"auth_code": code}))
        }
        None => ApiError::message(StatusCode::FORBIDDEN, "Credentials for user not available")
            .into_response(),
    }
}
