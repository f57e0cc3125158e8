//! totp as a provider's required chain: its setup flow driven inside the login (enrolment on
//! first login), replay protection across enrolment and the next login, `enroll: false`.

use auth_core::flow_engine::FlowResult;
use auth_testkit::TempConfig;
use serde_json::json;

use crate::support::{Env, Options, invalid_code, stored_users};

/// A fixed test time (a step boundary).
const T: i64 = 1_795_303_500;

async fn chained(enroll: bool) -> Env {
    let options = Options {
        chain: Some(enroll),
        ..Options::default()
    };
    Env::open(TempConfig::empty(), T, options).await
}

#[tokio::test]
async fn the_setup_flow_runs_inside_the_login_and_its_code_is_not_replayed() {
    let env = chained(true).await;
    let alice = env.add_user("alice", Some("Alice")).await;

    let setup = env.login("alice").await;
    let json = setup.to_json();
    assert_eq!(json["step_id"], "mfa_setup");
    assert_eq!(
        json["data_schema"],
        json!([{"type": "string", "name": "code", "required": true}])
    );
    let placeholders = &json["description_placeholders"];
    assert_eq!(placeholders["mfa_module_id"], "totp");
    assert_eq!(placeholders["chain_step"], "1");
    assert_eq!(placeholders["chain_length"], "1");
    let secret = placeholders["code"].as_str().unwrap().to_owned();
    assert!(
        placeholders["url"]
            .as_str()
            .unwrap()
            .contains("Home%20Assistant:Alice?secret="),
        "{placeholders}"
    );
    assert!(
        placeholders["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("<svg")
    );

    // Setup accepts the current step's code only, and a wrong one keeps the same secret.
    let previous = mfa_totp::code_at(&secret, T - 30).unwrap();
    let wrong = env.submit_code(&setup.flow_id, &previous).await.to_json();
    assert_eq!(wrong["step_id"], "mfa_setup");
    assert_eq!(wrong["errors"], json!(invalid_code()));
    assert_eq!(wrong["description_placeholders"]["code"], json!(secret));
    let code = mfa_totp::code_at(&secret, T).unwrap();
    let done = env.submit_code(&setup.flow_id, &code).await;
    assert!(
        matches!(done.result, FlowResult::CreateEntry { .. }),
        "{:?}",
        done.result
    );
    assert_eq!(stored_users(&env).unwrap()[&alice], json!(secret));

    // The next login in the same time step cannot reuse the enrolment's code.
    let shown = env.login("alice").await;
    assert_eq!(shown.result.step_id(), Some("mfa"));
    assert_eq!(
        shown.to_json()["description_placeholders"],
        json!({
            "mfa_module_name": "Time-based One Time Password",
            "mfa_module_id": "totp",
            "chain_step": "1",
            "chain_length": "1"
        })
    );
    let replay = env.submit_code(&shown.flow_id, &code).await;
    assert!(
        matches!(&replay.result, FlowResult::Form { errors: Some(e), .. } if *e == invalid_code())
    );
    // totp is also the opt-in module here: once passed in the chain, it is not asked again.
    env.set_time(T + 30);
    let next = mfa_totp::code_at(&secret, T + 30).unwrap();
    let done = env.submit_code(&shown.flow_id, &next).await;
    assert!(
        matches!(done.result, FlowResult::CreateEntry { .. }),
        "{:?}",
        done.result
    );
}

#[tokio::test]
async fn without_enrolment_a_user_without_a_secret_is_refused() {
    let env = chained(false).await;
    let alice = env.add_user("alice", None).await;
    let refused = env.login("alice").await;
    assert!(
        matches!(&refused.result, FlowResult::Abort { reason, .. } if reason == "mfa_setup_required"),
        "{:?}",
        refused.result
    );
    assert_eq!(stored_users(&env), None, "nothing was written");
    env.enrol(&alice, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").await;
    let code = mfa_totp::code_at("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", T).unwrap();
    assert!(env.login_with_code("alice", &code).await);
}
