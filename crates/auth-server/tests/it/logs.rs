//! Issue 14 item 7: flow ids, authorization codes, tokens and `authSig` values never reach the
//! log, even at `RUST_LOG=trace` (the real binary's stderr is captured).

use std::time::Duration;

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use serde_json::json;

use crate::client::{self, CLIENT_ID, REDIRECT_URI};
use crate::support::{BASIC_CONFIG, serve_under, write_config};

#[tokio::test]
async fn secrets_of_a_sign_in_stay_out_of_a_trace_log() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap();
    let server = serve_under(
        config.path(),
        &["--config-dir", dir],
        Some("export RUST_LOG=trace"),
    )
    .await
    .unwrap_or_else(|out| panic!("serve failed: {}", out.stderr));
    let addr = server.addr;
    let owner = client::onboard(addr, "owner", "owner-pass").await;
    let mut secrets: Vec<String> = vec![
        owner["access_token"].as_str().unwrap().to_owned(),
        owner["refresh_token"].as_str().unwrap().to_owned(),
    ];

    let started = Request::post("/auth/login_flow")
        .json(
            &json!({"client_id": CLIENT_ID, "handler": ["homeassistant", null],
                      "redirect_uri": REDIRECT_URI}),
        )
        .send(addr)
        .await;
    let flow_id = started.json()["flow_id"].as_str().unwrap().to_owned();
    let path = format!("/auth/login_flow/{flow_id}");
    assert_eq!(Request::get(&path).send(addr).await.status, 200);
    let wrong = Request::post(&path)
        .json(&json!({"client_id": CLIENT_ID, "username": "owner", "password": "wrong"}))
        .send(addr)
        .await;
    assert_eq!(wrong.json()["errors"]["base"], "invalid_auth");
    let stranger = Request::get(&path).from_ip("127.0.0.2").send(addr).await;
    assert_eq!(stranger.status, 400);
    let done = Request::post(&path)
        .json(&json!({"client_id": CLIENT_ID, "username": "owner", "password": "owner-pass"}))
        .send(addr)
        .await
        .json();
    let code = done["result"].as_str().unwrap().to_owned();
    let tokens = client::exchange(addr, &code).await.unwrap();
    // Single use; the second try also revokes the tokens of the first.
    assert!(client::exchange(addr, &code).await.is_err());
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    let mut ws = client::Ws::connect(addr, owner["access_token"].as_str().unwrap())
        .await
        .unwrap();
    let signed = ws
        .ok(json!({"type": "auth/sign_path", "path": "/api/", "expires": 60}))
        .await
        .unwrap();
    let signed = signed["path"].as_str().unwrap().to_owned();
    let auth_sig = signed.split_once("authSig=").unwrap().1.to_owned();
    assert_eq!(Request::get(&signed).send(addr).await.status, 200);
    // A tampered signature is a failed authentication, which is logged with its URL.
    let tampered = format!("/api/?authSig={auth_sig}x");
    assert_eq!(Request::get(&tampered).send(addr).await.status, 401);
    secrets.extend([
        flow_id.clone(),
        code,
        access,
        tokens["refresh_token"].as_str().unwrap().to_owned(),
    ]);
    // Each part of the signature JWT on its own, too.
    secrets.extend(auth_sig.split('.').map(str::to_owned));

    drop(ws);
    let stderr = server.stderr.clone();
    assert_eq!(server.stop().await, 0);
    // stderr is read by a task of its own: wait (with a deadline) until the last lines are in.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !stderr.lock().unwrap().contains("shutting down") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no shutdown line in the log"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = stderr.lock().unwrap().clone();
    assert!(
        log.contains("Requested URL: '/auth/login_flow/{flow_id}'")
            && log.contains("Requested URL: '/api/?authSig=…'"),
        "the failures are logged, redacted:\n{log}"
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "{secret} appears in the log:\n{log}"
        );
    }
}

#[tokio::test]
async fn each_configuration_warning_is_logged_once() {
    let config = TempConfig::empty();
    write_config(
        config.path(),
        "homeassistant:\n  auth_providers: []\n  auth_mfa_modules: []\n",
    );
    let dir = config.path().to_str().unwrap();
    let server = crate::support::serve(config.path(), &["--config-dir", dir])
        .await
        .unwrap_or_else(|out| panic!("serve failed: {}", out.stderr));
    let stderr = server.stderr();
    let warning = "no auth providers are configured: nobody can log in";
    // The file used to be read twice (once for its `storage:` key) and the warnings logged again
    // by the server: three copies of each.
    assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
    server.stop().await;
}
