//! Onboarding: the owner is created once, over HTTP, and gets an authorization code.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use auth_core::registry::find_provider;
use auth_core::{
    AuthManager, FileStorage, PluginContext, PluginSpec, SaveOptions, Storage, StorageError,
    StoredDocument,
};
use auth_http::{AuthHttp, HttpOptions};
use auth_testkit::http::Request;
use serde_json::json;
use tokio::sync::oneshot;

use crate::harness::{Server, Setup, exchange, onboard, onboarded, start, start_flow, step};

#[tokio::test]
async fn owner_is_created_once_and_providers_open_afterwards() {
    let server = start(Setup::default()).await;
    let status = server.send(Request::get("/api/onboarding")).await;
    assert_eq!(
        status.text(),
        r#"[{"step":"user","done":false},{"step":"core_config","done":false},{"step":"analytics","done":false},{"step":"integration","done":false}]"#
    );
    let providers = server.send(Request::get("/auth/providers")).await;
    assert_eq!(providers.status, 400);
    assert_eq!(
        providers.text(),
        r#"{"message":"Onboarding not finished","code":"onboarding_required"}"#
    );

    // A username that is not normalised is refused with HA's code, and nothing is created.
    let bad = server
        .send(Request::post("/api/onboarding/users").json(&json!({
            "client_id": server.client_id(), "name": "Owner", "username": "Owner", "password": "pw", "language": "en"
        })))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["code"], "username_not_normalized");
    assert!(server.manager().users().is_empty());

    let access = onboard(&server, "owner", "owner-pass").await;
    let owner = server.manager().owner().expect("owner created");
    assert_eq!(owner.name.as_deref(), Some("Owner"));
    assert_eq!(owner.group_ids, ["system-admin"]);
    let api = server.send(Request::get("/api/").bearer(&access)).await;
    assert_eq!(
        (api.status, api.text()),
        (200, r#"{"message":"API running."}"#.to_owned())
    );

    let again = server
        .send(Request::post("/api/onboarding/users").json(&json!({
            "client_id": server.client_id(), "name": "X", "username": "x", "password": "x", "language": "en"
        })))
        .await;
    assert_eq!(
        (again.status, again.text()),
        (403, r#"{"message":"User step already done"}"#.to_owned())
    );
    let status = server.send(Request::get("/api/onboarding")).await.json();
    assert_eq!(status[0], json!({"step": "user", "done": true}));
    let providers = server.send(Request::get("/auth/providers")).await;
    assert_eq!(
        providers.text(),
        r#"{"providers":[{"name":"Home Assistant Local","id":null,"type":"homeassistant"},{"name":"Unnamed auth provider","id":null,"type":"insecure_example"}],"preselect_remember_me":true}"#
    );
    // The onboarding file is HA's format and survives a restart.
    let file = std::fs::read_to_string(server.config.storage_dir().join("onboarding")).unwrap();
    assert!(
        file.contains("\"version\": 4") && file.contains("\"user\""),
        "{file}"
    );
}

#[tokio::test]
async fn onboarding_validates_its_body() {
    let server = start(Setup::default()).await;
    let missing = server
        .send(Request::post("/api/onboarding/users").json(&json!({"name": "x"})))
        .await;
    assert_eq!(missing.status, 400);
    assert!(
        missing.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("Message format incorrect"),
        "{}",
        missing.text()
    );
    assert_eq!(
        missing.json()["message"],
        "Message format incorrect: required key not provided at 'username'"
    );
    let extra = server
        .send(Request::post("/api/onboarding/users").json(&json!({
            "name": "x", "username": "x", "password": "x", "client_id": "http://x/",
            "language": "en", "extra": true
        })))
        .await;
    assert_eq!(
        (extra.status, extra.json()["message"].clone()),
        (
            400,
            json!("Message format incorrect: not a valid option at 'extra'")
        )
    );
    let not_json = server
        .send(Request::post("/api/onboarding/users").body("{nope"))
        .await;
    assert_eq!(
        (not_json.status, not_json.text()),
        (400, r#"{"message":"Invalid JSON."}"#.to_owned())
    );
    assert!(server.manager().users().is_empty());
    let code = onboard(&server, "owner", "pw").await;
    assert!(!code.is_empty());
    let _ = exchange;
}

/// Starts a server whose storage is `.storage` of `config`, with every step in `done` already
/// recorded in its onboarding file.
async fn start_with_steps(config: auth_testkit::TempConfig, done: &[&str], version: u32) -> Server {
    let file = json!({"version": version, "minor_version": 1, "key": "onboarding",
                      "data": {"done": done}});
    std::fs::write(
        config.storage_dir().join("onboarding"),
        serde_json::to_string_pretty(&file).unwrap(),
    )
    .unwrap();
    start(Setup {
        config,
        ..Setup::default()
    })
    .await
}

/// Signs the insecure_example user `demo` in; returns the access token.
async fn demo_access(server: &Server) -> String {
    let flow = start_flow(server, json!(["insecure_example", null]))
        .await
        .json();
    let done = step(
        server,
        flow["flow_id"].as_str().unwrap(),
        json!({"username": "demo", "password": "demo-pass"}),
    )
    .await
    .json();
    let tokens = exchange(server, done["result"].as_str().unwrap()).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

fn integration(server: &Server, access: &str) -> Request {
    Request::post("/api/onboarding/integration")
        .bearer(access)
        .json(&json!({"client_id": server.client_id(), "redirect_uri": server.redirect_uri()}))
}

/// http-api.md §12: the onboarding views are not registered when every step is done at start;
/// they answer exactly like an unknown route.
#[tokio::test]
async fn onboarding_views_are_unknown_routes_once_every_step_is_done() {
    let all = ["user", "core_config", "analytics", "integration"];
    // The current format listing every step, and HA's version 1 file, whose later steps HA's
    // migration marks done.
    for (done, version) in [(&all[..], 4), (&["user"][..], 1)] {
        let server = start_with_steps(auth_testkit::TempConfig::empty(), done, version).await;
        let unknown = server.send(Request::get("/no/such/route")).await;
        assert_eq!(
            (unknown.status, unknown.text()),
            (404, "404: Not Found".to_owned())
        );
        let body = json!({"client_id": server.client_id(), "name": "Mallory",
                          "username": "mallory", "password": "x", "language": "en"});
        for request in [
            Request::get("/api/onboarding"),
            Request::post("/api/onboarding/users").json(&body),
            Request::get("/api/onboarding/users"),
            Request::post("/api/onboarding/integration").json(&body),
            Request::post("/api/onboarding").json(&body),
        ] {
            let response = server.send(request).await;
            assert_eq!(
                (response.status, response.text()),
                (404, "404: Not Found".to_owned()),
                "version {version}"
            );
            assert_eq!(
                response.header("content-type"),
                unknown.header("content-type")
            );
            assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        }
        assert!(server.manager().users().is_empty(), "nobody was created");
    }

    // Not all done: the views answer.
    let partial = start_with_steps(
        auth_testkit::TempConfig::empty(),
        &["core_config", "analytics", "integration"],
        4,
    )
    .await;
    assert_eq!(
        partial.send(Request::get("/api/onboarding")).await.status,
        200
    );
}

/// As in HA, views registered at start stay until the next start: the step that completes
/// onboarding does not make them vanish mid-run (the next request gets the step's own 403).
#[tokio::test]
async fn completing_onboarding_takes_effect_at_the_next_start() {
    let server = start_with_steps(
        auth_testkit::TempConfig::empty(),
        &["user", "core_config", "analytics"],
        4,
    )
    .await;
    let access = demo_access(&server).await;
    let first = server.send(integration(&server, &access)).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let again = server.send(integration(&server, &access)).await;
    assert_eq!(
        (again.status, again.text()),
        (
            403,
            r#"{"message":"Integration step already done"}"#.to_owned()
        )
    );
    let status = server.send(Request::get("/api/onboarding")).await;
    assert_eq!(status.status, 200);
    assert!(
        status
            .json()
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["done"] == true),
        "{}",
        status.text()
    );

    // Restarted over the same files: gone.
    let config = auth_testkit::TempConfig::empty();
    for entry in std::fs::read_dir(server.config.storage_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), config.storage_dir().join(entry.file_name())).unwrap();
        }
    }
    let restarted = start(Setup {
        config,
        ..Setup::default()
    })
    .await;
    for request in [
        Request::get("/api/onboarding"),
        integration(&restarted, &access),
    ] {
        let response = restarted.send(request).await;
        assert_eq!(
            (response.status, response.text()),
            (404, "404: Not Found".to_owned())
        );
    }
}

