//! Setup flow, login with a PIN, retry limit, disabling.

use auth_core::flow_engine::{FlowError, FlowResult};
use serde_json::json;

use crate::support::Env;

const T: i64 = 1_795_303_500;

fn mfa_form(flow_id: &str, errors: serde_json::Value) -> serde_json::Value {
    json!({
        "type": "form",
        "flow_id": flow_id,
        "handler": ["test", null],
        "data_schema": [{"type": "string", "name": "pin", "required": true}],
        "errors": errors,
        "description_placeholders": {
            "mfa_module_name": "Insecure Personal Identify Number",
            "mfa_module_id": "insecure_example"
        },
        "last_step": null,
        "preview": null,
        "step_id": "mfa"
    })
}

#[tokio::test]
async fn setup_flow_sets_the_pin_used_at_login() {
    let env = Env::new(T, json!({"data": []})).await;
    let user = env.add_user("alice").await;
    // Not enrolled: no MFA step.
    let done = env.login("alice").await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));

    let shown = env
        .manager
        .start_mfa_setup("insecure_example", &user)
        .await
        .unwrap();
    assert_eq!(
        shown.to_json(),
        json!({
            "type": "form", "flow_id": shown.flow_id, "handler": "insecure_example",
            "data_schema": [{"type": "string", "name": "pin", "required": true}],
            "errors": {}, "description_placeholders": null,
            "last_step": null, "preview": null, "step_id": "init"
        })
    );
    let done = env
        .manager
        .mfa_setup_flows()
        .configure(&shown.flow_id, json!({"pin": "2468"}).as_object().cloned())
        .await
        .unwrap();
    assert_eq!(
        done.to_json(),
        json!({
            "type": "create_entry", "flow_id": shown.flow_id, "handler": "insecure_example",
            "data": {"result": null}, "description": null,
            "description_placeholders": null, "context": {}
        })
    );
    assert!(env.module.is_user_setup(&user).await.unwrap());

    let shown = env.login("alice").await;
    assert_eq!(shown.to_json(), mfa_form(&shown.flow_id, json!({})));
    let wrong = env.submit(&shown.flow_id, json!({"pin": "1357"})).await;
    assert_eq!(
        wrong.to_json(),
        mfa_form(&shown.flow_id, json!({"base": "invalid_code"}))
    );
    let done = env.submit(&shown.flow_id, json!({"pin": "2468"})).await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));
    // Unlike totp, the same PIN works every time.
    let shown = env.login("alice").await;
    let done = env.submit(&shown.flow_id, json!({"pin": "2468"})).await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));

    // Setting it again replaces it, once the current PIN is given (the `current_code` step).
    let shown = env
        .manager
        .start_mfa_setup("insecure_example", &user)
        .await
        .unwrap();
    assert_eq!(shown.result.step_id(), Some("current_code"));
    let setup = env
        .manager
        .mfa_setup_flows()
        .configure(&shown.flow_id, json!({"pin": "2468"}).as_object().cloned())
        .await
        .unwrap();
    assert_eq!(setup.result.step_id(), Some("init"));
    env.manager
        .mfa_setup_flows()
        .configure(&shown.flow_id, json!({"pin": "0000"}).as_object().cloned())
        .await
        .unwrap();
    let shown = env.login("alice").await;
    let wrong = env.submit(&shown.flow_id, json!({"pin": "2468"})).await;
    assert_eq!(wrong.result.step_id(), Some("mfa"));
    let done = env.submit(&shown.flow_id, json!({"pin": "0000"})).await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));
}

#[tokio::test]
async fn setup_input_must_match_the_schema() {
    let env = Env::new(T, json!({"data": []})).await;
    let user = env.add_user("alice").await;
    let shown = env
        .manager
        .start_mfa_setup("insecure_example", &user)
        .await
        .unwrap();
    for bad in [json!({}), json!({"pin": 1234}), json!({"code": "1234"})] {
        let err = env
            .manager
            .mfa_setup_flows()
            .configure(&shown.flow_id, bad.as_object().cloned())
            .await;
        assert!(matches!(err, Err(FlowError::InvalidInput(_))), "{bad}");
    }
    assert!(!env.module.is_user_setup(&user).await.unwrap());
}

#[tokio::test]
async fn three_wrong_pins_abort_the_login() {
    // The user id is only known once the user exists; a config naming another id is inert.
    let env = Env::new(T, json!({"data": [{"user_id": "nobody", "pin": "000000"}]})).await;
    let user = env.add_user("alice").await;
    assert!(!env.module.is_user_setup(&user).await.unwrap());
    let pin = json!({"pin": "8642"});
    env.manager
        .enable_user_mfa(&user, "insecure_example", pin.as_object().unwrap())
        .await
        .unwrap();

    let shown = env.login("alice").await;
    for _ in 0..2 {
        let again = env.submit(&shown.flow_id, json!({"pin": "000000"})).await;
        assert_eq!(
            again.to_json(),
            mfa_form(&shown.flow_id, json!({"base": "invalid_code"}))
        );
    }
    let aborted = env.submit(&shown.flow_id, json!({"pin": "000000"})).await;
    assert_eq!(
        aborted.to_json(),
        json!({
            "type": "abort", "flow_id": shown.flow_id, "handler": ["test", null],
            "reason": "too_many_retry", "description_placeholders": null
        })
    );
}

#[tokio::test]
async fn a_configured_user_id_is_enrolled_from_the_start() {
    let env = Env::new(T, json!({"data": []})).await;
    let user = env.add_user("alice").await;
    // A second manager whose config names the user (as a YAML config would).
    let module_config = json!({"data": [{"user_id": user, "pin": "777"}]});
    let registration = auth_core::registry::find_mfa_module("insecure_example").unwrap();
    let spec = auth_core::PluginSpec {
        id: Some("pin".into()),
        name: Some("PIN".into()),
        config: module_config,
    };
    let ctx = auth_core::PluginContext {
        storage: env.config.storage(),
        clock: env.clock.clone(),
        rng: auth_testkit::seeded_rng(5),
        password_policy: auth_core::registry::PasswordPolicy::fast_for_tests(),
        trusted_proxies: Vec::new(),
    };
    let Ok(module) = (registration.build)(spec, &ctx) else {
        panic!("builds");
    };
    assert_eq!((module.id(), module.name()), ("pin", "PIN"));
    assert!(module.is_user_setup(&user).await.unwrap());
    let ok = json!({"pin": "777"});
    assert!(
        module
            .validate(&user, ok.as_object().unwrap())
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn disabling_removes_the_mfa_step() {
    let env = Env::new(T, json!({"data": []})).await;
    let user = env.add_user("alice").await;
    let pin = json!({"pin": "1"});
    env.manager
        .enable_user_mfa(&user, "insecure_example", pin.as_object().unwrap())
        .await
        .unwrap();
    assert_eq!(env.login("alice").await.result.step_id(), Some("mfa"));
    env.manager
        .disable_user_mfa(&user, "insecure_example")
        .await
        .unwrap();
    assert!(!env.module.is_user_setup(&user).await.unwrap());
    let done = env.login("alice").await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));
    // Nothing was ever written for this module.
    let files: Vec<_> = std::fs::read_dir(env.config.storage_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains("insecure_example"))
        .collect();
    assert!(files.is_empty(), "{files:?}");
}
