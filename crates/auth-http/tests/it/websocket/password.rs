//! `config/auth_provider/homeassistant/*`: credentials, passwords and usernames.

use auth_core::PasswordAdmin;
use auth_testkit::http::Request;
use serde_json::{Value, json};

use super::{Ws, add_user, error, system_user};
use crate::harness::{login, onboarded, start_flow, step};

/// Whether `username`/`password` signs in.
async fn can_log_in(server: &crate::harness::Server, username: &str, password: &str) -> bool {
    let flow = start_flow(server, json!(["homeassistant", null]))
        .await
        .json();
    let done = step(
        server,
        flow["flow_id"].as_str().unwrap(),
        json!({"username": username, "password": password}),
    )
    .await
    .json();
    done["type"] == "create_entry"
}

fn translated(message: &str, key: &str, placeholders: Value) -> Value {
    json!({"code": "home_assistant_error", "message": message, "translation_key": key,
           "translation_placeholders": placeholders, "translation_domain": "auth"})
}

#[tokio::test]
async fn create_credentials() {
    let (server, owner) = onboarded().await;
    let (system_id, _) = system_user(&server, false).await;
    let mut ws = Ws::authed(&server, &owner).await;
    let created = ws
        .ok(json!({"type": "config/auth/create", "name": "Carol", "group_ids": ["system-users"]}))
        .await;
    let carol = created["user"]["id"].as_str().unwrap().to_owned();

    assert_eq!(
        ws.err(json!({"type": "config/auth_provider/homeassistant/create",
                      "user_id": carol, "username": "Carol", "password": "pw"}))
            .await,
        translated(
            "Username \"Carol\" is not normalized. Please make sure the username is lowercase and does not contain any whitespace",
            "username_not_normalized",
            json!({"new_username": "Carol"})
        )
    );
    assert_eq!(
        ws.err(json!({"type": "config/auth_provider/homeassistant/create",
                      "user_id": carol, "username": "owner", "password": "pw"}))
            .await,
        translated(
            "Username \"owner\" already exists",
            "username_already_exists",
            json!({"username": "owner"})
        )
    );
    assert_eq!(
        ws.err(json!({"type": "config/auth_provider/homeassistant/create",
                      "user_id": "nope", "username": "x", "password": "pw"}))
            .await,
        error("not_found", "User not found")
    );
    assert_eq!(
        ws.err(json!({"type": "config/auth_provider/homeassistant/create",
                      "user_id": system_id, "username": "content-user", "password": "x"}))
            .await,
        error(
            "system_generated",
            "Cannot add credentials to a system generated user."
        )
    );
    assert_eq!(
        ws.ok(json!({"type": "config/auth_provider/homeassistant/create",
                     "user_id": carol, "username": "carol", "password": "carol-pass"}))
            .await,
        Value::Null
    );
    assert_eq!(
        ws.err(json!({"type": "config/auth_provider/homeassistant/create",
                      "user_id": carol, "username": "carol2", "password": "x"}))
            .await,
        error(
            "credentials_exist",
            "User already has credentials for this provider"
        )
    );
    let list = ws.ok(json!({"type": "config/auth/list"})).await;
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == json!(carol))
        .unwrap();
    assert_eq!(entry["username"], "carol");
    assert_eq!(entry["credentials"], json!([{"type": "homeassistant"}]));
    assert!(can_log_in(&server, "carol", "carol-pass").await);
    assert!(
        !can_log_in(&server, "carol2", "x").await,
        "the refused entry was not added"
    );
}

