//! The example host over real HTTP on 127.0.0.1: onboarding and tokens through hass-auth's
//! merged API, the host's own routes behind `AuthHttp::layer` (issue 16 item 1).

use std::net::SocketAddr;

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use serde_json::json;

const CONFIG: &str = "homeassistant:
  auth_providers:
    - type: homeassistant
http:
  login_attempts_threshold: 2
";

struct Running {
    addr: SocketAddr,
    _config: TempConfig,
    _host: auth_host::Host,
}

async fn start() -> Running {
    let config = TempConfig::empty();
    std::fs::write(config.path().join("configuration.yaml"), CONFIG).unwrap();
    let host = auth_host::Host::from_config_dir(config.path())
        .await
        .expect("the config loads");
    let app = host_app::start(&host).await.expect("the host starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(host_app::serve(listener, app));
    Running {
        addr,
        _config: config,
        _host: host,
    }
}

/// Creates the owner through hass-auth's onboarding API and redeems the code: an access token.
async fn owner_token(addr: SocketAddr) -> String {
    let client_id = format!("http://{addr}/");
    let created = Request::post("/api/onboarding/users")
        .json(
            &json!({"client_id": client_id, "name": "Owner", "username": "owner",
                      "password": "owner-pass", "language": "en"}),
        )
        .send(addr)
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let code = created.json()["auth_code"].as_str().unwrap().to_owned();
    let tokens = Request::post("/auth/token")
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
        ])
        .send(addr)
        .await;
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    tokens.json()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_serves_its_routes_and_ours_and_protects_its_own() {
    let running = start().await;
    let addr = running.addr;

    // The host's own routes outside the layer, and its fallback.
    let home = Request::get("/").send(addr).await;
    assert_eq!(
        (home.status, home.text()),
        (200, "Welcome to the host app".to_owned())
    );
    let api = Request::get("/api/").send(addr).await;
    assert_eq!(api.text(), "host API");
    let unknown = Request::get("/nope").send(addr).await;
    assert_eq!(
        (unknown.status, unknown.text()),
        (404, "The host has no such page".to_owned())
    );
    // hass-auth's sign-in page.
    let page = Request::get("/auth/authorize").send(addr).await;
    assert_eq!(page.status, 200);

    // A protected route: 401 with the way to a token, then 200 with one.
    let refused = Request::get("/api/states").send(addr).await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("www-authenticate"),
        Some(
            format!(
                "Bearer resource_metadata=\"http://{addr}/.well-known/oauth-protected-resource\""
            )
            .as_str()
        )
    );
    let token = owner_token(addr).await;
    let states = Request::get("/api/states").bearer(&token).send(addr).await;
    assert_eq!(states.status, 200, "{}", states.text());
    assert_eq!(states.json()["viewer"], "Owner");
    assert_eq!(states.header("x-content-type-options"), Some("nosniff"));

    // A signed path opens one GET without a token.
    let signed = Request::post("/api/sign_path")
        .bearer(&token)
        .header("content-type", "application/json")
        .json(&json!({"path": "/api/camera_proxy/camera.door"}))
        .send(addr)
        .await;
    assert_eq!(signed.status, 200, "{}", signed.text());
    let signed = signed.json()["path"].as_str().unwrap().to_owned();
    let snapshot = Request::get(&signed).send(addr).await;
    assert_eq!(
        (snapshot.status, snapshot.text()),
        (200, "snapshot of camera.door for Owner".to_owned())
    );
    let other = signed.replace("camera.door", "camera.garden");
    assert_eq!(Request::get(&other).send(addr).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_on_host_routes_get_the_client_banned() {
    let running = start().await;
    let addr = running.addr;
    let token = owner_token(addr).await;
    // `login_attempts_threshold: 2`, from a second loopback address.
    for _ in 0..2 {
        let wrong = Request::get("/api/states")
            .bearer("wrong")
            .from_ip("127.0.0.2")
            .send(addr)
            .await;
        assert_eq!(wrong.status, 401);
    }
    let banned = Request::get("/api/states")
        .bearer(&token)
        .from_ip("127.0.0.2")
        .send(addr)
        .await;
    assert_eq!(banned.status, 403);
    let login = Request::get("/auth/providers")
        .from_ip("127.0.0.2")
        .send(addr)
        .await;
    assert_eq!(login.status, 403);
    // Other clients are not affected.
    let fine = Request::get("/api/states").bearer(&token).send(addr).await;
    assert_eq!(fine.status, 200);
}
