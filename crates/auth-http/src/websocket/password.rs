//! `config/auth_provider/homeassistant/*` commands (websocket.md §5): usernames and passwords of
//! the provider offering [`PasswordAdmin`] (the `homeassistant` provider; the first configured
//! one when several do).

use std::sync::Arc;

use auth_core::password_admin::{credential_of, password_admin_provider};
use auth_core::{
    AuthAccess, AuthError, AuthProvider, Credentials, PasswordAdmin, ProviderError, User,
};
use serde_json::{Map, Value};

use super::messages::WsError;
use super::{Session, str_field};

/// Serialises the credential commands with each other: "does the user have credentials yet?"
/// with adding them (HA holds a lock too), ownership checks with deletions and renames.
static CREDENTIALS_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn not_configured() -> WsError {
    WsError::new(
        "unknown_error",
        "No auth provider with local usernames and passwords (type homeassistant) is configured",
    )
}

/// The provider whose passwords the commands manage.
fn provider(session: &Session) -> Result<Arc<dyn AuthProvider>, WsError> {
    password_admin_provider(&session.manager().auth_providers()).ok_or_else(not_configured)
}

fn admin(provider: &dyn AuthProvider) -> Result<&dyn PasswordAdmin, WsError> {
    provider.password_admin().ok_or_else(not_configured)
}

fn provider_error(context: &str, error: ProviderError) -> WsError {
    match error {
        ProviderError::InvalidUser(message) => WsError::home_assistant(&message),
        ProviderError::InvalidUsername {
            key,
            message,
            placeholders,
        } => WsError::translated(&message, key, placeholders),
        other => WsError::internal(context, &other),
    }
}

fn auth_error(context: &str, error: AuthError) -> WsError {
    match error {
        AuthError::Provider(error) => provider_error(context, error),
        other => WsError::internal(context, &other),
    }
}

fn credentials_not_found() -> WsError {
    WsError::new("credentials_not_found", "Credentials not found")
}

/// The target of the owner-only admin commands.
fn owner_target(session: &Session, msg: &Map<String, Value>) -> Result<User, WsError> {
    if !session.user()?.is_owner {
        return Err(WsError::unauthorized());
    }
    session
        .manager()
        .user(str_field(msg, "user_id"))
        .ok_or_else(|| WsError::new("user_not_found", "User not found"))
}

pub(super) async fn create(session: &Session, msg: &Map<String, Value>) -> Result<Value, WsError> {
    let provider = provider(session)?;
    let admin = admin(provider.as_ref())?;
    let manager = session.manager();
    let caller = session.user()?;
    let _serialised = CREDENTIALS_LOCK.lock().await;
    let user = manager
        .user(str_field(msg, "user_id"))
        .ok_or_else(|| WsError::new("not_found", "User not found"))?;
    if user.system_generated {
        return Err(WsError::new(
            "system_generated",
            "Cannot add credentials to a system generated user.",
        ));
    }
    if user.is_owner && !caller.is_owner {
        return Err(WsError::unauthorized());
    }
    if credential_of(provider.as_ref(), &user).is_some() {
        return Err(WsError::new(
            "credentials_exist",
            "User already has credentials for this provider",
        ));
    }
    let access: &dyn AuthAccess = manager;
    admin
        .add_credentials(
            access,
            &user.id,
            str_field(msg, "username"),
            str_field(msg, "password"),
        )
        .await
        .map_err(|e| provider_error("config/auth_provider/homeassistant/create", e))?;
    Ok(Value::Null)
}

/// Deletes the credentials (and password) of a username, compared normalised as logins compare
/// it; refused for the owner's, whatever the spelling.
pub(super) async fn delete(session: &Session, msg: &Map<String, Value>) -> Result<Value, WsError> {
    let provider = provider(session)?;
    let admin = admin(provider.as_ref())?;
    let manager = session.manager();
    let context = "config/auth_provider/homeassistant/delete";
    let _serialised = CREDENTIALS_LOCK.lock().await;
    let wanted = admin.normalize_username(str_field(msg, "username"));
    let matching: Vec<Credentials> = manager
        .credentials_of(provider.provider_type(), provider.provider_id())
        .into_iter()
        .filter(|c| {
            c.data_str("username")
                .is_some_and(|u| admin.normalize_username(u) == wanted)
        })
        .collect();
    let owners = matching.iter().any(|c| {
        manager
            .user_by_credentials(&c.id)
            .is_some_and(|user| user.is_owner)
    });
    if owners {
        return Err(WsError::new(
            "cannot_delete_owner_credentials",
            "Unable to delete the credentials of the owner",
        ));
    }
    if matching.is_empty() {
        admin
            .remove_auth(&wanted)
            .await
            .map_err(|e| provider_error(context, e))?;
    }
    for credential in matching {
        manager
            .remove_credentials(&credential.id)
            .await
            .map_err(|e| auth_error(context, e))?;
    }
    Ok(Value::Null)
}

pub(super) async fn change_password(
    session: &Session,
    msg: &Map<String, Value>,
) -> Result<Value, WsError> {
    let provider = provider(session)?;
    let admin = admin(provider.as_ref())?;
    let user = session.user()?;
    let username = credential_of(provider.as_ref(), &user)
        .and_then(|c| c.data_str("username"))
        .ok_or_else(credentials_not_found)?;
    let context = "config/auth_provider/homeassistant/change_password";
    let valid = admin
        .validate_login(username, str_field(msg, "current_password"))
        .await
        .map_err(|e| provider_error(context, e))?;
    if !valid {
        return Err(WsError::new(
            "invalid_current_password",
            "Invalid current password",
        ));
    }
    admin
        .change_password(username, str_field(msg, "new_password"))
        .await
        .map_err(|e| provider_error(context, e))?;
    Ok(Value::Null)
}

pub(super) async fn admin_change_password(
    session: &Session,
    msg: &Map<String, Value>,
) -> Result<Value, WsError> {
    let provider = provider(session)?;
    let admin = admin(provider.as_ref())?;
    let user = owner_target(session, msg)?;
    let username = credential_of(provider.as_ref(), &user)
        .and_then(|c| c.data_str("username"))
        .ok_or_else(credentials_not_found)?;
    admin
        .change_password(username, str_field(msg, "password"))
        .await
        .map_err(|e| {
            provider_error(
                "config/auth_provider/homeassistant/admin_change_password",
                e,
            )
        })?;
    Ok(Value::Null)
}

pub(super) async fn admin_change_username(
    session: &Session,
    msg: &Map<String, Value>,
) -> Result<Value, WsError> {
    let provider = provider(session)?;
    let admin = admin(provider.as_ref())?;
    let user = owner_target(session, msg)?;
    let credential = credential_of(provider.as_ref(), &user).ok_or_else(credentials_not_found)?;
    let _serialised = CREDENTIALS_LOCK.lock().await;
    let access: &dyn AuthAccess = session.manager();
    admin
        .change_username(access, credential, str_field(msg, "username"))
        .await
        .map_err(|e| {
            provider_error(
                "config/auth_provider/homeassistant/admin_change_username",
                e,
            )
        })?;
    Ok(Value::Null)
}
