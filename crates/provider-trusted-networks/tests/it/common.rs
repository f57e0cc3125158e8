//! Shared setup: a temp config dir, users, the provider built through the registry, a manager.

use std::net::IpAddr;
use std::sync::Arc;

use auth_core::flow_engine::FlowResponse;
use auth_core::registry::{PasswordPolicy, find_provider};
use auth_core::{
    AuthManager, AuthProvider, LoginContext, PluginConfigError, PluginContext, PluginSpec, Policy,
    Storage,
};
use auth_testkit::{TempConfig, clock_at, seeded_rng};
use serde_json::{Map, Value, json};

/// A fixed "now".
pub const NOW: i64 = 1_795_303_506;

/// The users every environment starts with (ids are random; names are fixed).
pub struct Users {
    /// The owner (admin), created first.
    pub owner: String,
    /// In `system-users`.
    pub alice: String,
    /// In the custom group `family` (and `system-users`).
    pub bob: String,
    /// Inactive.
    pub carol: String,
    /// A system-generated user.
    pub system: String,
    /// Id of the custom group `family`.
    pub family: String,
}

/// A config dir, the provider and a manager over the same `.storage`.
pub struct Env {
    pub config: TempConfig,
    pub manager: AuthManager,
    pub users: Users,
    pub key: Option<String>,
}

/// Builds the provider through its registration with these keys and trusted proxies.
pub fn build_with(
    keys: Value,
    id: Option<&str>,
    proxies: &[&str],
    storage: Arc<dyn Storage>,
) -> Result<Arc<dyn AuthProvider>, PluginConfigError> {
    let registration = find_provider("trusted_networks").expect("registered");
    let ctx = PluginContext {
        storage,
        clock: clock_at(NOW),
        rng: seeded_rng(3),
        password_policy: PasswordPolicy::fast_for_tests(),
        trusted_proxies: proxies
            .iter()
            .map(|p| p.parse().expect("valid proxy network"))
            .collect(),
    };
    let spec = PluginSpec {
        id: id.map(str::to_owned),
        name: None,
        config: keys,
    };
    (registration.build)(spec, &ctx)
}

/// Builds a manager with the provider (after creating the standard users in the store), with
/// `10.0.0.0/24` as trusted proxies.
pub async fn env(keys: Value) -> Env {
    env_with_id(keys, None).await
}

/// Like [`env`], with a provider `id`.
pub async fn env_with_id(keys: Value, id: Option<&str>) -> Env {
    let config = TempConfig::empty();
    // First create the users with a provider-less manager, then build the real one on the same
    // files: user ids go into `trusted_users`, which needs them before the provider exists.
    let users = {
        let setup = AuthManager::builder(config.storage())
            .clock(clock_at(NOW))
            .rng(seeded_rng(11))
            .build()
            .await
            .expect("setup manager");
        standard_users(&setup).await
    };
    let keys = substitute(keys, &users);
    let provider = build_with(keys, id, &["10.0.0.0/24"], config.storage()).expect("builds");
    let manager = AuthManager::builder(config.storage())
        .clock(clock_at(NOW))
        .rng(seeded_rng(42))
        .provider(provider)
        .build()
        .await
        .expect("manager builds");
    Env {
        config,
        manager,
        users,
        key: id.map(str::to_owned),
    }
}

async fn standard_users(manager: &AuthManager) -> Users {
    let family = manager
        .create_group(Some("Family".into()), Policy::user())
        .await
        .expect("group");
    let owner = manager
        .create_user(Some("Owner".into()), vec!["system-admin".into()], false)
        .await
        .expect("owner");
    assert!(owner.is_owner);
    let alice = manager
        .create_user(Some("Alice".into()), vec!["system-users".into()], false)
        .await
        .expect("alice");
    let bob = manager
        .create_user(None, vec!["system-users".into(), family.id.clone()], false)
        .await
        .expect("bob");
    let carol = manager
        .create_user(Some("Carol".into()), vec!["system-users".into()], false)
        .await
        .expect("carol");
    manager
        .deactivate_user(&carol.id)
        .await
        .expect("deactivated");
    let system = manager
        .create_system_user(
            Some("Supervisor".into()),
            vec!["system-admin".into()],
            false,
        )
        .await
        .expect("system user");
    Users {
        owner: owner.id,
        alice: alice.id,
        bob: bob.id,
        carol: carol.id,
        system: system.id,
        family: family.id,
    }
}

