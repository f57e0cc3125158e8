//! Refresh-token creation rules, access tokens, sliding expiry and the expiry sweep.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use auth_core::{AuthError, NewRefreshToken, TokenType};
use time::Duration;

use crate::support::{NOW, fresh};

fn normal(client: &str) -> NewRefreshToken {
    NewRefreshToken {
        client_id: Some(client.into()),
        ..Default::default()
    }
}

fn message(result: Result<Arc<auth_core::RefreshToken>, AuthError>) -> String {
    result.expect_err("must be refused").to_string()
}

#[tokio::test]
async fn creation_rules_in_order() {
    let (_config, _clock, manager) = fresh().await;
    let human = manager
        .create_user(Some("Human".into()), vec!["system-admin".into()], false)
        .await
        .unwrap();
    let system = manager
        .create_system_user(Some("Svc".into()), vec!["system-read-only".into()], false)
        .await
        .unwrap();

    // Rule 2: a system user with a client id.
    assert_eq!(
        message(
            manager
                .create_refresh_token(&system.id, normal("http://x/"))
                .await
        ),
        "System generated users cannot have refresh tokens connected to a client."
    );
    // Rule 5: humans never get system tokens; system users only system tokens.
    let human_system = NewRefreshToken {
        token_type: Some(TokenType::System),
        ..Default::default()
    };
    assert_eq!(
        message(manager.create_refresh_token(&human.id, human_system).await),
        "System generated users can only have system type refresh tokens"
    );
    let system_llat = NewRefreshToken {
        token_type: Some(TokenType::LongLivedAccessToken),
        client_name: Some("x".into()),
        ..Default::default()
    };
    assert_eq!(
        message(manager.create_refresh_token(&system.id, system_llat).await),
        "System generated users can only have system type refresh tokens"
    );
    // Rule 6: normal tokens need a client.
    assert_eq!(
        message(
            manager
                .create_refresh_token(&human.id, NewRefreshToken::default())
                .await
        ),
        "Client is required to generate a refresh token."
    );
    // Rule 7 and 8: LLAT needs a unique client name.
    let llat = |name: Option<&str>| NewRefreshToken {
        token_type: Some(TokenType::LongLivedAccessToken),
        client_name: name.map(str::to_owned),
        access_token_expiration: Some(Duration::days(365)),
        ..Default::default()
    };
    assert_eq!(
        message(manager.create_refresh_token(&human.id, llat(None)).await),
        "Client_name is required for long-lived access token"
    );
    let gps = manager
        .create_refresh_token(&human.id, llat(Some("GPS")))
        .await
        .unwrap();
    assert_eq!(gps.expire_at, None);
    assert_eq!(
        message(
            manager
                .create_refresh_token(&human.id, llat(Some("GPS")))
                .await
        ),
        "GPS already exists"
    );
    // An empty name is allowed and stored as null.
    let empty = manager
        .create_refresh_token(&human.id, llat(Some("")))
        .await
        .unwrap();
    assert_eq!(empty.client_name, None);

    // Defaults: system users get system tokens that never expire; humans normal ones, 90 days.
    let sys = manager
        .create_refresh_token(&system.id, NewRefreshToken::default())
        .await
        .unwrap();
    assert_eq!((sys.token_type, sys.expire_at), (TokenType::System, None));
    let token = manager
        .create_refresh_token(&human.id, normal("http://x/"))
        .await
        .unwrap();
    assert_eq!(token.token_type, TokenType::Normal);
    assert_eq!(token.expire_at, Some((NOW + 90 * 86_400) as f64));
    assert_eq!(token.access_token_expiration, Duration::minutes(30));
    assert_eq!(token.token.len(), 128);
    assert_eq!(token.jwt_key.len(), 128);
    assert_ne!(token.token, token.jwt_key);

    // Rule 1: inactive users get nothing.
    let other = manager
        .create_user(Some("Other".into()), vec![], false)
        .await
        .unwrap();
    manager.deactivate_user(&other.id).await.unwrap();
    assert_eq!(
        message(
            manager
                .create_refresh_token(&other.id, normal("http://x/"))
                .await
        ),
        "User is not active"
    );
}

