//! The enrolment flow (websocket `auth/setup_mfa`), through the manager's setup-flow table.

use auth_core::flow_engine::{FlowError, FlowResponse, FlowResult};
use serde_json::{Value, json};

use crate::support::{Env, stored_users};

/// A fixed test time (2026-11-21T23:25:00Z, a step boundary).
const T: i64 = 1_795_303_500;

/// The secret the seeded random source (seed 7) gives the first setup flow.
const SEEDED_SECRET: &str = "63IMEM5BYTFXP7V6AI6VDVX4KNQWOUEZ";

async fn configure(env: &Env, flow_id: &str, input: Option<Value>) -> FlowResponse {
    env.manager
        .mfa_setup_flows()
        .configure(flow_id, input.and_then(|v| v.as_object().cloned()))
        .await
        .unwrap()
}

fn placeholders(response: &FlowResponse) -> serde_json::Map<String, Value> {
    match &response.result {
        FlowResult::Form {
            description_placeholders: Some(p),
            ..
        } => p.clone(),
        other => panic!("expected a form with placeholders, got {other:?}"),
    }
}

fn secret_of(response: &FlowResponse) -> String {
    placeholders(response)["code"].as_str().unwrap().to_owned()
}

/// The form JSON with the QR code checked and replaced by `<svg>`.
fn redacted(response: &FlowResponse) -> Value {
    let mut json = response.to_json();
    let qr = json["description_placeholders"]["qr_code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(qr.starts_with("<svg"), "{qr}");
    assert!(qr.ends_with("</svg>"));
    assert!(!qr.contains('\n') && !qr.contains("<?xml"));
    json["description_placeholders"]["qr_code"] = json!("<svg>");
    json
}

fn setup_form(flow_id: &str, secret: &str, url_name: &str, errors: Value) -> Value {
    json!({
        "type": "form",
        "flow_id": flow_id,
        "handler": "totp",
        "data_schema": [{"type": "string", "name": "code", "required": true}],
        "errors": errors,
        "description_placeholders": {
            "code": secret,
            "url": format!(
                "otpauth://totp/Home%20Assistant:{url_name}?secret={secret}&issuer=Home%20Assistant"
            ),
            "qr_code": "<svg>",
            "google_authenticator_url": "https://support.google.com/accounts/answer/1066447",
            "authy_url": "https://authy.com/"
        },
        "last_step": null,
        "preview": null,
        "step_id": "init"
    })
}

#[tokio::test]
async fn setup_form_has_home_assistants_shape() {
    let env = Env::new(T).await;
    let user = env.add_user("jorg", Some("Jörg Straße/Home")).await;
    let shown = env.manager.start_mfa_setup("totp", &user).await.unwrap();
    let secret = secret_of(&shown);
    assert_eq!(
        secret, SEEDED_SECRET,
        "the secret comes from the seeded rng"
    );
    assert_eq!(
        redacted(&shown),
        setup_form(
            &shown.flow_id,
            &secret,
            "J%C3%B6rg%20Stra%C3%9Fe/Home",
            json!({})
        )
    );
}

#[tokio::test]
async fn a_user_without_a_name_is_labelled_none() {
    let env = Env::new(T).await;
    let user = env.add_user("anon", None).await;
    let shown = env.manager.start_mfa_setup("totp", &user).await.unwrap();
    let secret = secret_of(&shown);
    assert_eq!(
        redacted(&shown),
        setup_form(&shown.flow_id, &secret, "None", json!({}))
    );
}

#[tokio::test]
async fn right_code_enrols_and_saves_before_finishing() {
    let env = Env::new(T).await;
    let user = env.add_user("alice", Some("Alice")).await;
    let shown = env.manager.start_mfa_setup("totp", &user).await.unwrap();
    let secret = secret_of(&shown);
    assert_eq!(secret.len(), 32);
    assert!(
        secret
            .bytes()
            .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c))
    );
    assert_eq!(
        stored_users(&env),
        None,
        "nothing saved before confirmation"
    );

    let code = mfa_totp::code_at(&secret, T).unwrap();
    let done = configure(&env, &shown.flow_id, Some(json!({"code": code}))).await;
    assert_eq!(
        done.to_json(),
        json!({
            "type": "create_entry", "flow_id": shown.flow_id, "handler": "totp",
            "data": {"result": secret}, "description": null,
            "description_placeholders": null, "context": {}
        })
    );
    assert_eq!(stored_users(&env), Some(json!({ user.clone(): secret })));
    assert!(env.totp.is_user_setup(&user).await.unwrap());
    assert_eq!(
        env.manager
            .enabled_mfa(&user)
            .await
            .keys()
            .collect::<Vec<_>>(),
        ["totp"]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let path = env.config.storage_dir().join("auth_module.totp");
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The code used to confirm counts as used: it cannot log in; the next step's can.
    assert!(!env.login_with_code("alice", &code).await);
    env.set_time(T + 30);
    assert!(
        env.login_with_code("alice", &mfa_totp::code_at(&secret, T + 30).unwrap())
            .await
    );
    // A new manager over the same files knows the enrolment.
    let env = env.reopen().await;
    assert!(env.totp.is_user_setup(&user).await.unwrap());
}

