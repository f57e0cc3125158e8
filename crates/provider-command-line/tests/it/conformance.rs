//! The shared provider conformance suite.

use std::os::unix::fs::PermissionsExt;

use auth_testkit::conformance::{ProviderCase, check_provider, manager_from_registry, object};
use serde_json::json;

#[tokio::test]
async fn passes_the_provider_conformance_suite() {
    let config = auth_testkit::TempConfig::empty();
    let script = config.path().join("check.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$username\" = alice ] && [ \"$password\" = s3cret ]\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let manager = manager_from_registry(
        &config,
        &[("command_line", json!({"command": script.to_str().unwrap()}))],
        &[],
    )
    .await;
    let case = ProviderCase {
        provider_type: "command_line".into(),
        provider_id: None,
        context: auth_core::LoginContext {
            ip_address: Some("127.0.0.1".parse().unwrap()),
            ..Default::default()
        },
        good_input: object(json!({"username": "alice", "password": "s3cret"})),
        bad_input: Some(object(json!({"username": "alice", "password": "nope"}))),
        creates_users: true,
    };
    check_provider(&manager, &case).await;
}
