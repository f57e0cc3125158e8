//! Login flow shapes and outcomes, driven through the manager's flow table.

use auth_core::PasswordAdmin;
use auth_core::flow_engine::FlowError;
use auth_core::models::GROUP_ID_ADMIN;
use serde_json::{Map, Value, json};

use crate::common::{assert_invalid_auth, empty_env, env, finished_credentials, init_form, input};

#[tokio::test]
async fn first_form_has_empty_errors() {
    let env = empty_env().await;
    let first = env.start().await;
    assert_eq!(first.flow_id.len(), 32);
    assert_eq!(
        serde_json::to_value(&first).expect("json"),
        init_form(&first.flow_id, json!({}))
    );
}

#[tokio::test]
async fn wrong_password_is_a_form_and_the_flow_goes_on() {
    let env = empty_env().await;
    env.ha().add_auth("alice", "right").await.expect("added");
    let first = env.start().await;
    let flows = env.manager.login_flows();
    let wrong = flows
        .configure(&first.flow_id, Some(input("alice", "wrong")))
        .await
        .expect("step runs");
    assert_eq!(wrong.flow_id, first.flow_id);
    assert_eq!(
        serde_json::to_string(&wrong).expect("json"),
        serde_json::to_string(&init_form(&first.flow_id, json!({"base": "invalid_auth"})))
            .expect("json")
    );
    let right = flows
        .configure(&first.flow_id, Some(input("alice", "right")))
        .await
        .expect("step runs");
    let credentials = finished_credentials(&env, &right);
    assert!(credentials.is_new);
    assert_eq!(
        Value::Object(credentials.data.clone()),
        json!({"username": "alice"})
    );
}

#[tokio::test]
async fn unknown_user_is_invalid_auth() {
    let env = empty_env().await;
    assert_invalid_auth(&env.login("nobody", "whatever").await);
    env.ha().add_auth("alice", "pw").await.expect("added");
    assert_invalid_auth(&env.login("bob", "pw").await);
    assert_invalid_auth(&env.login("", "").await);
}

#[tokio::test]
async fn first_login_creates_an_admin_user_named_after_the_username() {
    let env = empty_env().await;
    env.ha()
        .add_auth("jörg-strasse-σασ", "pw")
        .await
        .expect("added");
    // Typed differently: the new credential holds the normalised name.
    let done = env.login("  JÖRG-STRASSE-ΣΑΣ ", "pw").await;
    let credentials = finished_credentials(&env, &done);
    assert_eq!(
        Value::Object(credentials.data.clone()),
        json!({"username": "jörg-strasse-σασ"})
    );
    let user = env
        .manager
        .get_or_create_user(&credentials)
        .await
        .expect("user");
    assert_eq!(user.name.as_deref(), Some("jörg-strasse-σασ"));
    assert_eq!(user.group_ids, vec![GROUP_ID_ADMIN.to_owned()]);
    assert!(user.is_active);
    assert!(!user.is_owner);
    assert!(!user.local_only);
    // The next login (another spelling) finds the same credential.
    let again = finished_credentials(&env, &env.login("jörg-straße-σας", "pw").await);
    assert_eq!(again.id, credentials.id);
    assert!(!again.is_new);
}

#[tokio::test]
async fn malformed_input_is_rejected_before_the_provider_runs() {
    let env = empty_env().await;
    let first = env.start().await;
    let flows = env.manager.login_flows();
    let mut extra = input("a", "b");
    extra.insert("remember".to_owned(), json!(true));
    assert!(matches!(
        flows.configure(&first.flow_id, Some(extra)).await,
        Err(FlowError::InvalidInput(_))
    ));
    let mut numeric = Map::new();
    numeric.insert("username".to_owned(), json!("a"));
    numeric.insert("password".to_owned(), json!(1234));
    assert!(matches!(
        flows.configure(&first.flow_id, Some(numeric)).await,
        Err(FlowError::InvalidInput(_))
    ));
    // The flow is still there.
    assert_invalid_auth(
        &flows
            .configure(&first.flow_id, Some(input("a", "b")))
            .await
            .expect("step runs"),
    );
}

#[tokio::test]
async fn fixture_owner_flow_json_matches_home_assistant() {
    // The same shapes HA sent (flows.md §2.1), for a fixture user with a wrong password.
    let env = env(Some("ha-2026.2.3"), json!({})).await;
    let first = env.start().await;
    assert_eq!(first.to_json(), init_form(&first.flow_id, json!({})));
    let wrong = env
        .manager
        .login_flows()
        .configure(&first.flow_id, Some(input("owner", "not-the-password")))
        .await
        .expect("step runs");
    assert_invalid_auth(&wrong);
}
