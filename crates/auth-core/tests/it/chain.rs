//! Required MFA chains per provider: order, counted codes, session expiry, in-login enrolment,
//! `enroll: false`, first sign-in, opt-in MFA on top, builder errors, and the flow JSON.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{Field, Flow, FlowError, FlowResult, Schema};
use auth_core::{
    AuthError, AuthManager, ChainEntry, LoginContext, ManualClock, MfaError, MfaModule,
    PluginIdentity,
};
use auth_testkit::TempConfig;
use serde_json::{Map, Value, json};
use time::Duration;

use crate::support::{NOW, test_provider};

/// A PIN per user, in memory. Setup: form `init` with field `pin`; a PIN that is not four
/// digits comes back as the same form with `invalid_code`.
struct PinModule {
    identity: PluginIdentity,
    max_retry: u32,
    pins: parking_lot::Mutex<HashMap<String, String>>,
    /// User ids the login form was first shown for (`begin_login`).
    begun: parking_lot::Mutex<Vec<String>>,
}

impl PinModule {
    fn new(id: &'static str, name: &'static str, max_retry: u32) -> Arc<Self> {
        Arc::new(Self {
            identity: PluginIdentity::new("pin", Some(id.to_owned()), name),
            max_retry,
            pins: Default::default(),
            begun: Default::default(),
        })
    }

    fn enrol(&self, user_id: &str, pin: &str) {
        self.pins.lock().insert(user_id.to_owned(), pin.to_owned());
    }

    fn pin_of(&self, user_id: &str) -> Option<String> {
        self.pins.lock().get(user_id).cloned()
    }
}

fn pin_schema() -> Schema {
    Schema::new(vec![Field::string("pin").required()])
}

struct PinSetup {
    module: Arc<PinModule>,
    user_id: String,
}

#[async_trait]
impl Flow for PinSetup {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        assert_eq!(step_id, "init");
        let form = FlowResult::form("init", Some(pin_schema()));
        let Some(input) = input else {
            let mut placeholders = Map::new();
            placeholders.insert("hint".into(), json!("four digits"));
            return Ok(form.with_errors(Map::new()).with_placeholders(placeholders));
        };
        let pin = input["pin"].as_str().unwrap_or_default();
        if pin.len() != 4 || !pin.bytes().all(|b| b.is_ascii_digit()) {
            let mut errors = Map::new();
            errors.insert("base".into(), json!("invalid_code"));
            return Ok(form.with_errors(errors));
        }
        self.module.enrol(&self.user_id, pin);
        Ok(FlowResult::create_entry(json!({"result": "secret stuff"})))
    }
}

/// `MfaModule` for an `Arc<PinModule>` (the setup flow needs the Arc).
struct Pin(Arc<PinModule>);

#[async_trait]
impl MfaModule for Pin {
    fn identity(&self) -> &PluginIdentity {
        &self.0.identity
    }
    fn max_retry(&self) -> u32 {
        self.0.max_retry
    }
    fn input_schema(&self) -> Schema {
        pin_schema()
    }
    async fn setup_flow(
        &self,
        user_id: &str,
        _name: Option<&str>,
    ) -> Result<Box<dyn Flow>, MfaError> {
        Ok(Box::new(PinSetup {
            module: self.0.clone(),
            user_id: user_id.to_owned(),
        }))
    }
    async fn setup_user(
        &self,
        user_id: &str,
        data: &Map<String, Value>,
    ) -> Result<Value, MfaError> {
        self.0
            .enrol(user_id, data["pin"].as_str().unwrap_or_default());
        Ok(Value::Null)
    }
    async fn depose_user(&self, user_id: &str) -> Result<(), MfaError> {
        self.0.pins.lock().remove(user_id);
        Ok(())
    }
    async fn is_user_setup(&self, user_id: &str) -> Result<bool, MfaError> {
        Ok(self.0.pins.lock().contains_key(user_id))
    }
    async fn validate(&self, user_id: &str, input: &Map<String, Value>) -> Result<bool, MfaError> {
        Ok(self.0.pin_of(user_id).as_deref() == input["pin"].as_str())
    }
    async fn begin_login(&self, user_id: &str) -> Result<(), MfaError> {
        self.0.begun.lock().push(user_id.to_owned());
        Ok(())
    }
}

