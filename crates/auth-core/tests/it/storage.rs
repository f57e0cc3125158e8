//! The file store: HA's envelope and format, atomic durable writes, refusal of unreadable files.

use std::os::unix::fs::PermissionsExt;

use auth_core::{
    AuthError, AuthManager, FileStorage, SaveOptions, Storage, StorageError, StoredDocument,
};
use auth_testkit::TempConfig;
use serde_json::json;

use crate::support::{NOW, fresh, manager_in};

#[tokio::test]
async fn save_writes_ha_format_private_and_atomically() {
    let config = TempConfig::empty();
    let storage = FileStorage::new(config.storage_dir());
    let doc = StoredDocument::new(
        "auth_module.totp",
        1,
        1,
        json!({"users": {"u": "SECRET"}, "name": "Jörg", "n": 1800.0}),
    );
    storage
        .save(&doc, SaveOptions { private: true })
        .await
        .unwrap();
    let path = config.storage_dir().join("auth_module.totp");
    let bytes = std::fs::read(&path).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(
        text,
        "{\n  \"version\": 1,\n  \"minor_version\": 1,\n  \"key\": \"auth_module.totp\",\n  \"data\": {\n    \"users\": {\n      \"u\": \"SECRET\"\n    },\n    \"name\": \"Jörg\",\n    \"n\": 1800.0\n  }\n}"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    storage
        .save(&doc, SaveOptions { private: false })
        .await
        .unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // No temp files are left behind; the previous version is kept as the last good copy.
    let names: Vec<String> = std::fs::read_dir(config.storage_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
    assert!(
        names.contains(&"auth_module.totp.bak".to_owned()),
        "{names:?}"
    );
    assert_eq!(storage.load("auth_module.totp").await.unwrap(), Some(doc));
}

#[tokio::test]
async fn load_accepts_ha_variants() {
    let config = TempConfig::empty();
    let storage = FileStorage::new(config.storage_dir());
    let dir = config.storage_dir();
    std::fs::write(
        dir.join("a"),
        "{\"version\":1,\"key\":\"a\",\"data\":{\"x\":1}}\n",
    )
    .unwrap();
    let doc = storage.load("a").await.unwrap().unwrap();
    assert_eq!(
        (doc.version, doc.minor_version),
        (1, 1),
        "a missing minor_version counts as 1"
    );
    std::fs::write(dir.join("b"), "{}").unwrap();
    assert_eq!(
        storage.load("b").await.unwrap(),
        None,
        "a file holding {{}} is no data"
    );
    assert_eq!(storage.load("missing").await.unwrap(), None);
}

fn corrupt_cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        ("zero-filled", vec![0u8; 512], "not valid JSON"),
        ("truncated", b"{\n  \"version\": 1,\n  \"minor_version\": 1,\n  \"key\": \"auth\",\n  \"data\": {\"users\": [".to_vec(), "not valid JSON"),
        ("empty file", Vec::new(), "not valid JSON"),
        ("not an object", b"[1,2]".to_vec(), "not a JSON object"),
        ("missing data", b"{\"version\": 1, \"key\": \"auth\"}".to_vec(), "'data' is missing"),
        ("string version", b"{\"version\": \"1\", \"key\": \"auth\", \"data\": {}}".to_vec(), "'version' is not an integer"),
        (
            "another store's file",
            br#"{"version":4,"key":"onboarding","data":{"done":["user"]}}"#.to_vec(),
            "the envelope's key is 'onboarding', expected 'auth'",
        ),
        (
            "no user list",
            br#"{"version":1,"key":"auth","data":{"groups":[],"credentials":[],"refresh_tokens":[]}}"#
                .to_vec(),
            "data.users is missing",
        ),
        (
            "user missing is_owner",
            br#"{"version":1,"key":"auth","data":{"users":[{"id":"u1","name":"A","is_active":true,"system_generated":false}]}}"#
                .to_vec(),
            "data.users[0].is_owner is missing",
        ),
        (
            "credential of unknown user",
            br#"{"version":1,"key":"auth","data":{"users":[],"credentials":[{"id":"c","user_id":"nobody","auth_provider_type":"homeassistant","auth_provider_id":null,"data":{}}]}}"#
                .to_vec(),
            "data.credentials[0].user_id names unknown user nobody",
        ),
    ]
}