#[tokio::test]
async fn owner_protections() {
    let (server, owner) = onboarded().await;
    let owner_id = server.manager().owner().unwrap().id;
    let mut ws = Ws::authed(&server, &owner).await;
    let (alice_id, alice_token, _) = add_user(
        &server,
        &mut ws,
        "Alice",
        "alice",
        "alice-pass",
        &["system-admin"],
    )
    .await;
    let mut alice = Ws::authed(&server, &alice_token).await;
    let unauthorized = error("unauthorized", "Unauthorized");
    // Admins who are not the owner cannot touch the owner's credentials or anyone's password.
    assert_eq!(
        alice
            .err(json!({"type": "config/auth_provider/homeassistant/create",
                        "user_id": owner_id, "username": "boss", "password": "p"}))
            .await,
        unauthorized
    );
    for command in [
        json!({"type": "config/auth_provider/homeassistant/admin_change_password", "user_id": alice_id, "password": "p"}),
        json!({"type": "config/auth_provider/homeassistant/admin_change_username", "user_id": alice_id, "username": "al"}),
    ] {
        assert_eq!(alice.err(command).await, unauthorized);
    }
    for socket in [&mut ws, &mut alice] {
        assert_eq!(
            socket
                .err(json!({"type": "config/auth_provider/homeassistant/delete", "username": "owner"}))
                .await,
            error(
                "cannot_delete_owner_credentials",
                "Unable to delete the credentials of the owner"
            )
        );
    }
    assert!(can_log_in(&server, "owner", "owner-pass").await);
}

#[tokio::test]
async fn delete_credentials_cascades() {
    let (server, owner) = onboarded().await;
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
    let mut bob = Ws::authed(&server, &bob_token).await;

    assert_eq!(
        ws.err(json!({"type": "config/auth_provider/homeassistant/delete", "username": "nobody"}))
            .await,
        error("home_assistant_error", "User not found")
    );
    assert_eq!(
        ws.ok(json!({"type": "config/auth_provider/homeassistant/delete", "username": "bob"}))
            .await,
        Value::Null
    );
    bob.expect_closed().await;
    let user = server.manager().user(&bob_id).unwrap();
    assert!(user.credentials.is_empty());
    assert!(!can_log_in(&server, "bob", "bob-pass").await);
    assert_eq!(
        server
            .send(Request::get("/api/").bearer(&bob_token))
            .await
            .status,
        401
    );

    // An admin deleting their own credentials gets the reply, then the socket closes.
    let mut alice = Ws::authed(&server, &alice_token).await;
    assert_eq!(
        alice
            .ok(json!({"type": "config/auth_provider/homeassistant/delete", "username": "alice"}))
            .await,
        Value::Null
    );
    alice.expect_closed().await;
}

#[tokio::test]
async fn a_password_entry_without_credentials_can_be_deleted() {
    let (server, owner) = onboarded().await;
    let admin = ha_admin(&server);
    admin.add_auth("orphan", "orphan-pass").await.unwrap();
    let mut ws = Ws::authed(&server, &owner).await;
    assert_eq!(
        ws.ok(json!({"type": "config/auth_provider/homeassistant/delete", "username": "orphan"}))
            .await,
        Value::Null
    );
    assert!(
        !admin
            .usernames()
            .await
            .unwrap()
            .contains(&"orphan".to_owned())
    );
}

#[tokio::test]
async fn change_own_password() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    let (_, bob_token, _) = add_user(
        &server,
        &mut ws,
        "Bob",
        "bob",
        "bob-pass",
        &["system-users"],
    )
    .await;
    let mut bob = Ws::authed(&server, &bob_token).await;
    assert_eq!(
        bob.err(
            json!({"type": "config/auth_provider/homeassistant/change_password",
                       "current_password": "wrong", "new_password": "new-pass"})
        )
        .await,
        error("invalid_current_password", "Invalid current password")
    );
    assert_eq!(
        bob.ok(
            json!({"type": "config/auth_provider/homeassistant/change_password",
                      "current_password": "bob-pass", "new_password": "new-pass"})
        )
        .await,
        Value::Null
    );
    assert!(can_log_in(&server, "bob", "new-pass").await);
    assert!(!can_log_in(&server, "bob", "bob-pass").await);
    // Other sessions survive a password change.
    assert_eq!(
        bob.ok(json!({"type": "auth/current_user"})).await["name"],
        "Bob"
    );
    // A user without homeassistant credentials.
    let demo = login_demo(&server).await;
    let mut demo = Ws::authed(&server, &demo).await;
    assert_eq!(
        demo.err(
            json!({"type": "config/auth_provider/homeassistant/change_password",
                        "current_password": "demo-pass", "new_password": "x"})
        )
        .await,
        error("credentials_not_found", "Credentials not found")
    );
}