struct Env {
    _config: TempConfig,
    clock: Arc<ManualClock>,
    manager: AuthManager,
}

/// A manager whose `test` provider (alice/secret, bob/hunter2) has `chain`; `opt_in` are the
/// `auth_mfa_modules`.
async fn env(chain: Vec<ChainEntry>, opt_in: &[Arc<dyn MfaModule>]) -> Env {
    let config = TempConfig::empty();
    let clock = auth_testkit::clock_at(NOW);
    let mut builder = AuthManager::builder(config.storage())
        .clock(clock.clone())
        .rng(auth_testkit::seeded_rng(3))
        .provider_with_chain(
            Arc::new(test_provider(&[("alice", "secret"), ("bob", "hunter2")])),
            chain,
        );
    for module in opt_in {
        builder = builder.mfa_module(module.clone());
    }
    Env {
        _config: config,
        clock,
        manager: builder.build().await.unwrap(),
    }
}

impl Env {
    /// Creates alice's user (with her credential) without a login flow; returns its id.
    async fn alice(&self) -> String {
        use auth_core::AuthAccess;
        let mut data = Map::new();
        data.insert("username".into(), json!("alice"));
        let credentials = self.manager.new_credentials("test", None, data);
        self.manager
            .get_or_create_user(&credentials)
            .await
            .unwrap()
            .id
    }

    async fn start(&self) -> String {
        let context = LoginContext {
            ip_address: Some("127.0.0.1".parse().unwrap()),
            ..Default::default()
        };
        self.manager
            .start_login_flow("test", None, context)
            .await
            .unwrap()
            .unwrap()
            .flow_id
    }

    async fn submit(&self, flow_id: &str, pairs: &[(&str, &str)]) -> Value {
        let input = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        self.manager
            .login_flows()
            .configure(flow_id, Some(input))
            .await
            .unwrap()
            .to_json()
    }

    /// Starts a flow and signs in with the password; returns the flow id and the result.
    async fn password(&self, username: &str, password: &str) -> (String, Value) {
        let flow = self.start().await;
        let shown = self
            .submit(&flow, &[("username", username), ("password", password)])
            .await;
        (flow, shown)
    }
}

fn chain_of(modules: &[(&Arc<PinModule>, bool)]) -> Vec<ChainEntry> {
    modules
        .iter()
        .map(|(m, enroll)| ChainEntry::new(Arc::new(Pin((*m).clone()))).enroll(*enroll))
        .collect()
}

/// The JSON of a chain code step.
fn code_step(flow: &str, id: &str, name: &str, step: usize, len: usize, error: bool) -> Value {
    json!({
        "type": "form",
        "flow_id": flow,
        "handler": ["test", null],
        "data_schema": [{"type": "string", "name": "pin", "required": true}],
        "errors": if error { json!({"base": "invalid_code"}) } else { json!({}) },
        "description_placeholders": {
            "mfa_module_name": name,
            "mfa_module_id": id,
            "chain_step": step.to_string(),
            "chain_length": len.to_string(),
        },
        "last_step": null,
        "preview": null,
        "step_id": "mfa",
    })
}

fn is_entry(result: &Value) -> bool {
    result["type"] == "create_entry"
}

fn aborted(result: &Value, reason: &str) -> bool {
    result["type"] == "abort" && result["reason"] == reason
}

