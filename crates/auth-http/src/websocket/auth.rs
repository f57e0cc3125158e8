//! `auth/*` commands (websocket.md §3): the caller's profile, tokens, signed paths and MFA.

use auth_core::flow_engine::FlowError;
use auth_core::timefmt::{from_unix_f64, to_iso};
use auth_core::{AuthError, NewRefreshToken, TokenType};
use serde_json::{Map, Value, json};

use super::messages::WsError;
use super::schema;
use super::{Session, opt_bool, opt_str, str_field};

/// Longest duration HA's `timedelta` accepts, in days; beyond it HA fails with an overflow.
const MAX_DAYS: i64 = 999_999_999;

pub(super) async fn current_user(session: &Session) -> Result<Value, WsError> {
    let user = session.user()?;
    let manager = session.manager();
    let enabled = manager.enabled_mfa(&user.id).await;
    let credentials: Vec<Value> = user
        .credentials
        .iter()
        .map(|c| {
            json!({"auth_provider_type": c.auth_provider_type, "auth_provider_id": c.auth_provider_id})
        })
        .collect();
    let modules: Vec<Value> = manager
        .mfa_modules()
        .iter()
        .map(|m| json!({"id": m.id(), "name": m.name(), "enabled": enabled.contains_key(m.id())}))
        .collect();
    Ok(json!({
        "id": user.id,
        "name": user.name,
        "is_owner": user.is_owner,
        "is_admin": user.is_admin(),
        "credentials": credentials,
        "mfa_modules": modules,
    }))
}

pub(super) async fn long_lived_access_token(
    session: &Session,
    msg: &Map<String, Value>,
) -> Result<Value, WsError> {
    let user = session.user()?;
    let lifespan = msg
        .get("lifespan")
        .and_then(Value::as_i64)
        .filter(|days| (-MAX_DAYS..=MAX_DAYS).contains(days))
        .ok_or_else(WsError::unknown)?;
    let params = NewRefreshToken {
        client_name: Some(str_field(msg, "client_name").to_owned()),
        client_icon: opt_str(msg, "client_icon").map(str::to_owned),
        token_type: Some(TokenType::LongLivedAccessToken),
        access_token_expiration: Some(time::Duration::days(lifespan)),
        ..Default::default()
    };
    let manager = session.manager();
    let token = match manager.create_refresh_token(&user.id, params).await {
        Ok(token) => token,
        // HA surfaces these ValueErrors (duplicate name, system user) generically.
        Err(AuthError::Invalid(reason)) => {
            tracing::info!(reason, "long-lived access token refused");
            return Err(WsError::unknown());
        }
        Err(error) => return Err(WsError::internal("auth/long_lived_access_token", &error)),
    };
    match manager.create_access_token(&token.id, None).await {
        Ok(jwt) => Ok(Value::String(jwt)),
        Err(AuthError::InvalidAuth(message)) => Err(WsError::new("unauthorized", message)),
        Err(error) => Err(WsError::internal("auth/long_lived_access_token", &error)),
    }
}

pub(super) fn refresh_tokens(session: &Session) -> Result<Value, WsError> {
    let user = session.user()?;
    let tokens: Vec<Value> = session
        .manager()
        .refresh_tokens_of(&user.id)
        .iter()
        .map(|t| {
            let provider_type = t.credential_id.as_ref().and_then(|id| {
                user.credentials
                    .iter()
                    .find(|c| &c.id == id)
                    .map(|c| c.auth_provider_type.clone())
            });
            let expire_at = t
                .expire_at
                .filter(|at| *at != 0.0)
                .and_then(from_unix_f64)
                .map(to_iso);
            json!({
                "auth_provider_type": provider_type,
                "client_icon": t.client_icon,
                "client_id": t.client_id,
                "client_name": t.client_name,
                "created_at": to_iso(t.created_at),
                "expire_at": expire_at,
                "id": t.id,
                "is_current": t.id == session.token_id,
                "last_used_at": t.last_used_at.map(to_iso),
                "last_used_ip": t.last_used_ip,
                "type": t.token_type.as_str(),
            })
        })
        .collect();
    Ok(Value::Array(tokens))
}

fn invalid_token_id() -> WsError {
    WsError::new("invalid_token_id", "Received invalid token")
}

/// The caller's own token `id`.
fn own_token(session: &Session, id: &str) -> Result<String, WsError> {
    session
        .manager()
        .refresh_token(id)
        .filter(|t| t.user_id == session.user_id)
        .map(|t| t.id.clone())
        .ok_or_else(invalid_token_id)
}

pub(super) async fn delete_refresh_token(
    session: &Session,
    msg: &Map<String, Value>,
) -> Result<Value, WsError> {
    let id = own_token(session, str_field(msg, "refresh_token_id"))?;
    match session.manager().remove_refresh_token(&id).await {
        Ok(()) => Ok(json!({})),
        Err(AuthError::TokenNotFound) => Err(invalid_token_id()),
        Err(error) => Err(WsError::internal("auth/delete_refresh_token", &error)),
    }
}

