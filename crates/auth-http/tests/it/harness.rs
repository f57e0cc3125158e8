//! Starts the real router on 127.0.0.1:0 over a temp config dir.

use std::net::SocketAddr;
use std::sync::Arc;

use auth_core::registry::{PluginContext, PluginSpec, find_mfa_module, find_provider};
use auth_core::{AuthManager, ManagerLimits, SharedClock, SystemClock};
use auth_http::{AuthHttp, HttpOptions};
use auth_testkit::TempConfig;
use auth_testkit::http::{Request, Response};
use serde_json::{Value, json};

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub http: AuthHttp,
    pub config: TempConfig,
    _task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub fn client_id(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn redirect_uri(&self) -> String {
        format!("http://{}/?auth_callback=1", self.addr)
    }

    pub async fn send(&self, request: Request) -> Response {
        request.send(self.addr).await
    }

    pub fn manager(&self) -> &AuthManager {
        self.http.manager()
    }
}

/// Options for [`start`].
pub struct Setup {
    pub config: TempConfig,
    pub options: HttpOptions,
    pub clock: SharedClock,
    pub providers: Vec<(&'static str, Value)>,
    /// The homeassistant provider requires the `totp` module (its `modules:` chain), which is
    /// also the opt-in module of that id.
    pub required_totp: bool,
    pub limits: ManagerLimits,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            config: TempConfig::empty(),
            options: HttpOptions::default(),
            clock: Arc::new(SystemClock),
            providers: vec![
                ("homeassistant", json!({})),
                (
                    "insecure_example",
                    json!({"users": [{"username": "demo", "password": "demo-pass", "name": "Demo"}]}),
                ),
            ],
            required_totp: false,
            limits: ManagerLimits::default(),
        }
    }
}

pub async fn start(setup: Setup) -> Server {
    let (http, config) = build(setup).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = http
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Server {
        addr,
        http,
        config,
        _task: task,
    }
}

/// The HTTP layer of `setup`, not served (for `Router::oneshot` tests), and its config dir.
pub async fn build(setup: Setup) -> (AuthHttp, TempConfig) {
    let storage = setup.config.storage();
    let ctx = PluginContext {
        storage: storage.clone(),
        clock: setup.clock.clone(),
        rng: Arc::new(auth_core::OsRng),
        password_policy: auth_crypto::PasswordPolicy::fast_for_tests(),
        trusted_proxies: setup.options.trusted_proxies.clone(),
    };
    let totp = find_mfa_module("totp").expect("totp linked");
    let spec = PluginSpec {
        id: None,
        name: Some("Authenticator app".into()),
        config: json!({}),
    };
    let totp = (totp.build)(spec, &ctx).expect("totp builds");
    let mut builder = AuthManager::builder(storage)
        .clock(setup.clock.clone())
        .limits(setup.limits);
    for (kind, config) in setup.providers {
        let registration = find_provider(kind).expect("provider linked");
        let spec = PluginSpec {
            id: None,
            name: None,
            config,
        };
        let provider = (registration.build)(spec, &ctx).expect("provider builds");
        builder = if setup.required_totp && kind == "homeassistant" {
            builder.provider_with_chain(provider, vec![auth_core::ChainEntry::new(totp.clone())])
        } else {
            builder.provider(provider)
        };
    }
    builder = builder.mfa_module(totp);
    let manager = builder.build().await.expect("manager");
    let http = AuthHttp::new(
        manager,
        setup.options,
        Some(setup.config.path().to_path_buf()),
    )
    .await
    .expect("http");
    (http, setup.config)
}

/// A server whose owner already exists (onboarding done): returns (server, owner access token).
pub async fn onboarded() -> (Server, String) {
    let server = start(Setup::default()).await;
    let token = onboard(&server, "owner", "owner-pass").await;
    (server, token)
}

/// Creates the owner through onboarding and exchanges the code; returns the access token.
pub async fn onboard(server: &Server, username: &str, password: &str) -> String {
    let response = server
        .send(Request::post("/api/onboarding/users").json(&json!({
            "client_id": server.client_id(), "name": "Owner", "username": username,
            "password": password, "language": "en"
        })))
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let code = response.json()["auth_code"].as_str().unwrap().to_owned();
    let tokens = exchange(server, &code).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// `grant_type=authorization_code`; asserts success.
pub async fn exchange(server: &Server, code: &str) -> Value {
    let response = server
        .send(Request::post("/auth/token").form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &server.client_id()),
            ("code", code),
        ]))
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// Starts a login flow for `handler`.
pub async fn start_flow(server: &Server, handler: Value) -> Response {
    server
        .send(Request::post("/auth/login_flow").json(&json!({
            "client_id": server.client_id(), "handler": handler, "redirect_uri": server.redirect_uri()
        })))
        .await
}

/// Submits a step.
pub async fn step(server: &Server, flow_id: &str, mut input: Value) -> Response {
    input["client_id"] = json!(server.client_id());
    server
        .send(Request::post(&format!("/auth/login_flow/{flow_id}")).json(&input))
        .await
}

/// Logs `username` in with the homeassistant provider; returns the token response.
pub async fn login(server: &Server, username: &str, password: &str) -> Value {
    let flow = start_flow(server, json!(["homeassistant", null]))
        .await
        .json();
    let done = step(
        server,
        flow["flow_id"].as_str().unwrap(),
        json!({"username": username, "password": password}),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text());
    let done = done.json();
    assert_eq!(done["type"], "create_entry", "{done}");
    exchange(server, done["result"].as_str().unwrap()).await
}