/// Signs in the `insecure_example` user `demo` (a user without homeassistant credentials).
async fn login_demo(server: &crate::harness::Server) -> String {
    let flow = start_flow(server, json!(["insecure_example", null]))
        .await
        .json();
    let done = step(
        server,
        flow["flow_id"].as_str().unwrap(),
        json!({"username": "demo", "password": "demo-pass"}),
    )
    .await
    .json();
    let tokens = crate::harness::exchange(server, done["result"].as_str().unwrap()).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn owner_changes_passwords_and_usernames() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    let (bob_id, _, _) = add_user(
        &server,
        &mut ws,
        "Bob",
        "bob",
        "bob-pass",
        &["system-users"],
    )
    .await;
    let bare = ws
        .ok(json!({"type": "config/auth/create", "name": "No Credentials"}))
        .await["user"]["id"]
        .clone();

    assert_eq!(
        ws.ok(
            json!({"type": "config/auth_provider/homeassistant/admin_change_password",
                     "user_id": bob_id, "password": "reset-pass"})
        )
        .await,
        Value::Null
    );
    assert!(can_log_in(&server, "bob", "reset-pass").await);
    for kind in ["admin_change_password", "admin_change_username"] {
        let command = |user_id: &Value| {
            json!({"type": format!("config/auth_provider/homeassistant/{kind}"),
                   "user_id": user_id, "password": "p", "username": "u"})
        };
        let mut unknown = command(&json!("nope"));
        let mut bare_cmd = command(&bare);
        for c in [&mut unknown, &mut bare_cmd] {
            c.as_object_mut()
                .unwrap()
                .remove(if kind == "admin_change_password" {
                    "username"
                } else {
                    "password"
                });
        }
        assert_eq!(
            ws.err(unknown).await,
            error("user_not_found", "User not found")
        );
        assert_eq!(
            ws.err(bare_cmd).await,
            error("credentials_not_found", "Credentials not found")
        );
    }

    assert_eq!(
        ws.err(
            json!({"type": "config/auth_provider/homeassistant/admin_change_username",
                      "user_id": bob_id, "username": "Robert"})
        )
        .await,
        translated(
            "Username \"Robert\" is not normalized. Please make sure the username is lowercase and does not contain any whitespace",
            "username_not_normalized",
            json!({"new_username": "Robert"})
        )
    );
    assert_eq!(
        ws.err(
            json!({"type": "config/auth_provider/homeassistant/admin_change_username",
                      "user_id": bob_id, "username": "bob"})
        )
        .await,
        translated(
            "Username \"bob\" already exists",
            "username_already_exists",
            json!({"username": "bob"})
        )
    );
    assert_eq!(
        ws.ok(
            json!({"type": "config/auth_provider/homeassistant/admin_change_username",
                     "user_id": bob_id, "username": "robert"})
        )
        .await,
        Value::Null
    );
    let list = ws.ok(json!({"type": "config/auth/list"})).await;
    let bob = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == bob_id)
        .unwrap();
    assert_eq!(bob["username"], "robert");
    assert!(can_log_in(&server, "robert", "reset-pass").await);
    assert!(!can_log_in(&server, "bob", "reset-pass").await);
    login(&server, "robert", "reset-pass").await;
}

/// The `homeassistant` provider's password administration, reached as auth-http reaches it.
fn ha_admin(server: &crate::harness::Server) -> HaAdmin {
    HaAdmin(
        server
            .manager()
            .auth_provider("homeassistant", None)
            .unwrap(),
    )
}

/// The configured `homeassistant` provider, used through [`PasswordAdmin`].
struct HaAdmin(std::sync::Arc<dyn auth_core::AuthProvider>);

impl std::ops::Deref for HaAdmin {
    type Target = dyn PasswordAdmin;

    fn deref(&self) -> &Self::Target {
        self.0
            .password_admin()
            .expect("homeassistant offers password admin")
    }
}

