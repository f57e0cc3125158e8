//! Shared setup: a temp config dir, the provider built through the registry, a manager.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use auth_core::flow_engine::FlowResponse;
use auth_core::registry::{PasswordPolicy, find_provider};
use auth_core::{
    AuthManager, AuthProvider, LoginContext, PluginContext, PluginSpec, SharedClock, SharedRng,
    Storage,
};
use auth_testkit::{FIXTURE_2026_NOW, TempConfig, clock_at, seeded_rng};
use provider_homeassistant::HomeAssistantProvider;
use serde_json::{Map, Value, json};

/// A config dir, the provider and a manager over the same `.storage`.
pub struct Env {
    pub config: TempConfig,
    pub provider: Arc<dyn AuthProvider>,
    pub manager: AuthManager,
}

impl Env {
    /// The concrete provider, for admin operations.
    pub fn ha(&self) -> &HomeAssistantProvider {
        (self.provider.as_ref() as &dyn std::any::Any)
            .downcast_ref::<HomeAssistantProvider>()
            .expect("a HomeAssistantProvider")
    }

    /// Path of the provider's file.
    pub fn provider_file(&self) -> std::path::PathBuf {
        self.config
            .storage_dir()
            .join(provider_homeassistant::STORAGE_KEY)
    }

    /// The provider file's `data.users`.
    pub fn stored_users(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.provider_file()).expect("provider file");
        let doc: Value = serde_json::from_str(&text).expect("json");
        doc["data"]["users"].as_array().expect("users").clone()
    }

    /// Starts a login flow and returns its first response.
    pub async fn start(&self) -> FlowResponse {
        self.manager
            .start_login_flow("homeassistant", None, context())
            .await
            .expect("flow starts")
            .expect("provider known")
    }

    /// A complete login attempt: start, then submit username and password.
    pub async fn login(&self, username: &str, password: &str) -> FlowResponse {
        let first = self.start().await;
        self.manager
            .login_flows()
            .configure(&first.flow_id, Some(input(username, password)))
            .await
            .expect("step runs")
    }
}

/// The plugin context tests build providers with.
pub fn plugin_context(config: &TempConfig) -> PluginContext {
    let storage: Arc<dyn Storage> = config.storage();
    let clock: SharedClock = clock_at(FIXTURE_2026_NOW);
    let rng: SharedRng = seeded_rng(7);
    PluginContext {
        storage,
        clock,
        rng,
        password_policy: PasswordPolicy::fast_for_tests(),
        trusted_proxies: Vec::new(),
    }
}

/// Builds the provider through its registration, with these config keys.
pub fn build(config: &TempConfig, keys: Value) -> Arc<dyn AuthProvider> {
    let registration = find_provider("homeassistant").expect("registered");
    let spec = PluginSpec {
        id: None,
        name: None,
        config: keys,
    };
    (registration.build)(spec, &plugin_context(config)).expect("builds")
}

/// An environment over a copy of a fixture (`Some("ha-2026.2.3")`) or an empty config dir.
pub async fn env(fixture: Option<&str>, keys: Value) -> Env {
    let config = match fixture {
        Some(name) => TempConfig::from_fixture(name),
        None => TempConfig::empty(),
    };
    let provider = build(&config, keys);
    let manager = AuthManager::builder(config.storage())
        .clock(clock_at(FIXTURE_2026_NOW))
        .rng(seeded_rng(42))
        .provider(provider.clone())
        .build()
        .await
        .expect("manager builds");
    Env {
        config,
        provider,
        manager,
    }
}

/// An empty environment with default config.
pub async fn empty_env() -> Env {
    env(None, json!({})).await
}

/// The login context used everywhere.
pub fn context() -> LoginContext {
    LoginContext {
        ip_address: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        redirect_uri: Some("http://127.0.0.1:29124/".to_owned()),
        ..LoginContext::default()
    }
}

/// Login form input.
pub fn input(username: &str, password: &str) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("username".to_owned(), Value::String(username.to_owned()));
    map.insert("password".to_owned(), Value::String(password.to_owned()));
    map
}

/// The exact JSON of the `init` form with these `errors`.
pub fn init_form(flow_id: &str, errors: Value) -> Value {
    json!({
        "type": "form",
        "flow_id": flow_id,
        "handler": ["homeassistant", null],
        "data_schema": [
            {"type": "string", "name": "username", "required": true},
            {"type": "string", "name": "password", "required": true}
        ],
        "errors": errors,
        "description_placeholders": null,
        "last_step": null,
        "preview": null,
        "step_id": "init"
    })
}

/// Asserts the response is the `init` form with `errors.base = invalid_auth`.
pub fn assert_invalid_auth(response: &FlowResponse) {
    assert_eq!(
        response.to_json(),
        init_form(&response.flow_id, json!({"base": "invalid_auth"}))
    );
}

/// The credential carried by a finished login, asserting it finished.
pub fn finished_credentials(env: &Env, response: &FlowResponse) -> auth_core::Credentials {
    let json = response.to_json();
    assert_eq!(json["type"], "create_entry", "{json}");
    env.manager
        .credentials_from_flow(&json["data"])
        .expect("credentials in the entry")
}
