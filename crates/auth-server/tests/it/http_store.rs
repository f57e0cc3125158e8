//! `.storage/http` (Home Assistant 2026.8+) is read: a directory behind a reverse proxy that is
//! configured only there works unchanged.

use auth_testkit::TempConfig;
use auth_testkit::http::Request;

use crate::support::{BASIC_CONFIG, serve, write_config};

#[tokio::test]
async fn a_proxy_configured_only_in_storage_http_is_trusted() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap();
    // As Home Assistant 2026.8+ writes it (the YAML `http:` block was migrated away).
    std::fs::create_dir_all(config.storage_dir()).unwrap();
    std::fs::write(
        config.storage_dir().join("http"),
        r#"{
  "version": 3,
  "minor_version": 1,
  "key": "http",
  "data": {
    "use_x_forwarded_for": true,
    "trusted_proxies": ["127.0.0.0/8"],
    "ip_ban_enabled": true,
    "login_attempts_threshold": -1,
    "cors_allowed_origins": ["https://cast.home-assistant.io"],
    "use_x_frame_options": true,
    "ssl_profile": "modern"
  }
}"#,
    )
    .unwrap();
    let server = serve(config.path(), &["-c", dir])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let proxied = Request::get("/.well-known/oauth-authorization-server")
        .header("X-Forwarded-For", "203.0.113.5")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "home.example.org")
        .send(server.addr)
        .await;
    assert_eq!(proxied.status, 200, "{}", proxied.text());
    assert_eq!(proxied.json()["issuer"], "https://home.example.org");
    assert_eq!(server.stop().await, 0);

    // The same directory without the store: the proxy is not trusted (Home Assistant's 400).
    std::fs::remove_file(config.storage_dir().join("http")).unwrap();
    let server = serve(config.path(), &["-c", dir])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let proxied = Request::get("/.well-known/oauth-authorization-server")
        .header("X-Forwarded-For", "203.0.113.5")
        .send(server.addr)
        .await;
    assert_eq!(proxied.status, 400, "{}", proxied.text());
    assert_eq!(server.stop().await, 0);
}