#[tokio::test]
async fn a_two_module_chain_is_passed_in_order_with_normal_code_forms() {
    let first = PinModule::new("first", "First PIN", 3);
    let second = PinModule::new("second", "Second PIN", 3);
    let env = env(chain_of(&[(&first, true), (&second, true)]), &[]).await;
    let alice = env.alice().await;
    first.enrol(&alice, "1111");
    second.enrol(&alice, "2222");

    let (flow, shown) = env.password("alice", "secret").await;
    assert_eq!(shown, code_step(&flow, "first", "First PIN", 1, 2, false));
    assert_eq!(*first.begun.lock(), std::slice::from_ref(&alice));
    // The second module's PIN does not pass the first step: order is enforced.
    let wrong = env.submit(&flow, &[("pin", "2222")]).await;
    assert_eq!(wrong, code_step(&flow, "first", "First PIN", 1, 2, true));
    // A re-display after a wrong code does not start the module's login again.
    assert_eq!(first.begun.lock().len(), 1);
    let next = env.submit(&flow, &[("pin", "1111")]).await;
    assert_eq!(next, code_step(&flow, "second", "Second PIN", 2, 2, false));
    assert_eq!(*second.begun.lock(), std::slice::from_ref(&alice));
    let wrong = env.submit(&flow, &[("pin", "1111")]).await;
    assert_eq!(wrong, code_step(&flow, "second", "Second PIN", 2, 2, true));
    let done = env.submit(&flow, &[("pin", "2222")]).await;
    assert!(is_entry(&done), "{done}");
    assert_eq!(
        done["data"]["credentials"]["is_new"],
        json!(false),
        "{done}"
    );
    let credentials = env.manager.credentials_from_flow(&done["data"]).unwrap();
    assert_eq!(
        env.manager.user_by_credentials(&credentials.id).unwrap().id,
        alice
    );
    assert!(env.manager.login_flows().is_empty());
}

#[tokio::test]
async fn wrong_codes_are_counted_across_the_chain() {
    let first = PinModule::new("first", "First PIN", 3);
    let second = PinModule::new("second", "Second PIN", 3);
    let env = env(chain_of(&[(&first, true), (&second, true)]), &[]).await;
    let alice = env.alice().await;
    first.enrol(&alice, "1111");
    second.enrol(&alice, "2222");

    let (flow, _) = env.password("alice", "secret").await;
    for _ in 0..2 {
        let wrong = env.submit(&flow, &[("pin", "0000")]).await;
        assert_eq!(wrong["errors"]["base"], "invalid_code");
    }
    env.submit(&flow, &[("pin", "1111")]).await;
    // The third wrong code of the flow, in the second module, ends it.
    let result = env.submit(&flow, &[("pin", "0000")]).await;
    assert!(aborted(&result, "too_many_retry"), "{result}");
    assert!(env.manager.login_flows().is_empty());

    // Each flow has its own counter.
    let (flow, _) = env.password("alice", "secret").await;
    env.submit(&flow, &[("pin", "0000")]).await;
    env.submit(&flow, &[("pin", "1111")]).await;
    let done = env.submit(&flow, &[("pin", "2222")]).await;
    assert!(is_entry(&done), "{done}");
}

#[tokio::test]
async fn the_session_expires_five_minutes_after_the_flow_started() {
    let first = PinModule::new("first", "First PIN", 3);
    let second = PinModule::new("second", "Second PIN", 3);
    let env = env(chain_of(&[(&first, true), (&second, true)]), &[]).await;
    let alice = env.alice().await;
    first.enrol(&alice, "1111");
    second.enrol(&alice, "2222");

    let (flow, _) = env.password("alice", "secret").await;
    env.clock.advance(Duration::minutes(4));
    let next = env.submit(&flow, &[("pin", "1111")]).await;
    assert_eq!(next["step_id"], "mfa");
    // Exactly five minutes is still in time; one second later is not, whatever the step.
    env.clock
        .advance(Duration::minutes(1) + Duration::seconds(1));
    let late = env.submit(&flow, &[("pin", "2222")]).await;
    assert!(aborted(&late, "login_expired"), "{late}");

    let (flow, _) = env.password("alice", "secret").await;
    env.clock.advance(Duration::minutes(5));
    env.submit(&flow, &[("pin", "1111")]).await;
    let done = env.submit(&flow, &[("pin", "2222")]).await;
    assert!(is_entry(&done), "{done}");
}

