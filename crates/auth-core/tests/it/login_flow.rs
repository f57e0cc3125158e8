//! The login flow state machine: provider step, module selection, MFA step, limits.

use std::sync::Arc;

use auth_core::flow_engine::FlowError;
use auth_core::{AuthManager, LoginContext};
use serde_json::{Map, Value, json};
use time::Duration;

use auth_testkit::fakes::PinModule;

use crate::support::{NOW, test_provider};

async fn setup(
    modules: &[Arc<PinModule>],
) -> (
    auth_testkit::TempConfig,
    Arc<auth_core::ManualClock>,
    AuthManager,
    String,
) {
    let config = auth_testkit::TempConfig::empty();
    let clock = auth_testkit::clock_at(NOW);
    let mut builder = AuthManager::builder(config.storage())
        .clock(clock.clone())
        .rng(auth_testkit::seeded_rng(1))
        .provider(Arc::new(test_provider(&[("alice", "secret")])));
    for module in modules {
        builder = builder.mfa_module(module.clone());
    }
    let manager = builder.build().await.unwrap();
    let credentials = crate::support::sign_in(&manager, "alice", "secret").await;
    let user = manager.get_or_create_user(&credentials).await.unwrap();
    (config, clock, manager, user.id)
}

fn input(pairs: &[(&str, &str)]) -> Option<Map<String, Value>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect(),
    )
}

async fn start(manager: &AuthManager) -> String {
    let context = LoginContext {
        ip_address: Some("127.0.0.1".parse().unwrap()),
        ..Default::default()
    };
    manager
        .start_login_flow("test", None, context)
        .await
        .unwrap()
        .unwrap()
        .flow_id
}

async fn submit(manager: &AuthManager, flow_id: &str, pairs: &[(&str, &str)]) -> Value {
    manager
        .login_flows()
        .configure(flow_id, input(pairs))
        .await
        .unwrap()
        .to_json()
}