#[tokio::test]
async fn unreadable_auth_file_is_refused_and_kept() {
    for (what, bytes, expected) in corrupt_cases() {
        let config = TempConfig::empty();
        let path = config.storage_dir().join("auth");
        std::fs::write(&path, &bytes).unwrap();
        let clock = auth_testkit::clock_at(NOW);
        let result = AuthManager::builder(config.storage())
            .clock(clock)
            .build()
            .await;
        let error = result.expect_err(what);
        let message = error.to_string();
        assert!(
            matches!(error, AuthError::Storage(StorageError::Corrupt { .. })),
            "{what}: {message}"
        );
        assert!(
            message.contains(&path.display().to_string()),
            "{what}: message names the file: {message}"
        );
        assert!(message.contains(expected), "{what}: {message}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{what}: the file is kept as it was"
        );
        let names: Vec<_> = std::fs::read_dir(config.storage_dir()).unwrap().collect();
        assert_eq!(names.len(), 1, "{what}: nothing else was written");
    }
}

#[tokio::test]
async fn newer_major_version_is_refused() {
    let config = TempConfig::empty();
    let path = config.storage_dir().join("auth");
    std::fs::write(
        &path,
        r#"{"version": 2, "minor_version": 1, "key": "auth", "data": {}}"#,
    )
    .unwrap();
    let error = AuthManager::builder(config.storage())
        .build()
        .await
        .expect_err("version 2 is not readable");
    assert!(
        error.to_string().contains("unsupported storage version 2"),
        "{error}"
    );
}

#[tokio::test]
async fn restore_backup_brings_back_the_last_good_copy() {
    let (config, clock, manager) = fresh().await;
    // `.storage/auth` (and its last good copy) is written by compaction, e.g. at a clean stop.
    manager
        .create_user(Some("First".into()), vec![], false)
        .await
        .unwrap();
    manager.flush().await.unwrap();
    manager
        .create_user(Some("Second".into()), vec![], false)
        .await
        .unwrap();
    manager.flush().await.unwrap();
    drop(manager);
    let path = config.storage_dir().join("auth");
    std::fs::write(&path, vec![0u8; 100]).unwrap();
    let storage = FileStorage::new(config.storage_dir());
    storage.restore_backup("auth").unwrap();
    assert!(
        config.storage_dir().join("auth.rejected").exists(),
        "the bad file is kept aside"
    );
    let manager = manager_in(&config, &clock).await;
    let names: Vec<_> = manager.users().into_iter().filter_map(|u| u.name).collect();
    assert_eq!(names, vec!["First"], "the copy before the last write");
}

#[tokio::test]
async fn lock_refuses_a_second_holder() {
    let config = TempConfig::empty();
    let storage = FileStorage::new(config.storage_dir());
    let lock = storage.lock().unwrap();
    let error = FileStorage::new(config.storage_dir())
        .lock()
        .expect_err("second lock refused");
    assert!(
        error.to_string().contains("locked by another process"),
        "{error}"
    );
    drop(lock);
    FileStorage::new(config.storage_dir())
        .lock()
        .expect("free again after release");
}

#[tokio::test]
async fn taking_the_lock_removes_temp_files_of_interrupted_writes() {
    let config = TempConfig::empty();
    let dir = config.storage_dir();
    let stale = [
        ".auth.tmp-4242-7",
        ".auth_provider.homeassistant.bak-4242-0",
    ];
    let kept = [
        ".hass-auth.lock",
        ".auth.tmp-x",
        "auth.bak",
        ".notes",
        ".auth.tmp-1-2-3",
    ];
    for name in stale.iter().chain(&kept) {
        std::fs::write(dir.join(name), b"x").unwrap();
    }
    let storage = FileStorage::new(&dir);
    let _lock = storage.lock().unwrap();
    for name in stale {
        assert!(!dir.join(name).exists(), "{name} is removed");
    }
    for name in kept {
        assert!(dir.join(name).exists(), "{name} is kept");
    }
}

