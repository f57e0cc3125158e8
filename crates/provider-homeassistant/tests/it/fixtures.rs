//! Every `homeassistant` user of Home Assistant's golden fixtures logs in with its documented
//! password, including the unicode / casefold / NFD / >72-byte checks HA itself ran.

use auth_testkit::fixture_json;
use serde_json::{Value, json};

use crate::common::{Env, assert_invalid_auth, env, finished_credentials, init_form};

/// `(stored username, password, user id, credential id)` of the fixture's homeassistant users.
fn ha_users(fixture: &Value) -> Vec<(String, String, String, String)> {
    let users = fixture["users"].as_object().expect("users");
    let list: Vec<_> = users
        .values()
        .filter(|u| u["provider"] == "homeassistant")
        .map(|u| {
            (
                u["stored_homeassistant_auth"]["username"]
                    .as_str()
                    .expect("username")
                    .to_owned(),
                u["password"].as_str().expect("password").to_owned(),
                u["id"].as_str().expect("id").to_owned(),
                u["credentials"][0]["id"].as_str().expect("cred").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        list.len(),
        5,
        "owner, unicode, readonly, deactivated, localonly"
    );
    list
}

/// One login per user: it must finish with the user's existing credential and user.
async fn log_everyone_in(env: &Env, fixture: &Value) {
    for (username, password, user_id, credential_id) in ha_users(fixture) {
        let first = env.start().await;
        assert_eq!(first.to_json(), init_form(&first.flow_id, json!({})));
        let done = env
            .manager
            .login_flows()
            .configure(
                &first.flow_id,
                Some(crate::common::input(&username, &password)),
            )
            .await
            .expect("step runs");
        let credentials = finished_credentials(env, &done);
        assert_eq!(credentials.id, credential_id, "{username}");
        assert!(!credentials.is_new);
        assert_eq!(
            done.to_json(),
            json!({
                "type": "create_entry",
                "flow_id": first.flow_id,
                "handler": ["homeassistant", null],
                "data": {"credentials": {
                    "id": credential_id,
                    "auth_provider_type": "homeassistant",
                    "auth_provider_id": null,
                    "data": {"username": username},
                    "is_new": false
                }},
                "description": null,
                "description_placeholders": null,
                "context": {}
            })
        );
        let user = env
            .manager
            .get_or_create_user(&credentials)
            .await
            .expect("user");
        assert_eq!(user.id, user_id);
    }
}

/// HA's own login checks for the unicode user (FIXTURE.md "Checks made against the running server").
async fn unicode_login_checks(env: &Env, fixture: &Value) {
    let unicode = &fixture["users"]["unicode"];
    let checks = unicode["login_checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 6);
    for check in checks {
        let username = check["username"].as_str().expect("username");
        let password = check["password"].as_str().expect("password");
        let response = env.login(username, password).await;
        if check["accepted"] == true {
            let credentials = finished_credentials(env, &response);
            assert_eq!(
                credentials.id,
                unicode["credentials"][0]["id"].as_str().expect("id"),
                "{}",
                check["what"]
            );
        } else {
            assert_invalid_auth(&response);
        }
    }
    // The NFD check really is the decomposed spelling.
    assert!(checks.iter().any(|c| {
        c["username"]
            .as_str()
            .is_some_and(|u| u.contains("o\u{308}"))
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_2026_2_3_users_log_in_and_are_rehashed() {
    let fixture = fixture_json("ha-2026.2.3/fixture.json");
    let env = env(Some("ha-2026.2.3"), json!({})).await;
    log_everyone_in(&env, &fixture).await;

    // Passwords of at most 72 bytes were moved to argon2id; Jörg's 98-byte one stays bcrypt.
    for user in env.stored_users() {
        let hash = user["password"].as_str().expect("hash");
        if user["username"] == "jörg-strasse-σασ" {
            assert!(hash.starts_with("JDJiJDEyJ"), "{hash}");
        } else {
            assert!(hash.starts_with("$argon2id$v=19$"), "{user}");
        }
    }
    unicode_login_checks(&env, &fixture).await;

    // The re-hashed passwords still work, and wrong ones still fail.
    for (username, password, ..) in ha_users(&fixture) {
        if username != "jörg-strasse-σασ" {
            finished_credentials(&env, &env.login(&username.to_uppercase(), &password).await);
            assert_invalid_auth(&env.login(&username, &format!("{password}x")).await);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_2024_3_3_users_log_in_without_touching_the_file() {
    let fixture = fixture_json("ha-2024.3.3/fixture.json");
    let env = env(Some("ha-2024.3.3"), json!({"rehash_legacy_hashes": false})).await;
    let before = std::fs::read(env.provider_file()).expect("file");
    log_everyone_in(&env, &fixture).await;
    unicode_login_checks(&env, &fixture).await;
    assert_eq!(
        std::fs::read(env.provider_file()).expect("file"),
        before,
        "with rehash_legacy_hashes: false the HA file stays byte-identical"
    );
}
