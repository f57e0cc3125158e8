//! `auth/mfa_credentials` and `auth/mfa_credentials/remove` (ours, not Home Assistant's): the
//! named keys the caller registered in an MFA module that keeps several per user (passkeys),
//! listed and removed one at a time.

use serde_json::{Map, Value, json};

use super::messages::WsError;
use super::{Session, str_field};

fn no_module(module_id: &str) -> WsError {
    WsError::new("no_module", format!("MFA module {module_id} is not found"))
}

fn not_supported(module_id: &str) -> WsError {
    WsError::new(
        "not_supported",
        format!("MFA module {module_id} does not keep named keys"),
    )
}

/// `{"mfa_module_id"}` -> `{"credentials": [{id, name, created_at, last_used_at}]}`.
pub(super) async fn list(session: &Session, msg: &Map<String, Value>) -> Result<Value, WsError> {
    let user = session.user()?;
    let module_id = str_field(msg, "mfa_module_id");
    let module = session
        .manager()
        .mfa_module(module_id)
        .ok_or_else(|| no_module(module_id))?;
    match module.list_credentials(&user.id).await {
        Ok(Some(credentials)) => Ok(json!({ "credentials": credentials })),
        Ok(None) => Err(not_supported(module_id)),
        Err(error) => Err(WsError::internal("auth/mfa_credentials", &error)),
    }
}

/// `{"mfa_module_id", "credential_id"}` -> `"done"`; `not_found` if the caller has no such key.
pub(super) async fn remove(session: &Session, msg: &Map<String, Value>) -> Result<Value, WsError> {
    let user = session.user()?;
    let module_id = str_field(msg, "mfa_module_id");
    let credential_id = str_field(msg, "credential_id");
    let module = session
        .manager()
        .mfa_module(module_id)
        .ok_or_else(|| no_module(module_id))?;
    match module.list_credentials(&user.id).await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(not_supported(module_id)),
        Err(error) => return Err(WsError::internal("auth/mfa_credentials/remove", &error)),
    }
    match module.remove_credential(&user.id, credential_id).await {
        Ok(true) => Ok(json!("done")),
        Ok(false) => Err(WsError::new("not_found", "No such key")),
        Err(error) => Err(WsError::internal("auth/mfa_credentials/remove", &error)),
    }
}