#[tokio::test]
async fn unknown_provider_is_none() {
    let (_c, _k, manager, _u) = setup(&[]).await;
    assert!(
        manager
            .start_login_flow("nope", None, LoginContext::default())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn without_mfa_the_flow_finishes_after_the_password() {
    let (_c, _k, manager, _user) = setup(&[]).await;
    let flow = start(&manager).await;
    let wrong = submit(
        &manager,
        &flow,
        &[("username", "alice"), ("password", "bad")],
    )
    .await;
    assert_eq!(wrong["type"], "form");
    assert_eq!(wrong["errors"], json!({"base": "invalid_auth"}));
    let done = submit(
        &manager,
        &flow,
        &[("username", "alice"), ("password", "secret")],
    )
    .await;
    assert_eq!(done["type"], "create_entry");
    assert_eq!(done["handler"], json!(["test", null]));
    assert!(
        manager.login_flows().context(&flow).is_none(),
        "a finished flow is gone"
    );
}

#[tokio::test]
async fn single_module_goes_straight_to_the_mfa_step() {
    let pin = Arc::new(PinModule::new("pin", "PIN", "1234"));
    let (_c, _k, manager, user) = setup(std::slice::from_ref(&pin)).await;
    manager
        .enable_user_mfa(&user, "pin", &Map::new())
        .await
        .unwrap();
    let flow = start(&manager).await;
    let mfa = submit(
        &manager,
        &flow,
        &[("username", "alice"), ("password", "secret")],
    )
    .await;
    assert_eq!(
        serde_json::to_string(&mfa).unwrap(),
        format!(
            r#"{{"type":"form","flow_id":"{flow}","handler":["test",null],"data_schema":[{{"type":"string","name":"pin","required":true}}],"errors":{{}},"description_placeholders":{{"mfa_module_name":"PIN","mfa_module_id":"pin"}},"last_step":null,"preview":null,"step_id":"mfa"}}"#
        )
    );
    let bad = submit(&manager, &flow, &[("pin", "0000")]).await;
    assert_eq!(bad["errors"], json!({"base": "invalid_code"}));
    assert_eq!(bad["step_id"], "mfa");
    let done = submit(&manager, &flow, &[("pin", "1234")]).await;
    assert_eq!(done["type"], "create_entry");
    let credentials = manager
        .credentials_from_flow(&manager_data(&done))
        .unwrap_or_else(|| panic!("{done}"));
    assert_eq!(
        manager.user_by_credentials(&credentials.id).unwrap().id,
        user
    );
}

fn manager_data(response: &Value) -> Value {
    response["data"].clone()
}

#[tokio::test]
async fn two_modules_offer_a_choice() {
    let a = Arc::new(PinModule::new("pin_a", "PIN A", "1111"));
    let b = Arc::new(PinModule::new("pin_b", "PIN B", "2222"));
    let (_c, _k, manager, user) = setup(&[a, b]).await;
    manager
        .enable_user_mfa(&user, "pin_a", &Map::new())
        .await
        .unwrap();
    manager
        .enable_user_mfa(&user, "pin_b", &Map::new())
        .await
        .unwrap();
    let flow = start(&manager).await;
    let select = submit(
        &manager,
        &flow,
        &[("username", "alice"), ("password", "secret")],
    )
    .await;
    assert_eq!(select["step_id"], "select_mfa_module");
    assert_eq!(
        select["data_schema"],
        json!([{"type": "select", "options": [["pin_a", "PIN A"], ["pin_b", "PIN B"]], "name": "multi_factor_auth_module", "required": false}])
    );
    assert_eq!(select["errors"], json!({}));
    let error = manager
        .login_flows()
        .configure(&flow, input(&[("multi_factor_auth_module", "other")]))
        .await;
    assert!(
        matches!(error, Err(FlowError::InvalidInput(_))),
        "an unknown option is malformed input"
    );
    let mfa = submit(&manager, &flow, &[("multi_factor_auth_module", "pin_b")]).await;
    assert_eq!(mfa["description_placeholders"]["mfa_module_id"], "pin_b");
    let done = submit(&manager, &flow, &[("pin", "2222")]).await;
    assert_eq!(done["type"], "create_entry");
}

#[tokio::test]
async fn retries_are_limited() {
    let pin = Arc::new(PinModule::new("pin", "PIN", "1234"));
    let (_c, _k, manager, user) = setup(&[pin]).await;
    manager
        .enable_user_mfa(&user, "pin", &Map::new())
        .await
        .unwrap();
    let flow = start(&manager).await;
    submit(
        &manager,
        &flow,
        &[("username", "alice"), ("password", "secret")],
    )
    .await;
    assert_eq!(
        submit(&manager, &flow, &[("pin", "1")]).await["errors"]["base"],
        "invalid_code"
    );
    assert_eq!(
        submit(&manager, &flow, &[("pin", "2")]).await["errors"]["base"],
        "invalid_code"
    );
    let aborted = submit(&manager, &flow, &[("pin", "3")]).await;
    assert_eq!(
        serde_json::to_string(&aborted).unwrap(),
        format!(
            r#"{{"type":"abort","flow_id":"{flow}","handler":["test",null],"reason":"too_many_retry","description_placeholders":null}}"#
        )
    );
    assert!(manager.login_flows().context(&flow).is_none());
}

#[tokio::test]
async fn the_session_expires_five_minutes_after_the_flow_started() {
    let pin = Arc::new(PinModule::new("pin", "PIN", "1234"));
    let (_c, clock, manager, user) = setup(&[pin]).await;
    manager
        .enable_user_mfa(&user, "pin", &Map::new())
        .await
        .unwrap();
    let flow = start(&manager).await;
    clock.advance(Duration::minutes(4));
    submit(
        &manager,
        &flow,
        &[("username", "alice"), ("password", "secret")],
    )
    .await;
    clock.advance(Duration::seconds(61));
    let aborted = submit(&manager, &flow, &[("pin", "1234")]).await;
    assert_eq!(aborted["type"], "abort");
    assert_eq!(aborted["reason"], "login_expired");
}

#[tokio::test]
async fn flow_results_carry_no_secret_fields() {
    let (_c, _k, manager, _user) = setup(&[]).await;
    let flow = start(&manager).await;
    let done = submit(
        &manager,
        &flow,
        &[("username", "alice"), ("password", "secret")],
    )
    .await;
    assert!(
        !done.to_string().contains("secret"),
        "the password never appears in a flow result: {done}"
    );
}

/// [`setup`] with alice enrolled in a PIN module (PIN 1234).
async fn with_pin() -> (
    auth_testkit::TempConfig,
    Arc<auth_core::ManualClock>,
    AuthManager,
    String,
) {
    let pin = Arc::new(PinModule::new("pin", "PIN", "1234"));
    let (config, clock, manager, user) = setup(&[pin]).await;
    manager
        .enable_user_mfa(&user, "pin", &Map::new())
        .await
        .unwrap();
    (config, clock, manager, user)
}

/// Starts a flow and passes the password step; returns the flow at its PIN step.
async fn at_pin_step(manager: &AuthManager) -> String {
    let flow = start(manager).await;
    let shown = submit(
        manager,
        &flow,
        &[("username", "alice"), ("password", "secret")],
    )
    .await;
    assert_eq!(shown["step_id"], "mfa", "{shown}");
    flow
}

#[tokio::test]
async fn wrong_codes_across_flows_lock_the_account_until_the_lockout_ends() {
    let (_c, clock, manager, user) = with_pin().await;
    let policy = auth_core::MfaLockoutPolicy::default();
    // One wrong code per flow: no flow reaches its own retry limit.
    for _ in 0..policy.max_failures {
        let flow = at_pin_step(&manager).await;
        let wrong = submit(&manager, &flow, &[("pin", "0")]).await;
        assert_eq!(wrong["errors"]["base"], "invalid_code", "{wrong}");
    }
    let locked_at = auth_core::Clock::now(clock.as_ref());
    assert_eq!(
        manager.mfa_locked_until(&user),
        Some(locked_at + policy.lockout)
    );
    // The right code is refused now, and the form says why and for how long.
    let flow = at_pin_step(&manager).await;
    let refused = submit(&manager, &flow, &[("pin", "1234")]).await;
    assert_eq!(refused["type"], "form");
    assert_eq!(refused["step_id"], "mfa");
    assert_eq!(refused["errors"], json!({"base": "mfa_locked"}));
    assert_eq!(
        refused["description_placeholders"]["mfa_locked_minutes"],
        "15"
    );
    assert_eq!(refused["description_placeholders"]["mfa_module_id"], "pin");
    // Refusals are not wrong codes: the flow is not used up by them.
    for _ in 0..5 {
        let again = submit(&manager, &flow, &[("pin", "1234")]).await;
        assert_eq!(again["errors"]["base"], "mfa_locked", "{again}");
    }
    clock.advance(policy.lockout - Duration::minutes(1));
    let flow = at_pin_step(&manager).await;
    let refused = submit(&manager, &flow, &[("pin", "1234")]).await;
    assert_eq!(refused["errors"]["base"], "mfa_locked");
    assert_eq!(
        refused["description_placeholders"]["mfa_locked_minutes"],
        "1"
    );
    // Over: codes are checked again, the count started afresh.
    clock.advance(Duration::minutes(1));
    assert_eq!(manager.mfa_locked_until(&user), None);
    let flow = at_pin_step(&manager).await;
    let wrong = submit(&manager, &flow, &[("pin", "0")]).await;
    assert_eq!(wrong["errors"]["base"], "invalid_code", "{wrong}");
    let done = submit(&manager, &flow, &[("pin", "1234")]).await;
    assert_eq!(done["type"], "create_entry", "{done}");
}

#[tokio::test]
async fn wrong_codes_age_out_of_the_window() {
    let (_c, clock, manager, user) = with_pin().await;
    let policy = auth_core::MfaLockoutPolicy::default();
    for round in 0..3 {
        for _ in 0..policy.max_failures - 1 {
            let flow = at_pin_step(&manager).await;
            let wrong = submit(&manager, &flow, &[("pin", "0")]).await;
            assert_eq!(
                wrong["errors"]["base"], "invalid_code",
                "round {round}: {wrong}"
            );
        }
        assert_eq!(manager.mfa_locked_until(&user), None);
        clock.advance(policy.window);
    }
    // Tracked only while it matters: nothing is left once the codes aged out.
    let flow = at_pin_step(&manager).await;
    let done = submit(&manager, &flow, &[("pin", "1234")]).await;
    assert_eq!(done["type"], "create_entry", "{done}");
    assert_eq!(manager.mfa_lockout_tracked(), 0);
}
