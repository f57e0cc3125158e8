//! The refresh-token hook: access tokens only from trusted, known, non-proxy IPs.

use std::net::IpAddr;

use auth_core::{AuthError, NewRefreshToken};
use serde_json::json;

use crate::common::env;

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().expect("ip"))
}

#[tokio::test]
async fn access_tokens_only_from_trusted_networks() {
    let env = env(json!({"trusted_networks": ["192.168.0.0/24", "10.0.0.0/8"]})).await;
    let first = env.start_from("192.168.0.20").await;
    let done = env
        .pick(&first.flow_id, &env.users.alice)
        .await
        .expect("step runs");
    let credentials = env.assert_finished_for(&done, &env.users.alice);
    let user = env
        .manager
        .get_or_create_user(&credentials)
        .await
        .expect("user");
    let token = env
        .manager
        .create_refresh_token(
            &user.id,
            NewRefreshToken {
                client_id: Some("http://127.0.0.1:8123/".into()),
                credential_id: Some(credentials.id.clone()),
                ..NewRefreshToken::default()
            },
        )
        .await
        .expect("refresh token");

    let jwt = env
        .manager
        .create_access_token(&token.id, ip("192.168.0.99"))
        .await
        .expect("trusted IP mints");
    assert!(env.manager.validate_access_token(&jwt).is_some());
    env.manager
        .create_access_token(&token.id, ip("10.1.0.1"))
        .await
        .expect("trusted IP mints");

    for (remote, message) in [
        (ip("192.168.1.1"), "Not in trusted_networks"),
        (ip("2001:db8::1"), "Not in trusted_networks"),
        (ip("10.0.0.1"), "Can't allow access from a proxy server"),
        (
            None,
            "Unknown remote ip can't be used for trusted network provider.",
        ),
    ] {
        let error = env
            .manager
            .create_access_token(&token.id, remote)
            .await
            .expect_err("refused");
        assert!(
            matches!(&error, AuthError::InvalidAuth(m) if m == message),
            "{remote:?}: {error}"
        );
    }
    // A refused mint does not touch the token's usage.
    let stored = env.manager.refresh_token(&token.id).expect("token");
    assert_eq!(stored.last_used_ip.as_deref(), Some("10.1.0.1"));
}

#[tokio::test]
async fn tokens_of_other_providers_are_not_affected() {
    let env = env(json!({"trusted_networks": "192.168.0.0/24"})).await;
    // A token without a credential (as made for the owner at onboarding) skips the hook.
    let token = env
        .manager
        .create_refresh_token(
            &env.users.owner,
            NewRefreshToken {
                client_id: Some("http://127.0.0.1:8123/".into()),
                ..NewRefreshToken::default()
            },
        )
        .await
        .expect("refresh token");
    env.manager
        .create_access_token(&token.id, ip("8.8.8.8"))
        .await
        .expect("no provider hook");
}
