//! The token endpoint: code and refresh grants, PKCE, multipart, revoke, errors, bans.

use std::time::Duration;

use auth_testkit::http::Request;
use serde_json::json;

use crate::harness::{Setup, login, onboarded, start, start_flow, step};

fn form(server: &crate::harness::Server, pairs: &[(&str, &str)]) -> Request {
    let _ = server;
    Request::post("/auth/token").form(pairs)
}

/// The owner signs in: the authorization code.
async fn owner_code(server: &crate::harness::Server) -> String {
    let flow = start_flow(server, json!(["homeassistant", null]))
        .await
        .json();
    let done = step(
        server,
        flow["flow_id"].as_str().unwrap(),
        json!({"username": "owner", "password": "owner-pass"}),
    )
    .await
    .json();
    done["result"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn refresh_grant_and_revoke() {
    let (server, _owner) = onboarded().await;
    let tokens = login(&server, "owner", "owner-pass").await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 1800);
    assert_eq!(tokens["ha_auth_provider"], "homeassistant");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(refresh.len(), 128);
    let client = server.client_id();

    let granted = server
        .send(form(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client),
                ("refresh_token", refresh),
            ],
        ))
        .await;
    assert_eq!(granted.status, 200, "{}", granted.text());
    assert_eq!(granted.header("cache-control"), Some("no-store"));
    assert_eq!(granted.header("pragma"), Some("no-cache"));
    let body = granted.json();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["access_token", "token_type", "expires_in"]
    );
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        server
            .send(Request::get("/api/").bearer(&access))
            .await
            .status,
        200
    );

    // The same client id is required (absent counts as null).
    let other = server
        .send(form(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "http://other.example/"),
                ("refresh_token", refresh),
            ],
        ))
        .await;
    assert_eq!(
        (other.status, other.text()),
        (400, r#"{"error":"invalid_request"}"#.to_owned())
    );
    let none = server
        .send(form(
            &server,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        ))
        .await;
    assert_eq!(none.status, 400);

    // Multipart works too (home-assistant-js-websocket sends it).
    let boundary = "XyZ";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nrefresh_token\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\n{client}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"refresh_token\"\r\n\r\n{refresh}\r\n--{boundary}--\r\n"
    );
    let response = server
        .send(
            Request::post("/auth/token")
                .header(
                    "Content-Type",
                    &format!("multipart/form-data; boundary={boundary}"),
                )
                .body(multipart),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());

    // Revoke: always 200, and the access token dies with the refresh token.
    let revoked = server
        .send(Request::post("/auth/revoke").form(&[("token", refresh)]))
        .await;
    assert_eq!((revoked.status, revoked.text()), (200, String::new()));
    assert_eq!(
        server
            .send(Request::get("/api/").bearer(&access))
            .await
            .status,
        401
    );
    let after = server
        .send(form(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client),
                ("refresh_token", refresh),
            ],
        ))
        .await;
    assert_eq!(
        (after.status, after.text()),
        (400, r#"{"error":"invalid_grant"}"#.to_owned())
    );
    let unknown = server
        .send(Request::post("/auth/revoke").form(&[("token", "nope")]))
        .await;
    assert_eq!(unknown.status, 200);
}

#[tokio::test]
async fn code_grant_rules() {
    let (server, _owner) = onboarded().await;
    let client = server.client_id();
    let code = owner_code(&server).await;
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("grant_type", "authorization_code"), ("code", &code)],
            r#"{"error":"invalid_request","error_description":"Invalid client id"}"#,
        ),
        (
            &[("grant_type", "authorization_code"), ("client_id", &client)],
            r#"{"error":"invalid_request","error_description":"Invalid code"}"#,
        ),
        (
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client),
                ("code", "nope"),
            ],
            r#"{"error":"invalid_request","error_description":"Invalid code"}"#,
        ),
        (
            &[("grant_type", "password")],
            r#"{"error":"unsupported_grant_type"}"#,
        ),
        (
            &[
                ("grant_type", "refresh_token"),
                ("grant_type", "refresh_token"),
            ],
            r#"{"error":"invalid_request"}"#,
        ),
    ];
    for (pairs, expected) in cases {
        let response = server.send(form(&server, pairs)).await;
        assert_eq!(
            (response.status, response.text()),
            (400, expected.to_owned()),
            "{pairs:?}"
        );
    }
    // JSON bodies are not read.
    let json_body = server
        .send(
            Request::post("/auth/token")
                .header("Content-Type", "application/json")
                .json(&json!({"grant_type": "refresh_token"})),
        )
        .await;
    assert_eq!(json_body.text(), r#"{"error":"unsupported_grant_type"}"#);
    // A code with a verifier it never had a challenge for is refused and consumed.
    let with_verifier = server
        .send(form(
            &server,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client),
                ("code", &code),
                ("code_verifier", &"a".repeat(43)),
            ],
        ))
        .await;
    assert_eq!(
        with_verifier.json()["error_description"],
        "Code verifier provided but no code challenge was present"
    );
    let reuse = server
        .send(form(
            &server,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client),
                ("code", &code),
            ],
        ))
        .await;
    assert_eq!(
        reuse.json()["error_description"],
        "Invalid code",
        "single use even on failure"
    );
}

