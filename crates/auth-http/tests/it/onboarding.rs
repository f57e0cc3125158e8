//! Onboarding: the owner is created once, over HTTP, and gets an authorization code.

use auth_testkit::http::Request;
use serde_json::json;

use crate::harness::{Setup, exchange, onboard, start};

#[tokio::test]
async fn owner_is_created_once_and_providers_open_afterwards() {
    let server = start(Setup::default()).await;
    let status = server.send(Request::get("/api/onboarding")).await;
    assert_eq!(
        status.text(),
        r#"[{"step":"user","done":false},{"step":"core_config","done":false},{"step":"analytics","done":false},{"step":"integration","done":false}]"#
    );
    let providers = server.send(Request::get("/auth/providers")).await;
    assert_eq!(providers.status, 400);
    assert_eq!(
        providers.text(),
        r#"{"message":"Onboarding not finished","code":"onboarding_required"}"#
    );

    // A username that is not normalised is refused with HA's code, and nothing is created.
    let bad = server
        .send(Request::post("/api/onboarding/users").json(&json!({
            "client_id": server.client_id(), "name": "Owner", "username": "Owner", "password": "pw", "language": "en"
        })))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["code"], "username_not_normalized");
    assert!(server.manager().users().is_empty());

    let access = onboard(&server, "owner", "owner-pass").await;
    let owner = server.manager().owner().expect("owner created");
    assert_eq!(owner.name.as_deref(), Some("Owner"));
    assert_eq!(owner.group_ids, ["system-admin"]);
    let api = server.send(Request::get("/api/").bearer(&access)).await;
    assert_eq!(
        (api.status, api.text()),
        (200, r#"{"message":"API running."}"#.to_owned())
    );

    let again = server
        .send(Request::post("/api/onboarding/users").json(&json!({
            "client_id": server.client_id(), "name": "X", "username": "x", "password": "x", "language": "en"
        })))
        .await;
    assert_eq!(
        (again.status, again.text()),
        (403, r#"{"message":"User step already done"}"#.to_owned())
    );
    let status = server.send(Request::get("/api/onboarding")).await.json();
    assert_eq!(status[0], json!({"step": "user", "done": true}));
    let providers = server.send(Request::get("/auth/providers")).await;
    assert_eq!(
        providers.text(),
        r#"{"providers":[{"name":"Home Assistant Local","id":null,"type":"homeassistant"},{"name":"Unnamed auth provider","id":null,"type":"insecure_example"}],"preselect_remember_me":true}"#
    );
    // The onboarding file is HA's format and survives a restart.
    let file = std::fs::read_to_string(server.config.storage_dir().join("onboarding")).unwrap();
    assert!(
        file.contains("\"version\": 4") && file.contains("\"user\""),
        "{file}"
    );
}

#[tokio::test]
async fn onboarding_validates_its_body() {
    let server = start(Setup::default()).await;
    let missing = server
        .send(Request::post("/api/onboarding/users").json(&json!({"name": "x"})))
        .await;
    assert_eq!(missing.status, 400);
    assert!(
        missing.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("Message format incorrect"),
        "{}",
        missing.text()
    );
    let not_json = server
        .send(Request::post("/api/onboarding/users").body("{nope"))
        .await;
    assert_eq!(
        (not_json.status, not_json.text()),
        (400, r#"{"message":"Invalid JSON."}"#.to_owned())
    );
    assert!(server.manager().users().is_empty());
    let code = onboard(&server, "owner", "pw").await;
    assert!(!code.is_empty());
    let _ = exchange;
}
