//! The shared MFA module conformance suite.

use auth_testkit::conformance::{MfaCase, check_mfa_module, manager_from_registry, object};
use serde_json::{Value, json};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn passes_the_mfa_conformance_suite() {
    let config = auth_testkit::TempConfig::empty();
    let manager = manager_from_registry(&config, &[], &[("totp", json!({}))]).await;
    let user = manager
        .create_user(Some("Alice".into()), vec![], false)
        .await
        .unwrap();
    let secret = std::sync::Mutex::new(String::new());
    let case = MfaCase {
        module_id: "totp".into(),
        user_id: user.id.clone(),
    };
    check_mfa_module(
        &manager,
        &case,
        |form: &Value| {
            let code_secret = form["description_placeholders"]["code"]
                .as_str()
                .unwrap()
                .to_owned();
            *secret.lock().unwrap() = code_secret.clone();
            object(json!({"code": mfa_totp::code_at(&code_secret, now()).unwrap()}))
        },
        // The next step's code: the current one was spent confirming the setup (replay protection).
        || object(json!({"code": mfa_totp::code_at(&secret.lock().unwrap(), now() + 30).unwrap()})),
        object(json!({"code": "000000x"})),
    )
    .await;
}