#[tokio::test]
async fn wrong_code_shows_the_same_secret_with_invalid_code() {
    let env = Env::new(T).await;
    let user = env.add_user("alice", Some("Alice")).await;
    let shown = env.manager.start_mfa_setup("totp", &user).await.unwrap();
    let secret = secret_of(&shown);
    let right = mfa_totp::code_at(&secret, T).unwrap();
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let again = configure(&env, &shown.flow_id, Some(json!({"code": wrong}))).await;
    assert_eq!(
        redacted(&again),
        setup_form(
            &shown.flow_id,
            &secret,
            "Alice",
            json!({"base": "invalid_code"})
        )
    );
    assert_eq!(
        placeholders(&again),
        placeholders(&shown),
        "same QR code too"
    );
    assert_eq!(stored_users(&env), None);
    // Fullwidth digits are NFKC-normalised at setup as well.
    let fullwidth: String = right
        .chars()
        .map(|c| char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap())
        .collect();
    let done = configure(&env, &shown.flow_id, Some(json!({"code": fullwidth}))).await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));
}

#[tokio::test]
async fn setup_accepts_the_current_step_only() {
    let env = Env::new(T).await;
    let user = env.add_user("alice", Some("Alice")).await;
    let shown = env.manager.start_mfa_setup("totp", &user).await.unwrap();
    let secret = secret_of(&shown);
    env.set_time(T + 30);
    for other_step in [T, T + 60] {
        let code = mfa_totp::code_at(&secret, other_step).unwrap();
        let again = configure(&env, &shown.flow_id, Some(json!({"code": code}))).await;
        let FlowResult::Form { errors, .. } = &again.result else {
            panic!("expected a form, got {:?}", again.result);
        };
        assert_eq!(errors.as_ref().unwrap()["base"], "invalid_code");
        assert_eq!(secret_of(&again), secret);
    }
    let code = mfa_totp::code_at(&secret, T + 30).unwrap();
    let done = configure(&env, &shown.flow_id, Some(json!({"code": code}))).await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));
}

#[tokio::test]
async fn showing_the_form_again_makes_a_new_secret() {
    let env = Env::new(T).await;
    let user = env.add_user("alice", Some("Alice")).await;
    let shown = env.manager.start_mfa_setup("totp", &user).await.unwrap();
    let again = configure(&env, &shown.flow_id, None).await;
    assert_ne!(secret_of(&again), secret_of(&shown));
    // An empty object fails the schema (the code is required); the flow survives.
    let err = env
        .manager
        .mfa_setup_flows()
        .configure(&shown.flow_id, Some(serde_json::Map::new()))
        .await;
    assert!(matches!(err, Err(FlowError::InvalidInput(_))));
    // Only the newest secret is pending.
    let old = mfa_totp::code_at(&secret_of(&shown), T).unwrap();
    let new = mfa_totp::code_at(&secret_of(&again), T).unwrap();
    if old != new {
        let refused = configure(&env, &shown.flow_id, Some(json!({"code": old}))).await;
        assert_eq!(refused.result.step_id(), Some("init"));
    }
    let done = configure(&env, &shown.flow_id, Some(json!({"code": new}))).await;
    assert!(matches!(done.result, FlowResult::CreateEntry { .. }));
}

#[tokio::test]
async fn enrolling_again_replaces_the_secret() {
    let env = Env::new(T).await;
    let user = env.add_user("alice", Some("Alice")).await;
    let other = env.add_user("bob", Some("Bob")).await;
    env.enrol(&other, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").await;
    env.enrol(&user, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").await;
    // An enrolled user first proves the current secret (issue 14 item 8), then gets a new one.
    let current = env.manager.start_mfa_setup("totp", &user).await.unwrap();
    assert_eq!(current.result.step_id(), Some("current_code"));
    let old_code = mfa_totp::code_at("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", T).unwrap();
    let shown = configure(&env, &current.flow_id, Some(json!({"code": old_code}))).await;
    let secret = secret_of(&shown);
    assert_ne!(secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    // The old secret's code of this step is used up: confirm with the next step's.
    let code = mfa_totp::code_at(&secret, T + 30).unwrap();
    env.clock.advance(time::Duration::seconds(30));
    configure(&env, &shown.flow_id, Some(json!({"code": code}))).await;
    assert_eq!(
        stored_users(&env),
        Some(json!({ other: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", user: secret })),
        "replaced in place, other users and the order kept"
    );
}

#[tokio::test]
async fn enable_user_mfa_generates_or_checks_the_secret() {
    let env = Env::new(T).await;
    let user = env.add_user("alice", Some("Alice")).await;
    let generated = env
        .manager
        .enable_user_mfa(&user, "totp", &serde_json::Map::new())
        .await
        .unwrap();
    let generated = generated.as_str().unwrap().to_owned();
    assert_eq!(generated.len(), 32);
    assert_eq!(stored_users(&env), Some(json!({ user.clone(): generated })));
    for bad in [
        json!({"secret": "JBSWY3DPEHPK3PXP"}), // 80 bits: below the 128-bit minimum
        json!({"secret": "not base32!"}),
        json!({"secret": 12}),
    ] {
        let err = env
            .manager
            .enable_user_mfa(&user, "totp", bad.as_object().unwrap())
            .await;
        assert!(err.is_err(), "{bad}");
    }
    assert_eq!(stored_users(&env), Some(json!({ user: generated })));
}