#[tokio::test]
async fn acknowledged_changes_are_on_disk_before_returning() {
    let (config, clock, manager) = fresh().await;
    let user = manager
        .create_user(Some("Durable".into()), vec!["system-admin".into()], false)
        .await
        .unwrap();
    let token = manager
        .create_refresh_token(
            &user.id,
            auth_core::NewRefreshToken {
                client_id: Some("http://x/".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Read the file directly, as a process that restarted after a kill -9 would.
    let reread = manager_in(&config, &clock).await;
    assert!(reread.user(&user.id).is_some());
    assert!(reread.refresh_token_by_value(&token.token).is_some());
    manager.remove_refresh_token(&token.id).await.unwrap();
    let reread = manager_in(&config, &clock).await;
    assert!(reread.refresh_token(&token.id).is_none());
}

#[tokio::test]
async fn failed_write_changes_nothing() {
    // `.storage` is a plain file: every write fails, as on a broken disk.
    let broken = TempConfig::empty();
    let storage = std::sync::Arc::new(FileStorage::new(broken.storage_dir()));
    let clock = auth_testkit::clock_at(NOW);
    let failing = AuthManager::builder(storage)
        .clock(clock)
        .build()
        .await
        .unwrap();
    std::fs::remove_dir_all(broken.storage_dir()).unwrap();
    std::fs::write(broken.storage_dir(), b"not a directory").unwrap();
    let error = failing
        .create_user(Some("Lost".into()), vec![], false)
        .await
        .expect_err("write fails");
    assert!(
        matches!(error, AuthError::Storage(StorageError::Write { .. })),
        "{error}"
    );
    assert!(error.to_string().contains("cannot write"), "{error}");
    assert!(
        failing.users().is_empty(),
        "a failed create leaves no user behind"
    );
    assert_eq!(
        std::fs::read(broken.storage_dir()).unwrap(),
        b"not a directory"
    );
}

/// Every operation whose durable write fails leaves memory as it was: a revocation, update,
/// deactivation or removal that returned an error did not happen (nothing "revoked until the
/// next restart").
#[tokio::test]
async fn failed_writes_undo_removals_and_updates() {
    let (config, _clock, manager) = fresh().await;
    let owner = manager
        .create_user(Some("Owner".into()), vec![], false)
        .await
        .unwrap();
    let credentials = crate::support::sign_in(&manager, "alice", "secret").await;
    let user = manager.get_or_create_user(&credentials).await.unwrap();
    let token = manager
        .create_refresh_token(
            &user.id,
            auth_core::NewRefreshToken {
                client_id: Some("http://x/".into()),
                credential_id: Some(credentials.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let snapshot = |m: &AuthManager| m.store().read(|d| d.to_json());
    let before = snapshot(&manager);

    // Every write fails from now on.
    let dir = config.storage_dir();
    let away = config.path().join(".storage-away");
    std::fs::rename(&dir, &away).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();

    let failures = [
        manager.remove_refresh_token(&token.id).await.err(),
        manager
            .update_user(
                &user.id,
                auth_core::UserUpdate {
                    name: Some(Some("Renamed".into())),
                    group_ids: Some(vec!["system-read-only".into()]),
                    local_only: Some(true),
                    ..Default::default()
                },
            )
            .await
            .err(),
        manager.deactivate_user(&user.id).await.err(),
        manager.remove_user(&user.id).await.err(),
        manager
            .set_refresh_token_expiry(&token.id, false)
            .await
            .err(),
        manager.remove_credentials(&credentials.id).await.err(),
    ];
    for (i, failure) in failures.into_iter().enumerate() {
        assert!(
            matches!(
                failure,
                Some(AuthError::Storage(StorageError::Write { .. }))
            ),
            "operation {i}: {failure:?}"
        );
    }
    let _ = owner;
    let after = snapshot(&manager);
    assert_eq!(after["users"], before["users"]);
    assert_eq!(after["refresh_tokens"], before["refresh_tokens"]);
    assert!(manager.refresh_token_by_value(&token.token).is_some());

    // Once writes work again, the same operations succeed.
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&away, &dir).unwrap();
    manager.remove_refresh_token(&token.id).await.unwrap();
    assert!(manager.refresh_token_by_value(&token.token).is_none());
}

fn user_json(id: &str, groups: &[&str]) -> serde_json::Value {
    json!({"id": id, "group_ids": groups, "is_owner": false, "is_active": true,
           "name": id, "system_generated": false, "local_only": false})
}

/// A manager over a `.storage/auth` holding `groups` and `users`.
async fn load_auth(
    groups: serde_json::Value,
    users: serde_json::Value,
) -> (TempConfig, AuthManager) {
    let config = TempConfig::empty();
    std::fs::create_dir_all(config.storage_dir()).unwrap();
    let doc = json!({"version": 1, "minor_version": 1, "key": "auth", "data": {
        "users": users, "groups": groups, "credentials": [], "refresh_tokens": []}});
    std::fs::write(config.storage_dir().join("auth"), doc.to_string()).unwrap();
    let manager = manager_in(&config, &auth_testkit::clock_at(NOW)).await;
    (config, manager)
}

#[tokio::test]
async fn a_lone_policyless_group_is_the_old_admin_group() {
    let (_config, manager) = load_auth(
        json!([{"id": "oldadmins", "name": "Admins"}]),
        json!([user_json("a1", &["oldadmins"]), user_json("b2", &[])]),
    )
    .await;
    assert_eq!(manager.user("a1").unwrap().group_ids, ["system-admin"]);
    assert!(
        manager.user("b2").unwrap().group_ids.is_empty(),
        "not pre-groups data: only members of that group are admins"
    );
}

#[tokio::test]
async fn a_policyless_group_next_to_other_groups_grants_nothing() {
    let custom =
        json!({"id": "family", "name": "Family", "policy": {"entities": {"all": {"read": true}}}});
    for policyless in [
        json!({"id": "stale", "name": "Stale"}),
        json!({"id": "stale", "name": "Stale", "policy": null}),
    ] {
        let (_config, manager) = load_auth(
            json!([custom.clone(), policyless]),
            json!([user_json("a1", &["stale", "family"])]),
        )
        .await;
        assert_eq!(
            manager.user("a1").unwrap().group_ids,
            ["family"],
            "the stale group is forgotten, never turned into system-admin"
        );
        assert!(!manager.user("a1").unwrap().is_admin());
    }
    // System groups kept from the file count as kept groups too.
    let (_config, manager) = load_auth(
        json!([{"id": "system-users", "name": "Users"}, {"id": "stale", "name": "Stale"}]),
        json!([user_json("a1", &["stale"])]),
    )
    .await;
    assert!(manager.user("a1").unwrap().group_ids.is_empty());
}

#[tokio::test]
async fn a_group_whose_policy_is_not_an_object_is_kept_and_grants_nothing() {
    let (_config, manager) = load_auth(
        json!([{"id": "odd", "name": "Odd", "policy": true}]),
        json!([user_json("a1", &["odd"])]),
    )
    .await;
    let user = manager.user("a1").unwrap();
    assert_eq!(user.group_ids, ["odd"]);
    assert!(!user.is_admin());
}

#[tokio::test]
async fn soft_migrations_are_saved_even_if_nothing_else_changes() {
    // Pre-groups data: everyone becomes admin and the system groups are added.
    let (config, manager) = load_auth(json!([]), json!([user_json("a1", &[])])).await;
    assert!(
        manager.store().is_dirty(),
        "the migration still needs a save"
    );
    manager.flush().await.unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(config.storage_dir().join("auth")).unwrap())
            .unwrap();
    assert_eq!(
        saved["data"]["users"][0]["group_ids"],
        json!(["system-admin"])
    );
    assert_eq!(saved["data"]["groups"].as_array().unwrap().len(), 3);
    // Home Assistant's own file needs no migration: it is not rewritten.
    let config = TempConfig::from_fixture("ha-2026.2.3");
    let before = std::fs::read(config.storage_dir().join("auth")).unwrap();
    let manager = manager_in(&config, &auth_testkit::clock_at(NOW)).await;
    assert!(!manager.store().is_dirty());
    manager.flush().await.unwrap();
    assert_eq!(
        std::fs::read(config.storage_dir().join("auth")).unwrap(),
        before
    );
}
