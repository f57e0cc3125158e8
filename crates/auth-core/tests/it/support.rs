//! Shared helpers: a manager over a temp dir, and a tiny username/password provider.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{Field, FlowResult, Schema};
use auth_core::{
    AuthAccess, AuthManager, AuthProvider, Credentials, LoginContext, ManualClock, ProviderError,
    ProviderLoginFlow, UserMeta,
};
use auth_testkit::TempConfig;
use serde_json::{Map, Value, json};

/// A fixed "now" for tests.
pub const NOW: i64 = 1_795_303_506;

/// A manager over `config`'s `.storage` with a manual clock and seeded rng.
pub async fn manager_in(config: &TempConfig, clock: &Arc<ManualClock>) -> AuthManager {
    AuthManager::builder(config.storage())
        .clock(clock.clone())
        .rng(auth_testkit::seeded_rng(7))
        .provider(Arc::new(TestProvider::new(&[
            ("alice", "secret"),
            ("bob", "hunter2"),
        ])))
        .build()
        .await
        .expect("manager builds")
}

/// A fresh manager in a fresh temp dir.
pub async fn fresh() -> (TempConfig, Arc<ManualClock>, AuthManager) {
    let config = TempConfig::empty();
    let clock = auth_testkit::clock_at(NOW);
    let manager = manager_in(&config, &clock).await;
    (config, clock, manager)
}

/// Username/password provider of type `test`.
pub struct TestProvider {
    users: HashMap<String, String>,
}

impl TestProvider {
    /// A provider knowing these users.
    pub fn new(users: &[(&str, &str)]) -> Self {
        Self {
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
        }
    }
}

struct TestFlow {
    users: HashMap<String, String>,
}

#[async_trait]
impl ProviderLoginFlow for TestFlow {
    async fn step(
        &mut self,
        _step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, ProviderError> {
        let schema = Schema::new(vec![
            Field::string("username").required(),
            Field::string("password").required(),
        ]);
        let Some(input) = input else {
            return Ok(FlowResult::form("init", Some(schema)).with_errors(Map::new()));
        };
        let username = input["username"].as_str().unwrap_or_default();
        let password = input["password"].as_str().unwrap_or_default();
        if self.users.get(username).map(String::as_str) == Some(password) {
            return Ok(FlowResult::create_entry(json!({"username": username})));
        }
        let mut errors = Map::new();
        errors.insert("base".into(), json!("invalid_auth"));
        Ok(FlowResult::form("init", Some(schema)).with_errors(errors))
    }
}

#[async_trait]
impl AuthProvider for TestProvider {
    fn provider_type(&self) -> &str {
        "test"
    }
    fn provider_id(&self) -> Option<&str> {
        None
    }
    fn name(&self) -> &str {
        "Test"
    }
    async fn login_flow(
        &self,
        _context: &LoginContext,
        _auth: Arc<dyn AuthAccess>,
    ) -> Result<Box<dyn ProviderLoginFlow>, ProviderError> {
        Ok(Box::new(TestFlow {
            users: self.users.clone(),
        }))
    }
    async fn get_or_create_credentials(
        &self,
        data: &Map<String, Value>,
        auth: &dyn AuthAccess,
    ) -> Result<Credentials, ProviderError> {
        let username = data["username"].as_str().unwrap_or_default();
        if let Some(existing) = auth
            .credentials_of("test", None)
            .into_iter()
            .find(|c| c.data_str("username") == Some(username))
        {
            return Ok(existing);
        }
        let mut map = Map::new();
        map.insert("username".into(), json!(username));
        Ok(auth.new_credentials("test", None, map))
    }
    async fn user_meta_for_credentials(
        &self,
        credentials: &Credentials,
    ) -> Result<UserMeta, ProviderError> {
        Ok(UserMeta {
            name: credentials.data_str("username").map(str::to_owned),
            is_active: true,
            group: None,
            local_only: None,
        })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Signs `username` in through the test provider and returns the finished flow's credentials.
pub async fn sign_in(manager: &AuthManager, username: &str, password: &str) -> Credentials {
    let context = LoginContext {
        ip_address: Some("127.0.0.1".parse().unwrap()),
        ..Default::default()
    };
    let start = manager
        .start_login_flow("test", None, context)
        .await
        .unwrap()
        .expect("provider known");
    let mut input = Map::new();
    input.insert("username".into(), json!(username));
    input.insert("password".into(), json!(password));
    let done = manager
        .login_flows()
        .configure(&start.flow_id, Some(input))
        .await
        .unwrap();
    match done.result {
        FlowResult::CreateEntry { data, .. } => manager
            .credentials_from_flow(&data)
            .expect("credentials in result"),
        other => panic!("expected create_entry, got {other:?}"),
    }
}
