//! The auth phase: `auth_required`, `auth_ok`, `auth_invalid`, silent closes, bans, limits.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use auth_http::HttpOptions;
use serde_json::json;
use tokio_tungstenite::tungstenite::{Error as TError, Message};

use super::{Ws, add_user, open};
use crate::harness::{Setup, onboard, onboarded, start};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn server_with(options: HttpOptions) -> (crate::harness::Server, String) {
    let server = start(Setup {
        options,
        ..Setup::default()
    })
    .await;
    let token = onboard(&server, "owner", "owner-pass").await;
    (server, token)
}

#[tokio::test]
async fn a_valid_token_gets_auth_ok() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    let me = ws.ok(json!({"type": "auth/current_user"})).await;
    assert_eq!(me["name"], "Owner");
}

#[tokio::test]
async fn a_bad_token_is_refused_counted_and_closed() {
    let (server, _owner) = server_with(HttpOptions {
        login_attempts_threshold: 5,
        ..HttpOptions::default()
    })
    .await;
    for token in ["x.y.z", ""] {
        let mut ws = Ws::connect(&server).await;
        ws.send(json!({"type": "auth", "access_token": token}))
            .await;
        assert_eq!(
            ws.recv().await,
            json!({"type": "auth_invalid", "message": "Invalid access token or password"})
        );
        ws.expect_closed().await;
    }
    // No token at all (and an api_password, which never succeeds) is the same failure.
    let mut ws = Ws::connect(&server).await;
    ws.send(json!({"type": "auth", "api_password": "secret"}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"type": "auth_invalid", "message": "Invalid access token or password"})
    );
    ws.expect_closed().await;
    assert!(
        (server.http.bans().score(LOCALHOST) - 3.0).abs() < 0.01,
        "each failure counts: {}",
        server.http.bans().score(LOCALHOST)
    );
}

#[tokio::test]
async fn failures_lead_to_a_ban_and_success_resets_the_counter() {
    let (server, owner) = server_with(HttpOptions {
        login_attempts_threshold: 2,
        ..HttpOptions::default()
    })
    .await;
    let mut ws = Ws::connect(&server).await;
    ws.send(json!({"type": "auth", "access_token": "bad"}))
        .await;
    ws.recv().await;
    ws.expect_closed().await;
    assert!(server.http.bans().score(LOCALHOST) > 0.9);
    Ws::authed(&server, &owner).await;
    assert_eq!(server.http.bans().score(LOCALHOST), 0.0, "auth_ok resets");
    // Two failures reach the threshold: the IP is banned (the decay between quick failures is
    // absorbed by the ban check's margin).
    for _ in 0..2 {
        let mut ws = Ws::connect(&server).await;
        ws.send(json!({"type": "auth", "access_token": "bad"}))
            .await;
        ws.recv().await;
        ws.expect_closed().await;
    }
    match open(&server, &[]).await {
        Err(TError::Http(response)) => assert_eq!(response.status(), 403),
        Err(other) => panic!("expected HTTP 403, got {other}"),
        Ok(_) => panic!("a banned IP must not connect"),
    }
}

#[tokio::test]
async fn malformed_auth_messages_get_auth_invalid_then_close() {
    let (server, owner) = onboarded().await;
    let cases = [
        (
            json!({"access_token": owner}),
            "Auth message incorrectly formatted: required key not provided at 'type'. Got None",
        ),
        (
            json!({"type": "login", "access_token": "x"}),
            "Auth message incorrectly formatted: value must be 'auth' at 'type'. Got 'login'",
        ),
        (
            json!({"type": "auth", "access_token": 5}),
            "Auth message incorrectly formatted: expected str at 'access_token'. Got 5",
        ),
        (
            json!({"type": "auth", "access_token": owner, "extra": true}),
            "Auth message incorrectly formatted: not a valid option at 'extra'. Got True",
        ),
        (
            json!(["auth"]),
            "Auth message incorrectly formatted: expected a dictionary. Got ['auth']",
        ),
    ];
    for (message, expected) in cases {
        let mut ws = Ws::connect(&server).await;
        ws.send(message).await;
        assert_eq!(
            ws.recv().await,
            json!({"type": "auth_invalid", "message": expected})
        );
        ws.expect_closed().await;
    }
}