#[tokio::test]
async fn access_tokens_validate_and_fail_when_they_should() {
    let (_config, clock, manager) = fresh().await;
    let user = manager
        .create_user(Some("U".into()), vec![], false)
        .await
        .unwrap();
    let token = manager
        .create_refresh_token(&user.id, normal("http://x/"))
        .await
        .unwrap();
    let jwt = manager
        .create_access_token(&token.id, Some("10.0.0.2".parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(manager.validate_access_token(&jwt).unwrap().id, token.id);

    // Usage metadata and the sliding expiry move on every mint.
    clock.advance(Duration::days(10));
    manager.create_access_token(&token.id, None).await.unwrap();
    let used = manager.refresh_token(&token.id).unwrap();
    assert_eq!(
        used.last_used_at.unwrap().unix_timestamp(),
        NOW + 10 * 86_400
    );
    assert_eq!(used.last_used_ip, None);
    assert_eq!(used.expire_at, Some((NOW + 100 * 86_400) as f64));

    // Expired: 30 minutes plus the 10 s leeway.
    let fresh_jwt = manager.create_access_token(&token.id, None).await.unwrap();
    clock.advance(Duration::seconds(1800 + 9));
    assert!(
        manager.validate_access_token(&fresh_jwt).is_some(),
        "inside the leeway"
    );
    clock.advance(Duration::seconds(2));
    assert!(
        manager.validate_access_token(&fresh_jwt).is_none(),
        "past the leeway"
    );

    // Tampered, wrong key, garbage, oversized.
    let jwt = manager.create_access_token(&token.id, None).await.unwrap();
    let mut tampered = jwt.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    assert!(
        manager
            .validate_access_token(&String::from_utf8(tampered).unwrap())
            .is_none()
    );
    let other = manager
        .create_refresh_token(&user.id, normal("http://y/"))
        .await
        .unwrap();
    let claims = auth_crypto::jwt::AccessClaims {
        iss: token.id.clone(),
        iat: clock_now(&clock),
        exp: clock_now(&clock) + 60,
    };
    let forged = auth_crypto::jwt::encode_access_token(&claims, other.jwt_key.as_bytes());
    assert!(
        manager.validate_access_token(&forged).is_none(),
        "signed with another token's key"
    );
    assert!(manager.validate_access_token("not.a.jwt").is_none());
    assert!(manager.validate_access_token(&"a".repeat(9000)).is_none());

    // Unknown (revoked) refresh token and inactive user.
    manager.remove_refresh_token(&token.id).await.unwrap();
    assert!(manager.validate_access_token(&jwt).is_none(), "revoked");
    let jwt_other = manager.create_access_token(&other.id, None).await.unwrap();
    manager
        .store()
        .write(|d| d.users.get_mut(&user.id).unwrap().is_active = false);
    assert!(
        manager.validate_access_token(&jwt_other).is_none(),
        "inactive user"
    );
}

fn clock_now(clock: &auth_core::ManualClock) -> i64 {
    use auth_core::Clock;
    clock.now().unix_timestamp()
}

#[tokio::test]
async fn long_lived_tokens_live_as_long_as_their_jwt() {
    let (_config, clock, manager) = fresh().await;
    let user = manager
        .create_user(Some("U".into()), vec![], false)
        .await
        .unwrap();
    let llat = manager
        .create_refresh_token(
            &user.id,
            NewRefreshToken {
                token_type: Some(TokenType::LongLivedAccessToken),
                client_name: Some("Car".into()),
                access_token_expiration: Some(Duration::days(3650)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let jwt = manager.create_access_token(&llat.id, None).await.unwrap();
    clock.advance(Duration::days(3000));
    assert_eq!(
        manager.remove_expired_refresh_tokens().await.unwrap(),
        0,
        "LLATs never expire as refresh tokens"
    );
    assert!(manager.validate_access_token(&jwt).is_some());
    clock.advance(Duration::days(651));
    assert!(manager.validate_access_token(&jwt).is_none());
}

#[tokio::test]
async fn expiry_sweep_removes_only_expired_tokens_and_runs_callbacks() {
    let (_config, clock, manager) = fresh().await;
    let user = manager
        .create_user(Some("U".into()), vec![], false)
        .await
        .unwrap();
    let old = manager
        .create_refresh_token(&user.id, normal("http://a/"))
        .await
        .unwrap();
    clock.advance(Duration::days(30));
    let young = manager
        .create_refresh_token(&user.id, normal("http://b/"))
        .await
        .unwrap();
    assert_eq!(
        manager.next_expiry_run().unix_timestamp(),
        NOW + 90 * 86_400
    );
    let fired = Arc::new(AtomicUsize::new(0));
    let counter = fired.clone();
    manager.on_revoke(&old.id, move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    clock.advance(Duration::days(60));
    assert_eq!(manager.remove_expired_refresh_tokens().await.unwrap(), 1);
    assert!(manager.refresh_token(&old.id).is_none());
    assert!(manager.refresh_token(&young.id).is_some());
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    // An expired token can no longer mint access tokens even before the sweep runs.
    clock.advance(Duration::days(31));
    let error = manager
        .create_access_token(&young.id, None)
        .await
        .expect_err("expired");
    assert!(matches!(error, AuthError::InvalidAuth(_)), "{error}");
}

#[tokio::test]
async fn set_expiry_toggles() {
    let (_config, _clock, manager) = fresh().await;
    let user = manager
        .create_user(Some("U".into()), vec![], false)
        .await
        .unwrap();
    let token = manager
        .create_refresh_token(&user.id, normal("http://a/"))
        .await
        .unwrap();
    manager
        .set_refresh_token_expiry(&token.id, false)
        .await
        .unwrap();
    assert_eq!(manager.refresh_token(&token.id).unwrap().expire_at, None);
    manager
        .set_refresh_token_expiry(&token.id, true)
        .await
        .unwrap();
    assert_eq!(
        manager.refresh_token(&token.id).unwrap().expire_at,
        Some((NOW + 90 * 86_400) as f64)
    );
    assert!(matches!(
        manager.set_refresh_token_expiry("nope", true).await,
        Err(AuthError::TokenNotFound)
    ));
}

#[tokio::test]
async fn revoke_callbacks_run_once_and_can_be_cancelled() {
    let (_config, _clock, manager) = fresh().await;
    let user = manager
        .create_user(Some("U".into()), vec![], false)
        .await
        .unwrap();
    let token = manager
        .create_refresh_token(&user.id, normal("http://a/"))
        .await
        .unwrap();
    let fired = Arc::new(AtomicUsize::new(0));
    let (a, b) = (fired.clone(), fired.clone());
    manager.on_revoke(&token.id, move || {
        a.fetch_add(1, Ordering::SeqCst);
    });
    let cancelled = manager.on_revoke(&token.id, move || {
        b.fetch_add(100, Ordering::SeqCst);
    });
    manager.cancel_on_revoke(&cancelled);
    let mut events = manager.subscribe();
    manager.remove_refresh_token(&token.id).await.unwrap();
    manager.remove_refresh_token(&token.id).await.unwrap();
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    assert_eq!(
        events.try_recv().unwrap(),
        auth_core::AuthEvent::RefreshTokenRevoked {
            token_id: token.id.clone(),
            user_id: user.id.clone()
        }
    );
}

/// tokens.md §2 note: the uniqueness check compares the name as given with the stored names, and
/// "" is stored as null, so "" never collides: not with an earlier "" nor with a null-named LLAT.
#[tokio::test]
async fn long_lived_tokens_named_empty_never_collide() {
    let (_config, _clock, manager) = fresh().await;
    let user = manager
        .create_user(Some("U".into()), vec![], false)
        .await
        .unwrap();
    let llat = |name: &str| NewRefreshToken {
        token_type: Some(TokenType::LongLivedAccessToken),
        client_name: Some(name.to_owned()),
        access_token_expiration: Some(Duration::days(1)),
        ..Default::default()
    };
    let first = manager.create_refresh_token(&user.id, llat("")).await;
    let second = manager.create_refresh_token(&user.id, llat("")).await;
    let third = manager.create_refresh_token(&user.id, llat("")).await;
    for token in [&first, &second, &third] {
        let token = token.as_ref().expect("an empty name never collides");
        assert_eq!(token.client_name, None);
    }
    // Named tokens still collide, also when null-named ones exist.
    manager
        .create_refresh_token(&user.id, llat("Phone"))
        .await
        .unwrap();
    assert_eq!(
        message(manager.create_refresh_token(&user.id, llat("Phone")).await),
        "Phone already exists"
    );
    let llats = manager
        .refresh_tokens_of(&user.id)
        .iter()
        .filter(|t| t.token_type == TokenType::LongLivedAccessToken)
        .count();
    assert_eq!(llats, 4);
}

/// tokens.md §6: who may authenticate from where.
#[tokio::test]
async fn local_only_users_need_a_local_remote_ip() {
    let (_config, _clock, manager) = fresh().await;
    let local = manager
        .create_user(Some("L".into()), vec![], true)
        .await
        .unwrap();
    let anywhere = manager
        .create_user(Some("A".into()), vec![], false)
        .await
        .unwrap();
    let reason = |user, ip: Option<&str>| {
        manager.user_not_allowed_reason(user, ip.map(|ip| ip.parse().unwrap()))
    };
    // A request whose remote address is not an IP: HA's "Invalid remote IP".
    assert_eq!(reason(&local, None), Some("Invalid remote IP"));
    assert_eq!(reason(&anywhere, None), None);
    for ip in [
        "127.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "fd00::1",
        "::ffff:10.0.0.1",
        "::ffff:172.31.255.255",
        "::ffff:192.168.0.1",
        "169.254.1.1",
        "fe80::1",
    ] {
        assert_eq!(reason(&local, Some(ip)), None, "{ip} is local");
    }
    // IPv4-mapped link-local, fc00::/8 and CGNAT are not.
    for ip in [
        "::ffff:169.254.1.1",
        "fc00::1",
        "100.64.0.1",
        "8.8.8.8",
        "::ffff:8.8.8.8",
    ] {
        assert_eq!(
            reason(&local, Some(ip)),
            Some("User cannot authenticate remotely"),
            "{ip} is not local"
        );
        assert_eq!(reason(&anywhere, Some(ip)), None);
    }
}