/// HA validates the body before it looks at the step: a bad body is a 400 even when the user
/// step is done.
#[tokio::test]
async fn a_bad_users_body_is_refused_before_the_step_is_checked() {
    let (server, _owner) = onboarded().await;
    let missing = server
        .send(Request::post("/api/onboarding/users").json(&json!({"name": "x"})))
        .await;
    assert_eq!(missing.status, 400, "{}", missing.text());
    assert!(
        missing.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("Message format incorrect"),
        "{}",
        missing.text()
    );
    let not_json = server
        .send(Request::post("/api/onboarding/users").body("{nope"))
        .await;
    assert_eq!(
        (not_json.status, not_json.text()),
        (400, r#"{"message":"Invalid JSON."}"#.to_owned())
    );
    let extra = server
        .send(Request::post("/api/onboarding/users").json(&json!({
            "client_id": server.client_id(), "name": "X", "username": "x", "password": "x",
            "language": "en", "admin": true
        })))
        .await;
    assert_eq!(extra.status, 400, "{}", extra.text());
    // A valid body gets the step's answer.
    let valid = server
        .send(Request::post("/api/onboarding/users").json(&json!({
            "client_id": server.client_id(), "name": "X", "username": "x", "password": "x",
            "language": "en"
        })))
        .await;
    assert_eq!(
        (valid.status, valid.text()),
        (403, r#"{"message":"User step already done"}"#.to_owned())
    );
}

/// The integration step is not one of the small-body views (http-api.md §1): 16 MiB.
#[tokio::test]
async fn the_integration_step_takes_bodies_over_64_kib() {
    let (server, owner) = onboarded().await;
    let mut body =
        json!({"client_id": server.client_id(), "redirect_uri": server.redirect_uri()}).to_string();
    body.push_str(&" ".repeat(100_000));
    let response = server
        .send(
            Request::post("/api/onboarding/integration")
                .bearer(&owner)
                .body(body),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.json()["auth_code"].is_string());
    // The users step keeps the 64 KiB limit.
    let users = server
        .send(Request::post("/api/onboarding/users").body(vec![b' '; 70_000]))
        .await;
    assert_eq!(users.status, 413);
}

/// Concurrent integration requests: exactly one gets a code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_integration_step_is_done_once_under_concurrency() {
    let (server, owner) = onboarded().await;
    let server = std::sync::Arc::new(server);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let server = server.clone();
        let owner = owner.clone();
        tasks.push(tokio::spawn(async move {
            server.send(integration(&server, &owner)).await
        }));
    }
    let mut codes = 0;
    for task in tasks {
        let response = task.await.unwrap();
        match response.status {
            200 => codes += 1,
            403 => assert_eq!(
                response.text(),
                r#"{"message":"Integration step already done"}"#
            ),
            other => panic!("{other}: {}", response.text()),
        }
    }
    assert_eq!(codes, 1);
}