#[tokio::test]
async fn pkce_s256() {
    let (server, _owner) = onboarded().await;
    let client = server.client_id();
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let new_code = || async {
        let flow = server
            .send(Request::post("/auth/login_flow").json(&json!({
                "client_id": client, "handler": ["homeassistant", null], "redirect_uri": server.redirect_uri(),
                "code_challenge": challenge, "code_challenge_method": "S256"
            })))
            .await
            .json();
        let done = step(
            &server,
            flow["flow_id"].as_str().unwrap(),
            json!({"username": "owner", "password": "owner-pass"}),
        )
        .await
        .json();
        done["result"].as_str().unwrap().to_owned()
    };
    let code = new_code().await;
    let missing = server
        .send(form(
            &server,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client),
                ("code", &code),
            ],
        ))
        .await;
    assert_eq!(
        missing.text(),
        r#"{"error":"invalid_request","error_description":"Code verifier required"}"#
    );
    let code = new_code().await;
    let wrong = server
        .send(form(
            &server,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client),
                ("code", &code),
                ("code_verifier", &"b".repeat(43)),
            ],
        ))
        .await;
    assert_eq!(
        wrong.text(),
        r#"{"error":"invalid_grant","error_description":"Invalid code verifier"}"#
    );
    let code = new_code().await;
    let right = server
        .send(form(
            &server,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client),
                ("code", &code),
                ("code_verifier", verifier),
            ],
        ))
        .await;
    assert_eq!(right.status, 200, "{}", right.text());
}

#[tokio::test]
async fn failed_logins_ban_the_ip_and_bans_expire() {
    let clock = auth_testkit::clock_at(1_795_303_506);
    let mut setup = Setup {
        clock: clock.clone(),
        ..Setup::default()
    };
    setup.options.login_attempts_threshold = 3;
    setup.options.ban_duration = Some(Duration::from_secs(3600));
    let server = start(setup).await;
    crate::harness::onboard(&server, "owner", "owner-pass").await;
    let bad = || {
        server.send(
            Request::get("/api/")
                .bearer("not-a-token")
                .from_ip("127.0.0.3"),
        )
    };
    assert_eq!(bad().await.status, 401);
    assert_eq!(bad().await.status, 401);
    // Failed attempts decay: an hour later the counter has halved.
    clock.advance(time::Duration::hours(2));
    assert_eq!(bad().await.status, 401);
    assert_eq!(bad().await.status, 401);
    assert_eq!(bad().await.status, 401, "2 * 1/4 + 1 + 1 < 3");
    let banned = bad().await;
    assert_eq!(
        (banned.status, banned.text()),
        (403, "403: Forbidden".to_owned())
    );
    let other = server
        .send(Request::get("/auth/providers").from_ip("127.0.0.3"))
        .await;
    assert_eq!(other.status, 403, "a ban covers every URL");
    assert_eq!(
        server.send(Request::get("/auth/providers")).await.status,
        200,
        "other IPs unaffected"
    );
    // Written off the request path: polled.
    let path = server.config.path().join("ip_bans.yaml");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let file = loop {
        let file = std::fs::read_to_string(&path).unwrap_or_default();
        if !file.is_empty() || std::time::Instant::now() > deadline {
            break file;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert!(file.starts_with("\n127.0.0.3:\n  banned_at: '"), "{file}");
    clock.advance(time::Duration::hours(1));
    assert_eq!(
        server
            .send(Request::get("/auth/providers").from_ip("127.0.0.3"))
            .await
            .status,
        200,
        "bans expire"
    );
}

/// Issue 14 item 11 (RFC 9700 §4.2.4): a code redeemed twice means it leaked; the second
/// redemption fails and revokes the tokens the first one got.
#[tokio::test]
async fn reusing_a_code_revokes_the_tokens_issued_from_it() {
    let (server, _owner) = onboarded().await;
    let client = server.client_id();
    let code = owner_code(&server).await;
    let redeem = || {
        server.send(form(
            &server,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client),
                ("code", &code),
            ],
        ))
    };
    let first = redeem().await;
    assert_eq!(first.status, 200, "{}", first.text());
    let tokens = first.json();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let api = || server.send(Request::get("/api/").bearer(access));
    assert_eq!(api().await.status, 200);

    let second = redeem().await;
    assert_eq!(
        (second.status, second.text()),
        (
            400,
            r#"{"error":"invalid_request","error_description":"Invalid code"}"#.to_owned()
        )
    );
    assert_eq!(api().await.status, 401, "the access token died with it");
    let refreshed = server
        .send(form(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client),
                ("refresh_token", refresh),
            ],
        ))
        .await;
    assert_eq!(refreshed.status, 400, "{}", refreshed.text());
    // Other sessions of the user are not touched.
    let other = login(&server, "owner", "owner-pass").await;
    assert_eq!(
        server
            .send(Request::get("/api/").bearer(other["access_token"].as_str().unwrap()))
            .await
            .status,
        200
    );
}