#[tokio::test]
async fn a_user_not_set_up_enrols_inside_the_login() {
    let first = PinModule::new("first", "First PIN", 3);
    let second = PinModule::new("second", "Second PIN", 2);
    let env = env(chain_of(&[(&first, true), (&second, true)]), &[]).await;
    let alice = env.alice().await;
    first.enrol(&alice, "1111");

    let (flow, _) = env.password("alice", "secret").await;
    let setup = env.submit(&flow, &[("pin", "1111")]).await;
    assert_eq!(
        setup,
        json!({
            "type": "form",
            "flow_id": flow,
            "handler": ["test", null],
            "data_schema": [{"type": "string", "name": "pin", "required": true}],
            "errors": {},
            "description_placeholders": {
                "mfa_module_name": "Second PIN",
                "mfa_module_id": "second",
                "chain_step": "2",
                "chain_length": "2",
                "hint": "four digits",
            },
            "last_step": null,
            "preview": null,
            "step_id": "mfa_setup",
        })
    );
    // A rejected setup input is shown again and counted (the second module allows two).
    let rejected = env.submit(&flow, &[("pin", "12")]).await;
    assert_eq!(rejected["step_id"], "mfa_setup");
    assert_eq!(rejected["errors"], json!({"base": "invalid_code"}));
    assert_eq!(rejected["description_placeholders"]["chain_step"], "2");
    let done = env.submit(&flow, &[("pin", "4242")]).await;
    // The setup's own result never leaves the flow.
    assert!(is_entry(&done), "{done}");
    assert!(!done.to_string().contains("secret stuff"));
    assert_eq!(second.pin_of(&alice).as_deref(), Some("4242"));

    // Next time the enrolled module asks for its code.
    let (flow, _) = env.password("alice", "secret").await;
    env.submit(&flow, &[("pin", "1111")]).await;
    let shown = env.manager.login_flows().current(&flow).unwrap().to_json();
    assert_eq!(shown, code_step(&flow, "second", "Second PIN", 2, 2, false));
    assert!(is_entry(&env.submit(&flow, &[("pin", "4242")]).await));

    // Rejected setup inputs use up the retries like wrong codes.
    second.pins.lock().clear();
    let (flow, _) = env.password("alice", "secret").await;
    env.submit(&flow, &[("pin", "1111")]).await;
    env.submit(&flow, &[("pin", "x")]).await;
    let result = env.submit(&flow, &[("pin", "y")]).await;
    assert!(aborted(&result, "too_many_retry"), "{result}");
    assert_eq!(second.pin_of(&alice), None);
}

#[tokio::test]
async fn enroll_false_refuses_before_any_code_is_asked() {
    let first = PinModule::new("first", "First PIN", 3);
    let second = PinModule::new("second", "Second PIN", 3);
    let env = env(chain_of(&[(&first, true), (&second, false)]), &[]).await;
    let alice = env.alice().await;
    first.enrol(&alice, "1111");

    let (_, result) = env.password("alice", "secret").await;
    assert!(aborted(&result, "mfa_setup_required"), "{result}");
    assert!(first.begun.lock().is_empty(), "no code was asked for");
    assert!(env.manager.login_flows().is_empty());

    second.enrol(&alice, "2222");
    let (flow, shown) = env.password("alice", "secret").await;
    assert_eq!(shown["step_id"], "mfa");
    env.submit(&flow, &[("pin", "1111")]).await;
    let (flow2, _) = env.password("alice", "secret").await;
    assert_eq!(env.manager.login_flows().len(), 2);
    // Deposed in the meantime: refused when the flow gets to that module, not enrolled.
    second.pins.lock().clear();
    let result = env.submit(&flow2, &[("pin", "1111")]).await;
    assert!(aborted(&result, "mfa_setup_required"), "{result}");
    // A flow already at that module's code step just finds the code wrong.
    let result = env.submit(&flow, &[("pin", "2222")]).await;
    assert_eq!(result["errors"]["base"], "invalid_code", "{result}");
}