/// Replaces the placeholders `$owner`, `$alice`, `$bob`, `$carol`, `$system`, `$family` in
/// every string of `keys` by the ids.
fn substitute(keys: Value, users: &Users) -> Value {
    let text = serde_json::to_string(&keys)
        .expect("json")
        .replace("$owner", &users.owner)
        .replace("$alice", &users.alice)
        .replace("$bob", &users.bob)
        .replace("$carol", &users.carol)
        .replace("$system", &users.system)
        .replace("$family", &users.family);
    serde_json::from_str(&text).expect("json")
}

/// A login context from `ip`.
pub fn from(ip: &str) -> LoginContext {
    LoginContext {
        ip_address: Some(ip.parse::<IpAddr>().expect("ip")),
        redirect_uri: Some("http://127.0.0.1:8123/?auth_callback=1".to_owned()),
        ..LoginContext::default()
    }
}

impl Env {
    /// Starts a login flow; `None` when the provider refuses (HTTP 404).
    pub async fn start(&self, context: LoginContext) -> Option<FlowResponse> {
        self.manager
            .start_login_flow("trusted_networks", self.key.as_deref(), context)
            .await
            .expect("start does not fail")
    }

    /// Starts a flow from `ip` that must be offered.
    pub async fn start_from(&self, ip: &str) -> FlowResponse {
        self.start(from(ip)).await.expect("provider offered")
    }

    /// The handler key in JSON.
    pub fn handler(&self) -> Value {
        json!(["trusted_networks", self.key])
    }

    /// The exact `init` form offering these `(id, name)` users.
    pub fn user_form(&self, flow_id: &str, users: &[(&str, Option<&str>)]) -> Value {
        let options: Vec<Value> = users.iter().map(|(id, name)| json!([id, name])).collect();
        json!({
            "type": "form",
            "flow_id": flow_id,
            "handler": self.handler(),
            "data_schema": [
                {"type": "select", "options": options, "name": "user", "required": true}
            ],
            "errors": null,
            "description_placeholders": null,
            "last_step": null,
            "preview": null,
            "step_id": "init"
        })
    }

    /// Submits `{"user": id}`.
    pub async fn pick(
        &self,
        flow_id: &str,
        user_id: &str,
    ) -> Result<FlowResponse, auth_core::flow_engine::FlowError> {
        let mut input = Map::new();
        input.insert("user".to_owned(), Value::String(user_id.to_owned()));
        self.manager
            .login_flows()
            .configure(flow_id, Some(input))
            .await
    }

    /// The credential a finished flow carries, asserting the exact `create_entry` JSON.
    pub fn assert_finished_for(
        &self,
        response: &FlowResponse,
        user_id: &str,
    ) -> auth_core::Credentials {
        let json = response.to_json();
        let credentials = self
            .manager
            .credentials_from_flow(&json["data"])
            .unwrap_or_else(|| panic!("credentials in {json}"));
        assert_eq!(
            json,
            json!({
                "type": "create_entry",
                "flow_id": response.flow_id,
                "handler": self.handler(),
                "data": {"credentials": {
                    "id": credentials.id,
                    "auth_provider_type": "trusted_networks",
                    "auth_provider_id": self.key,
                    "data": {"user_id": user_id},
                    "is_new": false,
                }},
                "description": null,
                "description_placeholders": null,
                "context": {},
            })
        );
        credentials
    }
}
