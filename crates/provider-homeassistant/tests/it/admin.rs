//! Admin operations on the provider, and their effect on logins and on the auth store.

use auth_core::PasswordAdmin;
use auth_core::ProviderError;
use serde_json::{Map, Value, json};

use crate::common::{assert_invalid_auth, empty_env, env, finished_credentials};

fn key_of(result: Result<(), ProviderError>) -> &'static str {
    match result {
        Err(ProviderError::InvalidUsername { key, .. }) => key,
        other => panic!("expected InvalidUsername, got {other:?}"),
    }
}

#[tokio::test]
async fn add_change_password_and_remove() {
    let env = empty_env().await;
    let ha = env.ha();
    ha.add_auth("alice", "one").await.expect("added");
    ha.add_auth("bob", "two").await.expect("added");
    assert_eq!(ha.usernames().await.expect("names"), vec!["alice", "bob"]);
    let stored = env.stored_users();
    assert_eq!(stored[0]["username"], "alice");
    assert!(
        stored[0]["password"]
            .as_str()
            .expect("hash")
            .starts_with("$argon2id$")
    );
    assert!(ha.validate_login("alice", "one").await.expect("checked"));

    ha.change_password("ALICE", "uno").await.expect("changed");
    assert!(!ha.validate_login("alice", "one").await.expect("checked"));
    finished_credentials(&env, &env.login("alice", "uno").await);

    ha.remove_auth(" Alice ").await.expect("removed");
    assert_eq!(ha.usernames().await.expect("names"), vec!["bob"]);
    assert_eq!(env.stored_users().len(), 1);
    assert_invalid_auth(&env.login("alice", "uno").await);
    match ha.remove_auth("alice").await {
        Err(ProviderError::InvalidUser(message)) => assert_eq!(message, "User not found"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn username_validation_errors() {
    let env = empty_env().await;
    let ha = env.ha();
    ha.add_auth("alice", "pw").await.expect("added");
    assert_eq!(
        key_of(ha.add_auth("Alice", "pw").await),
        "username_not_normalized"
    );
    assert_eq!(
        key_of(ha.add_auth("alice ", "pw").await),
        "username_not_normalized"
    );
    assert_eq!(
        key_of(ha.add_auth("alice", "pw").await),
        "username_already_exists"
    );
    // Inner spaces are allowed.
    ha.add_auth("alice smith", "pw")
        .await
        .expect("inner space ok");
    match ha.add_auth("Straße", "pw").await {
        Err(error @ ProviderError::InvalidUsername { .. }) => assert_eq!(
            error.to_string(),
            "Username \"Straße\" is not normalized. Please make sure the username is lowercase and does not contain any whitespace"
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn change_username_updates_file_credential_and_login() {
    let env = empty_env().await;
    let ha = env.ha();
    ha.add_auth("alice", "pw").await.expect("added");
    ha.add_auth("bob", "pw2").await.expect("added");
    let credentials = finished_credentials(&env, &env.login("alice", "pw").await);
    let user = env
        .manager
        .get_or_create_user(&credentials)
        .await
        .expect("user");
    let linked = env.manager.user(&user.id).expect("user").credentials[0].clone();

    assert_eq!(
        key_of(ha.change_username(&env.manager, &linked, "alice").await),
        "username_already_exists"
    );
    assert_eq!(
        key_of(ha.change_username(&env.manager, &linked, "bob").await),
        "username_already_exists"
    );
    match ha.change_username(&env.manager, &linked, "Alicia").await {
        Err(ProviderError::InvalidUsername {
            key, placeholders, ..
        }) => {
            assert_eq!(key, "username_not_normalized");
            assert_eq!(
                Value::Object(placeholders),
                json!({"new_username": "Alicia"})
            );
        }
        other => panic!("unexpected {other:?}"),
    }

    ha.change_username(&env.manager, &linked, "alicia")
        .await
        .expect("renamed");
    assert_eq!(ha.usernames().await.expect("names"), vec!["alicia", "bob"]);
    let reloaded = env.manager.user(&user.id).expect("user");
    assert_eq!(
        Value::Object(reloaded.credentials[0].data.clone()),
        json!({"username": "alicia"})
    );
    assert_eq!(
        auth_core::password_admin::username_of(ha, &reloaded).as_deref(),
        Some("alicia")
    );
    // Durable in the auth store too (what a restart reads: the file and its journal).
    let auth_file =
        serde_json::to_string_pretty(&auth_testkit::stored_auth(&env.config.storage_dir()).await)
            .unwrap();
    assert!(
        auth_file.contains("\"username\": \"alicia\""),
        "{auth_file}"
    );

    let again = finished_credentials(&env, &env.login("Alicia", "pw").await);
    assert_eq!(again.id, linked.id);
    assert_invalid_auth(&env.login("alice", "pw").await);

    // A credential of another provider is not ours.
    let mut foreign = linked.clone();
    foreign.auth_provider_type = "command_line".to_owned();
    assert!(matches!(
        ha.change_username(&env.manager, &foreign, "carol").await,
        Err(ProviderError::InvalidUser(_))
    ));
}

#[tokio::test]
async fn removing_a_credential_through_the_manager_removes_the_login() {
    let env = env(Some("ha-2026.2.3"), json!({})).await;
    let ha = env.ha();
    // readonly's credential in the fixture.
    env.manager
        .remove_credentials("81ee3b8afe8e40a8b19b1a30219633a7")
        .await
        .expect("removed");
    let names = ha.usernames().await.expect("names");
    assert!(!names.contains(&"readonly".to_owned()), "{names:?}");
    assert!(
        env.stored_users()
            .iter()
            .all(|u| u["username"] != "readonly")
    );
    // Unknown user now: no bcrypt hash is left to check against.
    assert_invalid_auth(&env.login("readonly", "readonly-pass").await);

    // Removing a whole user removes its entry too.
    env.manager
        .remove_user("4a243806437d4c198abd3482c2a917c5")
        .await
        .expect("local-only removed");
    assert!(
        !ha.usernames()
            .await
            .expect("names")
            .contains(&"local-only".to_owned())
    );
}

#[tokio::test]
async fn credential_without_a_provider_entry_is_removed_quietly() {
    let env = empty_env().await;
    let ha = env.ha();
    ha.add_auth("alice", "pw").await.expect("added");
    let credentials = finished_credentials(&env, &env.login("alice", "pw").await);
    let user = env
        .manager
        .get_or_create_user(&credentials)
        .await
        .expect("user");
    ha.remove_auth("alice").await.expect("removed");
    env.manager
        .remove_credentials(&user.credentials[0].id)
        .await
        .expect("removal ignores the missing entry");
}

#[tokio::test]
async fn step_up_checks_the_password() {
    let env = empty_env().await;
    let ha = env.ha();
    ha.add_auth("alice", "pw").await.expect("added");
    let credentials = finished_credentials(&env, &env.login("alice", "pw").await);
    let user = env
        .manager
        .get_or_create_user(&credentials)
        .await
        .expect("user");
    let with = |password: Value| {
        let mut data = Map::new();
        data.insert("password".to_owned(), password);
        data
    };
    env.provider
        .verify_step_up(&user, &with(json!("pw")))
        .await
        .expect("right password");
    for data in [with(json!("nope")), with(json!(123)), Map::new()] {
        assert!(matches!(
            env.provider.verify_step_up(&user, &data).await,
            Err(ProviderError::InvalidAuth(_))
        ));
    }
    // A user without a credential of this provider.
    let other = env
        .manager
        .create_user(Some("Other".into()), vec![], false)
        .await
        .expect("user");
    assert!(matches!(
        env.provider.verify_step_up(&other, &with(json!(""))).await,
        Err(ProviderError::InvalidAuth(_))
    ));
}
