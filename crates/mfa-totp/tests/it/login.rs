//! The login flow's `mfa` step with totp: codes, retries, expiry, replay, module selection.

use auth_core::flow_engine::{FlowError, FlowResult};
use serde_json::{Map, Value, json};

use crate::support::{Env, Options, PIN_MODULE_ID, PIN_MODULE_NAME, invalid_code};

/// A fixed test time (2026-11-21T23:25:00Z, a step boundary).
const T: i64 = 1_795_303_500;
/// A 160-bit secret (RFC 6238's SHA-1 key).
const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn code(at: i64) -> String {
    mfa_totp::code_at(SECRET, at).unwrap()
}

async fn enrolled_env() -> Env {
    enrolled_env_and_user().await.0
}

async fn enrolled_env_and_user() -> (Env, String) {
    let env = Env::new(T).await;
    let user = env.add_user("alice", Some("Alice")).await;
    env.enrol(&user, SECRET).await;
    (env, user)
}

fn mfa_form(flow_id: &str, errors: Value) -> Value {
    json!({
        "type": "form",
        "flow_id": flow_id,
        "handler": ["test", null],
        "data_schema": [{"type": "string", "name": "code", "required": true}],
        "errors": errors,
        "description_placeholders": {
            "mfa_module_name": "Time-based One Time Password",
            "mfa_module_id": "totp"
        },
        "last_step": null,
        "preview": null,
        "step_id": "mfa"
    })
}

#[tokio::test]
async fn right_code_finishes_the_login() {
    let env = enrolled_env().await;
    let shown = env.login("alice").await;
    assert_eq!(shown.to_json(), mfa_form(&shown.flow_id, json!({})));
    let done = env.submit_code(&shown.flow_id, &code(T)).await;
    let FlowResult::CreateEntry { data, .. } = done.result else {
        panic!("expected create_entry, got {:?}", done.result);
    };
    let credentials = env.manager.credentials_from_flow(&data).unwrap();
    assert_eq!(credentials.data_str("username"), Some("alice"));
    assert!(!credentials.is_new);
}

#[tokio::test]
async fn wrong_code_shows_the_form_again_with_invalid_code() {
    let env = enrolled_env().await;
    let shown = env.login("alice").await;
    let wrong = if code(T) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let again = env.submit_code(&shown.flow_id, wrong).await;
    assert_eq!(
        again.to_json(),
        mfa_form(&shown.flow_id, json!({"base": "invalid_code"}))
    );
    // Not trimmed: a correct code with a space is wrong.
    let spaced = format!(" {}", code(T));
    let again = env.submit_code(&shown.flow_id, &spaced).await;
    assert_eq!(again.result.step_id(), Some("mfa"));
    // The flow is still usable.
    let done = env.submit_code(&shown.flow_id, &code(T)).await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));
}

#[tokio::test]
async fn five_wrong_codes_abort_with_too_many_retry() {
    let env = enrolled_env().await;
    let shown = env.login("alice").await;
    let wrong = if code(T) == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..4 {
        let again = env.submit_code(&shown.flow_id, wrong).await;
        let FlowResult::Form { errors, .. } = again.result else {
            panic!("expected a form, got {:?}", again.result);
        };
        assert_eq!(errors, Some(invalid_code()));
    }
    let last = env.submit_code(&shown.flow_id, wrong).await;
    assert_eq!(
        last.to_json(),
        json!({
            "type": "abort", "flow_id": shown.flow_id, "handler": ["test", null],
            "reason": "too_many_retry", "description_placeholders": null
        })
    );
    let gone = env
        .manager
        .login_flows()
        .configure(
            &shown.flow_id,
            json!({"code": code(T)}).as_object().cloned(),
        )
        .await;
    assert!(matches!(gone, Err(FlowError::UnknownFlow)));
}

#[tokio::test]
async fn a_code_after_five_minutes_aborts_with_login_expired() {
    let env = enrolled_env().await;
    let shown = env.login("alice").await;
    env.set_time(T + 5 * 60 + 1);
    let late = env.submit_code(&shown.flow_id, &code(T + 5 * 60 + 1)).await;
    assert!(
        matches!(&late.result, FlowResult::Abort { reason, .. } if reason == "login_expired"),
        "{:?}",
        late.result
    );
}

#[tokio::test]
async fn a_code_at_exactly_five_minutes_is_still_checked() {
    let env = enrolled_env().await;
    let shown = env.login("alice").await;
    env.set_time(T + 5 * 60);
    let done = env.submit_code(&shown.flow_id, &code(T + 5 * 60)).await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));
}

