//! The provider file: HA's format on write, and unreadable files refused without damage.

use auth_core::PasswordAdmin;
use serde_json::json;

use crate::common::{build, env};

const KEY: &str = "auth_provider.homeassistant";

#[tokio::test]
async fn corrupt_file_is_an_error_naming_it_and_stays_untouched() {
    for garbage in [
        &b"{\"version\": 1, \"key\": \"auth_provider.homeassistant\", \"data\": {\"users\": ["[..],
        b"{\"version\": 1, \"minor_version\": 1, \"key\": \"auth_provider.homeassistant\", \"data\": {\"users\": 5}}",
        b"\x00\x01 not json",
    ] {
        let config = auth_testkit::TempConfig::empty();
        let path = config.storage_dir().join(KEY);
        std::fs::write(&path, garbage).expect("write");
        let provider = build(&config, json!({}));

        let err = provider.initialize().await.expect_err("refused");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );

        // The manager refuses to start over an unreadable provider file, naming it.
        let refused = auth_core::AuthManager::builder(config.storage())
            .provider(provider.clone())
            .build()
            .await
            .expect_err("refused");
        assert!(
            refused.to_string().contains(&path.display().to_string()),
            "{refused}"
        );

        let ha = (provider.as_ref() as &dyn std::any::Any).downcast_ref::<provider_homeassistant::HomeAssistantProvider>()
            .expect("ha");
        assert!(ha.add_auth("new", "pw").await.is_err());
        assert!(ha.usernames().await.is_err());
        assert_eq!(std::fs::read(&path).expect("read"), garbage, "file unchanged");
    }
}

#[tokio::test]
async fn writes_keep_home_assistant_format() {
    let env = env(Some("ha-2026.2.3"), json!({})).await;
    let before = std::fs::read_to_string(env.provider_file()).expect("file");
    env.ha().add_auth("new-user", "pw").await.expect("added");
    let after = std::fs::read_to_string(env.provider_file()).expect("file");

    assert!(after.starts_with(
        "{\n  \"version\": 1,\n  \"minor_version\": 1,\n  \"key\": \"auth_provider.homeassistant\",\n  \"data\": {\n    \"users\": [\n      {\n        \"username\": \"owner\",\n        \"password\": \"JDJiJDEyJ"
    ));
    assert!(after.ends_with('}'), "no trailing newline");
    assert!(
        after.contains("\"username\": \"jörg-strasse-σασ\""),
        "raw UTF-8"
    );
    // Existing entries are unchanged; the new one is appended.
    let old_body = before.trim_end_matches(['}', ']', '\n', ' ']);
    assert!(after.starts_with(old_body));
    let users = env.stored_users();
    assert_eq!(users.len(), 6);
    assert_eq!(users[5]["username"], "new-user");
    assert_eq!(users[5].as_object().expect("obj").len(), 2);
}

#[tokio::test]
async fn a_file_appearing_later_is_read_on_first_use() {
    // Lazy load: nothing is read at build time, so a provider built before the file exists
    // (and never initialised) sees it on first use.
    let config = auth_testkit::TempConfig::empty();
    let provider = build(&config, json!({}));
    std::fs::copy(
        auth_testkit::fixtures_dir()
            .join("ha-2026.2.3/.storage")
            .join(KEY),
        config.storage_dir().join(KEY),
    )
    .expect("copy");
    let ha = (provider.as_ref() as &dyn std::any::Any)
        .downcast_ref::<provider_homeassistant::HomeAssistantProvider>()
        .expect("ha");
    assert_eq!(
        ha.usernames().await.expect("names"),
        vec![
            "owner",
            "jörg-strasse-σασ",
            "readonly",
            "deactivated",
            "local-only"
        ]
    );
    assert!(ha.location().ends_with(KEY));
}

#[tokio::test]
async fn a_failed_save_changes_nothing() {
    let env = crate::common::empty_env().await;
    let ha = env.ha();
    ha.add_auth("alice", "pw").await.expect("added");
    let dir = env.config.storage_dir();
    let moved = env.config.path().join("storage-moved");
    // Make every write fail: `.storage` becomes a plain file.
    std::fs::rename(&dir, &moved).expect("move");
    std::fs::write(&dir, b"not a directory").expect("block");

    let err = ha.add_auth("bob", "pw").await.expect_err("save fails");
    assert!(err.to_string().contains(KEY), "{err}");
    assert!(ha.remove_auth("alice").await.is_err());
    assert!(ha.change_password("alice", "new").await.is_err());

    std::fs::remove_file(&dir).expect("unblock");
    std::fs::rename(&moved, &dir).expect("move back");
    assert_eq!(ha.usernames().await.expect("names"), vec!["alice"]);
    assert!(ha.validate_login("alice", "pw").await.expect("checked"));
    assert_eq!(env.stored_users().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_are_all_saved() {
    let env = crate::common::empty_env().await;
    let provider = env.provider.clone();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let provider = provider.clone();
            tokio::spawn(async move {
                let ha = (provider.as_ref() as &dyn std::any::Any)
                    .downcast_ref::<provider_homeassistant::HomeAssistantProvider>()
                    .expect("ha");
                ha.add_auth(&format!("user-{i}"), &format!("pw-{i}")).await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("joined").expect("added");
    }
    let mut stored: Vec<String> = env
        .stored_users()
        .iter()
        .map(|u| u["username"].as_str().expect("name").to_owned())
        .collect();
    stored.sort();
    let mut expected: Vec<String> = (0..12).map(|i| format!("user-{i}")).collect();
    expected.sort();
    assert_eq!(stored, expected);
    for i in 0..12 {
        assert!(
            env.ha()
                .validate_login(&format!("user-{i}"), &format!("pw-{i}"))
                .await
                .expect("checked")
        );
    }
}