/// A file store with injected faults.
#[derive(Debug, Default)]
struct Faults {
    /// The next save of `onboarding` that lists `integration` says it has started, waits to be
    /// released, then fails.
    hold: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
    /// Saves of these keys fail.
    fail: Mutex<Vec<&'static str>>,
    /// Saves of `onboarding` panic.
    panic: AtomicBool,
    /// The next request says here when it first has to wait.
    waiting: Mutex<Option<oneshot::Sender<()>>>,
}

#[derive(Debug)]
struct FaultyStorage {
    inner: FileStorage,
    faults: Arc<Faults>,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl FaultyStorage {
    async fn save_with_faults(
        &self,
        doc: &StoredDocument,
        options: SaveOptions,
    ) -> Result<(), StorageError> {
        let injected = || StorageError::Write {
            location: self.inner.location(&doc.key),
            source: std::io::Error::other("injected fault"),
        };
        if doc.key == "onboarding" {
            assert!(
                !self.faults.panic.load(Ordering::SeqCst),
                "injected panic while saving onboarding"
            );
            if doc.data["done"]
                .as_array()
                .is_some_and(|d| d.iter().any(|s| s == "integration"))
            {
                let hold = self.faults.hold.lock().unwrap().take();
                if let Some((started, release)) = hold {
                    let _ = started.send(());
                    let _ = release.await;
                    return Err(injected());
                }
            }
        }
        if self.faults.fail.lock().unwrap().contains(&doc.key.as_str()) {
            return Err(injected());
        }
        self.inner.save(doc, options).await
    }
}

// `Storage` is an `async_trait`; this is what the attribute would expand to.
impl Storage for FaultyStorage {
    fn load<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 str,
    ) -> Boxed<'async_trait, Result<Option<StoredDocument>, StorageError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.inner.load(key))
    }

    fn save<'life0, 'life1, 'async_trait>(
        &'life0 self,
        doc: &'life1 StoredDocument,
        options: SaveOptions,
    ) -> Boxed<'async_trait, Result<(), StorageError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.save_with_faults(doc, options))
    }

    fn location(&self, key: &str) -> String {
        self.inner.location(key)
    }
}