#[tokio::test]
async fn an_accepted_code_cannot_be_replayed() {
    let env = enrolled_env().await;
    assert!(env.login_with_code("alice", &code(T)).await);
    // Same code, same step: refused (Home Assistant would accept it again).
    assert!(!env.login_with_code("alice", &code(T)).await);
    // Fullwidth spelling of the same code: still the same step.
    let fullwidth: String = code(T)
        .chars()
        .map(|c| char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap())
        .collect();
    assert!(!env.login_with_code("alice", &fullwidth).await);
    // The previous step's code is inside the window but older than the accepted one.
    assert!(!env.login_with_code("alice", &code(T - 30)).await);
    // Half a minute later: the then-previous code (already used) is refused, the new one works.
    env.set_time(T + 30);
    assert!(!env.login_with_code("alice", &code(T)).await);
    assert!(env.login_with_code("alice", &code(T + 30)).await);
    // A code of the next step accepted early makes the current one unusable.
    assert!(env.login_with_code("alice", &code(T + 60)).await);
    env.set_time(T + 60);
    assert!(!env.login_with_code("alice", &code(T + 60)).await);
}

#[tokio::test]
async fn replay_protection_is_per_user_and_kept_in_memory_only() {
    let env = Env::new(T).await;
    let alice = env.add_user("alice", Some("Alice")).await;
    let bob = env.add_user("bob", Some("Bob")).await;
    env.enrol(&alice, SECRET).await;
    env.enrol(&bob, SECRET).await;
    assert!(env.login_with_code("alice", &code(T)).await);
    assert!(
        env.login_with_code("bob", &code(T)).await,
        "other users are not affected"
    );
    // Documented limitation: a restart forgets the last accepted step.
    let env = env.reopen().await;
    assert!(env.login_with_code("alice", &code(T)).await);
}

#[tokio::test]
async fn users_without_a_secret_get_no_mfa_step_and_never_validate() {
    let env = enrolled_env().await;
    env.add_user("bob", None).await;
    let done = env.login("bob").await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));
    // Checked against the dummy secret: always false, never an error.
    let input: Map<String, Value> = json!({"code": code(T)}).as_object().unwrap().clone();
    assert!(!env.totp.validate("nobody", &input).await.unwrap());
    assert!(!env.totp.validate("nobody", &Map::new()).await.unwrap());
}

#[tokio::test]
async fn malformed_input_is_rejected_by_the_schema() {
    let env = enrolled_env().await;
    let shown = env.login("alice").await;
    for bad in [
        json!({"code": 123456}),
        json!({"pin": "123456"}),
        json!({"code": code(T), "extra": 1}),
    ] {
        let err = env
            .manager
            .login_flows()
            .configure(&shown.flow_id, bad.as_object().cloned())
            .await;
        assert!(matches!(err, Err(FlowError::InvalidInput(_))), "{bad}");
    }
    // Rejected input is not a wrong code: all five tries are left.
    let done = env.submit_code(&shown.flow_id, &code(T)).await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));
}

#[tokio::test]
async fn a_user_with_two_modules_selects_one_first() {
    let options = Options {
        pin_module: true,
        ..Options::default()
    };
    let env = Env::open(auth_testkit::TempConfig::empty(), T, options).await;
    let user = env.add_user("alice", Some("Alice")).await;
    env.enrol(&user, SECRET).await;
    let pin = json!({"pin": "4321"});
    env.manager
        .enable_user_mfa(&user, PIN_MODULE_ID, pin.as_object().unwrap())
        .await
        .unwrap();
    assert_eq!(
        env.manager
            .enabled_mfa(&user)
            .await
            .into_iter()
            .collect::<Vec<_>>(),
        [
            ("totp".to_owned(), "Time-based One Time Password".to_owned()),
            (PIN_MODULE_ID.to_owned(), PIN_MODULE_NAME.to_owned()),
        ]
    );

    let shown = env.login("alice").await;
    assert_eq!(
        shown.to_json(),
        json!({
            "type": "form", "flow_id": shown.flow_id, "handler": ["test", null],
            "data_schema": [{
                "type": "select",
                "options": [["totp", "Time-based One Time Password"], [PIN_MODULE_ID, PIN_MODULE_NAME]],
                "name": "multi_factor_auth_module",
                "required": false
            }],
            "errors": {}, "description_placeholders": null,
            "last_step": null, "preview": null, "step_id": "select_mfa_module"
        })
    );
    let mfa = env
        .submit(&shown.flow_id, json!({"multi_factor_auth_module": "totp"}))
        .await;
    assert_eq!(mfa.to_json(), mfa_form(&shown.flow_id, json!({})));
    let done = env.submit_code(&shown.flow_id, &code(T)).await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));

    // The other module works through the same picker.
    let shown = env.login("alice").await;
    let pin_form = env
        .submit(
            &shown.flow_id,
            json!({"multi_factor_auth_module": PIN_MODULE_ID}),
        )
        .await;
    assert_eq!(pin_form.result.step_id(), Some("mfa"));
    let done = env.submit(&shown.flow_id, json!({"pin": "4321"})).await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));
}

#[tokio::test]
async fn disabling_totp_removes_the_mfa_step() {
    let (env, user) = enrolled_env_and_user().await;
    assert!(env.totp.is_user_setup(&user).await.unwrap());
    env.manager.disable_user_mfa(&user, "totp").await.unwrap();
    assert!(!env.totp.is_user_setup(&user).await.unwrap());
    let done = env.login("alice").await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));
}
