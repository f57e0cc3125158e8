//! HA 2026.2.3's own `.storage` answers the websocket exactly as HA answered (fixture.json).

use auth_testkit::TempConfig;
use serde_json::{Value, json};

use super::Ws;
use crate::harness::{Setup, start};

#[tokio::test]
async fn fixture_listings_match_home_assistant() {
    let fixture = auth_testkit::fixture_json("ha-2026.2.3/fixture.json");
    let server = start(Setup {
        config: TempConfig::from_fixture("ha-2026.2.3"),
        ..Setup::default()
    })
    .await;
    // The owner's long-lived token as HA issued it (valid for 10 years).
    let llat = fixture["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["refresh_token_id"] == "0da87881ddf24ee7a3dcbd4e8f290c4d")
        .unwrap();
    let mut ws = Ws::authed(&server, llat["access_token"]["jwt"].as_str().unwrap()).await;

    assert_eq!(
        ws.ok(json!({"type": "config/auth/list"})).await,
        fixture["config_auth_list"]
    );

    // HA listed these from the owner's normal session; this socket uses the long-lived token.
    let mut expected = fixture["owner_auth_refresh_tokens"].clone();
    for token in expected.as_array_mut().unwrap() {
        let is_llat = token["type"] == "long_lived_access_token";
        token["is_current"] = Value::Bool(is_llat);
    }
    assert_eq!(
        ws.ok(json!({"type": "auth/refresh_tokens"})).await,
        expected
    );

    // HA had two MFA modules configured; this server has one.
    let mut expected = fixture["owner_current_user"].clone();
    expected["mfa_modules"] =
        json!([{"id": "totp", "name": "Authenticator app", "enabled": false}]);
    assert_eq!(ws.ok(json!({"type": "auth/current_user"})).await, expected);
}
