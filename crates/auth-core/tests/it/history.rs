//! The sign-in history the login flow keeps: successes with the factors used, wrong passwords
//! for known usernames, wrong codes, a first sign-in joining its new user; saved and reloaded.

use std::sync::Arc;

use auth_core::history::SignInResult;
use auth_core::{AuthManager, LoginContext, MfaModule};
use auth_testkit::fakes::PinModule;
use serde_json::{Map, Value, json};

use crate::support::{NOW, test_provider};

async fn build(config: &auth_testkit::TempConfig, pin: &Arc<PinModule>) -> AuthManager {
    AuthManager::builder(config.storage())
        .clock(auth_testkit::clock_at(NOW))
        .rng(auth_testkit::seeded_rng(5))
        .provider(Arc::new(test_provider(&[
            ("alice", "secret"),
            ("bob", "pw"),
        ])))
        .mfa_module(pin.clone())
        .build()
        .await
        .unwrap()
}

/// Runs a login: each map is one step's input; the last answer.
async fn login(manager: &AuthManager, steps: &[Value]) -> Value {
    let context = LoginContext {
        ip_address: Some("192.168.1.20".parse().unwrap()),
        client_id: Some("http://hass.local:8123/".into()),
        ..Default::default()
    };
    let flow = manager
        .start_login_flow("test", None, context)
        .await
        .unwrap()
        .unwrap()
        .flow_id;
    let mut last = Value::Null;
    for step in steps {
        let input: Map<String, Value> = step.as_object().unwrap().clone();
        last = manager
            .login_flows()
            .configure(&flow, Some(input))
            .await
            .unwrap()
            .to_json();
    }
    last
}

#[tokio::test]
async fn the_login_flow_keeps_each_users_history() {
    let config = auth_testkit::TempConfig::empty();
    let pin = Arc::new(PinModule::new("pin", "PIN", "1234"));
    let manager = build(&config, &pin).await;
    let alice = json!({"username": "alice", "password": "secret"});
    // First sign-in: no user until the code is exchanged.
    let done = login(&manager, std::slice::from_ref(&alice)).await;
    assert_eq!(done["type"], "create_entry", "{done}");
    let credentials = manager.credentials_from_flow(&done["data"]).unwrap();
    let user = manager.get_or_create_user(&credentials).await.unwrap();
    pin.setup_user(&user.id, &Map::new()).await.unwrap();
    manager.generate_recovery_codes(&user.id).await.unwrap();
    // A wrong password (any case of the username), a wrong code, the PIN.
    login(
        &manager,
        &[json!({"username": " ALICE", "password": "nope"})],
    )
    .await;
    login(
        &manager,
        &[
            alice.clone(),
            json!({"pin": "0000"}),
            json!({"pin": "1234"}),
        ],
    )
    .await;
    // Somebody else's failure is not in Alice's history.
    login(&manager, &[json!({"username": "bob", "password": "nope"})]).await;
    let history = manager.sign_in_history().of(&user.id);
    let summary: Vec<(SignInResult, Vec<String>)> =
        history.iter().map(|e| (e.result, e.mfa.clone())).collect();
    assert_eq!(
        summary,
        vec![
            (SignInResult::Success, vec!["pin".to_owned()]),
            (SignInResult::InvalidCode, vec![]),
            (SignInResult::InvalidAuth, vec![]),
            (SignInResult::Success, vec![]),
        ]
    );
    let first = &history[3];
    assert_eq!(first.ip, Some("192.168.1.20".parse().unwrap()));
    assert_eq!(first.client_id.as_deref(), Some("http://hass.local:8123/"));
    assert_eq!(first.provider_type, "test");
    // Saved with the manager's flush; read back at the next start.
    manager.flush().await.unwrap();
    drop(manager);
    let restarted = build(&config, &pin).await;
    assert_eq!(restarted.sign_in_history().of(&user.id), history);
    // The history is bounded.
    for _ in 0..30 {
        login(
            &restarted,
            &[json!({"username": "alice", "password": "nope"})],
        )
        .await;
    }
    assert_eq!(
        restarted.sign_in_history().of(&user.id).len(),
        auth_core::history::ENTRIES_PER_USER
    );
}
