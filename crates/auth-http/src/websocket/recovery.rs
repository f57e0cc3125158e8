//! Commands of our own (Home Assistant has none of them): a user's recovery codes and sign-in
//! history, and an administrator's reset of another user's second factors.
//!
//! * `auth/sign_in_history` → the user's last 20 sign-ins and failed attempts, newest first:
//!   `[{"time", "result", "ip", "client_id", "provider_type", "provider_id", "mfa"}]`;
//! * `auth/recovery_codes` → `{"remaining", "total", "created_at"}` or `null`;
//! * `auth/recovery_codes/generate` → `{"codes": [10 codes]}`, shown once, replacing old ones;
//! * `config/auth/reset_mfa` `{user_id, mfa_module_id?, code?}` (admins) → `{"reset": [module
//!   ids]}`: removes every MFA enrolment (or one module's) and the recovery codes of the user and
//!   revokes their sign-in sessions. Only
//!   the owner may reset the owner; resetting one's own needs `code`, a current second factor.

use auth_core::AuthError;
use auth_core::timefmt::to_iso;
use serde_json::{Map, Value, json};

use super::messages::WsError;
use super::{Session, opt_str, str_field};

pub(super) fn status(session: &Session) -> Result<Value, WsError> {
    Ok(
        match session.manager().recovery_codes().status(&session.user_id) {
            Some(status) => json!({
                "remaining": status.remaining,
                "total": status.total,
                "created_at": to_iso(status.created_at),
            }),
            None => Value::Null,
        },
    )
}

pub(super) fn sign_in_history(session: &Session) -> Value {
    Value::Array(
        session
            .manager()
            .sign_in_history()
            .of(&session.user_id)
            .iter()
            .map(|event| event.to_json())
            .collect(),
    )
}

pub(super) async fn generate(session: &Session) -> Result<Value, WsError> {
    match session
        .manager()
        .generate_recovery_codes(&session.user_id)
        .await
    {
        Ok(codes) => {
            tracing::info!(user_id = session.user_id, "new recovery codes made");
            Ok(json!({ "codes": codes }))
        }
        Err(AuthError::Invalid(message)) => Err(WsError::new("no_mfa", message)),
        Err(error) => Err(WsError::internal("auth/recovery_codes/generate", &error)),
    }
}

pub(super) async fn reset_mfa(
    session: &Session,
    msg: &Map<String, Value>,
) -> Result<Value, WsError> {
    let actor = session.user()?;
    let manager = session.manager();
    let target_id = str_field(msg, "user_id");
    let Some(target) = manager.user(target_id) else {
        return Err(WsError::new("not_found", "User not found"));
    };
    if target.is_owner && !actor.is_owner {
        tracing::warn!(
            actor = actor.id,
            "an administrator tried to reset the owner's multi-factor authentication"
        );
        return Err(WsError::unauthorized());
    }
    if target.id == actor.id {
        let verified = match opt_str(msg, "code") {
            Some(code) => manager
                .verify_second_factor(&actor.id, code)
                .await
                .map_err(|e| WsError::internal("config/auth/reset_mfa", &e))?,
            None => false,
        };
        if !verified {
            return Err(WsError::new(
                "invalid_code",
                "Resetting your own multi-factor authentication needs a current code or recovery code",
            ));
        }
    }
    match manager
        .reset_user_mfa(&target.id, opt_str(msg, "mfa_module_id"))
        .await
    {
        Ok(reset) => {
            tracing::warn!(
                actor = actor.id,
                user_id = target.id,
                modules = ?reset,
                "multi-factor authentication reset by an administrator; sessions revoked"
            );
            Ok(json!({ "reset": reset }))
        }
        Err(AuthError::Invalid(message)) => Err(WsError::new("reset_failed", message)),
        Err(error @ AuthError::UnknownMfaModule(_)) => {
            Err(WsError::new("no_module", error.to_string()))
        }
        Err(error) => Err(WsError::internal("config/auth/reset_mfa", &error)),
    }
}
