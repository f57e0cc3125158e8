//! `auth/long_lived_access_token`, `auth/refresh_tokens`, deleting tokens, expiry, signed paths,
//! and sockets closing when their token is revoked.

use auth_testkit::http::Request;
use base64::Engine;
use serde_json::{Value, json};

use super::{Ws, add_user, error};
use crate::harness::{login, onboarded};

fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn is_iso(value: &Value) -> bool {
    value
        .as_str()
        .and_then(auth_core::timefmt::parse_iso)
        .is_some()
        && value.as_str().unwrap().ends_with("+00:00")
}

#[tokio::test]
async fn long_lived_tokens_work_and_are_listed() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    let jwt = ws
        .ok(
            json!({"type": "auth/long_lived_access_token", "client_name": "GPS",
                   "client_icon": "mdi:key", "lifespan": 365}),
        )
        .await;
    let jwt = jwt.as_str().expect("a JWT string");
    let claims = jwt_claims(jwt);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        365 * 86_400
    );
    let api = server.send(Request::get("/api/").bearer(jwt)).await;
    assert_eq!(api.status, 200, "{}", api.text());

    // Also usable for the websocket itself.
    Ws::authed(&server, jwt).await;

    assert_eq!(
        ws.err(
            json!({"type": "auth/long_lived_access_token", "client_name": "GPS", "lifespan": 1})
        )
        .await,
        error("unknown_error", "Unknown error"),
        "duplicate client_name"
    );

    let tokens = ws.ok(json!({"type": "auth/refresh_tokens"})).await;
    let tokens = tokens.as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    let current = &tokens[0];
    let keys: Vec<&str> = current
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "auth_provider_type",
            "client_icon",
            "client_id",
            "client_name",
            "created_at",
            "expire_at",
            "id",
            "is_current",
            "last_used_at",
            "last_used_ip",
            "type"
        ]
    );
    assert_eq!(current["auth_provider_type"], "homeassistant");
    assert_eq!(current["client_id"], json!(server.client_id()));
    assert_eq!(current["client_name"], Value::Null);
    assert_eq!(current["client_icon"], Value::Null);
    assert_eq!(current["is_current"], true);
    assert_eq!(current["type"], "normal");
    assert_eq!(current["last_used_ip"], "127.0.0.1");
    for key in ["created_at", "expire_at", "last_used_at"] {
        assert!(is_iso(&current[key]), "{key}: {}", current[key]);
    }
    let llat = &tokens[1];
    assert_eq!(llat["id"], claims["iss"]);
    assert_eq!(llat["auth_provider_type"], Value::Null);
    assert_eq!(llat["client_id"], Value::Null);
    assert_eq!(llat["client_name"], "GPS");
    assert_eq!(llat["client_icon"], "mdi:key");
    assert_eq!(llat["expire_at"], Value::Null);
    assert_eq!(llat["is_current"], false);
    assert_eq!(llat["last_used_ip"], Value::Null);
    assert_eq!(llat["type"], "long_lived_access_token");
    assert!(is_iso(&llat["created_at"]) && is_iso(&llat["last_used_at"]));

    // On a socket opened with the LLAT, the LLAT is the current one.
    let mut via_llat = Ws::authed(&server, jwt).await;
    let listed = via_llat.ok(json!({"type": "auth/refresh_tokens"})).await;
    assert_eq!(listed[0]["is_current"], false);
    assert_eq!(listed[1]["is_current"], true);
}

#[tokio::test]
async fn deleting_a_token_revokes_it() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    let jwt = ws
        .ok(json!({"type": "auth/long_lived_access_token", "client_name": "Old", "lifespan": 30}))
        .await;
    let jwt = jwt.as_str().unwrap().to_owned();
    let id = jwt_claims(&jwt)["iss"].as_str().unwrap().to_owned();
    let mut other = Ws::authed(&server, &jwt).await;

    let invalid = error("invalid_token_id", "Received invalid token");
    assert_eq!(
        ws.err(json!({"type": "auth/delete_refresh_token", "refresh_token_id": "nope"}))
            .await,
        invalid
    );
    assert_eq!(
        ws.ok(json!({"type": "auth/delete_refresh_token", "refresh_token_id": id}))
            .await,
        json!({})
    );
    assert_eq!(
        server.send(Request::get("/api/").bearer(&jwt)).await.status,
        401
    );
    other.expect_closed().await;
    assert_eq!(
        ws.err(json!({"type": "auth/delete_refresh_token", "refresh_token_id": id}))
            .await,
        invalid
    );
}

#[tokio::test]
async fn other_users_tokens_are_invisible() {
    let (server, owner) = onboarded().await;
    let mut admin = Ws::authed(&server, &owner).await;
    let (_, bob_token, bob_refresh) = add_user(
        &server,
        &mut admin,
        "Bob",
        "bob",
        "bob-pass",
        &["system-users"],
    )
    .await;
    let bob_refresh_id = server
        .manager()
        .refresh_token_by_value(&bob_refresh)
        .unwrap()
        .id
        .clone();
    let invalid = error("invalid_token_id", "Received invalid token");
    for command in [
        json!({"type": "auth/delete_refresh_token", "refresh_token_id": bob_refresh_id}),
        json!({"type": "auth/refresh_token_set_expiry", "refresh_token_id": bob_refresh_id, "enable_expiry": false}),
    ] {
        assert_eq!(admin.err(command).await, invalid);
    }
    let listed = admin.ok(json!({"type": "auth/refresh_tokens"})).await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["id"] != json!(bob_refresh_id))
    );
    Ws::authed(&server, &bob_token).await;
}

