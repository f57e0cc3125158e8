//! `hass-auth serve` end to end over real HTTP.

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use serde_json::{Value, json};

use crate::support::{BASIC_CONFIG, serve, write_config};

async fn login(
    addr: std::net::SocketAddr,
    handler: Value,
    username: &str,
    password: &str,
) -> Value {
    let client = format!("http://{addr}/");
    let flow = Request::post("/auth/login_flow")
        .json(&json!({"client_id": client, "handler": handler, "redirect_uri": client}))
        .send(addr)
        .await
        .json();
    let done = Request::post(&format!(
        "/auth/login_flow/{}",
        flow["flow_id"].as_str().unwrap()
    ))
    .json(&json!({"client_id": client, "username": username, "password": password}))
    .send(addr)
    .await
    .json();
    assert_eq!(done["type"], "create_entry", "{done}");
    let tokens = Request::post("/auth/token")
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client),
            ("code", done["result"].as_str().unwrap()),
        ])
        .send(addr)
        .await;
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    tokens.json()
}

#[tokio::test]
async fn onboarding_login_and_clean_shutdown() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let server = serve(config.path(), &["-c", config.path().to_str().unwrap()])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    assert!(
        server
            .stdout_lines
            .iter()
            .any(|l| l.contains("No owner yet")),
        "{:?}",
        server.stdout_lines
    );
    let addr = server.addr;
    let client = format!("http://{addr}/");
    assert_eq!(Request::get("/auth/providers").send(addr).await.status, 400);
    let owner = Request::post("/api/onboarding/users")
        .json(&json!({"client_id": client, "name": "Owner", "username": "owner", "password": "pw", "language": "en"}))
        .send(addr)
        .await;
    assert_eq!(owner.status, 200, "{}", owner.text());
    let tokens = login(addr, json!(["homeassistant", null]), "owner", "pw").await;
    let api = Request::get("/api/")
        .bearer(tokens["access_token"].as_str().unwrap())
        .send(addr)
        .await;
    assert_eq!(api.status, 200);
    let demo = login(addr, json!(["insecure_example", null]), "demo", "demo").await;
    assert_eq!(demo["ha_auth_provider"], "insecure_example");
    assert_eq!(server.stop().await, 0, "SIGTERM is a clean shutdown");
    // Everything acknowledged is in the files, in HA's format.
    let auth: Value =
        serde_json::from_str(&std::fs::read_to_string(config.storage_dir().join("auth")).unwrap())
            .unwrap();
    assert_eq!(auth["data"]["users"].as_array().unwrap().len(), 2);
    assert_eq!(auth["data"]["refresh_tokens"].as_array().unwrap().len(), 2);
    let last_used = &auth["data"]["refresh_tokens"][0]["last_used_at"];
    assert!(
        last_used.is_string(),
        "debounced usage data is flushed on shutdown: {auth}"
    );
}

#[tokio::test]
async fn a_second_server_on_the_same_directory_is_refused() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap();
    let first = serve(config.path(), &["-c", dir])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let second = serve(config.path(), &["-c", dir])
        .await
        .err()
        .expect("second server refused");
    assert_eq!(second.code, 3);
    assert!(
        second.stderr.contains("locked by another process"),
        "{}",
        second.stderr
    );
    // Admin commands that write are refused too: they would overwrite what the server saves.
    for command in [
        &["user", "-c", dir, "add", "mallory", "pw"][..],
        &["user", "-c", dir, "passwd", "owner", "pw"],
        &[
            "token",
            "-c",
            dir,
            "create-long-lived",
            "--user",
            "x",
            "--name",
            "n",
        ],
        &["storage", "-c", dir, "restore", "auth"],
    ] {
        let out = crate::support::run(config.path(), command).await;
        assert_eq!(out.code, 3, "{command:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("locked by another process"),
            "{command:?}: {}",
            out.stderr
        );
    }
    assert_eq!(first.stop().await, 0);
    // Once the first has stopped, the directory is free again.
    let third = serve(config.path(), &["-c", dir])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    assert_eq!(third.stop().await, 0);
}

#[tokio::test]
async fn corrupt_store_refuses_to_start_and_keeps_the_file() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let path = config.storage_dir().join("auth");
    std::fs::write(&path, b"{\"version\": 1, \"data\": {\"users\": [").unwrap();
    let refused = serve(config.path(), &["-c", config.path().to_str().unwrap()])
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.code, 3);
    assert!(
        refused.stderr.contains(&path.display().to_string()),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("not valid JSON"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"{\"version\": 1, \"data\": {\"users\": ["
    );
}

#[tokio::test]
async fn home_assistant_config_directory_served_as_is() {
    let config = TempConfig::from_fixture("ha-2026.2.3");
    let fixture = auth_testkit::fixture_json("ha-2026.2.3/fixture.json");
    let server = serve(config.path(), &["-c", config.path().to_str().unwrap()])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let addr = server.addr;
    let providers = Request::get("/auth/providers").send(addr).await;
    assert_eq!(
        providers.json(),
        fixture["auth_providers"],
        "same providers as HA listed"
    );
    let tokens = login(addr, json!(["homeassistant", null]), "owner", "owner-pass").await;
    assert_eq!(
        Request::get("/api/")
            .bearer(tokens["access_token"].as_str().unwrap())
            .send(addr)
            .await
            .status,
        200
    );
    let llat = fixture["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["expect_token_type"] == "long_lived_access_token")
        .unwrap();
    let response = Request::get("/api/")
        .bearer(llat["access_token"]["jwt"].as_str().unwrap())
        .send(addr)
        .await;
    assert_eq!(response.status, 200, "HA's long-lived token validates");
    assert_eq!(server.stop().await, 0);
}

#[tokio::test]
async fn demo_mode_creates_a_data_directory_and_lets_the_demo_user_in() {
    let cwd = tempfile::tempdir().unwrap();
    let server = serve(cwd.path(), &[])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    assert!(cwd.path().join("data/configuration.yaml").exists());
    let tokens = login(
        server.addr,
        json!(["insecure_example", null]),
        "demo",
        "demo",
    )
    .await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(server.stop().await, 0);
}