pub(super) async fn delete_all_refresh_tokens(
    session: &Session,
    msg: &Map<String, Value>,
) -> Result<Value, WsError> {
    let user = session.user()?;
    let token_type = opt_str(msg, "token_type");
    let delete_current = opt_bool(msg, "delete_current_token").unwrap_or(true);
    let manager = session.manager();
    let mut failed = false;
    for token in manager.refresh_tokens_of(&user.id) {
        if token.id == session.token_id && !delete_current {
            continue;
        }
        if token_type.is_some_and(|wanted| wanted != token.token_type.as_str()) {
            continue;
        }
        match manager.remove_refresh_token(&token.id).await {
            Ok(()) | Err(AuthError::TokenNotFound) => {}
            Err(error) => {
                tracing::error!(%error, "removing a refresh token failed");
                failed = true;
            }
        }
    }
    if failed {
        Err(WsError::new(
            "token_removing_error",
            "During removal, an error was raised.",
        ))
    } else {
        Ok(json!({}))
    }
}

pub(super) async fn refresh_token_set_expiry(
    session: &Session,
    msg: &Map<String, Value>,
) -> Result<Value, WsError> {
    let id = own_token(session, str_field(msg, "refresh_token_id"))?;
    let enable = opt_bool(msg, "enable_expiry").unwrap_or_default();
    match session
        .manager()
        .set_refresh_token_expiry(&id, enable)
        .await
    {
        Ok(()) => Ok(json!({})),
        Err(AuthError::TokenNotFound) => Err(invalid_token_id()),
        Err(error) => Err(WsError::internal("auth/refresh_token_set_expiry", &error)),
    }
}

pub(super) fn sign_path(session: &Session, msg: &Map<String, Value>) -> Result<Value, WsError> {
    let expires = match msg.get("expires") {
        None => 30,
        Some(value) => value
            .as_i64()
            .filter(|s| s.unsigned_abs() <= (MAX_DAYS * 86_400) as u64)
            .ok_or_else(WsError::unknown)?,
    };
    let path = session
        .http
        .sign_path(str_field(msg, "path"), expires, &session.token_id);
    Ok(json!({"path": path}))
}

/// `mfa_module_id` and `flow_id` are exclusive, and one of them is required.
pub(super) fn setup_mfa_schema(msg: &Map<String, Value>) -> Result<(), String> {
    match (msg.get("mfa_module_id"), msg.get("flow_id")) {
        (Some(_), Some(flow_id)) => Err(schema::problem(
            "two or more values in the same group of exclusion 'module_or_flow_id'",
            "flow_id",
            Some(flow_id),
        )),
        (None, None) => Err(format!(
            "at least one of ['mfa_module_id', 'flow_id'] is required. Got {}",
            schema::summary(Some(&Value::Object(msg.clone())))
        )),
        _ => Ok(()),
    }
}

fn unknown_flow() -> WsError {
    WsError::new("not_found", "Invalid flow specified")
}

fn too_many_flows() -> WsError {
    WsError::new("too_many_flows", "Too many MFA setup flows in progress")
}

pub(super) async fn setup_mfa(
    session: &Session,
    msg: &Map<String, Value>,
) -> Result<Value, WsError> {
    let user = session.user()?;
    let manager = session.manager();
    if let Some(flow_id) = opt_str(msg, "flow_id") {
        let flows = manager.mfa_setup_flows();
        // Unlike HA, a flow can only be continued by the user it enrols.
        if flows.context(flow_id).as_deref() != Some(user.id.as_str()) {
            return Err(unknown_flow());
        }
        let input = match msg.get("user_input") {
            None | Some(Value::Null) => None,
            Some(Value::Object(input)) => Some(input.clone()),
            Some(other) => {
                return Err(WsError::invalid_format(schema::problem(
                    "expected a dictionary",
                    "user_input",
                    Some(other),
                )));
            }
        };
        return match flows.configure(flow_id, input).await {
            Ok(response) => Ok(response.to_json()),
            Err(FlowError::UnknownFlow) => Err(unknown_flow()),
            Err(FlowError::InvalidInput(invalid)) => {
                Err(WsError::invalid_format(invalid.to_string()))
            }
            Err(FlowError::InProgress) => Err(WsError::new(
                "flow_in_progress",
                "Another request for this flow is in progress",
            )),
            Err(error) => Err(WsError::internal("auth/setup_mfa", &error)),
        };
    }
    let module_id = str_field(msg, "mfa_module_id");
    if manager.mfa_module(module_id).is_none() {
        return Err(WsError::new(
            "no_module",
            format!("MFA module {module_id} is not found"),
        ));
    }
    match manager.start_mfa_setup(module_id, &user.id).await {
        Ok(response) => Ok(response.to_json()),
        Err(AuthError::Flow(FlowError::TooManyFlows) | AuthError::Overloaded(_)) => {
            Err(too_many_flows())
        }
        Err(error) => Err(WsError::internal("auth/setup_mfa", &error)),
    }
}

pub(super) async fn depose_mfa(
    session: &Session,
    msg: &Map<String, Value>,
) -> Result<Value, WsError> {
    let module_id = str_field(msg, "mfa_module_id");
    match session
        .manager()
        .disable_own_mfa(&session.user_id, module_id)
        .await
    {
        Ok(()) => Ok(json!("done")),
        Err(
            error @ (AuthError::UnknownMfaModule(_)
            | AuthError::Invalid(_)
            | AuthError::MfaRequired { .. }),
        ) => Err(WsError::new(
            "disable_failed",
            format!("Cannot disable MFA Module {module_id}: {error}"),
        )),
        Err(error) => Err(WsError::internal("auth/depose_mfa", &error)),
    }
}
