//! A real `AuthManager` over file storage in a temp dir, driven by a tiny in-test provider
//! (usernames and passwords from a map) and, when asked, a second in-test MFA module.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use auth_core::flow_engine::{Field, Flow, FlowResponse, FlowResult, Schema};
use auth_core::registry::{PasswordPolicy, find_mfa_module};
use auth_core::{
    AuthAccess, AuthManager, LoginContext, ManualClock, MfaError, MfaModule, PluginContext,
    PluginIdentity, PluginSpec,
};
use auth_testkit::{TempConfig, clock_at, seeded_rng};
use serde_json::{Map, Value, json};

/// Password of every user the test provider knows.
pub const PASSWORD: &str = "secret-pass";

/// Usernames and passwords from a map; MFA-capable.
pub use auth_testkit::fakes::PasswordProvider as TestProvider;

/// A second MFA module (a PIN kept in memory), so a user can have two modules enabled.
pub struct PinModule {
    pins: Mutex<HashMap<String, String>>,
}

pub const PIN_MODULE_ID: &str = "test_pin";
pub const PIN_MODULE_NAME: &str = "Test PIN";

#[async_trait]
impl MfaModule for PinModule {
    fn identity(&self) -> &PluginIdentity {
        static IDENTITY: std::sync::LazyLock<PluginIdentity> =
            std::sync::LazyLock::new(|| PluginIdentity::new(PIN_MODULE_ID, None, PIN_MODULE_NAME));
        &IDENTITY
    }
    fn input_schema(&self) -> Schema {
        Schema::new(vec![Field::string("pin").required()])
    }
    async fn setup_flow(
        &self,
        _user_id: &str,
        _user_name: Option<&str>,
    ) -> Result<Box<dyn Flow>, MfaError> {
        Err(MfaError::Failed(
            "the test PIN module has no setup flow".into(),
        ))
    }
    async fn setup_user(
        &self,
        user_id: &str,
        data: &Map<String, Value>,
    ) -> Result<Value, MfaError> {
        let pin = data["pin"].as_str().unwrap_or_default().to_owned();
        self.pins.lock().unwrap().insert(user_id.to_owned(), pin);
        Ok(Value::Null)
    }
    async fn depose_user(&self, user_id: &str) -> Result<(), MfaError> {
        self.pins.lock().unwrap().remove(user_id);
        Ok(())
    }
    async fn is_user_setup(&self, user_id: &str) -> Result<bool, MfaError> {
        Ok(self.pins.lock().unwrap().contains_key(user_id))
    }
    async fn validate(&self, user_id: &str, input: &Map<String, Value>) -> Result<bool, MfaError> {
        Ok(self.pins.lock().unwrap().get(user_id).map(String::as_str) == input["pin"].as_str())
    }
}

/// How to build an [`Env`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Provider type of the test provider (`homeassistant` for HA's fixture).
    pub provider_kind: &'static str,
    /// Whether the second MFA module is configured (after totp).
    pub pin_module: bool,
    /// Seed of the random source.
    pub seed: u64,
    /// Whether the provider requires totp as a chain (`modules: [{type: totp}]`), with `enroll`.
    pub chain: Option<bool>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            provider_kind: "test",
            pin_module: false,
            seed: 7,
            chain: None,
        }
    }
}

/// A manager, its clock, provider and modules, over a temp config dir.
pub struct Env {
    pub config: TempConfig,
    pub clock: Arc<ManualClock>,
    pub provider: Arc<TestProvider>,
    pub manager: AuthManager,
    pub totp: Arc<dyn MfaModule>,
    options: Options,
}

impl Env {
    /// An empty config dir at Unix time `now`.
    pub async fn new(now: i64) -> Self {
        Self::open(TempConfig::empty(), now, Options::default()).await
    }

    /// A manager over `config` at Unix time `now`; totp built through the registry.
    pub async fn open(config: TempConfig, now: i64, options: Options) -> Self {
        Self::try_open(config, now, options)
            .await
            .unwrap_or_else(|e| panic!("manager builds: {e}"))
    }

    pub async fn try_open(
        config: TempConfig,
        now: i64,
        options: Options,
    ) -> Result<Self, auth_core::AuthError> {
        Self::try_open_with(config, now, options, None).await
    }

