//! Login flows through the manager: offering, filtering, bypass, selection, credentials.

use std::sync::Arc;

use auth_core::flow_engine::FlowError;
use auth_core::{AuthAccess, LoginContext};
use serde_json::json;

use crate::common::{env, env_with_id, from};

fn networks() -> serde_json::Value {
    json!({"trusted_networks": ["192.168.0.0/24", "fd00::/8", "10.0.0.0/8"]})
}

#[tokio::test]
async fn form_offers_active_non_system_users_in_store_order() {
    let env = env(networks()).await;
    let first = env.start_from("192.168.0.20").await;
    assert_eq!(first.flow_id.len(), 32);
    let u = &env.users;
    assert_eq!(
        first.to_json(),
        env.user_form(
            &first.flow_id,
            &[
                (&u.owner, Some("Owner")),
                (&u.alice, Some("Alice")),
                (&u.bob, None),
            ]
        )
    );
    // IPv6 too.
    let v6 = env.start_from("fd00::1234").await;
    assert_eq!(v6.to_json()["data_schema"], first.to_json()["data_schema"]);
}

#[tokio::test]
async fn picking_a_user_links_a_credential_once() {
    let env = env(networks()).await;
    let first = env.start_from("192.168.0.20").await;
    let done = env
        .pick(&first.flow_id, &env.users.alice)
        .await
        .expect("step runs");
    let credentials = env.assert_finished_for(&done, &env.users.alice);
    // Linked at once and on disk: a fresh manager over the same files sees it.
    let alice = env.manager.user(&env.users.alice).expect("alice");
    assert_eq!(alice.credentials, vec![credentials.clone()]);
    let text = auth_testkit::stored_auth(&env.config.storage_dir())
        .await
        .to_string();
    assert!(text.contains(&credentials.id), "credential saved");
    assert_eq!(
        env.manager
            .get_or_create_user(&credentials)
            .await
            .expect("user")
            .id,
        env.users.alice
    );
    // The flow is gone.
    assert!(matches!(
        env.pick(&first.flow_id, &env.users.alice).await,
        Err(FlowError::UnknownFlow)
    ));
    // The next login reuses the credential.
    let again = env.start_from("192.168.0.21").await;
    let done = env
        .pick(&again.flow_id, &env.users.alice)
        .await
        .expect("step runs");
    assert_eq!(
        env.assert_finished_for(&done, &env.users.alice).id,
        credentials.id
    );
    assert_eq!(
        env.manager
            .user(&env.users.alice)
            .expect("alice")
            .credentials
            .len(),
        1
    );
}

#[tokio::test]
async fn provider_id_is_carried_in_handler_and_credentials() {
    let env = env_with_id(networks(), Some("lan")).await;
    let first = env.start_from("10.1.2.3").await;
    assert_eq!(
        first.to_json()["handler"],
        json!(["trusted_networks", "lan"])
    );
    let done = env
        .pick(&first.flow_id, &env.users.owner)
        .await
        .expect("step runs");
    let credentials = env.assert_finished_for(&done, &env.users.owner);
    assert_eq!(credentials.auth_provider_id.as_deref(), Some("lan"));
    // Without the id the provider is unknown.
    assert!(
        env.manager
            .start_login_flow("trusted_networks", None, from("10.1.2.3"))
            .await
            .expect("no error")
            .is_none()
    );
}

#[tokio::test]
async fn unlisted_system_and_inactive_users_are_schema_errors() {
    let env = env(networks()).await;
    let first = env.start_from("192.168.0.20").await;
    for id in [
        env.users.carol.as_str(),
        env.users.system.as_str(),
        "0123456789abcdef0123456789abcdef",
        "",
    ] {
        assert!(
            matches!(
                env.pick(&first.flow_id, id).await,
                Err(FlowError::InvalidInput(_))
            ),
            "{id}"
        );
    }
    let mut extra = serde_json::Map::new();
    extra.insert("user".into(), json!(env.users.alice));
    extra.insert("remember".into(), json!(true));
    assert!(matches!(
        env.manager
            .login_flows()
            .configure(&first.flow_id, Some(extra))
            .await,
        Err(FlowError::InvalidInput(_))
    ));
    // Schema errors leave the flow alive.
    let done = env
        .pick(&first.flow_id, &env.users.bob)
        .await
        .expect("step runs");
    env.assert_finished_for(&done, &env.users.bob);
}

#[tokio::test]
async fn user_deactivated_after_the_form_cannot_finish() {
    let env = env(networks()).await;
    let first = env.start_from("192.168.0.20").await;
    env.manager
        .deactivate_user(&env.users.alice)
        .await
        .expect("deactivated");
    let error = env
        .pick(&first.flow_id, &env.users.alice)
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, FlowError::Handler(m) if m == "User not found"),
        "{error}"
    );
    assert!(
        env.manager
            .user(&env.users.alice)
            .expect("alice")
            .credentials
            .is_empty()
    );
}

