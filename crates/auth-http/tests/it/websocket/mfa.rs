//! `auth/current_user`, `auth/setup_mfa` (TOTP, end to end) and `auth/depose_mfa`, and what
//! system users may not do.

use serde_json::{Value, json};

use super::{Ws, add_user, error, system_user};
use crate::harness::{onboarded, start_flow, step};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn current_user_has_ha_shape() {
    let (server, owner) = onboarded().await;
    let owner_id = server.manager().owner().unwrap().id;
    let mut ws = Ws::authed(&server, &owner).await;
    assert_eq!(
        ws.ok(json!({"type": "auth/current_user"})).await,
        json!({
            "id": owner_id,
            "name": "Owner",
            "is_owner": true,
            "is_admin": true,
            "credentials": [{"auth_provider_type": "homeassistant", "auth_provider_id": null}],
            "mfa_modules": [{"id": "totp", "name": "Authenticator app", "enabled": false}],
        })
    );
}

/// Submits the current TOTP code for `secret` to `flow_id`, retrying once if a 30 s step
/// boundary passed in between.
pub(super) async fn confirm(ws: &mut Ws, flow_id: &Value, secret: &str) -> Value {
    for _ in 0..2 {
        let code = mfa_totp::code_at(secret, now()).unwrap();
        let result = ws
            .ok(json!({"type": "auth/setup_mfa", "flow_id": flow_id, "user_input": {"code": code}}))
            .await;
        if result["type"] == "create_entry" {
            return result;
        }
    }
    panic!("the current code was refused twice");
}

#[tokio::test]
async fn totp_setup_end_to_end_then_depose() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    let form = ws
        .ok(json!({"type": "auth/setup_mfa", "mfa_module_id": "totp"}))
        .await;
    let flow_id = form["flow_id"].clone();
    let placeholders = form["description_placeholders"].clone();
    let secret = placeholders["code"].as_str().unwrap().to_owned();
    assert_eq!(
        form,
        json!({
            "type": "form", "flow_id": flow_id, "handler": "totp",
            "data_schema": [{"type": "string", "name": "code", "required": true}],
            "errors": {}, "description_placeholders": placeholders,
            "last_step": null, "preview": null, "step_id": "init",
        })
    );
    assert_eq!(secret.len(), 32);
    assert_eq!(
        placeholders["url"],
        json!(format!(
            "otpauth://totp/Home%20Assistant:Owner?secret={secret}&issuer=Home%20Assistant"
        ))
    );

    // A code of the wrong type is a schema error; the flow survives it.
    let wrong_type = ws
        .err(json!({"type": "auth/setup_mfa", "flow_id": flow_id, "user_input": {"code": 123456}}))
        .await;
    assert_eq!(wrong_type["code"], "invalid_format");
    // A wrong code shows the same form with an error and the same secret.
    let wrong = ws
        .ok(json!({"type": "auth/setup_mfa", "flow_id": flow_id, "user_input": {"code": "000000x"}}))
        .await;
    assert_eq!(wrong["errors"], json!({"base": "invalid_code"}));
    assert_eq!(wrong["description_placeholders"]["code"], json!(secret));

    let done = confirm(&mut ws, &flow_id, &secret).await;
    assert_eq!(
        done,
        json!({"type": "create_entry", "flow_id": flow_id, "handler": "totp",
               "data": {"result": secret}, "description": null,
               "description_placeholders": null, "context": {}})
    );
    let me = ws.ok(json!({"type": "auth/current_user"})).await;
    assert_eq!(
        me["mfa_modules"],
        json!([{"id": "totp", "name": "Authenticator app", "enabled": true}])
    );

    // The login flow now asks for the code.
    let flow = start_flow(&server, json!(["homeassistant", null]))
        .await
        .json();
    let next = step(
        &server,
        flow["flow_id"].as_str().unwrap(),
        json!({"username": "owner", "password": "owner-pass"}),
    )
    .await
    .json();
    assert_eq!(next["step_id"], "mfa", "{next}");

    // The finished flow is gone.
    assert_eq!(
        ws.err(json!({"type": "auth/setup_mfa", "flow_id": flow_id, "user_input": {"code": "1"}}))
            .await,
        error("not_found", "Invalid flow specified")
    );

    assert_eq!(
        ws.ok(json!({"type": "auth/depose_mfa", "mfa_module_id": "totp"}))
            .await,
        json!("done")
    );
    let me = ws.ok(json!({"type": "auth/current_user"})).await;
    assert_eq!(me["mfa_modules"][0]["enabled"], false);
    // Deposing again (never enabled) still answers "done".
    assert_eq!(
        ws.ok(json!({"type": "auth/depose_mfa", "mfa_module_id": "totp"}))
            .await,
        json!("done")
    );
}