#[tokio::test]
async fn non_text_frames_invalid_json_and_big_messages_close_without_reply() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::connect(&server).await;
    ws.send_frame(Message::binary(b"{}".to_vec())).await;
    ws.expect_closed().await;

    let mut ws = Ws::connect(&server).await;
    ws.send_text("{not json").await;
    ws.expect_closed().await;

    let mut ws = Ws::connect(&server).await;
    let padding = "x".repeat(64 * 1024);
    ws.send(json!({"type": "auth", "access_token": owner, "pad": padding}))
        .await;
    ws.expect_closed().await;

    // Pings are answered by the transport and do not count as the auth message.
    let mut ws = Ws::connect(&server).await;
    ws.send_frame(Message::Ping(b"hi".to_vec().into())).await;
    ws.send(json!({"type": "auth", "access_token": owner}))
        .await;
    assert_eq!(ws.recv().await["type"], "auth_ok");
}

#[tokio::test]
async fn the_auth_message_must_come_in_time() {
    let mut options = HttpOptions::default();
    options.websocket.auth_timeout = Duration::from_millis(200);
    let (server, _owner) = server_with(options).await;
    let mut ws = Ws::connect(&server).await;
    ws.expect_closed().await;
}

#[tokio::test]
async fn local_only_users_cannot_authenticate_from_afar() {
    let (server, owner) = server_with(HttpOptions {
        use_x_forwarded_for: true,
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        login_attempts_threshold: 5,
        ..HttpOptions::default()
    })
    .await;
    let mut admin = Ws::authed(&server, &owner).await;
    let (user_id, token, _) = add_user(
        &server,
        &mut admin,
        "Local",
        "local",
        "local-pass",
        &["system-users"],
    )
    .await;
    admin
        .ok(json!({"type": "config/auth/update", "user_id": user_id, "local_only": true}))
        .await;
    // From the LAN: fine.
    let mut ws = open(&server, &[("x-forwarded-for", "192.168.1.20")])
        .await
        .unwrap();
    ws.recv().await;
    ws.send(json!({"type": "auth", "access_token": token}))
        .await;
    assert_eq!(ws.recv().await["type"], "auth_ok");
    // From the internet: refused with the reason, and counted.
    let mut ws = open(&server, &[("x-forwarded-for", "203.0.113.7")])
        .await
        .unwrap();
    ws.recv().await;
    ws.send(json!({"type": "auth", "access_token": token}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"type": "auth_invalid", "message": "User cannot authenticate remotely"})
    );
    ws.expect_closed().await;
    let remote: IpAddr = "203.0.113.7".parse().unwrap();
    assert!(server.http.bans().score(remote) > 0.9);
}

#[tokio::test]
async fn connections_are_capped() {
    let mut options = HttpOptions::default();
    options.websocket.max_connections = 2;
    let (server, owner) = server_with(options).await;
    let first = Ws::authed(&server, &owner).await;
    let _second = Ws::connect(&server).await;
    match open(&server, &[]).await {
        Err(TError::Http(response)) => assert_eq!(response.status(), 503),
        Err(other) => panic!("expected HTTP 503, got {other}"),
        Ok(_) => panic!("a third connection must be refused"),
    }
    drop(first);
    // The slot comes back once the server has seen the close.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match open(&server, &[]).await {
            Ok(_) => break,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(other) => panic!("the slot was not released: {other}"),
        }
    }
}

#[tokio::test]
async fn a_revoked_sessions_token_is_refused_but_not_counted() {
    let (server, owner) = server_with(HttpOptions {
        login_attempts_threshold: 2,
        ..HttpOptions::default()
    })
    .await;
    let session = server.manager().validate_access_token(&owner).unwrap();
    server
        .manager()
        .remove_refresh_token(&session.id)
        .await
        .unwrap();
    for _ in 0..3 {
        let mut ws = Ws::connect(&server).await;
        ws.send(json!({"type": "auth", "access_token": owner}))
            .await;
        assert_eq!(
            ws.recv().await,
            json!({"type": "auth_invalid", "message": "Invalid access token or password"})
        );
        ws.expect_closed().await;
    }
    assert_eq!(
        server.http.bans().score(LOCALHOST),
        0.0,
        "a phone signed out elsewhere is not guessing"
    );
}