/// A server over a [`FaultyStorage`] in `config` (homeassistant and insecure_example providers).
async fn start_faulty(config: &auth_testkit::TempConfig) -> (SocketAddr, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let storage: Arc<dyn Storage> = Arc::new(FaultyStorage {
        inner: FileStorage::new(config.storage_dir()),
        faults: faults.clone(),
    });
    let ctx = PluginContext {
        storage: storage.clone(),
        clock: Arc::new(auth_core::SystemClock),
        rng: Arc::new(auth_core::OsRng),
        password_policy: auth_crypto::PasswordPolicy::fast_for_tests(),
        trusted_proxies: Vec::new(),
    };
    let mut builder = AuthManager::builder(storage);
    for (kind, config) in [
        ("homeassistant", json!({})),
        (
            "insecure_example",
            json!({"users": [{"username": "demo", "password": "demo-pass"}]}),
        ),
    ] {
        let spec = PluginSpec {
            id: None,
            name: None,
            config,
        };
        let registration = find_provider(kind).expect("provider linked");
        builder = builder.provider((registration.build)(spec, &ctx).expect("provider builds"));
    }
    let manager = builder.build().await.expect("manager");
    let http = AuthHttp::new(manager, HttpOptions::default(), None)
        .await
        .expect("http");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = http
        .router()
        .layer(axum::middleware::from_fn_with_state(
            faults.clone(),
            signal_when_waiting,
        ))
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, faults)
}

/// Tells [`Faults::waiting`] when the request has started and has to wait for the first time
/// (its body is in: for the integration step, that is the onboarding lock).
async fn signal_when_waiting(
    axum::extract::State(faults): axum::extract::State<Arc<Faults>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let signal = faults.waiting.lock().unwrap().take();
    let mut answer = std::pin::pin!(next.run(request));
    let mut signal = signal;
    std::future::poll_fn(|cx| {
        let poll = answer.as_mut().poll(cx);
        if poll.is_pending()
            && let Some(signal) = signal.take()
        {
            let _ = signal.send(());
        }
        poll
    })
    .await
}

fn client_id(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}

/// Creates the owner over `addr` and returns an access token.
async fn owner_access(addr: SocketAddr) -> String {
    let created = Request::post("/api/onboarding/users")
        .json(
            &json!({"client_id": client_id(addr), "name": "Owner", "username": "owner",
                      "password": "owner-pass", "language": "en"}),
        )
        .send(addr)
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let code = created.json()["auth_code"].as_str().unwrap().to_owned();
    let tokens = Request::post("/auth/token")
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id(addr)),
            ("code", &code),
        ])
        .send(addr)
        .await;
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    tokens.json()["access_token"].as_str().unwrap().to_owned()
}