/// An onboarded server, the owner's socket, and Alice (in `group`) signed in: (server, owner
/// socket, Alice's user id, Alice's access token).
async fn with_alice(group: &str) -> (crate::harness::Server, Ws, String, String) {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    let (alice_id, alice_token, _) =
        add_user(&server, &mut ws, "Alice", "alice", "alice-pass", &[group]).await;
    (server, ws, alice_id, alice_token)
}

/// Issue 14 item 1: deleting a spelling variant of the owner's username used to fall back to a
/// normalised removal of the owner's password entry, without the owner check.
#[tokio::test]
async fn no_spelling_of_the_owners_username_deletes_the_owners_password() {
    let (server, mut ws, _, alice_token) = with_alice("system-admin").await;
    let mut alice = Ws::authed(&server, &alice_token).await;
    for variant in ["Owner", " owner", "OWNER\t", "owner\u{3000}"] {
        assert_eq!(
            alice
                .err(json!({"type": "config/auth_provider/homeassistant/delete", "username": variant}))
                .await,
            error(
                "cannot_delete_owner_credentials",
                "Unable to delete the credentials of the owner"
            ),
            "{variant:?}"
        );
    }
    assert!(
        ha_admin(&server)
            .usernames()
            .await
            .unwrap()
            .contains(&"owner".to_owned())
    );
    assert!(can_log_in(&server, "owner", "owner-pass").await);
    // A variant of someone else's username deletes their credentials (as a login compares).
    assert_eq!(
        ws.ok(json!({"type": "config/auth_provider/homeassistant/delete", "username": "ALICE"}))
            .await,
        Value::Null
    );
    assert!(!can_log_in(&server, "alice", "alice-pass").await);
}

/// Issue 14 item 1: `create` with the username of the owner's credential used to save the new
/// password before noticing whose credential that is, so logins in that window became the owner.
/// Here the owner's password entry is missing (a table that disagrees with the credentials), which
/// is when the old code let the entry in at all.
#[tokio::test]
async fn creating_a_password_for_the_owners_username_never_signs_in_as_the_owner() {
    let (server, _owner, _, alice_token) = with_alice("system-admin").await;
    ha_admin(&server).remove_auth("owner").await.unwrap();
    let mut alice = Ws::authed(&server, &alice_token).await;
    let mallory = alice
        .ok(json!({"type": "config/auth/create", "name": "Mallory", "group_ids": ["system-users"]}))
        .await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let logins = {
        let done = done.clone();
        let server = &server;
        async move {
            let mut signed_in = 0;
            let mut tries = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || tries == 0 {
                tries += 1;
                if can_log_in(server, "owner", "evil-pass").await {
                    signed_in += 1;
                }
            }
            signed_in
        }
    };
    let create = async {
        let answer = alice
            .err(json!({"type": "config/auth_provider/homeassistant/create",
                        "user_id": mallory, "username": "owner", "password": "evil-pass"}))
            .await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        answer
    };
    let (signed_in, answer) = tokio::join!(logins, create);
    assert_eq!(
        answer,
        translated(
            "Username \"owner\" already exists",
            "username_already_exists",
            json!({"username": "owner"})
        )
    );
    assert_eq!(signed_in, 0, "a login validated the attacker's password");
    assert!(
        !ha_admin(&server)
            .usernames()
            .await
            .unwrap()
            .contains(&"owner".to_owned())
    );
    assert!(
        server
            .manager()
            .user(&mallory)
            .unwrap()
            .credentials
            .is_empty()
    );
}

/// A rename onto a username that another credential carries would make logins ambiguous.
#[tokio::test]
async fn a_username_carried_by_another_credential_is_not_reused() {
    let (server, mut ws, alice_id, _) = with_alice("system-users").await;
    ha_admin(&server).remove_auth("owner").await.unwrap();
    assert_eq!(
        ws.err(
            json!({"type": "config/auth_provider/homeassistant/admin_change_username",
                      "user_id": alice_id, "username": "owner"})
        )
        .await,
        translated(
            "Username \"owner\" already exists",
            "username_already_exists",
            json!({"username": "owner"})
        )
    );
    assert!(can_log_in(&server, "alice", "alice-pass").await);
    assert!(!can_log_in(&server, "owner", "alice-pass").await);
}
