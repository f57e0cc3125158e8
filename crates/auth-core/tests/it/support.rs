//! Shared helpers: a manager over a temp dir, and a tiny username/password provider.

use std::sync::Arc;

use auth_core::flow_engine::FlowResult;
use auth_core::{AuthManager, Credentials, LoginContext, ManualClock};
use auth_testkit::TempConfig;
use serde_json::{Map, json};

/// A fixed "now" for tests.
pub const NOW: i64 = 1_795_303_506;

/// A manager over `config`'s `.storage` with a manual clock and seeded rng.
pub async fn manager_in(config: &TempConfig, clock: &Arc<ManualClock>) -> AuthManager {
    AuthManager::builder(config.storage())
        .clock(clock.clone())
        .rng(auth_testkit::seeded_rng(7))
        .provider(Arc::new(test_provider(&[
            ("alice", "secret"),
            ("bob", "hunter2"),
        ])))
        .build()
        .await
        .expect("manager builds")
}

/// A fresh manager in a fresh temp dir.
pub async fn fresh() -> (TempConfig, Arc<ManualClock>, AuthManager) {
    let config = TempConfig::empty();
    let clock = auth_testkit::clock_at(NOW);
    let manager = manager_in(&config, &clock).await;
    (config, clock, manager)
}

/// The username/password test provider (type `test`) knowing these users.
pub fn test_provider(users: &[(&str, &str)]) -> auth_testkit::fakes::PasswordProvider {
    auth_testkit::fakes::PasswordProvider::with_users("test", users)
}

/// Signs `username` in through the test provider and returns the finished flow's credentials.
pub async fn sign_in(manager: &AuthManager, username: &str, password: &str) -> Credentials {
    let context = LoginContext {
        ip_address: Some("127.0.0.1".parse().unwrap()),
        ..Default::default()
    };
    let start = manager
        .start_login_flow("test", None, context)
        .await
        .unwrap()
        .expect("provider known");
    let mut input = Map::new();
    input.insert("username".into(), json!(username));
    input.insert("password".into(), json!(password));
    let done = manager
        .login_flows()
        .configure(&start.flow_id, Some(input))
        .await
        .unwrap();
    match done.result {
        FlowResult::CreateEntry { data, .. } => manager
            .credentials_from_flow(&data)
            .expect("credentials in result"),
        other => panic!("expected create_entry, got {other:?}"),
    }
}