#[tokio::test]
async fn a_first_sign_in_gets_its_user_when_enrolment_needs_one() {
    let pin = PinModule::new("pin", "PIN", 3);
    let env = env(chain_of(&[(&pin, true)]), &[]).await;
    assert!(env.manager.users().is_empty());

    let (flow, setup) = env.password("bob", "hunter2").await;
    assert_eq!(setup["step_id"], "mfa_setup");
    // The user the token exchange would create exists now, with the credential linked, and
    // nothing else: no refresh token, not the owner.
    let users = env.manager.users();
    assert_eq!(users.len(), 1);
    let bob = &users[0];
    assert_eq!(bob.name.as_deref(), Some("bob"));
    assert!(!bob.is_owner);
    assert_eq!(bob.credentials.len(), 1);
    assert!(env.manager.refresh_tokens_of(&bob.id).is_empty());

    let done = env.submit(&flow, &[("pin", "9876")]).await;
    assert!(is_entry(&done), "{done}");
    let credentials = env.manager.credentials_from_flow(&done["data"]).unwrap();
    assert!(!credentials.is_new);
    assert_eq!(credentials.id, bob.credentials[0].id);
    assert_eq!(pin.pin_of(&bob.id).as_deref(), Some("9876"));
    // The token exchange finds that user.
    assert_eq!(
        env.manager
            .get_or_create_user(&credentials)
            .await
            .unwrap()
            .id,
        bob.id
    );

    // Abandoning the enrolment leaves a user without tokens who must enrol next time.
    let (_, setup) = env.password("alice", "secret").await;
    assert_eq!(setup["step_id"], "mfa_setup");
    assert_eq!(env.manager.users().len(), 2);
    let (flow, setup) = env.password("alice", "secret").await;
    assert_eq!(setup["step_id"], "mfa_setup");
    assert_eq!(env.manager.users().len(), 2, "the same user is reused");
    assert!(is_entry(&env.submit(&flow, &[("pin", "1234")]).await));
}

#[tokio::test]
async fn a_first_sign_in_is_refused_when_the_chain_may_not_enrol() {
    let pin = PinModule::new("pin", "PIN", 3);
    let env = env(chain_of(&[(&pin, false)]), &[]).await;
    let (_, result) = env.password("bob", "hunter2").await;
    assert_eq!(
        result,
        json!({
            "type": "abort",
            "flow_id": result["flow_id"],
            "handler": ["test", null],
            "reason": "mfa_setup_required",
            "description_placeholders": null,
        })
    );
    assert!(env.manager.users().is_empty(), "no user is created");
}

#[tokio::test]
async fn opt_in_mfa_runs_after_the_chain_and_a_module_in_both_is_asked_once() {
    let shared = PinModule::new("shared", "Shared PIN", 3);
    let own = PinModule::new("own", "Own PIN", 3);
    let shared_module: Arc<dyn MfaModule> = Arc::new(Pin(shared.clone()));
    let own_module: Arc<dyn MfaModule> = Arc::new(Pin(own.clone()));
    let env = env(
        vec![ChainEntry::new(shared_module.clone())],
        &[shared_module, own_module],
    )
    .await;
    let alice = env.alice().await;
    shared.enrol(&alice, "1111");

    // Enrolled in the chain's module only: asked once, by the chain.
    let (flow, shown) = env.password("alice", "secret").await;
    assert_eq!(shown, code_step(&flow, "shared", "Shared PIN", 1, 1, false));
    let done = env.submit(&flow, &[("pin", "1111")]).await;
    assert!(is_entry(&done), "{done}");
    assert_eq!(shared.begun.lock().len(), 1);

    // Also enrolled in an opt-in module: the chain, then the usual `mfa` step for the rest.
    own.enrol(&alice, "2222");
    let (flow, _) = env.password("alice", "secret").await;
    let opt_in = env.submit(&flow, &[("pin", "1111")]).await;
    assert_eq!(
        opt_in,
        json!({
            "type": "form",
            "flow_id": flow,
            "handler": ["test", null],
            "data_schema": [{"type": "string", "name": "pin", "required": true}],
            "errors": {},
            "description_placeholders": {"mfa_module_name": "Own PIN", "mfa_module_id": "own"},
            "last_step": null,
            "preview": null,
            "step_id": "mfa",
        })
    );
    // The chain's PIN is not accepted for the opt-in step; the retry counter is the flow's.
    let wrong = env.submit(&flow, &[("pin", "1111")]).await;
    assert_eq!(wrong["errors"]["base"], "invalid_code");
    let done = env.submit(&flow, &[("pin", "2222")]).await;
    assert!(is_entry(&done), "{done}");
}