#[tokio::test]
async fn expiry_can_be_toggled() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    let jwt = ws
        .ok(json!({"type": "auth/long_lived_access_token", "client_name": "T", "lifespan": 30}))
        .await;
    let id = jwt_claims(jwt.as_str().unwrap())["iss"].clone();
    let expiry_of = |tokens: &Value| {
        tokens
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap()["expire_at"]
            .clone()
    };
    assert_eq!(
        ws.ok(json!({"type": "auth/refresh_token_set_expiry", "refresh_token_id": id, "enable_expiry": true}))
            .await,
        json!({})
    );
    let tokens = ws.ok(json!({"type": "auth/refresh_tokens"})).await;
    assert!(is_iso(&expiry_of(&tokens)));
    ws.ok(json!({"type": "auth/refresh_token_set_expiry", "refresh_token_id": id, "enable_expiry": false}))
        .await;
    let tokens = ws.ok(json!({"type": "auth/refresh_tokens"})).await;
    assert_eq!(expiry_of(&tokens), Value::Null);
    assert_eq!(
        ws.err(json!({"type": "auth/refresh_token_set_expiry", "refresh_token_id": "x", "enable_expiry": true}))
            .await,
        error("invalid_token_id", "Received invalid token")
    );
}

#[tokio::test]
async fn deleting_the_current_token_replies_then_closes() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    let current = ws.ok(json!({"type": "auth/refresh_tokens"})).await[0]["id"].clone();
    assert_eq!(
        ws.ok(json!({"type": "auth/delete_refresh_token", "refresh_token_id": current}))
            .await,
        json!({})
    );
    ws.expect_closed().await;
    assert_eq!(
        server
            .send(Request::get("/api/").bearer(&owner))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn revocation_elsewhere_closes_the_socket() {
    let (server, owner) = onboarded().await;
    let tokens = login(&server, "owner", "owner-pass").await;
    let mut ws = Ws::authed(&server, tokens["access_token"].as_str().unwrap()).await;
    let revoked = server
        .send(
            Request::post("/auth/revoke")
                .form(&[("token", tokens["refresh_token"].as_str().unwrap())]),
        )
        .await;
    assert_eq!(revoked.status, 200);
    ws.expect_closed().await;
    // The first session is untouched.
    Ws::authed(&server, &owner).await;
}

#[tokio::test]
async fn delete_all_tokens_by_type_and_sparing_the_current_one() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    let second = login(&server, "owner", "owner-pass").await;
    for name in ["A", "B"] {
        ws.ok(json!({"type": "auth/long_lived_access_token", "client_name": name, "lifespan": 1}))
            .await;
    }
    let count = |tokens: &Value| tokens.as_array().unwrap().len();
    assert_eq!(
        count(&ws.ok(json!({"type": "auth/refresh_tokens"})).await),
        4
    );

    assert_eq!(
        ws.ok(json!({"type": "auth/delete_all_refresh_tokens", "token_type": "long_lived_access_token"}))
            .await,
        json!({})
    );
    let tokens = ws.ok(json!({"type": "auth/refresh_tokens"})).await;
    assert_eq!(count(&tokens), 2);
    assert!(
        tokens
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["type"] == "normal")
    );

    ws.ok(json!({"type": "auth/delete_all_refresh_tokens", "delete_current_token": false}))
        .await;
    let tokens = ws.ok(json!({"type": "auth/refresh_tokens"})).await;
    assert_eq!(count(&tokens), 1);
    assert_eq!(tokens[0]["is_current"], true);
    assert!(
        server
            .manager()
            .refresh_token_by_value(second["refresh_token"].as_str().unwrap())
            .is_none()
    );

    assert_eq!(
        ws.ok(json!({"type": "auth/delete_all_refresh_tokens"}))
            .await,
        json!({})
    );
    ws.expect_closed().await;
    assert!(
        server
            .manager()
            .refresh_tokens_of(&server.manager().owner().unwrap().id)
            .is_empty()
    );
}

#[tokio::test]
async fn signed_paths_use_the_connection_token() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    let signed = ws
        .ok(json!({"type": "auth/sign_path", "path": "/api/?a=1&width=3"}))
        .await;
    let path = signed["path"].as_str().unwrap();
    assert!(path.starts_with("/api/?a=1&authSig="), "{path}");
    assert_eq!(server.send(Request::get(path)).await.status, 200);
    let sig = path.split("authSig=").nth(1).unwrap();
    let claims = jwt_claims(sig);
    let current = ws.ok(json!({"type": "auth/refresh_tokens"})).await[0]["id"].clone();
    assert_eq!(claims["iss"], current);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        30
    );
    let longer = ws
        .ok(json!({"type": "auth/sign_path", "path": "/api/", "expires": 600}))
        .await;
    let claims = jwt_claims(
        longer["path"]
            .as_str()
            .unwrap()
            .split("authSig=")
            .nth(1)
            .unwrap(),
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    // Beyond what HA's timedelta can hold: HA fails with an overflow, reported generically.
    assert_eq!(
        ws.err(json!({"type": "auth/sign_path", "path": "/api/", "expires": i64::MAX}))
            .await,
        error("unknown_error", "Unknown error")
    );
    assert_eq!(
        ws.err(json!({"type": "auth/long_lived_access_token", "client_name": "Forever", "lifespan": 1_000_000_000_i64}))
            .await,
        error("unknown_error", "Unknown error")
    );
}
