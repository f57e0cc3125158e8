//! Our recovery-code commands and the administrator's MFA reset, end to end: TOTP enrolled over
//! the websocket, codes made, a login through the HTTP login flow with a recovery code instead
//! of the TOTP code, and who may reset whose second factors.

use serde_json::{Value, json};

use super::mfa::confirm;
use super::{Ws, add_user};
use crate::harness::{Server, exchange, onboarded, start_flow, step};

/// Enrols the connection's user in TOTP; returns the secret.
async fn enrol_totp(ws: &mut Ws) -> String {
    let form = ws
        .ok(json!({"type": "auth/setup_mfa", "mfa_module_id": "totp"}))
        .await;
    let secret = form["description_placeholders"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    confirm(ws, &form["flow_id"], &secret).await;
    secret
}

/// A login with the password, then `code` at the MFA step: the last answer.
async fn login_with_code(server: &Server, username: &str, password: &str, code: &str) -> Value {
    let flow = start_flow(server, json!(["homeassistant", null]))
        .await
        .json();
    let flow_id = flow["flow_id"].as_str().unwrap().to_owned();
    let mfa = step(
        server,
        &flow_id,
        json!({"username": username, "password": password}),
    )
    .await
    .json();
    assert_eq!(mfa["step_id"], "mfa", "{mfa}");
    step(server, &flow_id, json!({"code": code})).await.json()
}

#[tokio::test]
async fn recovery_codes_are_made_once_and_each_signs_in_once() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    assert_eq!(
        ws.ok(json!({"type": "auth/recovery_codes"})).await,
        Value::Null
    );
    let refused = ws
        .err(json!({"type": "auth/recovery_codes/generate"}))
        .await;
    assert_eq!(refused["code"], "no_mfa", "{refused}");
    enrol_totp(&mut ws).await;
    let made = ws.ok(json!({"type": "auth/recovery_codes/generate"})).await;
    let codes: Vec<String> = made["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let status = ws.ok(json!({"type": "auth/recovery_codes"})).await;
    assert_eq!(status["remaining"], 10);
    assert_eq!(status["total"], 10);
    // HA's login page sends whatever is typed into the code field: a recovery code works once.
    let done = login_with_code(&server, "owner", "owner-pass", &codes[2]).await;
    assert_eq!(done["type"], "create_entry", "{done}");
    let tokens = exchange(&server, done["result"].as_str().unwrap()).await;
    assert!(tokens["access_token"].is_string());
    let again = login_with_code(&server, "owner", "owner-pass", &codes[2]).await;
    assert_eq!(again["errors"], json!({"base": "invalid_code"}), "{again}");
    assert_eq!(
        ws.ok(json!({"type": "auth/recovery_codes"})).await["remaining"],
        9
    );
    // Disabling the last module takes the codes with it.
    assert_eq!(
        ws.ok(json!({"type": "auth/depose_mfa", "mfa_module_id": "totp"}))
            .await,
        "done"
    );
    assert_eq!(
        ws.ok(json!({"type": "auth/recovery_codes"})).await,
        Value::Null
    );
}

#[tokio::test]
async fn only_the_owner_resets_the_owner_and_nobody_resets_their_own_without_a_factor() {
    let (server, owner_token) = onboarded().await;
    let owner_id = server.manager().owner().unwrap().id;
    let mut owner = Ws::authed(&server, &owner_token).await;
    let (admin_id, admin_token, admin_refresh) = add_user(
        &server,
        &mut owner,
        "Admin",
        "admin",
        "admin-pass",
        &["system-admin"],
    )
    .await;
    let (_user_id, user_token, _) = add_user(
        &server,
        &mut owner,
        "User",
        "user",
        "user-pass",
        &["system-users"],
    )
    .await;
    enrol_totp(&mut owner).await;
    let owner_codes = owner
        .ok(json!({"type": "auth/recovery_codes/generate"}))
        .await["codes"]
        .clone();
    let mut admin = Ws::authed(&server, &admin_token).await;
    enrol_totp(&mut admin).await;

    // An admin never reaches the owner; a plain user reaches nobody.
    let refused = admin
        .err(json!({"type": "config/auth/reset_mfa", "user_id": owner_id}))
        .await;
    assert_eq!(refused["code"], "unauthorized", "{refused}");
    let mut user = Ws::authed(&server, &user_token).await;
    let refused = user
        .err(json!({"type": "config/auth/reset_mfa", "user_id": admin_id}))
        .await;
    assert_eq!(refused["code"], "unauthorized", "{refused}");
    let owner_state = owner.ok(json!({"type": "auth/current_user"})).await;
    assert_eq!(owner_state["mfa_modules"][0]["enabled"], true);

    // One's own reset needs a current factor.
    for missing in [json!({}), json!({"code": "000000"})] {
        let mut command = json!({"type": "config/auth/reset_mfa", "user_id": owner_id});
        command
            .as_object_mut()
            .unwrap()
            .extend(missing.as_object().unwrap().clone());
        let refused = owner.err(command).await;
        assert_eq!(refused["code"], "invalid_code", "{refused}");
    }

    // The owner resets the admin: factors gone, sessions revoked (the socket closes).
    let reset = owner
        .ok(json!({"type": "config/auth/reset_mfa", "user_id": admin_id}))
        .await;
    assert_eq!(reset, json!({"reset": ["totp"]}));
    admin.expect_closed().await;
    let refresh = server
        .send(auth_testkit::http::Request::post("/auth/token").form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &server.client_id()),
            ("refresh_token", &admin_refresh),
        ]))
        .await;
    assert_eq!(refresh.status, 400, "{}", refresh.text());
    let tokens = crate::harness::login(&server, "admin", "admin-pass").await;
    assert!(tokens["access_token"].is_string(), "password alone now");

    // The owner's own reset with a recovery code.
    let reset = owner
        .ok(json!({"type": "config/auth/reset_mfa", "user_id": owner_id, "code": owner_codes[0]}))
        .await;
    assert_eq!(reset, json!({"reset": ["totp"]}));
}
