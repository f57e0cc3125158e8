//! A real `AuthManager` over file storage in a temp dir, driven by a tiny in-test provider
//! (usernames and passwords from a map) and the module built through the registry.

use std::sync::Arc;

use auth_core::flow_engine::FlowResponse;
use auth_core::registry::{PasswordPolicy, find_mfa_module};
use auth_core::{
    AuthAccess, AuthManager, AuthProvider, LoginContext, ManualClock, MfaModule, PluginContext,
    PluginSpec,
};
use auth_testkit::{TempConfig, clock_at, seeded_rng};
use serde_json::{Map, Value, json};

/// Password of every user the test provider knows.
pub const PASSWORD: &str = "secret-pass";

/// Usernames and passwords from a map; MFA-capable.
pub use auth_testkit::fakes::PasswordProvider as TestProvider;

/// A manager with the test provider and `insecure_example` (configured with `config`).
pub struct Env {
    pub config: TempConfig,
    pub clock: Arc<ManualClock>,
    pub manager: AuthManager,
    pub module: Arc<dyn MfaModule>,
}

impl Env {
    /// A manager at Unix time `now`; the module's own keys are `module_config`.
    pub async fn new(now: i64, module_config: Value) -> Self {
        let config = TempConfig::empty();
        let clock = clock_at(now);
        let rng = seeded_rng(11);
        let storage = config.storage();
        let ctx = PluginContext {
            storage: storage.clone(),
            clock: clock.clone(),
            rng: rng.clone(),
            password_policy: PasswordPolicy::fast_for_tests(),
            trusted_proxies: Vec::new(),
        };
        let registration = find_mfa_module("insecure_example").expect("registered");
        let spec = PluginSpec {
            id: None,
            name: None,
            config: module_config,
        };
        let Ok(module) = (registration.build)(spec, &ctx) else {
            panic!("insecure_example builds");
        };
        let provider = Arc::new(TestProvider::new("test"));
        let manager = AuthManager::builder(storage)
            .clock(clock.clone())
            .rng(rng)
            .provider(provider.clone())
            .mfa_module(module.clone())
            .build()
            .await
            .unwrap();
        Self {
            config,
            clock,
            manager,
            module,
        }
    }

    fn provider(&self) -> Arc<dyn AuthProvider> {
        self.manager.auth_providers()[0].clone()
    }

    /// Creates a user with a linked test-provider credential; returns its id.
    pub async fn add_user(&self, username: &str) -> String {
        (self.provider().as_ref() as &dyn std::any::Any)
            .downcast_ref::<TestProvider>()
            .unwrap()
            .add(username, PASSWORD);
        let user = self
            .manager
            .create_user(
                Some(username.to_owned()),
                vec!["system-users".into()],
                false,
            )
            .await
            .unwrap();
        let mut data = Map::new();
        data.insert("username".into(), json!(username));
        let credentials = AuthAccess::new_credentials(&self.manager, "test", None, data);
        self.manager.link_user(&user.id, credentials).await.unwrap();
        user.id
    }

    /// Starts a login flow and submits the user's password; returns what follows.
    pub async fn login(&self, username: &str) -> FlowResponse {
        let start = self
            .manager
            .start_login_flow("test", None, LoginContext::default())
            .await
            .unwrap()
            .expect("provider known");
        self.submit(
            &start.flow_id,
            json!({ "username": username, "password": PASSWORD }),
        )
        .await
    }

    /// Submits `input` to a login flow.
    pub async fn submit(&self, flow_id: &str, input: Value) -> FlowResponse {
        self.manager
            .login_flows()
            .configure(flow_id, input.as_object().cloned())
            .await
            .unwrap()
    }
}