const INTERNAL_ERROR: &str = "500 Internal Server Error\n\nServer got itself in trouble";

fn assert_internal_error(response: &auth_testkit::http::Response) {
    assert_eq!(
        (response.status, response.text()),
        (500, INTERNAL_ERROR.to_owned())
    );
    assert!(
        response
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        response.header("content-type")
    );
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
}

/// The integration step is serialised as in HA: a second request waits for the first, so when
/// the first fails to save the step, the second still completes it (instead of being told the
/// step is done by a request that then failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_integration_request_waits_for_the_first() {
    let config = auth_testkit::TempConfig::empty();
    let (addr, faults) = start_faulty(&config).await;
    let access = owner_access(addr).await;
    let (started_tx, started) = oneshot::channel();
    let (release, release_rx) = oneshot::channel();
    *faults.hold.lock().unwrap() = Some((started_tx, release_rx));
    let request = Request::post("/api/onboarding/integration")
        .bearer(&access)
        .json(&json!({"client_id": client_id(addr), "redirect_uri": format!("{}?auth_callback=1", client_id(addr))}));
    let first = tokio::spawn({
        let request = request.clone();
        async move { request.send(addr).await }
    });
    started.await.expect("the first request saves the step");
    let (waiting_tx, waiting) = oneshot::channel();
    *faults.waiting.lock().unwrap() = Some(waiting_tx);
    let second = tokio::spawn({
        let request = request.clone();
        async move { request.send(addr).await }
    });
    // The second request is waiting (for the lock the first one holds) before it is released.
    waiting.await.expect("the second request arrives");
    release.send(()).unwrap();
    let first = first.await.unwrap();
    assert_internal_error(&first);
    let second = second.await.unwrap();
    assert_eq!(second.status, 200, "{}", second.text());
    assert!(second.json()["auth_code"].is_string());
}

/// Unexpected failures are HA's plain-text 500 (http-api.md §1): a store that cannot be written
/// while onboarding or linking, and a panic (which must not drop the connection).
#[tokio::test]
async fn internal_errors_are_plain_500s() {
    let config = auth_testkit::TempConfig::empty();
    let (addr, faults) = start_faulty(&config).await;

    // Onboarding when the step cannot be saved.
    faults.fail.lock().unwrap().push("onboarding");
    let failed = Request::post("/api/onboarding/users")
        .json(
            &json!({"client_id": client_id(addr), "name": "Early", "username": "early",
                      "password": "early-pass", "language": "en"}),
        )
        .send(addr)
        .await;
    assert_internal_error(&failed);
    faults.fail.lock().unwrap().clear();
    let access = owner_access(addr).await;

    // /auth/link_user when the store cannot be written.
    let flow = Request::post("/auth/login_flow")
        .json(
            &json!({"client_id": client_id(addr), "handler": ["insecure_example", null],
                      "redirect_uri": format!("{}?auth_callback=1", client_id(addr))}),
        )
        .send(addr)
        .await
        .json();
    let done = Request::post(&format!(
        "/auth/login_flow/{}",
        flow["flow_id"].as_str().unwrap()
    ))
    .json(&json!({"client_id": client_id(addr), "username": "demo", "password": "demo-pass"}))
    .send(addr)
    .await
    .json();
    let code = done["result"].as_str().expect("a code").to_owned();
    faults.fail.lock().unwrap().push("auth");
    let linked = Request::post("/auth/link_user")
        .bearer(&access)
        .json(&json!({"client_id": client_id(addr), "code": code}))
        .send(addr)
        .await;
    assert_internal_error(&linked);
    faults.fail.lock().unwrap().clear();

    // A view that panics.
    faults.panic.store(true, Ordering::SeqCst);
    let panicked = Request::post("/api/onboarding/integration")
        .bearer(&access)
        .json(&json!({"client_id": client_id(addr),
                      "redirect_uri": format!("{}?auth_callback=1", client_id(addr))}))
        .try_send(addr)
        .await
        .expect("a panic answers instead of dropping the connection");
    assert_internal_error(&panicked);
    // The server still works.
    let status = Request::get("/api/onboarding").send(addr).await;
    assert_eq!(status.status, 200);
}
