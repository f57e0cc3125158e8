//! Users, owner rules, credentials, cascades and events.

use auth_core::{AuthError, AuthEvent, NewRefreshToken, UserUpdate};

use crate::support::{fresh, sign_in};

#[tokio::test]
async fn first_non_system_user_becomes_owner() {
    let (_config, _clock, manager) = fresh().await;
    let system = manager
        .create_system_user(
            Some("Supervisor".into()),
            vec!["system-admin".into()],
            false,
        )
        .await
        .unwrap();
    assert!(!system.is_owner && system.system_generated && system.is_active);
    let first = manager
        .create_user(Some("First".into()), vec!["system-admin".into()], false)
        .await
        .unwrap();
    assert!(first.is_owner, "system users do not count");
    let second = manager
        .create_user(Some("Second".into()), vec![], true)
        .await
        .unwrap();
    assert!(!second.is_owner);
    assert!(second.local_only);
    assert!(!second.is_admin(), "no groups: not admin");
    assert_eq!(manager.owner().unwrap().id, first.id);
    let error = manager
        .create_user(Some("X".into()), vec!["nope".into()], false)
        .await
        .expect_err("unknown group");
    assert_eq!(error.to_string(), "Invalid group specified nope");
}

#[tokio::test]
async fn users_created_at_sign_in_are_admins_but_never_owner() {
    let (_config, _clock, manager) = fresh().await;
    let mut events = manager.subscribe();
    let credentials = sign_in(&manager, "alice", "secret").await;
    assert!(credentials.is_new);
    let user = manager.get_or_create_user(&credentials).await.unwrap();
    assert!(!user.is_owner, "even as the first user");
    assert_eq!(user.group_ids, ["system-admin"]);
    assert_eq!(user.name.as_deref(), Some("alice"));
    assert_eq!(
        events.try_recv().unwrap(),
        AuthEvent::UserAdded {
            user_id: user.id.clone()
        }
    );
    // Second sign-in finds the linked credential.
    let again = sign_in(&manager, "alice", "secret").await;
    assert!(!again.is_new);
    assert_eq!(again.id, credentials.id);
    assert_eq!(
        manager.get_or_create_user(&again).await.unwrap().id,
        user.id
    );
    // A second code redeemed for the same not-yet-linked identity is a duplicate.
    let error = manager
        .get_or_create_user(&credentials)
        .await
        .expect_err("duplicate");
    assert!(matches!(error, AuthError::DuplicateCredentials));
}

#[tokio::test]
async fn linking_rules() {
    let (_config, _clock, manager) = fresh().await;
    let a = manager
        .create_user(Some("A".into()), vec![], false)
        .await
        .unwrap();
    let b = manager
        .create_user(Some("B".into()), vec![], false)
        .await
        .unwrap();
    let credentials = sign_in(&manager, "bob", "hunter2").await;
    manager.link_user(&a.id, credentials.clone()).await.unwrap();
    manager.link_user(&a.id, credentials.clone()).await.unwrap();
    assert_eq!(
        manager.user(&a.id).unwrap().credentials.len(),
        1,
        "linking twice is a no-op"
    );
    let error = manager
        .link_user(&b.id, credentials.clone())
        .await
        .expect_err("already linked");
    assert_eq!(error.to_string(), "Credential is already linked to a user");
    assert_eq!(
        manager.user_by_credentials(&credentials.id).unwrap().id,
        a.id
    );
}

