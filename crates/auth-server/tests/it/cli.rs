//! Admin commands on a config directory.

use auth_testkit::TempConfig;

use crate::support::{BASIC_CONFIG, run, write_config};

#[tokio::test]
async fn user_commands_like_hass_script_auth() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap();
    let cwd = config.path();
    let out = run(cwd, &["user", "-c", dir, "add", "alice", "secret"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Auth created\n"),
        "{}",
        out.stderr
    );
    let out = run(cwd, &["user", "-c", dir, "add", "Alice", "x"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (1, "Username already exists!\n")
    );
    assert!(out.stderr.contains("is not normalized"), "{}", out.stderr);
    let out = run(cwd, &["user", "-c", dir, "add", "alice", "x"]).await;
    assert_eq!(out.stdout, "Username already exists!\n");
    let out = run(cwd, &["user", "-c", dir, "validate", " ALICE ", "secret"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, "Auth valid\n"));
    let out = run(cwd, &["user", "-c", dir, "validate", "alice", "nope"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (1, "Auth invalid\n"));
    let out = run(cwd, &["user", "-c", dir, "passwd", "alice", "new"]).await;
    assert_eq!(out.stdout, "Password changed\n");
    let out = run(cwd, &["user", "-c", dir, "change_password", "bob", "new"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (1, "User not found\n"));
    run(cwd, &["user", "-c", dir, "add", "bob", "pw"]).await;
    let out = run(cwd, &["user", "-c", dir, "list"]).await;
    assert_eq!(out.stdout, "alice\nbob\n\nTotal users: 2\n");
    let out = run(cwd, &["user", "-c", dir, "deactivate", "alice"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (1, "User not found\n"),
        "no user until the first sign-in"
    );
    let out = run(cwd, &["user", "-c", dir, "remove", "bob"]).await;
    assert_eq!(out.stdout, "Auth removed\n");
    let out = run(cwd, &["user", "-c", dir, "remove", "bob"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (1, "User not found\n"));
    let file =
        std::fs::read_to_string(config.storage_dir().join("auth_provider.homeassistant")).unwrap();
    assert!(file.contains("\"username\": \"alice\""), "{file}");
    assert!(
        file.contains("$argon2id$"),
        "new passwords are argon2id: {file}"
    );
}

#[tokio::test]
async fn check_config_schema_and_usage_errors() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap();
    let out = run(config.path(), &["check-config", "-c", dir]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("Configuration is valid.")
            && out.stdout.contains("homeassistant, insecure_example"),
        "{}",
        out.stdout
    );

    write_config(
        config.path(),
        "homeassistant:\n  auth_providers:\n    - type: trusted_networks\n      trusted_network: 10.0.0.0/8\n",
    );
    let out = run(config.path(), &["check-config", "-c", dir]).await;
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.contains("configuration.yaml:4:"),
        "names the line: {}",
        out.stderr
    );
    assert!(out.stderr.contains("trusted_network"), "{}", out.stderr);

    let out = run(config.path(), &["schema"]).await;
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).expect("schema is JSON");
    assert!(schema.to_string().contains("trusted_networks"));

    let out = run(config.path(), &["user"]).await;
    assert_eq!(out.code, 2, "usage error");
    let out = run(config.path(), &["bogus"]).await;
    assert_eq!(out.code, 2);
}

#[tokio::test]
async fn long_lived_token_from_the_command_line() {
    let config = TempConfig::from_fixture("ha-2026.2.3");
    let dir = config.path().to_str().unwrap();
    let out = run(
        config.path(),
        &[
            "token",
            "-c",
            dir,
            "create-long-lived",
            "--user",
            "owner",
            "--name",
            "CLI token",
            "--days",
            "30",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let jwt = out.stdout.trim();
    assert_eq!(jwt.split('.').count(), 3, "{jwt}");
    let again = run(
        config.path(),
        &[
            "token",
            "-c",
            dir,
            "create-long-lived",
            "--user",
            "owner",
            "--name",
            "CLI token",
        ],
    )
    .await;
    assert_eq!(
        (again.code, again.stdout.as_str()),
        (1, "CLI token already exists\n")
    );
    let missing = run(
        config.path(),
        &[
            "token",
            "-c",
            dir,
            "create-long-lived",
            "--user",
            "nobody",
            "--name",
            "x",
        ],
    )
    .await;
    assert_eq!(
        (missing.code, missing.stdout.as_str()),
        (1, "User not found\n")
    );
}

#[tokio::test]
async fn storage_restore_brings_back_the_last_good_copy() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap();
    run(config.path(), &["user", "-c", dir, "add", "alice", "pw"]).await;
    run(config.path(), &["user", "-c", dir, "add", "bob", "pw"]).await;
    let path = config.storage_dir().join("auth_provider.homeassistant");
    std::fs::write(&path, vec![0u8; 64]).unwrap();
    let out = run(config.path(), &["user", "-c", dir, "list"]).await;
    assert_eq!(out.code, 3, "a zero-filled store is refused");
    assert!(
        out.stderr.contains("auth_provider.homeassistant"),
        "{}",
        out.stderr
    );
    let out = run(
        config.path(),
        &[
            "storage",
            "-c",
            dir,
            "restore",
            "auth_provider.homeassistant",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(config.path(), &["user", "-c", dir, "list"]).await;
    assert_eq!(
        out.stdout, "alice\n\nTotal users: 1\n",
        "the copy before the last write"
    );
}

/// Issue 17.4: `hass-auth user mfa-reset` over Home Assistant's own directory: Jörg's TOTP
/// enrolment is gone from `auth_module.totp`, their sign-in sessions are revoked, and the
/// long-lived tokens of other users stay.
#[tokio::test]
async fn mfa_reset_removes_the_factor_and_revokes_sessions() {
    let config = TempConfig::from_fixture("ha-2026.2.3");
    let dir = config.path().to_str().unwrap();
    let storage = config.storage_dir();
    let totp = |storage: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(storage.join("auth_module.totp")).unwrap())
            .unwrap()
    };
    let auth = |storage: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(storage.join("auth")).unwrap()).unwrap()
    };
    let before = auth(&storage);
    let joerg = before["data"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "Jörg Straße")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(totp(&storage)["data"]["users"].get(&joerg).is_some());
    let tokens_of = |doc: &serde_json::Value, user: &str, kind: &str| {
        doc["data"]["refresh_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["user_id"] == user && t["token_type"] == kind)
            .count()
    };
    assert!(tokens_of(&before, &joerg, "normal") > 0);
    let out = run(
        config.path(),
        &["user", "-c", dir, "mfa-reset", "JÖRG-STRASSE-ΣΑΣ"],
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "MFA reset (totp); sign-in sessions revoked\n"),
        "{}",
        out.stderr
    );
    assert!(totp(&storage)["data"]["users"].get(&joerg).is_none());
    let after = auth(&storage);
    assert_eq!(tokens_of(&after, &joerg, "normal"), 0);
    assert_eq!(
        after["data"]["refresh_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["token_type"] == "long_lived_access_token")
            .count(),
        before["data"]["refresh_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["token_type"] == "long_lived_access_token")
            .count()
    );
    let out = run(config.path(), &["user", "-c", dir, "mfa-reset", "nobody"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (1, "User not found\n"));
}

/// Issue 14 item 8: the administrator's reset of one MFA enrolment (what a user cannot do for a
/// module a provider requires); `reset-mfa` is another name of `mfa-reset`.
#[tokio::test]
async fn reset_mfa_removes_an_enrolment() {
    let config = TempConfig::from_fixture("ha-2026.2.3");
    let dir = config.path().to_str().unwrap();
    let totp_file = config.storage_dir().join("auth_module.totp");
    let secret = "5O4XYKQRNBRTVGTLJOBAVBXMBTRGIUGF";
    assert!(
        std::fs::read_to_string(&totp_file)
            .unwrap()
            .contains(secret)
    );
    let joerg = "jörg-strasse-σασ";
    let out = run(
        config.path(),
        &["user", "-c", dir, "mfa-reset", joerg, "sms"],
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (1, "Unable find multi-factor auth module: sms\n")
    );
    let out = run(
        config.path(),
        &["user", "-c", dir, "mfa-reset", "nobody", "totp"],
    )
    .await;
    assert_eq!((out.code, out.stdout.as_str()), (1, "User not found\n"));
    assert!(
        std::fs::read_to_string(&totp_file)
            .unwrap()
            .contains(secret)
    );
    let out = run(
        config.path(),
        &["user", "-c", dir, "reset-mfa", joerg, "totp"],
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "MFA reset (totp); sign-in sessions revoked\n"),
        "{}",
        out.stderr
    );
    assert!(
        !std::fs::read_to_string(&totp_file)
            .unwrap()
            .contains(secret)
    );
}
