//! Home Assistant's own `.storage/auth` files: import, byte-identical round trip, HA-issued tokens.

use auth_core::TokenType;
use auth_testkit::{TempConfig, fixture_json};

use crate::support::{NOW, manager_in};

async fn load(name: &str) -> (TempConfig, auth_core::AuthManager) {
    let config = TempConfig::from_fixture(name);
    let manager = manager_in(&config, &auth_testkit::clock_at(NOW)).await;
    (config, manager)
}

#[tokio::test]
async fn imports_the_2026_fixture() {
    let (_config, manager) = load("ha-2026.2.3").await;
    let users = manager.users();
    assert_eq!(users.len(), 7);
    assert_eq!(users[0].name.as_deref(), Some("Home Assistant Content"));
    assert!(users[0].system_generated);
    let owner = manager.owner().expect("the fixture has an owner");
    assert_eq!(owner.name.as_deref(), Some("Owner"));
    assert!(owner.is_admin());
    let local = users
        .iter()
        .find(|u| u.name.as_deref() == Some("Local Only"))
        .unwrap();
    assert!(local.local_only);
    let deactivated = users
        .iter()
        .find(|u| u.name.as_deref() == Some("Deactivated User"))
        .unwrap();
    assert!(!deactivated.is_active);
    let groups: Vec<_> = manager.groups().into_iter().map(|g| g.id).collect();
    assert_eq!(groups, ["system-admin", "system-users", "system-read-only"]);
    let jorg = users
        .iter()
        .find(|u| u.name.as_deref() == Some("Jörg Straße"))
        .unwrap();
    assert_eq!(
        jorg.credentials[0].data_str("username"),
        Some("jörg-strasse-σασ")
    );
    assert!(!jorg.credentials[0].is_new);
}

#[tokio::test]
async fn round_trip_is_byte_identical() {
    for name in ["ha-2026.2.3", "ha-2024.3.3"] {
        let (config, manager) = load(name).await;
        let path = config.storage_dir().join("auth");
        let original = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        // The file is written by compaction (a durable save only appends to the journal).
        manager.store().compact().await.unwrap();
        let written = std::fs::read(&path).unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            String::from_utf8(original).unwrap(),
            "{name}: our file must equal Home Assistant's, byte for byte"
        );
    }
}

#[tokio::test]
async fn ha_issued_access_tokens_validate_with_a_fixed_clock() {
    for name in ["ha-2026.2.3", "ha-2024.3.3"] {
        let fixture = fixture_json(&format!("{name}/fixture.json"));
        let (_config, manager) = load(name).await;
        let mut checked = 0;
        for token in fixture["tokens"].as_array().unwrap() {
            let Some(validation) = token.get("ha_offline_validation").filter(|v| v.is_object())
            else {
                continue;
            };
            let jwt = token["access_token"]["jwt"].as_str().unwrap();
            let expected = validation["accepted"].as_bool().unwrap();
            let at = validation["at_unix_time"].as_i64().unwrap();
            let clock = auth_testkit::clock_at(at);
            let manager_at = auth_core::AuthManager::builder(manager.store().storage().clone())
                .clock(clock)
                .build()
                .await
                .unwrap();
            let accepted = manager_at.validate_access_token(jwt).is_some();
            assert_eq!(
                accepted, expected,
                "{name}: token of {} ({})",
                token["user"], token["issued_by"]
            );
            checked += 1;
        }
        assert!(checked >= 8, "{name}: checked {checked} tokens");
    }
}

#[tokio::test]
async fn refresh_tokens_are_found_by_value_and_typed() {
    let fixture = fixture_json("ha-2026.2.3/fixture.json");
    let (_config, manager) = load("ha-2026.2.3").await;
    for token in fixture["tokens"].as_array().unwrap() {
        let Some(id) = token["refresh_token_id"].as_str() else {
            continue;
        };
        let Some(stored) = manager.refresh_token(id) else {
            assert_eq!(
                token["user"], "deactivated",
                "only the deactivated user's token is gone in 2026"
            );
            continue;
        };
        let expected = token["expect_token_type"].as_str().unwrap();
        assert_eq!(stored.token_type.as_str(), expected);
        if let Some(value) = token["refresh_token_value"].as_str() {
            assert_eq!(manager.refresh_token_by_value(value).unwrap().id, id);
        }
        if stored.token_type == TokenType::LongLivedAccessToken {
            assert_eq!(stored.expire_at, None);
            assert_eq!(stored.client_id, None);
        }
    }
}

#[tokio::test]
async fn deactivated_users_tokens_are_rejected_in_2024_data() {
    let (_config, manager) = load("ha-2024.3.3").await;
    let fixture = fixture_json("ha-2024.3.3/fixture.json");
    let token = fixture["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user"] == "deactivated")
        .unwrap();
    let id = token["refresh_token_id"].as_str().unwrap();
    assert!(
        manager.refresh_token(id).is_some(),
        "2024.3.3 kept the deactivated user's token"
    );
    assert!(
        manager
            .validate_access_token(token["access_token"]["jwt"].as_str().unwrap())
            .is_none()
    );
}

#[test]
fn the_load_time_migration_check_agrees_with_comparing_whole_documents() {
    use auth_core::store::AuthData;
    use serde_json::{Value, json};
    for name in ["ha-2026.2.3", "ha-2024.3.3"] {
        let config = TempConfig::from_fixture(name);
        let bytes = std::fs::read(config.storage_dir().join("auth")).unwrap();
        let stored: Value = serde_json::from_slice::<Value>(&bytes).unwrap()["data"].clone();
        let data = AuthData::from_json(name, &stored).unwrap();
        let mut variants = vec![("as stored", stored.clone())];
        let mut changed = stored.clone();
        changed["refresh_tokens"][0]["last_used_ip"] = json!("10.9.9.9");
        variants.push(("a token field changed", changed));
        let mut fewer = stored.clone();
        fewer["refresh_tokens"].as_array_mut().unwrap().pop();
        variants.push(("a token missing", fewer));
        let mut groups = stored.clone();
        groups["groups"].as_array_mut().unwrap().pop();
        variants.push(("a group missing", groups));
        let mut extra = stored.clone();
        extra["unknown"] = json!(1);
        variants.push(("an extra key", extra));
        for (what, json) in variants {
            assert_eq!(
                data.is_exactly(&json),
                data.to_json() == json,
                "{name}: {what}"
            );
        }
        assert!(data.is_exactly(&data.to_json()), "{name}");
    }
}
