//! The login flow: `/auth/providers` and `/auth/login_flow*` (http-api.md §4–§5).

use auth_core::flow_engine::{FlowResponse, FlowResult};
use auth_core::{AuthError, LoginContext};
use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{auth_body, internal_error, request_origin};
use crate::AuthHttp;
use crate::body::{self, format_error, no_extra_keys, optional_str, required_str};
use crate::error::{ApiError, Style, json_response};
use crate::indieauth::verify_client_id;
use crate::net::{ClientAddr, RequestBase};

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
    ApiError::from_auth(error, Style::Message)
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
    manager
        .create_auth_code(client_id, credentials, context)
        .await
        .map_err(|error| ApiError::from_auth(error, Style::Message))
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
        Err(error) => Err(flow_failure(AuthError::Flow(error))),
    }
}
