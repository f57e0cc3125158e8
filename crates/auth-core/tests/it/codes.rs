//! Authorization codes: single use, client-bound, 10 minutes, bounded table.

use auth_core::LoginContext;
use auth_core::codes::{AuthCode, AuthCodes};
use time::Duration;

use crate::support::{fresh, sign_in};

#[tokio::test]
async fn codes_are_single_use_and_client_bound() {
    let (_config, clock, manager) = fresh().await;
    let credentials = sign_in(&manager, "alice", "secret").await;
    let context = LoginContext {
        code_challenge: Some("c".repeat(43)),
        code_challenge_method: Some("S256".into()),
        ..Default::default()
    };
    let code = manager
        .create_auth_code("http://a/", credentials.clone(), &context)
        .await
        .unwrap();
    assert_eq!(code.len(), 32, "128 random bits as hex");
    assert!(
        manager
            .take_auth_code("http://b/", &code)
            .await
            .unwrap()
            .is_none(),
        "another client does not find it"
    );
    let taken = manager
        .take_auth_code("http://a/", &code)
        .await
        .unwrap()
        .expect("the right client redeems it");
    assert_eq!(taken.credentials, credentials);
    assert_eq!(taken.code_challenge, context.code_challenge);
    assert!(
        manager
            .take_auth_code("http://a/", &code)
            .await
            .unwrap()
            .is_none(),
        "single use"
    );

    let late = manager
        .create_auth_code("http://a/", credentials.clone(), &LoginContext::default())
        .await
        .unwrap();
    clock.advance(Duration::minutes(10));
    assert!(
        manager
            .take_auth_code("http://a/", &late)
            .await
            .unwrap()
            .is_none(),
        "expired after 10 minutes"
    );
    assert!(manager.auth_codes().is_empty(), "and consumed");
}

#[tokio::test]
async fn codes_for_removed_credentials_are_invalid() {
    let (_config, _clock, manager) = fresh().await;
    let credentials = sign_in(&manager, "alice", "secret").await;
    let user = manager.get_or_create_user(&credentials).await.unwrap();
    let linked = sign_in(&manager, "alice", "secret").await;
    let code = manager
        .create_auth_code("http://a/", linked.clone(), &LoginContext::default())
        .await
        .unwrap();
    manager.remove_credentials(&linked.id).await.unwrap();
    assert!(manager.user(&user.id).unwrap().credentials.is_empty());
    assert!(
        manager
            .take_auth_code("http://a/", &code)
            .await
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_table_is_bounded_and_purges() {
    let now = time::OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
    let table = AuthCodes::new(3);
    let code = |client: &str, at| AuthCode {
        client_id: client.into(),
        created_at: at,
        credentials: auth_core::Credentials {
            id: "c".into(),
            auth_provider_type: "t".into(),
            auth_provider_id: None,
            data: Default::default(),
            is_new: true,
        },
        code_challenge: None,
        code_challenge_method: None,
    };
    for i in 0..5 {
        table.insert(
            format!("v{i}"),
            code("x", now + Duration::seconds(i)),
            now + Duration::seconds(i),
        );
    }
    assert_eq!(table.len(), 3, "never more than the bound");
    assert!(
        table.take("x", "v0", now).is_none(),
        "the oldest went first"
    );
    assert!(table.take("x", "v4", now + Duration::seconds(5)).is_some());
    assert_eq!(table.purge_expired(now + Duration::minutes(11)), 2);
}

/// Abandoned login flows and unredeemed codes are freed by the expiry task even when no new
/// request comes in (lifetimes shortened through `ManagerLimits`).
#[tokio::test(start_paused = true)]
async fn the_expiry_task_reclaims_abandoned_flows_and_codes() {
    let config = auth_testkit::TempConfig::empty();
    let clock = auth_testkit::clock_at(crate::support::NOW);
    let mut limits = auth_core::ManagerLimits::default();
    limits.login_flows.idle_timeout = std::time::Duration::from_secs(2);
    limits.auth_code_lifetime = Duration::seconds(2);
    let manager = auth_core::AuthManager::builder(config.storage())
        .clock(clock.clone())
        .limits(limits)
        .provider(std::sync::Arc::new(crate::support::test_provider(&[(
            "alice", "secret",
        )])))
        .build()
        .await
        .unwrap();
    let credentials = sign_in(&manager, "alice", "secret").await;
    for _ in 0..10 {
        manager
            .start_login_flow("test", None, LoginContext::default())
            .await
            .unwrap()
            .unwrap();
        manager
            .create_auth_code("http://a/", credentials.clone(), &LoginContext::default())
            .await
            .unwrap();
    }
    assert_eq!(manager.login_flows().len(), 10);
    assert_eq!(manager.auth_codes().len(), 10);
    let task = manager.spawn_expiry_task();
    clock.advance(Duration::seconds(3));
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(manager.auth_codes().len(), 0, "expired codes are dropped");
    assert_eq!(
        manager.purge_abandoned(),
        0,
        "idle flows were dropped already"
    );
    task.abort();
}
