//! Shared setup: scripts in a temp config dir, the provider built through the registry, a manager.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use auth_core::flow_engine::FlowResponse;
use auth_core::registry::{PasswordPolicy, find_provider};
use auth_core::{AuthManager, AuthProvider, LoginContext, PluginContext, PluginSpec};
use auth_testkit::{TempConfig, clock_at, seeded_rng};
use provider_command_line::CommandLineProvider;
use serde_json::{Map, Value, json};

/// A fixed "now".
pub const NOW: i64 = 1_795_303_506;

/// The absolute path of `name` in `/bin` or `/usr/bin` (scripts get no PATH).
pub fn tool(name: &str) -> String {
    ["/bin", "/usr/bin"]
        .iter()
        .map(|dir| format!("{dir}/{name}"))
        .find(|path| Path::new(path).exists())
        .unwrap_or_else(|| panic!("{name} not found in /bin or /usr/bin"))
}

/// Writes an executable `#!/bin/sh` script `name` with `body` into `dir`.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A script accepting `alice`/`secret` only.
pub const ALICE_ONLY: &str = r#"[ "$username" = "alice" ] && [ "$password" = "secret" ] || exit 1"#;

/// A config dir, the provider and a manager over the same `.storage`.
pub struct Env {
    pub config: TempConfig,
    pub provider: Arc<dyn AuthProvider>,
    pub manager: AuthManager,
}

/// Builds the provider through its registration.
pub fn build(
    keys: Value,
    id: Option<&str>,
) -> Result<Arc<dyn AuthProvider>, auth_core::PluginConfigError> {
    let registration = find_provider("command_line").expect("registered");
    let storage = Arc::new(auth_core::MemoryStorage::new());
    let ctx = PluginContext {
        storage,
        clock: clock_at(NOW),
        rng: seeded_rng(3),
        password_policy: PasswordPolicy::fast_for_tests(),
        trusted_proxies: Vec::new(),
    };
    let spec = PluginSpec {
        id: id.map(str::to_owned),
        name: None,
        config: keys,
    };
    (registration.build)(spec, &ctx)
}

impl Env {
    /// An environment whose provider runs the script `body` (`extra` keys merged in).
    pub async fn with_script(body: &str, extra: Value) -> Env {
        let config = TempConfig::empty();
        let path = script(config.path(), "auth.sh", body);
        let mut keys = json!({"command": path});
        if let (Some(keys), Value::Object(extra)) = (keys.as_object_mut(), extra) {
            keys.extend(extra);
        }
        Self::with_keys(config, keys).await
    }

    /// An environment with these provider keys.
    pub async fn with_keys(config: TempConfig, keys: Value) -> Env {
        let provider = build(keys, None).expect("builds");
        let manager = AuthManager::builder(config.storage())
            .clock(clock_at(NOW))
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

    /// The concrete provider.
    pub fn cl(&self) -> &CommandLineProvider {
        (self.provider.as_ref() as &dyn std::any::Any)
            .downcast_ref::<CommandLineProvider>()
            .expect("a CommandLineProvider")
    }

    /// The temp dir the scripts live in.
    pub fn dir(&self) -> &Path {
        self.config.path()
    }

    /// Starts a login flow.
    pub async fn start(&self) -> FlowResponse {
        self.manager
            .start_login_flow("command_line", None, context())
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

    /// The credential of a finished login, asserting the exact `create_entry` JSON.
    pub fn assert_finished(
        &self,
        response: &FlowResponse,
        username: &str,
        is_new: bool,
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
                "handler": ["command_line", null],
                "data": {"credentials": {
                    "id": credentials.id,
                    "auth_provider_type": "command_line",
                    "auth_provider_id": null,
                    "data": {"username": username},
                    "is_new": is_new,
                }},
                "description": null,
                "description_placeholders": null,
                "context": {},
            })
        );
        credentials
    }
}

/// The login context used everywhere.
pub fn context() -> LoginContext {
    LoginContext {
        ip_address: Some("192.168.0.20".parse().expect("ip")),
        redirect_uri: Some("http://127.0.0.1:8123/?auth_callback=1".to_owned()),
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
        "handler": ["command_line", null],
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