#[tokio::test]
async fn setup_mfa_errors() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    assert_eq!(
        ws.err(json!({"type": "auth/setup_mfa", "mfa_module_id": "sms"}))
            .await,
        error("no_module", "MFA module sms is not found")
    );
    assert_eq!(
        ws.err(json!({"type": "auth/depose_mfa", "mfa_module_id": "sms"}))
            .await,
        error(
            "disable_failed",
            "Cannot disable MFA Module sms: Unable find multi-factor auth module: sms"
        )
    );
    assert_eq!(
        ws.err(json!({"type": "auth/setup_mfa", "flow_id": "0123", "user_input": {}}))
            .await,
        error("not_found", "Invalid flow specified")
    );
    let id = ws.next_id();
    assert_eq!(
        ws.err(json!({"type": "auth/setup_mfa"})).await,
        error(
            "invalid_format",
            &format!(
                "at least one of ['mfa_module_id', 'flow_id'] is required. Got {{'type': 'auth/setup_mfa', 'id': {id}}}"
            )
        )
    );
    assert_eq!(
        ws.err(json!({"type": "auth/setup_mfa", "mfa_module_id": "totp", "flow_id": "f"}))
            .await,
        error(
            "invalid_format",
            "two or more values in the same group of exclusion 'module_or_flow_id' at 'flow_id'. Got 'f'"
        )
    );
    let form = ws
        .ok(json!({"type": "auth/setup_mfa", "mfa_module_id": "totp"}))
        .await;
    assert_eq!(
        ws.err(json!({"type": "auth/setup_mfa", "flow_id": form["flow_id"], "user_input": [1]}))
            .await,
        error(
            "invalid_format",
            "expected a dictionary at 'user_input'. Got [1]"
        )
    );

    // Another user cannot continue the owner's flow.
    let (_, bob, _) = add_user(
        &server,
        &mut ws,
        "Bob",
        "bob",
        "bob-pass",
        &["system-users"],
    )
    .await;
    let mut bob = Ws::authed(&server, &bob).await;
    assert_eq!(
        bob.err(json!({"type": "auth/setup_mfa", "flow_id": form["flow_id"], "user_input": {"code": "123456"}}))
            .await,
        error("not_found", "Invalid flow specified")
    );
}

#[tokio::test]
async fn system_users_cannot_manage_mfa_or_make_long_lived_tokens() {
    let (server, _owner) = onboarded().await;
    let (user_id, token) = system_user(&server, false).await;
    let mut ws = Ws::authed(&server, &token).await;
    let refusal = error("not_system_user", "Not allowed as system user");
    assert_eq!(
        ws.err(json!({"type": "auth/setup_mfa", "mfa_module_id": "totp"}))
            .await,
        refusal
    );
    assert_eq!(
        ws.err(json!({"type": "auth/depose_mfa", "mfa_module_id": "totp"}))
            .await,
        refusal
    );
    assert_eq!(
        ws.err(json!({"type": "auth/long_lived_access_token", "client_name": "x", "lifespan": 1}))
            .await,
        error("unknown_error", "Unknown error")
    );
    assert_eq!(
        ws.err(json!({"type": "config/auth/list"})).await,
        error("unauthorized", "Unauthorized")
    );
    assert_eq!(
        ws.err(
            json!({"type": "config/auth_provider/homeassistant/change_password",
                      "current_password": "a", "new_password": "b"})
        )
        .await,
        error("credentials_not_found", "Credentials not found")
    );
    let me = ws.ok(json!({"type": "auth/current_user"})).await;
    assert_eq!(me["id"], json!(user_id));
    assert_eq!(me["credentials"], json!([]));
    assert_eq!(me["is_admin"], false);
    let tokens = ws.ok(json!({"type": "auth/refresh_tokens"})).await;
    assert_eq!(tokens[0]["type"], "system");
    assert_eq!(tokens[0]["is_current"], true);
}

