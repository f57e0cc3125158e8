//! `MfaModule::login_placeholders`: what a module adds to the `mfa` form (e.g. a WebAuthn
//! challenge) is asked for every time the form is shown, in opt-in MFA and in a required chain,
//! and a module that cannot make it ends the login instead of showing a form without it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use auth_core::flow_engine::{Field, Flow, Schema};
use auth_core::{
    AuthManager, ChainEntry, LoginContext, MfaError, MfaModule, MfaSubject, PluginIdentity,
};
use serde_json::{Map, Value, json};

use crate::support::{NOW, test_provider};

/// Everyone is enrolled; the PIN is 1234; each form gets `challenge` = how many were made, and
/// making the `fail_at`-th one fails.
struct ChallengeModule {
    made: AtomicU32,
    fail_at: u32,
}

#[async_trait]
impl MfaModule for ChallengeModule {
    fn identity(&self) -> &PluginIdentity {
        static IDENTITY: std::sync::LazyLock<PluginIdentity> =
            std::sync::LazyLock::new(|| PluginIdentity::new("challenge", None, "Challenge"));
        &IDENTITY
    }
    fn input_schema(&self) -> Schema {
        Schema::new(vec![Field::string("pin").required()])
    }
    async fn setup_flow(&self, _: &str, _: Option<&str>) -> Result<Box<dyn Flow>, MfaError> {
        Err(MfaError::Failed("no setup".into()))
    }
    async fn setup_user(&self, _: &str, _: &Map<String, Value>) -> Result<Value, MfaError> {
        Ok(Value::Null)
    }
    async fn depose_user(&self, _: &str) -> Result<(), MfaError> {
        Ok(())
    }
    async fn is_user_setup(&self, _: &str) -> Result<bool, MfaError> {
        Ok(true)
    }
    async fn validate(&self, _: &str, input: &Map<String, Value>) -> Result<bool, MfaError> {
        Ok(input["pin"] == "1234")
    }
    async fn is_subject_setup(&self, _: &MfaSubject) -> Result<bool, MfaError> {
        Ok(true)
    }
    async fn validate_subject(
        &self,
        _: &MfaSubject,
        input: &Map<String, Value>,
    ) -> Result<bool, MfaError> {
        Ok(input["pin"] == "1234")
    }
    async fn login_placeholders(&self, _: &str) -> Result<Map<String, Value>, MfaError> {
        let n = self.made.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at {
            return Err(MfaError::Failed("cannot make a challenge".into()));
        }
        let mut extra = Map::new();
        extra.insert("challenge".to_owned(), json!(n.to_string()));
        Ok(extra)
    }
}

async fn manager(chain: bool, fail_at: u32) -> (auth_testkit::TempConfig, AuthManager) {
    let config = auth_testkit::TempConfig::empty();
    let module = Arc::new(ChallengeModule {
        made: AtomicU32::new(0),
        fail_at,
    });
    let provider = Arc::new(test_provider(&[("alice", "secret")]));
    let builder = AuthManager::builder(config.storage())
        .clock(auth_testkit::clock_at(NOW))
        .rng(auth_testkit::seeded_rng(1))
        .mfa_module(module.clone());
    let builder = match chain {
        true => builder.provider_with_chain(provider, vec![ChainEntry::new(module)]),
        false => builder.provider(provider),
    };
    let manager = builder.build().await.unwrap();
    // Placeholders are per user: a first sign-in (whose form gets none) makes the user.
    let flow = start(&manager).await;
    let login = json!({"username": "alice", "password": "secret"});
    let mut done = submit(&manager, &flow, login).await;
    if chain {
        assert!(
            done["description_placeholders"].get("challenge").is_none(),
            "{done}"
        );
        done = submit(&manager, &flow, json!({"pin": "1234"})).await;
    }
    let data = done["data"].clone();
    let credentials = manager
        .credentials_from_flow(&data)
        .unwrap_or_else(|| panic!("{done}"));
    manager.get_or_create_user(&credentials).await.unwrap();
    (config, manager)
}

async fn submit(manager: &AuthManager, flow_id: &str, input: Value) -> Value {
    let Value::Object(input) = input else {
        unreachable!()
    };
    manager
        .login_flows()
        .configure(flow_id, Some(input))
        .await
        .unwrap()
        .to_json()
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

#[tokio::test]
async fn every_mfa_form_carries_fresh_module_placeholders_opt_in_and_in_a_chain() {
    for chain in [false, true] {
        let (_config, manager) = manager(chain, 0).await;
        // The opt-in set-up sign-in above showed no form: no challenge made yet.
        let flow = start(&manager).await;
        let login = json!({"username": "alice", "password": "secret"});
        let form = submit(&manager, &flow, login).await;
        assert_eq!(form["step_id"], "mfa", "{form}");
        let placeholders = &form["description_placeholders"];
        let first: u32 = placeholders["challenge"].as_str().unwrap().parse().unwrap();
        assert_eq!(placeholders["mfa_module_id"], "challenge", "{form}");
        assert_eq!(placeholders.get("chain_step").is_some(), chain, "{form}");
        let wrong = submit(&manager, &flow, json!({"pin": "0000"})).await;
        assert_eq!(wrong["errors"], json!({"base": "invalid_code"}), "{wrong}");
        assert_eq!(
            wrong["description_placeholders"]["challenge"],
            json!((first + 1).to_string()),
            "a new challenge after a wrong answer (chain: {chain})"
        );
        let done = submit(&manager, &flow, json!({"pin": "1234"})).await;
        assert_eq!(done["type"], "create_entry", "{done}");
    }
}

#[tokio::test]
async fn a_module_that_cannot_make_its_placeholders_ends_the_login() {
    for chain in [false, true] {
        // The first form's placeholders fail.
        let (_config, manager) = manager(chain, 1).await;
        let flow = start(&manager).await;
        let login = json!({"username": "alice", "password": "secret"});
        let result = submit(&manager, &flow, login).await;
        assert_eq!(result["type"], "abort", "chain {chain}: {result}");
        assert_eq!(result["reason"], "unknown_error");
    }
}