#[tokio::test]
async fn untrusted_requests_are_not_offered_and_cannot_start() {
    let env = env(networks()).await;
    let refused = [
        from("192.168.1.1"),         // not trusted
        from("8.8.8.8"),             // not trusted
        from("fe80::1"),             // not trusted
        from("::ffff:192.168.0.20"), // v4-mapped v6 is not the v4 network
        from("10.0.0.7"),            // a trusted proxy (10.0.0.0/24)
        LoginContext {
            via_trusted_proxy: true, // came through a proxy
            ..from("192.168.0.20")
        },
        LoginContext::default(), // no IP
    ];
    for context in refused {
        assert!(
            env.manager.providers_for(&context).is_empty(),
            "{context:?}"
        );
        assert!(env.start(context.clone()).await.is_none(), "{context:?}");
    }
    // Trusted network but outside the proxy range.
    assert_eq!(env.manager.providers_for(&from("10.0.1.7")).len(), 1);
    assert!(env.start(from("10.0.1.7")).await.is_some());
}

#[tokio::test]
async fn empty_network_list_is_never_offered() {
    let env = env(json!({"trusted_networks": []})).await;
    assert!(env.start(from("192.168.0.20")).await.is_none());
    assert!(env.manager.providers_for(&from("127.0.0.1")).is_empty());
}

#[tokio::test]
async fn a_flow_created_for_an_untrusted_context_aborts_not_allowed() {
    // The manager never does this (it checks can_start_login first); the flow checks again.
    let env = env(networks()).await;
    let provider = env
        .manager
        .auth_provider("trusted_networks", None)
        .expect("provider");
    let access: Arc<dyn AuthAccess> = Arc::new(env.manager.clone());
    for context in [
        from("172.16.0.1"),
        LoginContext::default(),
        LoginContext {
            via_trusted_proxy: true,
            ..from("192.168.0.20")
        },
    ] {
        let mut flow = provider
            .login_flow(&context, access.clone())
            .await
            .expect("flow");
        let result = flow.step("init", None).await.expect("step");
        assert_eq!(
            result,
            auth_core::flow_engine::FlowResult::abort("not_allowed")
        );
        let mut input = serde_json::Map::new();
        input.insert("user".into(), json!(env.users.alice));
        let result = flow.step("init", Some(input)).await.expect("step");
        assert_eq!(
            result,
            auth_core::flow_engine::FlowResult::abort("not_allowed")
        );
    }
}

#[tokio::test]
async fn trusted_users_filter_by_first_matching_network_ids_and_groups() {
    let env = env(json!({
        "trusted_networks": ["192.168.0.0/24", "fd00::/8", "172.16.0.0/12"],
        "trusted_users": {
            "192.168.0.10": "$alice",
            "192.168.0.0/24": ["$owner", {"group": "$family"}],
            "fd00::/8": [{"group": "system-users"}, "$carol", "$system"],
            "172.16.0.0/16": null,
        }
    }))
    .await;
    let u = &env.users;
    let offered = |ip: &'static str| {
        let env = &env;
        async move {
            let first = env.start_from(ip).await;
            let schema = first.to_json()["data_schema"].clone();
            schema[0]["options"].as_array().expect("options").clone()
        }
    };
    // 192.168.0.10 matches its own entry first (not the /24 one).
    assert_eq!(
        offered("192.168.0.10").await,
        vec![json!([u.alice, "Alice"])]
    );
    // The /24: owner by id, bob through the family group.
    assert_eq!(
        offered("192.168.0.11").await,
        vec![json!([u.owner, "Owner"]), json!([u.bob, null])]
    );
    // A group entry naming a system group; inactive and system users are never offered.
    assert_eq!(
        offered("fd00::5").await,
        vec![json!([u.alice, "Alice"]), json!([u.bob, null])]
    );
    // An empty list offers nobody: an empty select.
    assert_eq!(offered("172.16.3.4").await, Vec::<serde_json::Value>::new());
    // No trusted_users network matches: everybody.
    assert_eq!(
        offered("172.17.0.1").await,
        vec![
            json!([u.owner, "Owner"]),
            json!([u.alice, "Alice"]),
            json!([u.bob, null])
        ]
    );
}

#[tokio::test]
async fn bypass_finishes_at_once_with_exactly_one_user() {
    let keys = json!({
        "trusted_networks": "192.168.0.0/24",
        "trusted_users": {"192.168.0.10": "$alice", "192.168.0.0/24": ["$alice", "$bob"]},
        "allow_bypass_login": "on",
    });
    let env = env(keys).await;
    let done = env.start_from("192.168.0.10").await;
    let credentials = env.assert_finished_for(&done, &env.users.alice);
    assert_eq!(
        env.manager
            .user_by_credentials(&credentials.id)
            .expect("linked")
            .id,
        env.users.alice
    );
    // Two users: the form.
    let form = env.start_from("192.168.0.11").await;
    assert_eq!(
        form.to_json(),
        env.user_form(
            &form.flow_id,
            &[(&env.users.alice, Some("Alice")), (&env.users.bob, None)]
        )
    );
}

#[tokio::test]
async fn no_bypass_without_the_option_or_with_an_inactive_single_user() {
    let env = env(json!({
        "trusted_networks": "192.168.0.0/24",
        "trusted_users": {"192.168.0.10": "$alice", "192.168.0.11": "$carol"},
    }))
    .await;
    let form = env.start_from("192.168.0.10").await;
    assert_eq!(
        form.to_json(),
        env.user_form(&form.flow_id, &[(&env.users.alice, Some("Alice"))])
    );
    let env = crate::common::env(json!({
        "trusted_networks": "192.168.0.0/24",
        "trusted_users": {"192.168.0.11": ["$carol", "$system"]},
        "allow_bypass_login": true,
    }))
    .await;
    let form = env.start_from("192.168.0.11").await;
    assert_eq!(form.to_json(), env.user_form(&form.flow_id, &[]));
}
