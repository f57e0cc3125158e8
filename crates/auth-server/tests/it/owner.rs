//! Issue 14 item 2: onboarding left open. The start-up hint's command creates the owner and
//! closes onboarding's user step; an open onboarding on a non-loopback address is warned about.

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use serde_json::{Value, json};

use crate::client::{self, CLIENT_ID};
use crate::support::{BASIC_CONFIG, BIN, run, serve, serve_at, write_config};

const WARNING: &str = "ONBOARDING IS OPEN";

fn stored_users(config_dir: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(config_dir.join(".storage/auth")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["data"]["users"].as_array().unwrap().clone()
}

/// Runs a command line as printed, through the shell, with the binary under test on `PATH`.
async fn run_printed(cwd: &std::path::Path, line: &str) -> std::process::Output {
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    tokio::process::Command::new("sh")
        .args(["-c", line])
        .current_dir(cwd)
        .env("PATH", path)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("sh runs")
}

#[tokio::test]
async fn the_printed_hint_creates_the_owner_and_closes_onboarding() {
    // A directory name the shell would split: the printed command must still work.
    let config = TempConfig::empty();
    let dir = config.path().join("my config");
    std::fs::create_dir(&dir).unwrap();
    write_config(&dir, BASIC_CONFIG);
    let dir_arg = dir.to_str().unwrap();
    let server = serve(config.path(), &["--config-dir", dir_arg])
        .await
        .unwrap_or_else(|out| panic!("serve failed: {}", out.stderr));
    let hint = server
        .stdout_lines
        .iter()
        .position(|l| l.starts_with("No owner yet"))
        .and_then(|i| server.stdout_lines.get(i + 1))
        .unwrap_or_else(|| panic!("no hint in {:?}", server.stdout_lines))
        .trim()
        .to_owned();
    assert!(
        !server.stdout_lines.iter().any(|l| l.contains(WARNING)),
        "loopback only: no warning {:?}",
        server.stdout_lines
    );
    assert_eq!(server.stop().await, 0);

    let command = hint.replace("USERNAME PASSWORD", "boss 'boss pass'");
    assert_ne!(command, hint, "the hint has USERNAME PASSWORD: {hint}");
    let out = run_printed(config.path(), &command).await;
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "Owner created\n"),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let users = stored_users(&dir);
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["is_owner"], json!(true));
    assert_eq!(users[0]["name"], json!("boss"));
    assert_eq!(users[0]["group_ids"], json!(["system-admin"]));

    let server = serve(config.path(), &["--config-dir", dir_arg])
        .await
        .unwrap_or_else(|out| panic!("serve failed: {}", out.stderr));
    assert!(
        !server
            .stdout_lines
            .iter()
            .any(|l| l.starts_with("No owner yet")),
        "{:?}",
        server.stdout_lines
    );
    let taken = Request::post("/api/onboarding/users")
        .json(
            &json!({"client_id": CLIENT_ID, "name": "Mallory", "username": "mallory",
                      "password": "mallory-pass", "language": "en"}),
        )
        .send(server.addr)
        .await;
    assert_eq!(taken.status, 403, "{}", taken.text());
    let tokens = client::login(
        server.addr,
        json!(["homeassistant", null]),
        "boss",
        "boss pass",
    )
    .await
    .unwrap();
    let mut ws = client::Ws::connect(server.addr, tokens["access_token"].as_str().unwrap())
        .await
        .unwrap();
    let me = ws.ok(json!({"type": "auth/current_user"})).await.unwrap();
    assert_eq!(
        (me["is_owner"].clone(), me["is_admin"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(server.stop().await, 0);
}

#[tokio::test]
async fn a_second_owner_or_a_bad_username_is_refused_without_changes() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap();
    let cwd = config.path();
    let out = run(cwd, &["user", "-c", dir, "add", "--owner", "Boss", "pw"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (1, "Username already exists!\n")
    );
    assert!(out.stderr.contains("is not normalized"), "{}", out.stderr);
    assert!(!config.storage_dir().join("auth").exists() || stored_users(config.path()).is_empty());

    let out = run(
        cwd,
        &[
            "user", "-c", dir, "add", "--owner", "--name", "The Boss", "boss", "pw",
        ],
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Owner created\n"),
        "{}",
        out.stderr
    );
    let out = run(cwd, &["user", "-c", dir, "add", "--owner", "other", "pw"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (1, "The owner already exists!\n")
    );
    let users = stored_users(config.path());
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["name"], json!("The Boss"));
    let out = run(cwd, &["user", "-c", dir, "validate", "boss", "pw"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, "Auth valid\n"));
    let out = run(cwd, &["user", "-c", dir, "validate", "other", "pw"]).await;
    assert_eq!(out.code, 1);
    let onboarding = std::fs::read_to_string(config.storage_dir().join("onboarding")).unwrap();
    assert!(onboarding.contains("\"user\""), "{onboarding}");
}

#[tokio::test]
async fn open_onboarding_on_a_non_loopback_address_is_warned_about() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap();
    let server = serve_at(config.path(), &["--config-dir", dir], None, "0.0.0.0:0")
        .await
        .unwrap_or_else(|out| panic!("serve failed: {}", out.stderr));
    let warning = server
        .stdout_lines
        .iter()
        .find(|l| l.contains(WARNING))
        .unwrap_or_else(|| panic!("no warning in {:?}", server.stdout_lines))
        .clone();
    assert!(warning.contains("0.0.0.0:"), "{warning}");
    assert!(warning.contains("add --owner"), "{warning}");
    assert_eq!(server.stop().await, 0);

    // Once the owner exists, nothing to warn about.
    let out = run(
        config.path(),
        &["user", "-c", dir, "add", "--owner", "boss", "pw"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let server = serve_at(config.path(), &["--config-dir", dir], None, "0.0.0.0:0")
        .await
        .unwrap_or_else(|out| panic!("serve failed: {}", out.stderr));
    assert!(
        !server.stdout_lines.iter().any(|l| l.contains(WARNING)),
        "{:?}",
        server.stdout_lines
    );
    assert_eq!(server.stop().await, 0);
}
