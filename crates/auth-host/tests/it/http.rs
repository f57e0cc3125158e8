//! The `http:` section: defaults, every key, Home Assistant's validation.

use std::path::Path;

use auth_core::ipnet::IpNet;
use auth_host::HttpSettings;

use crate::support::{error, parse};

#[test]
fn defaults() {
    let expected = HttpSettings {
        server_host: vec!["0.0.0.0".into(), "::".into()],
        server_port: 8123,
        ip_ban_enabled: true,
        login_attempts_threshold: -1,
        use_x_forwarded_for: false,
        trusted_proxies: vec![],
        use_x_frame_options: true,
        cors_allowed_origins: vec!["https://cast.home-assistant.io".into()],
        frontend_dir: None,
        fetch_client_redirect_uris: false,
        fetch_client_ca_file: None,
    };
    assert_eq!(HttpSettings::default(), expected);
    assert_eq!(parse("http:\n").unwrap().http, expected);
    assert_eq!(parse("api:\n").unwrap().http, expected);
}

#[test]
fn every_key() {
    let config = parse(
        "http:
  server_host: [127.0.0.1, '::1']
  server_port: 8443
  ip_ban_enabled: off
  login_attempts_threshold: 5
  use_x_forwarded_for: true
  trusted_proxies:
    - 172.30.33.0/24
    - 10.0.0.1
    - fd00::/8
  use_x_frame_options: 'false'
  cors_allowed_origins: https://example.org
  frontend_dir: www/frontend
  fetch_client_redirect_uris: yes
  ssl_certificate: /ssl/fullchain.pem
  some_future_key: whatever
",
    )
    .unwrap();
    let nets: Vec<IpNet> = ["172.30.33.0/24", "10.0.0.1/32", "fd00::/8"]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(
        config.http,
        HttpSettings {
            server_host: vec!["127.0.0.1".into(), "::1".into()],
            server_port: 8443,
            ip_ban_enabled: false,
            login_attempts_threshold: 5,
            use_x_forwarded_for: true,
            trusted_proxies: nets,
            use_x_frame_options: false,
            cors_allowed_origins: vec!["https://example.org".into()],
            frontend_dir: Some(Path::new("./www/frontend").to_owned()),
            fetch_client_redirect_uris: true,
            fetch_client_ca_file: None,
        }
    );
    let http_warnings: Vec<&String> = config
        .warnings
        .iter()
        .filter(|w| w.contains("http."))
        .collect();
    assert_eq!(
        http_warnings,
        [
            "configuration.yaml:15:3: http.ssl_certificate: hass-auth does not terminate TLS; this key is ignored (put a TLS reverse proxy in front)"
        ]
    );
}

#[test]
fn strings_are_coerced_like_home_assistant() {
    let config = parse(
        "http:\n  server_port: !env_var HASS_AUTH_TEST_PORT\n  login_attempts_threshold: '0'\n  ip_ban_enabled: 'on'\n  server_host: localhost\n",
    )
    .unwrap();
    assert_eq!(config.http.server_port, 9123);
    assert_eq!(config.http.login_attempts_threshold, 0);
    assert!(config.http.ip_ban_enabled);
    assert_eq!(config.http.server_host, ["localhost"]);
}