    async fn try_open_with(
        config: TempConfig,
        now: i64,
        options: Options,
        provider: Option<Arc<TestProvider>>,
    ) -> Result<Self, auth_core::AuthError> {
        let clock = clock_at(now);
        let rng = seeded_rng(options.seed);
        let storage = config.storage();
        let ctx = PluginContext {
            storage: storage.clone(),
            clock: clock.clone(),
            rng: rng.clone(),
            password_policy: PasswordPolicy::fast_for_tests(),
            trusted_proxies: Vec::new(),
        };
        let registration = find_mfa_module("totp").expect("totp is registered");
        let spec = PluginSpec {
            id: None,
            name: None,
            config: Value::Null,
        };
        let totp = (registration.build)(spec, &ctx).expect("totp builds");
        let provider =
            provider.unwrap_or_else(|| Arc::new(TestProvider::new(options.provider_kind)));
        let mut builder = AuthManager::builder(storage)
            .clock(clock.clone())
            .rng(rng.clone())
            .mfa_module(totp.clone());
        builder = match options.chain {
            Some(enroll) => builder.provider_with_chain(
                provider.clone(),
                vec![auth_core::ChainEntry::new(totp.clone()).enroll(enroll)],
            ),
            None => builder.provider(provider.clone()),
        };
        if options.pin_module {
            builder = builder.mfa_module(Arc::new(PinModule {
                pins: Mutex::new(HashMap::new()),
            }));
        }
        let manager = builder.build().await?;
        Ok(Self {
            config,
            clock,
            provider,
            manager,
            totp,
            options,
        })
    }

    /// A new manager and modules over the same directory (in-memory state forgotten).
    pub async fn reopen(self) -> Self {
        let now = self.now();
        let options = Options {
            // A different sequence, so new ids never collide with the first run's.
            seed: self.options.seed + 1000,
            ..self.options
        };
        Self::try_open_with(self.config, now, options, Some(self.provider))
            .await
            .unwrap_or_else(|e| panic!("manager builds: {e}"))
    }

    pub fn now(&self) -> i64 {
        auth_core::Clock::now(self.clock.as_ref()).unix_timestamp()
    }

    pub fn set_time(&self, unix: i64) {
        self.clock
            .set(time::OffsetDateTime::from_unix_timestamp(unix).unwrap());
    }

    /// Creates a user with display name `name` and a linked test-provider credential.
    pub async fn add_user(&self, username: &str, name: Option<&str>) -> String {
        self.provider.add(username, PASSWORD);
        let user = self
            .manager
            .create_user(name.map(str::to_owned), vec!["system-users".into()], false)
            .await
            .unwrap();
        let mut data = Map::new();
        data.insert("username".into(), json!(username));
        let credentials =
            AuthAccess::new_credentials(&self.manager, self.options.provider_kind, None, data);
        self.manager.link_user(&user.id, credentials).await.unwrap();
        user.id
    }

    /// Enrols `user_id` in totp with `secret` (must be >= 128 bits).
    pub async fn enrol(&self, user_id: &str, secret: &str) {
        let data = json!({ "secret": secret });
        self.manager
            .enable_user_mfa(user_id, "totp", data.as_object().unwrap())
            .await
            .unwrap();
    }

    /// Starts a login flow and submits the user's password; returns what follows.
    pub async fn login(&self, username: &str) -> FlowResponse {
        let start = self
            .manager
            .start_login_flow(
                self.options.provider_kind,
                None,
                LoginContext {
                    ip_address: Some("127.0.0.1".parse().unwrap()),
                    ..Default::default()
                },
            )
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

    /// Submits a code to a login flow's `mfa` step.
    pub async fn submit_code(&self, flow_id: &str, code: &str) -> FlowResponse {
        self.submit(flow_id, json!({ "code": code })).await
    }

    /// A whole login with `code`: whether it finished with `create_entry`.
    pub async fn login_with_code(&self, username: &str, code: &str) -> bool {
        let shown = self.login(username).await;
        assert_eq!(shown.result.step_id(), Some("mfa"), "{:?}", shown.result);
        let done = self.submit_code(&shown.flow_id, code).await;
        match done.result {
            FlowResult::CreateEntry { .. } => true,
            FlowResult::Form { errors, .. } => {
                assert_eq!(errors, Some(invalid_code()));
                false
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// `{"base": "invalid_code"}`.
pub fn invalid_code() -> Map<String, Value> {
    json!({"base": "invalid_code"}).as_object().unwrap().clone()
}

/// The stored document's `data.users`, read from disk.
pub fn stored_users(env: &Env) -> Option<Value> {
    let path = env.config.storage_dir().join("auth_module.totp");
    let text = std::fs::read_to_string(path).ok()?;
    let doc: Value = serde_json::from_str(&text).unwrap();
    Some(doc["data"]["users"].clone())
}
