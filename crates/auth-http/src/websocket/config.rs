//! `config/auth/*` commands (websocket.md §4): user management for admins.

use auth_core::{AuthError, User, UserUpdate};
use serde_json::{Map, Value, json};

use super::messages::WsError;
use super::{Session, opt_bool, opt_str, str_field};

/// HA's user info object.
pub(super) fn user_info(user: &User) -> Value {
    let username = user
        .credentials
        .iter()
        .find(|c| c.auth_provider_type == "homeassistant")
        .and_then(|c| c.data.get("username").cloned())
        .unwrap_or(Value::Null);
    let credentials: Vec<Value> = user
        .credentials
        .iter()
        .map(|c| json!({"type": c.auth_provider_type}))
        .collect();
    json!({
        "id": user.id,
        "username": username,
        "name": user.name,
        "is_owner": user.is_owner,
        "is_active": user.is_active,
        "local_only": user.local_only,
        "system_generated": user.system_generated,
        "group_ids": user.group_ids,
        "credentials": credentials,
    })
}

fn str_list(msg: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
    msg.get(key).and_then(Value::as_array).map(|items| {
        items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    })
}

fn not_found() -> WsError {
    WsError::new("not_found", "User not found")
}

/// Errors HA reports generically (`ValueError` for an unknown group and the like).
fn manager_error(context: &str, error: AuthError) -> WsError {
    match error {
        AuthError::InvalidGroup(_) | AuthError::Invalid(_) => {
            tracing::info!(%error, "websocket {context} refused");
            WsError::unknown()
        }
        AuthError::UserNotFound => not_found(),
        other => WsError::internal(context, &other),
    }
}

pub(super) fn list(session: &Session) -> Value {
    Value::Array(session.manager().users().iter().map(user_info).collect())
}

pub(super) async fn create(session: &Session, msg: &Map<String, Value>) -> Result<Value, WsError> {
    let created = session
        .manager()
        .create_user(
            Some(str_field(msg, "name").to_owned()),
            str_list(msg, "group_ids").unwrap_or_default(),
            opt_bool(msg, "local_only").unwrap_or(false),
        )
        .await
        .map_err(|e| manager_error("config/auth/create", e))?;
    Ok(json!({"user": user_info(&created)}))
}

pub(super) async fn update(session: &Session, msg: &Map<String, Value>) -> Result<Value, WsError> {
    let manager = session.manager();
    let user = manager
        .user(str_field(msg, "user_id"))
        .ok_or_else(not_found)?;
    if user.system_generated {
        return Err(WsError::new(
            "cannot_modify_system_generated",
            "Unable to update system generated users.",
        ));
    }
    let is_active = opt_bool(msg, "is_active");
    if user.is_owner && is_active == Some(false) {
        return Err(WsError::new(
            "cannot_deactivate_owner",
            "Unable to deactivate owner.",
        ));
    }
    let update = UserUpdate {
        name: opt_str(msg, "name").map(|n| Some(n.to_owned())),
        is_active,
        group_ids: str_list(msg, "group_ids"),
        local_only: opt_bool(msg, "local_only"),
    };
    let updated = manager
        .update_user(&user.id, update)
        .await
        .map_err(|error| match error {
            AuthError::CannotDeactivateOwner => {
                WsError::new("cannot_deactivate_owner", "Unable to deactivate owner.")
            }
            other => manager_error("config/auth/update", other),
        })?;
    Ok(json!({"user": user_info(&updated)}))
}

pub(super) async fn delete(session: &Session, msg: &Map<String, Value>) -> Result<Value, WsError> {
    let user_id = str_field(msg, "user_id");
    if user_id == session.user_id {
        return Err(WsError::new(
            "no_delete_self",
            "Unable to delete your own account",
        ));
    }
    let manager = session.manager();
    let user = manager.user(user_id).ok_or_else(not_found)?;
    if user.system_generated {
        return Err(WsError::new(
            "cannot_modify_system_generated",
            "Unable to delete system generated users.",
        ));
    }
    if user.is_owner {
        return Err(WsError::new(
            "cannot_delete_owner",
            "Unable to delete the owner",
        ));
    }
    manager
        .remove_user(&user.id)
        .await
        .map_err(|error| match error {
            AuthError::CannotRemoveOwner => {
                WsError::new("cannot_delete_owner", "Unable to delete the owner")
            }
            other => manager_error("config/auth/delete", other),
        })?;
    Ok(Value::Null)
}