#[tokio::test]
async fn update_and_deactivate() {
    let (_config, _clock, manager) = fresh().await;
    let owner = manager
        .create_user(Some("Owner".into()), vec!["system-admin".into()], false)
        .await
        .unwrap();
    let user = manager
        .create_user(Some("U".into()), vec![], false)
        .await
        .unwrap();
    let token = manager
        .create_refresh_token(
            &user.id,
            NewRefreshToken {
                client_id: Some("http://x/".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut events = manager.subscribe();
    let updated = manager
        .update_user(
            &user.id,
            UserUpdate {
                name: Some(Some("Renamed".into())),
                group_ids: Some(vec!["system-users".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name.as_deref(), Some("Renamed"));
    assert_eq!(updated.group_ids, ["system-users"]);
    assert_eq!(
        events.try_recv().unwrap(),
        AuthEvent::UserUpdated {
            user_id: user.id.clone()
        }
    );

    manager
        .update_user(
            &user.id,
            UserUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!manager.user(&user.id).unwrap().is_active);
    assert!(
        manager.refresh_token(&token.id).is_none(),
        "deactivation revokes every token"
    );

    // The owner cannot be deactivated, but the other fields were applied first (as HA does),
    // and the failed call announces nothing.
    while events.try_recv().is_ok() {}
    let error = manager
        .update_user(
            &owner.id,
            UserUpdate {
                name: Some(Some("Boss".into())),
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect_err("owner");
    assert!(matches!(error, AuthError::CannotDeactivateOwner));
    assert!(
        events.try_recv().is_err(),
        "no user_updated for a failed update"
    );
    let owner = manager.user(&owner.id).unwrap();
    assert!(owner.is_active);
    assert_eq!(owner.name.as_deref(), Some("Boss"));
    let error = manager
        .update_user(
            &user.id,
            UserUpdate {
                group_ids: Some(vec!["zzz".into()]),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(error, Err(AuthError::InvalidGroup(_))));
}

#[tokio::test]
async fn removal_cascades() {
    let (_config, _clock, manager) = fresh().await;
    let owner = manager
        .create_user(Some("Owner".into()), vec![], false)
        .await
        .unwrap();
    let credentials = sign_in(&manager, "alice", "secret").await;
    let alice = manager.get_or_create_user(&credentials).await.unwrap();
    let with_cred = manager
        .create_refresh_token(
            &alice.id,
            NewRefreshToken {
                client_id: Some("http://x/".into()),
                credential_id: Some(credentials.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let without = manager
        .create_refresh_token(
            &alice.id,
            NewRefreshToken {
                client_id: Some("http://y/".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Removing a credential revokes the sessions made with it, and only those.
    manager.remove_credentials(&credentials.id).await.unwrap();
    assert!(manager.refresh_token(&with_cred.id).is_none());
    assert!(manager.refresh_token(&without.id).is_some());
    assert!(manager.user(&alice.id).unwrap().credentials.is_empty());

    let mut events = manager.subscribe();
    manager.remove_user(&alice.id).await.unwrap();
    assert!(manager.user(&alice.id).is_none());
    assert!(manager.refresh_token(&without.id).is_none());
    assert!(matches!(
        events.try_recv().unwrap(),
        AuthEvent::RefreshTokenRevoked { .. }
    ));
    assert_eq!(
        events.try_recv().unwrap(),
        AuthEvent::UserRemoved {
            user_id: alice.id.clone()
        }
    );
    assert!(matches!(
        manager.remove_user(&owner.id).await,
        Err(AuthError::CannotRemoveOwner)
    ));
    assert!(matches!(
        manager.remove_user("missing").await,
        Err(AuthError::UserNotFound)
    ));
}

#[tokio::test]
async fn mfa_bookkeeping_refuses_system_users_and_unknown_modules() {
    let (_config, _clock, manager) = fresh().await;
    let system = manager
        .create_system_user(Some("Svc".into()), vec![], false)
        .await
        .unwrap();
    let user = manager
        .create_user(Some("U".into()), vec![], false)
        .await
        .unwrap();
    let error = manager
        .enable_user_mfa(&system.id, "totp", &Default::default())
        .await
        .expect_err("system");
    assert_eq!(
        error.to_string(),
        "System generated users cannot enable multi-factor auth module."
    );
    let error = manager
        .disable_user_mfa(&system.id, "totp")
        .await
        .expect_err("system");
    assert_eq!(
        error.to_string(),
        "System generated users cannot disable multi-factor auth module."
    );
    let error = manager
        .enable_user_mfa(&user.id, "totp", &Default::default())
        .await
        .expect_err("no module");
    assert_eq!(
        error.to_string(),
        "Unable find multi-factor auth module: totp"
    );
    assert!(manager.enabled_mfa(&user.id).await.is_empty());
}

/// The scan that [`AuthAccess::credentials_with_username`]'s index replaces: what it must agree
/// with after every change.
fn scanned(manager: &auth_core::AuthManager, username: &str) -> Vec<(String, String)> {
    manager
        .users()
        .into_iter()
        .flat_map(|u| {
            let id = u.id.clone();
            u.credentials
                .into_iter()
                .filter(|c| c.data_str("username") == Some(username))
                .map(move |c| (id.clone(), c.id))
        })
        .collect()
}

fn indexed(manager: &auth_core::AuthManager, username: &str) -> Vec<(String, String)> {
    use auth_core::AuthAccess;
    manager
        .credentials_with_username(username)
        .into_iter()
        .map(|(user, cred)| (user, cred.id))
        .collect()
}

#[tokio::test]
async fn the_username_index_follows_links_renames_removals_and_restarts() {
    use auth_core::AuthAccess;
    use serde_json::{Map, Value, json};
    let (config, clock, manager) = fresh().await;
    let data = |name: &str| -> Map<String, Value> {
        json!({"username": name}).as_object().unwrap().clone()
    };
    // The owner first: it cannot be removed at the end.
    let mut users = Vec::new();
    for name in ["Owner", "First", "Second"] {
        users.push(
            manager
                .create_user(Some(name.into()), vec![], false)
                .await
                .unwrap(),
        );
    }
    let (first, second) = (users[1].clone(), users[2].clone());
    // The same name under two providers and two users; linked second-user-first.
    let other = manager.new_credentials("other", None, data("sam"));
    manager.link_user(&second.id, other.clone()).await.unwrap();
    let test = manager.new_credentials("test", None, data("sam"));
    manager.link_user(&first.id, test.clone()).await.unwrap();
    let check = |manager: &auth_core::AuthManager, name: &str| {
        assert_eq!(indexed(manager, name), scanned(manager, name), "{name}");
    };
    assert_eq!(
        indexed(&manager, "sam"),
        [
            (first.id.clone(), test.id.clone()),
            (second.id.clone(), other.id.clone())
        ],
        "in user order, as a scan finds them"
    );
    // A renamed credential moves in the index.
    manager
        .update_credential_data(&test.id, data("samantha"))
        .await
        .unwrap();
    for name in ["sam", "samantha"] {
        check(&manager, name);
    }
    assert_eq!(indexed(&manager, "samantha").len(), 1);
    // A credential without a username is not indexed; removing credentials and users unindexes.
    manager
        .update_credential_data(&test.id, Map::new())
        .await
        .unwrap();
    assert!(indexed(&manager, "samantha").is_empty());
    manager
        .update_credential_data(&test.id, data("sam"))
        .await
        .unwrap();
    check(&manager, "sam");
    manager.remove_credentials(&other.id).await.unwrap();
    assert_eq!(
        indexed(&manager, "sam"),
        [(first.id.clone(), test.id.clone())]
    );
    // Read back from disk (file and journal), the index is rebuilt.
    manager.flush().await.unwrap();
    let reread = crate::support::manager_in(&config, &clock).await;
    check(&reread, "sam");
    assert_eq!(indexed(&reread, "sam").len(), 1);
    reread.remove_user(&first.id).await.unwrap();
    assert!(indexed(&reread, "sam").is_empty());
    check(&reread, "sam");
}
