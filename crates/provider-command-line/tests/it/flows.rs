//! Login flows through the manager, and users created from the program's metadata.

use auth_core::AuthError;
use auth_core::models::{GROUP_ID_ADMIN, GROUP_ID_USER};
use serde_json::json;

use crate::common::{ALICE_ONLY, Env, assert_invalid_auth, init_form, input};

const META_SCRIPT: &str = r##"[ "$username" = "alice" ] && [ "$password" = "secret" ] || exit 1
echo "# user database v2"
echo "   # indented comment = not a key"
echo "this line is junk"
echo "favourite_colour = blue"
echo "name = Alice"
echo "  group=system-users  "
echo "local_only = true""##;

#[tokio::test]
async fn form_then_invalid_auth_then_success_with_stripped_username() {
    let env = Env::with_script(ALICE_ONLY, json!({})).await;
    let first = env.start().await;
    assert_eq!(first.to_json(), init_form(&first.flow_id, json!({})));
    let flows = env.manager.login_flows();
    let wrong = flows
        .configure(&first.flow_id, Some(input("alice", "wrong")))
        .await
        .expect("step runs");
    assert_eq!(wrong.flow_id, first.flow_id);
    assert_invalid_auth(&wrong);
    let right = flows
        .configure(&first.flow_id, Some(input(" \talice\u{a0}\n", "secret")))
        .await
        .expect("step runs");
    let credentials = env.assert_finished(&right, "alice", true);
    assert!(env.provider.supports_mfa());
    // Whitespace inside the password is not touched.
    assert_invalid_auth(&env.login("alice", " secret").await);
    assert_invalid_auth(&env.login("bob", "secret").await);
    // First sign-in without meta: an active admin named by nobody.
    let user = env
        .manager
        .get_or_create_user(&credentials)
        .await
        .expect("user");
    assert_eq!(user.name, None);
    assert_eq!(user.group_ids, vec![GROUP_ID_ADMIN.to_owned()]);
    assert!(user.is_active && !user.is_owner && !user.local_only);
    // The next login finds the linked credential.
    let again = env.assert_finished(&env.login("alice", "secret").await, "alice", false);
    assert_eq!(again.id, credentials.id);
}

#[tokio::test]
async fn malformed_input_is_a_schema_error() {
    let env = Env::with_script(ALICE_ONLY, json!({})).await;
    let first = env.start().await;
    let mut numeric = input("alice", "x");
    numeric.insert("password".into(), json!(1234));
    assert!(matches!(
        env.manager
            .login_flows()
            .configure(&first.flow_id, Some(numeric))
            .await,
        Err(auth_core::flow_engine::FlowError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn meta_names_and_groups_the_new_user() {
    let env = Env::with_script(META_SCRIPT, json!({"meta": true})).await;
    let done = env.login("alice", "secret").await;
    let credentials = env.assert_finished(&done, "alice", true);
    let meta = env.cl().meta_for("alice").expect("remembered");
    assert_eq!(meta.name.as_deref(), Some("Alice"));
    let user = env
        .manager
        .get_or_create_user(&credentials)
        .await
        .expect("user");
    assert_eq!(user.name.as_deref(), Some("Alice"));
    assert_eq!(user.group_ids, vec![GROUP_ID_USER.to_owned()]);
    assert!(user.local_only);
    assert!(user.is_active);
    assert!(!user.is_owner);
    assert!(!user.system_generated);
    assert_eq!(user.credentials.len(), 1);
    // Saved: a fresh manager over the same files sees the user.
    let reloaded = auth_core::AuthManager::builder(env.config.storage())
        .build()
        .await
        .expect("reload");
    assert_eq!(
        reloaded.user(&user.id).expect("saved").name.as_deref(),
        Some("Alice")
    );
}

#[tokio::test]
async fn meta_is_remembered_per_username_and_only_used_at_creation() {
    let body = r#"[ "$password" = "pw" ] || exit 1
read name < "$0.name" || name=
echo "name = $name"
echo "local_only = $name""#;
    let env = Env::with_script(body, json!({"meta": true})).await;
    let name_file = env.dir().join("auth.sh.name");
    std::fs::write(&name_file, "First\n").expect("write");
    let first = env.assert_finished(&env.login("carol", "pw").await, "carol", true);
    assert_eq!(
        env.cl().meta_for("carol").and_then(|m| m.name).as_deref(),
        Some("First")
    );
    // Another login replaces the remembered values before the user exists.
    std::fs::write(&name_file, "Second\n").expect("write");
    let second = env.assert_finished(&env.login("carol", "pw").await, "carol", true);
    assert_eq!(second.data, first.data);
    let user = env.manager.get_or_create_user(&second).await.expect("user");
    assert_eq!(user.name.as_deref(), Some("Second"));
    assert!(!user.local_only, "only the exact string `true` counts");
    // Later metadata never changes the existing user.
    std::fs::write(&name_file, "true\n").expect("write");
    let third = env.assert_finished(&env.login("carol", "pw").await, "carol", false);
    assert_eq!(
        env.cl().meta_for("carol").and_then(|m| m.name).as_deref(),
        Some("true")
    );
    let same = env.manager.get_or_create_user(&third).await.expect("user");
    assert_eq!(same.id, user.id);
    assert_eq!(same.name.as_deref(), Some("Second"));
    assert!(!same.local_only);
    // A refused login leaves the remembered values alone.
    assert_invalid_auth(&env.login("carol", "wrong").await);
    assert_eq!(
        env.cl().meta_for("carol").and_then(|m| m.name).as_deref(),
        Some("true")
    );
    assert!(env.cl().meta_for("dave").is_none());
}

#[tokio::test]
async fn without_meta_the_output_is_ignored() {
    let env = Env::with_script(META_SCRIPT, json!({"meta": false})).await;
    let credentials = env.assert_finished(&env.login("alice", "secret").await, "alice", true);
    assert!(env.cl().meta_for("alice").is_none());
    let user = env
        .manager
        .get_or_create_user(&credentials)
        .await
        .expect("user");
    assert_eq!(user.name, None);
    assert_eq!(user.group_ids, vec![GROUP_ID_ADMIN.to_owned()]);
    assert!(!user.local_only);
}

#[tokio::test]
async fn usernames_match_credentials_exactly() {
    let env = Env::with_script(r#"[ "$password" = "pw" ] || exit 1"#, json!({})).await;
    let lower = env.assert_finished(&env.login("alice", "pw").await, "alice", true);
    env.manager.get_or_create_user(&lower).await.expect("user");
    let upper = env.assert_finished(&env.login("Alice", "pw").await, "Alice", true);
    assert_ne!(upper.id, lower.id);
}

#[tokio::test]
async fn unknown_group_in_meta_fails_user_creation() {
    let body = r#"echo "group = no-such-group""#;
    let env = Env::with_script(body, json!({"meta": true})).await;
    let credentials = env.assert_finished(&env.login("eve", "x").await, "eve", true);
    let error = env
        .manager
        .get_or_create_user(&credentials)
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, AuthError::InvalidGroup(g) if g == "no-such-group"),
        "{error}"
    );
    assert!(env.manager.users().is_empty());
}
