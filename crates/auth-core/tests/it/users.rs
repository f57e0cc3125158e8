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
