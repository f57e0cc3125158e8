//! `config/auth/*`: listing, creating, updating and deleting users.

use serde_json::{Value, json};

use super::{Ws, add_user, error, system_user};
use crate::harness::onboarded;

fn find<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == json!(id))
        .unwrap_or_else(|| panic!("{id} not listed"))
}

#[tokio::test]
async fn list_create_update_with_ha_shapes() {
    let (server, owner) = onboarded().await;
    let owner_id = server.manager().owner().unwrap().id;
    let (system_id, _) = system_user(&server, false).await;
    let mut ws = Ws::authed(&server, &owner).await;

    let list = ws.ok(json!({"type": "config/auth/list"})).await;
    assert_eq!(
        find(&list, &owner_id),
        &json!({"id": owner_id, "username": "owner", "name": "Owner", "is_owner": true,
                "is_active": true, "local_only": false, "system_generated": false,
                "group_ids": ["system-admin"], "credentials": [{"type": "homeassistant"}]})
    );
    assert_eq!(
        find(&list, &system_id)["system_generated"],
        true,
        "system users are listed"
    );

    let created = ws
        .ok(json!({"type": "config/auth/create", "name": "Jörg Straße", "group_ids": ["system-users"]}))
        .await;
    let id = created["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(
        created,
        json!({"user": {"id": id, "username": null, "name": "Jörg Straße", "is_owner": false,
                        "is_active": true, "local_only": false, "system_generated": false,
                        "group_ids": ["system-users"], "credentials": []}})
    );
    let bare = ws
        .ok(json!({"type": "config/auth/create", "name": "Nobody", "local_only": true}))
        .await;
    assert_eq!(bare["user"]["group_ids"], json!([]));
    assert_eq!(bare["user"]["local_only"], true);
    assert_eq!(
        ws.err(json!({"type": "config/auth/create", "name": "X", "group_ids": ["no-such-group"]}))
            .await,
        error("unknown_error", "Unknown error")
    );

    let updated = ws
        .ok(
            json!({"type": "config/auth/update", "user_id": id, "name": "Jörg",
                   "group_ids": ["system-admin"], "local_only": true}),
        )
        .await;
    assert_eq!(updated["user"]["name"], "Jörg");
    assert_eq!(updated["user"]["group_ids"], json!(["system-admin"]));
    assert_eq!(updated["user"]["local_only"], true);
    let deactivated = ws
        .ok(json!({"type": "config/auth/update", "user_id": id, "is_active": false}))
        .await;
    assert_eq!(deactivated["user"]["is_active"], false);

    assert_eq!(
        ws.err(json!({"type": "config/auth/update", "user_id": "nope", "name": "x"}))
            .await,
        error("not_found", "User not found")
    );
    assert_eq!(
        ws.err(json!({"type": "config/auth/update", "user_id": system_id, "name": "renamed"}))
            .await,
        error(
            "cannot_modify_system_generated",
            "Unable to update system generated users."
        )
    );
    assert_eq!(
        ws.err(json!({"type": "config/auth/update", "user_id": owner_id, "is_active": false, "name": "Changed"}))
            .await,
        error("cannot_deactivate_owner", "Unable to deactivate owner.")
    );
    assert_eq!(
        server.manager().owner().unwrap().name.as_deref(),
        Some("Owner"),
        "a refused update changes nothing"
    );
    assert_eq!(
        ws.err(json!({"type": "config/auth/update", "user_id": id, "group_ids": ["nope"]}))
            .await,
        error("unknown_error", "Unknown error")
    );
    // Any admin may change the owner's groups.
    let owner_groups = ws
        .ok(json!({"type": "config/auth/update", "user_id": owner_id, "group_ids": []}))
        .await;
    assert_eq!(owner_groups["user"]["group_ids"], json!([]));
    assert_eq!(owner_groups["user"]["is_owner"], true);
}

#[tokio::test]
async fn delete_rules() {
    let (server, owner) = onboarded().await;
    let owner_id = server.manager().owner().unwrap().id;
    let (system_id, _) = system_user(&server, false).await;
    let mut ws = Ws::authed(&server, &owner).await;
    let (bob_id, bob_token, _) = add_user(
        &server,
        &mut ws,
        "Bob",
        "bob",
        "bob-pass",
        &["system-users"],
    )
    .await;
    let (_, alice_token, _) = add_user(
        &server,
        &mut ws,
        "Alice",
        "alice",
        "alice-pass",
        &["system-admin"],
    )
    .await;

    assert_eq!(
        ws.err(json!({"type": "config/auth/delete", "user_id": owner_id}))
            .await,
        error("no_delete_self", "Unable to delete your own account")
    );
    assert_eq!(
        ws.err(json!({"type": "config/auth/delete", "user_id": "nope"}))
            .await,
        error("not_found", "User not found")
    );
    assert_eq!(
        ws.err(json!({"type": "config/auth/delete", "user_id": system_id}))
            .await,
        error(
            "cannot_modify_system_generated",
            "Unable to delete system generated users."
        )
    );
    let mut alice = Ws::authed(&server, &alice_token).await;
    assert_eq!(
        alice
            .err(json!({"type": "config/auth/delete", "user_id": owner_id}))
            .await,
        error("cannot_delete_owner", "Unable to delete the owner")
    );

    let mut bob = Ws::authed(&server, &bob_token).await;
    assert_eq!(
        alice
            .ok(json!({"type": "config/auth/delete", "user_id": bob_id}))
            .await,
        Value::Null
    );
    bob.expect_closed().await;
    assert!(server.manager().user(&bob_id).is_none());
    let list = ws.ok(json!({"type": "config/auth/list"})).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|u| u["id"] != json!(bob_id))
    );
}

#[tokio::test]
async fn non_admins_are_refused() {
    let (server, owner) = onboarded().await;
    let owner_id = server.manager().owner().unwrap().id;
    let mut ws = Ws::authed(&server, &owner).await;
    let (bob_id, bob_token, _) = add_user(
        &server,
        &mut ws,
        "Bob",
        "bob",
        "bob-pass",
        &["system-users"],
    )
    .await;
    let mut bob = Ws::authed(&server, &bob_token).await;
    let unauthorized = error("unauthorized", "Unauthorized");
    for command in [
        json!({"type": "config/auth/list"}),
        json!({"type": "config/auth/create", "name": "Eve"}),
        json!({"type": "config/auth/update", "user_id": bob_id, "group_ids": ["system-admin"]}),
        json!({"type": "config/auth/delete", "user_id": owner_id}),
        json!({"type": "config/auth_provider/homeassistant/create", "user_id": bob_id, "username": "b2", "password": "p"}),
        json!({"type": "config/auth_provider/homeassistant/delete", "username": "owner"}),
        json!({"type": "config/auth_provider/homeassistant/admin_change_password", "user_id": owner_id, "password": "p"}),
        json!({"type": "config/auth_provider/homeassistant/admin_change_username", "user_id": owner_id, "username": "x"}),
    ] {
        assert_eq!(bob.err(command.clone()).await, unauthorized, "{command}");
    }
    // Schema errors come before the admin check, as in HA.
    assert_eq!(
        bob.err(json!({"type": "config/auth/list", "x": 1})).await["code"],
        "invalid_format"
    );
    // Nothing changed.
    assert!(
        server
            .manager()
            .users()
            .iter()
            .all(|u| u.name.as_deref() != Some("Eve"))
    );
    assert!(!server.manager().user(&bob_id).unwrap().is_admin());
    // Non-admins still have their own commands.
    assert_eq!(
        bob.ok(json!({"type": "auth/current_user"})).await["is_admin"],
        false
    );
}