/// Issue 14 item 8: the module of a provider's required chain cannot be dropped by the user, even
/// though it is also the opt-in module of the same id; an administrator's reset still can.
#[tokio::test]
async fn a_required_module_cannot_be_disabled_by_its_user() {
    let server = crate::harness::start(crate::harness::Setup {
        required_totp: true,
        ..Default::default()
    })
    .await;
    let owner = crate::harness::onboard(&server, "owner", "owner-pass").await;
    let owner_id = server.manager().owner().unwrap().id;
    server
        .manager()
        .enable_user_mfa(&owner_id, "totp", &serde_json::Map::new())
        .await
        .unwrap();
    let mut ws = Ws::authed(&server, &owner).await;
    assert_eq!(
        ws.err(json!({"type": "auth/depose_mfa", "mfa_module_id": "totp"}))
            .await,
        error(
            "disable_failed",
            "Cannot disable MFA Module totp: Home Assistant Local requires it to sign in; an administrator can reset it (hass-auth user reset-mfa)"
        )
    );
    let me = ws.ok(json!({"type": "auth/current_user"})).await;
    assert_eq!(me["mfa_modules"][0]["enabled"], true);
    // The administrator's reset (what `hass-auth user reset-mfa` calls).
    server
        .manager()
        .disable_user_mfa(&owner_id, "totp")
        .await
        .unwrap();
    let me = ws.ok(json!({"type": "auth/current_user"})).await;
    assert_eq!(me["mfa_modules"][0]["enabled"], false);
}

/// Issue 14 item 8: `auth/setup_mfa` for a module the user is enrolled in first asks for the
/// current code; only then does the module's setup (a new secret) follow.
#[tokio::test]
async fn replacing_an_enrolled_secret_needs_the_current_code() {
    let (server, owner) = onboarded().await;
    let owner_id = server.manager().owner().unwrap().id;
    let old_secret = server
        .manager()
        .enable_user_mfa(&owner_id, "totp", &serde_json::Map::new())
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let mut ws = Ws::authed(&server, &owner).await;
    let form = ws
        .ok(json!({"type": "auth/setup_mfa", "mfa_module_id": "totp"}))
        .await;
    let flow_id = form["flow_id"].clone();
    assert_eq!(
        form,
        json!({
            "type": "form", "flow_id": flow_id, "handler": "totp",
            "data_schema": [{"type": "string", "name": "code", "required": true}],
            "errors": {}, "description_placeholders": {"mfa_module_name": "Authenticator app"},
            "last_step": false, "preview": null, "step_id": "current_code",
        }),
        "no new secret before the current code"
    );
    let wrong = ws
        .ok(json!({"type": "auth/setup_mfa", "flow_id": flow_id, "user_input": {"code": "000000x"}}))
        .await;
    assert_eq!(
        (wrong["step_id"].clone(), wrong["errors"].clone()),
        (json!("current_code"), json!({"base": "invalid_code"}))
    );
    let current = mfa_totp::code_at(&old_secret, now()).unwrap();
    let next = ws
        .ok(json!({"type": "auth/setup_mfa", "flow_id": flow_id, "user_input": {"code": current}}))
        .await;
    assert_eq!(next["step_id"], "init", "{next}");
    let new_secret = next["description_placeholders"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_secret, old_secret);
    let done = confirm(&mut ws, &flow_id, &new_secret).await;
    assert_eq!(done["data"], json!({"result": new_secret}));

    // Wrong current codes end the attempt like wrong codes at sign-in.
    let form = ws
        .ok(json!({"type": "auth/setup_mfa", "mfa_module_id": "totp"}))
        .await;
    let max_retry = server.manager().mfa_module("totp").unwrap().max_retry();
    let mut last = Value::Null;
    for _ in 0..max_retry {
        last = ws
            .ok(json!({"type": "auth/setup_mfa", "flow_id": form["flow_id"], "user_input": {"code": "000000x"}}))
            .await;
    }
    assert_eq!(
        last["type"], "abort",
        "after {max_retry} wrong codes: {last}"
    );
    assert_eq!(last["reason"], "too_many_retry");
}