#[tokio::test]
async fn a_provider_without_a_chain_is_unchanged() {
    let env = env(Vec::new(), &[]).await;
    let (_, done) = env.password("alice", "secret").await;
    assert!(is_entry(&done), "{done}");
    assert!(env.manager.mfa_chain("test", None).is_empty());
}

#[tokio::test]
async fn the_builder_refuses_a_module_twice_in_a_chain_or_two_instances_of_one_id() {
    let config = TempConfig::empty();
    let provider = || Arc::new(test_provider(&[("alice", "secret")]));
    let pin = PinModule::new("pin", "PIN", 3);
    let module: Arc<dyn MfaModule> = Arc::new(Pin(pin.clone()));
    let twice = AuthManager::builder(config.storage())
        .provider_with_chain(
            provider(),
            vec![
                ChainEntry::new(module.clone()),
                ChainEntry::new(module.clone()),
            ],
        )
        .build()
        .await;
    assert!(
        matches!(&twice, Err(AuthError::Invalid(m)) if m == "The MFA chain of auth provider test lists mfa module pin twice"),
        "{twice:?}"
    );
    let other_instance: Arc<dyn MfaModule> = Arc::new(Pin(pin.clone()));
    let two = AuthManager::builder(config.storage())
        .mfa_module(module.clone())
        .provider_with_chain(provider(), vec![ChainEntry::new(other_instance)])
        .build()
        .await;
    assert!(
        matches!(&two, Err(AuthError::Invalid(m)) if m.contains("has its own instance of mfa module pin")),
        "{two:?}"
    );
    // The same instance in auth_mfa_modules and the chain is fine; the chain is kept.
    let manager = AuthManager::builder(config.storage())
        .mfa_module(module.clone())
        .provider_with_chain(provider(), vec![ChainEntry::new(module).enroll(false)])
        .build()
        .await
        .unwrap();
    let chain = manager.mfa_chain("test", None);
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].module.id(), "pin");
    assert!(!chain[0].enroll);
    assert_eq!(
        format!("{:?}", chain[0]),
        r#"ChainEntry { module: "pin", enroll: false }"#
    );
}

/// A module whose store cannot be read.
struct Unreadable;

#[async_trait]
impl MfaModule for Unreadable {
    fn identity(&self) -> &PluginIdentity {
        static IDENTITY: std::sync::LazyLock<PluginIdentity> =
            std::sync::LazyLock::new(|| PluginIdentity::new("unreadable", None, "Unreadable"));
        &IDENTITY
    }
    fn input_schema(&self) -> Schema {
        pin_schema()
    }
    async fn setup_flow(&self, _: &str, _: Option<&str>) -> Result<Box<dyn Flow>, MfaError> {
        Err(MfaError::Failed("store unreadable".into()))
    }
    async fn setup_user(&self, _: &str, _: &Map<String, Value>) -> Result<Value, MfaError> {
        Err(MfaError::Failed("store unreadable".into()))
    }
    async fn depose_user(&self, _: &str) -> Result<(), MfaError> {
        Err(MfaError::Failed("store unreadable".into()))
    }
    async fn is_user_setup(&self, _: &str) -> Result<bool, MfaError> {
        Err(MfaError::Failed("store unreadable".into()))
    }
    async fn validate(&self, _: &str, _: &Map<String, Value>) -> Result<bool, MfaError> {
        Err(MfaError::Failed("store unreadable".into()))
    }
}

#[tokio::test]
async fn a_chain_module_that_cannot_tell_refuses_the_login() {
    for enroll in [true, false] {
        let env = env(
            vec![ChainEntry::new(Arc::new(Unreadable)).enroll(enroll)],
            &[],
        )
        .await;
        env.alice().await;
        let (_, result) = env.password("alice", "secret").await;
        assert!(aborted(&result, "unknown_error"), "{result}");
        // A first sign-in cannot enrol either.
        let (_, result) = env.password("bob", "hunter2").await;
        let expected = if enroll {
            "unknown_error"
        } else {
            "mfa_setup_required"
        };
        assert!(aborted(&result, expected), "{result}");
    }
}
