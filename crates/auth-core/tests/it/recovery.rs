//! Recovery codes in the login flow (opt-in MFA and a required chain), their lifecycle with the
//! user's modules, and the administrator's MFA reset; over the real file store.

use std::sync::Arc;

use auth_core::{
    AuthManager, ChainEntry, LoginContext, MfaModule, NewRefreshToken, TokenType,
    recovery::CODES_PER_USER,
};
use auth_testkit::fakes::PinModule;
use serde_json::{Map, Value, json};

use crate::support::{NOW, test_provider};

struct Setup {
    config: auth_testkit::TempConfig,
    manager: AuthManager,
    user_id: String,
}

async fn build(
    config: &auth_testkit::TempConfig,
    pin: &Arc<PinModule>,
    chain: bool,
) -> AuthManager {
    let provider = Arc::new(test_provider(&[("alice", "secret")]));
    let builder = AuthManager::builder(config.storage())
        .clock(auth_testkit::clock_at(NOW))
        .rng(auth_testkit::seeded_rng(3));
    let builder = if chain {
        let module: Arc<dyn MfaModule> = pin.clone();
        builder.provider_with_chain(provider, vec![ChainEntry::new(module).enroll(false)])
    } else {
        builder.provider(provider).mfa_module(pin.clone())
    };
    builder.build().await.unwrap()
}

async fn setup(chain: bool) -> (Setup, Arc<PinModule>) {
    let config = auth_testkit::TempConfig::empty();
    let pin = Arc::new(PinModule::new("pin", "PIN", "1234"));
    // The user signs in once before MFA (and before the chain is configured).
    let first = build(&config, &pin, false).await;
    let credentials = crate::support::sign_in(&first, "alice", "secret").await;
    let user = first.get_or_create_user(&credentials).await.unwrap();
    drop(first);
    pin.setup_user(&user.id, &Map::new()).await.unwrap();
    let manager = build(&config, &pin, chain).await;
    (
        Setup {
            config,
            manager,
            user_id: user.id,
        },
        pin,
    )
}

async fn login(manager: &AuthManager, code: &str) -> Value {
    let flow = manager
        .start_login_flow("test", None, LoginContext::default())
        .await
        .unwrap()
        .unwrap()
        .flow_id;
    let input = |pairs: &[(&str, &str)]| -> Option<Map<String, Value>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect(),
        )
    };
    let mfa = manager
        .login_flows()
        .configure(
            &flow,
            input(&[("username", "alice"), ("password", "secret")]),
        )
        .await
        .unwrap()
        .to_json();
    assert_eq!(mfa["step_id"], "mfa", "{mfa}");
    manager
        .login_flows()
        .configure(&flow, input(&[("pin", code)]))
        .await
        .unwrap()
        .to_json()
}

#[tokio::test]
async fn a_recovery_code_passes_the_mfa_step_once_and_survives_a_restart() {
    for chain in [false, true] {
        let (setup, pin) = setup(chain).await;
        let manager = &setup.manager;
        // Nothing to recover with yet: a code-shaped input is just a wrong code.
        let refused = login(manager, "AAAA-BBBB-CCCC-DDDD").await;
        assert_eq!(
            refused["errors"],
            json!({"base": "invalid_code"}),
            "{refused}"
        );
        let codes = manager
            .generate_recovery_codes(&setup.user_id)
            .await
            .unwrap();
        assert_eq!(codes.len(), CODES_PER_USER);
        let done = login(manager, &codes[0].to_lowercase()).await;
        assert_eq!(done["type"], "create_entry", "chain {chain}: {done}");
        // Used up, also after a restart over the same files.
        let again = login(manager, &codes[0]).await;
        assert_eq!(again["errors"], json!({"base": "invalid_code"}));
        let restarted = build(&setup.config, &pin, chain).await;
        let status = restarted.recovery_codes().status(&setup.user_id).unwrap();
        assert_eq!(status.remaining, CODES_PER_USER - 1);
        let again = login(&restarted, &codes[0]).await;
        assert_eq!(again["errors"], json!({"base": "invalid_code"}));
        // The module's own code still works, and another recovery code.
        assert_eq!(login(&restarted, "1234").await["type"], "create_entry");
        assert_eq!(login(&restarted, &codes[1]).await["type"], "create_entry");
    }
}

#[tokio::test]
async fn codes_need_mfa_and_go_with_the_last_module() {
    let (setup, _pin) = setup(false).await;
    let manager = &setup.manager;
    manager
        .generate_recovery_codes(&setup.user_id)
        .await
        .unwrap();
    manager
        .disable_user_mfa(&setup.user_id, "pin")
        .await
        .unwrap();
    assert_eq!(manager.recovery_codes().status(&setup.user_id), None);
    let error = manager
        .generate_recovery_codes(&setup.user_id)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("enable a module first"),
        "{error}"
    );
}

#[tokio::test]
async fn an_mfa_reset_removes_factors_and_codes_and_revokes_sessions_but_not_long_lived_tokens() {
    let (setup, pin) = setup(false).await;
    let manager = &setup.manager;
    manager
        .generate_recovery_codes(&setup.user_id)
        .await
        .unwrap();
    let session = manager
        .create_refresh_token(
            &setup.user_id,
            NewRefreshToken {
                client_id: Some("https://app.example/".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let llat = manager
        .create_refresh_token(
            &setup.user_id,
            NewRefreshToken {
                client_name: Some("script".into()),
                token_type: Some(TokenType::LongLivedAccessToken),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let reset = manager.reset_user_mfa(&setup.user_id, None).await.unwrap();
    assert_eq!(reset, vec!["pin".to_owned()]);
    assert!(!pin.is_user_setup(&setup.user_id).await.unwrap());
    assert_eq!(manager.recovery_codes().status(&setup.user_id), None);
    assert!(manager.refresh_token(&session.id).is_none());
    assert!(manager.refresh_token(&llat.id).is_some());
    // Signing in now needs the password only.
    let flow = manager
        .start_login_flow("test", None, LoginContext::default())
        .await
        .unwrap()
        .unwrap()
        .flow_id;
    let mut input = Map::new();
    input.insert("username".into(), json!("alice"));
    input.insert("password".into(), json!("secret"));
    let done = manager
        .login_flows()
        .configure(&flow, Some(input))
        .await
        .unwrap()
        .to_json();
    assert_eq!(done["type"], "create_entry");
}