#[test]
fn validation() {
    let cases: &[(&str, &str)] = &[
        (
            "http: [1]\n",
            "configuration.yaml:1:7: http: expected a mapping (server_port:, trusted_proxies:, ...)",
        ),
        (
            "http:\n  server_port: 0\n",
            "configuration.yaml:2:16: http.server_port: expected a port number (1 to 65535)",
        ),
        (
            "http:\n  server_port: 65536\n",
            "configuration.yaml:2:16: http.server_port: expected a port number (1 to 65535)",
        ),
        (
            "http:\n  server_port: eighty\n",
            "configuration.yaml:2:16: http.server_port: expected a port number (1 to 65535)",
        ),
        (
            "http:\n  ip_ban_enabled: maybe\n",
            "configuration.yaml:2:19: http.ip_ban_enabled: expected a boolean (true or false), found a string",
        ),
        (
            "http:\n  login_attempts_threshold: -2\n",
            "configuration.yaml:2:29: http.login_attempts_threshold: expected a positive integer, or -1 to never ban",
        ),
        (
            "http:\n  use_x_forwarded_for: true\n",
            "configuration.yaml:2:3: http: use_x_forwarded_for and trusted_proxies must be set together (Home Assistant: some but not all values in the same group of inclusion 'proxy')",
        ),
        (
            "http:\n  trusted_proxies: 10.0.0.0/8\n",
            "configuration.yaml:2:3: http: use_x_forwarded_for and trusted_proxies must be set together (Home Assistant: some but not all values in the same group of inclusion 'proxy')",
        ),
        (
            "http:\n  use_x_forwarded_for: true\n  trusted_proxies:\n    - 10.0.0.0/8\n    - 10.0.0.1/8\n",
            "configuration.yaml:5:7: http.trusted_proxies: '10.0.0.1/8' has host bits set",
        ),
        (
            "http:\n  use_x_forwarded_for: true\n  trusted_proxies: my-proxy\n",
            "configuration.yaml:3:20: http.trusted_proxies: 'my-proxy' is not an IP network (e.g. 172.30.33.0/24)",
        ),
        (
            "http:\n  server_host: []\n",
            "configuration.yaml:2:16: http.server_host: expected a host name or IP address, or a non-empty list of them",
        ),
        (
            "http:\n  cors_allowed_origins: [{a: 1}]\n",
            "configuration.yaml:2:26: http.cors_allowed_origins[0]: expected an origin URL, found a mapping",
        ),
        (
            "http:\n  frontend_dir: [a]\n",
            "configuration.yaml:2:17: http.frontend_dir: expected a directory path, found a list",
        ),
        (
            "http:\n  fetch_client_redirect_uris: sometimes\n",
            "configuration.yaml:2:31: http.fetch_client_redirect_uris: expected a boolean (true or false), found a string",
        ),
        (
            "http:\n  fetch_client_ca_file: [a]\n",
            "configuration.yaml:2:25: http.fetch_client_ca_file: expected a PEM file path, found a list",
        ),
        (
            "http:\n  fetch_client_ca_file: no-such-ca.pem\n",
            "configuration.yaml:2:25: http.fetch_client_ca_file: ./no-such-ca.pem: No such file or directory (os error 2)",
        ),
        (
            "http:\n  server_port: 1\n  server_port: 2\n",
            "configuration.yaml:3:3: http.server_port: duplicate key 'server_port' (first defined at line 2)",
        ),
    ];
    let mut failures = Vec::new();
    for (text, expected) in cases {
        let message = error(text);
        if message != *expected {
            failures.push(format!(
                "{text:?}\n  expected: {expected}\n  got:      {message}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn forwarding_off_with_proxies_is_accepted_as_in_home_assistant() {
    let config =
        parse("http:\n  use_x_forwarded_for: false\n  trusted_proxies: 127.0.0.1\n").unwrap();
    assert!(!config.http.use_x_forwarded_for);
    assert_eq!(
        config.http.trusted_proxies,
        ["127.0.0.1/32".parse::<IpNet>().unwrap()]
    );
}

#[test]
fn fetch_client_ca_file_is_read_from_the_config_dir() {
    let ca = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../indieauth-fetch/tests/certs/ca.pem"),
    )
    .unwrap();
    let dir = crate::support::config_dir(&[
        (
            "configuration.yaml",
            "http:\n  fetch_client_redirect_uris: true\n  fetch_client_ca_file: certs/home-ca.pem\n",
        ),
        ("certs/home-ca.pem", &ca),
        ("certs/not-a-cert.pem", "hello\n"),
    ]);
    let config = crate::support::loader()
        .load(&dir.path().join("configuration.yaml"))
        .unwrap();
    assert!(config.http.fetch_client_redirect_uris);
    assert_eq!(
        config.http.fetch_client_ca_file,
        Some(dir.path().join("certs/home-ca.pem"))
    );
    std::fs::write(
        dir.path().join("configuration.yaml"),
        "http:\n  fetch_client_ca_file: certs/not-a-cert.pem\n",
    )
    .unwrap();
    let message = crate::support::loader()
        .load(&dir.path().join("configuration.yaml"))
        .unwrap_err()
        .to_string();
    let expected = format!(
        "configuration.yaml:2:25: http.fetch_client_ca_file: {}: no PEM certificate in the file",
        dir.path().join("certs/not-a-cert.pem").display()
    );
    assert!(message.ends_with(&expected), "{message}");
}
