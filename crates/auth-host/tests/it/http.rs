//! The `http:` section: defaults, every key, Home Assistant's validation.

use std::path::Path;

use auth_core::ipnet::IpNet;
use auth_host::HttpOptions;

use crate::support::{error, parse};

#[test]
fn defaults() {
    let expected = HttpOptions {
        server_host: vec!["0.0.0.0".into(), "::".into()],
        server_port: 8123,
        ip_ban_enabled: true,
        login_attempts_threshold: -1,
        ban_duration: Some(std::time::Duration::from_secs(86_400)),
        use_x_forwarded_for: false,
        trusted_proxies: vec![],
        use_x_frame_options: true,
        cors_allowed_origins: vec!["https://cast.home-assistant.io".into()],
        frontend_dir: None,
        fetch_client_redirect_uris: false,
        fetch_client_ca_file: None,
        ssl_certificate: None,
        ssl_key: None,
        ssl_peer_certificate: None,
        ssl_profile: "modern".into(),
        // Not `http:` keys: auth-http's own limits.
        ..HttpOptions::default()
    };
    assert_eq!(HttpOptions::default(), expected);
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
  ban_duration: 600
  use_x_forwarded_for: true
  trusted_proxies:
    - 172.30.33.0/24
    - 10.0.0.1
    - fd00::/8
  use_x_frame_options: 'false'
  cors_allowed_origins: https://example.org
  frontend_dir: www/frontend
  fetch_client_redirect_uris: yes
  ssl_profile: intermediate
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
        HttpOptions {
            server_host: vec!["127.0.0.1".into(), "::1".into()],
            server_port: 8443,
            ip_ban_enabled: false,
            login_attempts_threshold: 5,
            ban_duration: Some(std::time::Duration::from_secs(600)),
            use_x_forwarded_for: true,
            trusted_proxies: nets,
            use_x_frame_options: false,
            cors_allowed_origins: vec!["https://example.org".into()],
            frontend_dir: Some(Path::new("./www/frontend").to_owned()),
            fetch_client_redirect_uris: true,
            fetch_client_ca_file: None,
            ssl_certificate: None,
            ssl_key: None,
            ssl_peer_certificate: None,
            ssl_profile: "intermediate".into(),
            ..HttpOptions::default()
        }
    );
    assert!(
        !config.warnings.iter().any(|w| w.contains("http.")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn ban_duration_is_seconds_or_forever() {
    let config = parse("http:\n  ban_duration: forever\n").unwrap();
    assert_eq!(
        config.http.ban_duration, None,
        "Home Assistant's permanent bans"
    );
    let config = parse("http:\n  ban_duration: '3600'\n").unwrap();
    assert_eq!(
        config.http.ban_duration,
        Some(std::time::Duration::from_secs(3600))
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
            "http:\n  ban_duration: 0\n",
            "configuration.yaml:2:17: http.ban_duration: expected a number of seconds (at least 1) or 'forever', found an integer",
        ),
        (
            "http:\n  ban_duration: a day\n",
            "configuration.yaml:2:17: http.ban_duration: expected a number of seconds (at least 1) or 'forever', found a string",
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

#[test]
fn ssl_files_must_exist_and_are_relative_to_the_config_dir() {
    let dir = crate::support::config_dir(&[
        (
            "configuration.yaml",
            "http:\n  ssl_certificate: ssl/cert.pem\n  ssl_key: ssl/key.pem\n",
        ),
        ("ssl/cert.pem", "x"),
        ("ssl/key.pem", "x"),
    ]);
    let config = auth_host::load_config(&dir.path().join("configuration.yaml")).unwrap();
    assert_eq!(
        config.http.ssl_certificate,
        Some(dir.path().join("ssl/cert.pem"))
    );
    assert_eq!(config.http.ssl_key, Some(dir.path().join("ssl/key.pem")));
    std::fs::remove_file(dir.path().join("ssl/key.pem")).unwrap();
    let message = auth_host::load_config(&dir.path().join("configuration.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(":3:12: http.ssl_key: not a file: ") && message.ends_with("ssl/key.pem"),
        "{message}"
    );
    assert_eq!(
        error("http:\n  ssl_profile: old\n"),
        "configuration.yaml:2:16: http.ssl_profile: expected 'modern' or 'intermediate', found a string"
    );
}

/// A `.storage/http` as Home Assistant 2026.8+ keeps it.
fn http_store(version: u64, data: &str) -> String {
    format!(r#"{{"version": {version}, "minor_version": 1, "key": "http", "data": {data}}}"#)
}

#[test]
fn storage_http_holds_the_settings_in_force_since_2026_8() {
    let yaml = "http:\n  server_port: 8300\n  login_attempts_threshold: 5\n";
    let store = http_store(
        3,
        r#"{"use_x_forwarded_for": true, "trusted_proxies": ["10.0.0.0/8", "fd00::1"], "login_attempts_threshold": 3, "ip_ban_enabled": true, "cors_allowed_origins": ["https://cast.home-assistant.io"], "use_x_frame_options": true, "ssl_profile": "modern", "server_port": 8300}"#,
    );
    let dir =
        crate::support::config_dir(&[("configuration.yaml", yaml), (".storage/http", &store)]);
    let config = auth_host::load_config(&dir.path().join("configuration.yaml")).unwrap();
    let nets: Vec<IpNet> = ["10.0.0.0/8", "fd00::1/128"]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(
        config.http,
        HttpOptions {
            server_port: 8300,
            login_attempts_threshold: 3,
            use_x_forwarded_for: true,
            trusted_proxies: nets,
            ..HttpOptions::default()
        }
    );
    let warnings: Vec<&String> = config
        .warnings
        .iter()
        .filter(|w| w.contains(".storage/http"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("http.login_attempts_threshold in configuration.yaml is ignored: "),
        "{}",
        warnings[0]
    );
}

#[test]
fn a_version_1_storage_http_is_home_assistants_recovery_copy_and_not_read() {
    let store = http_store(1, r#"{"server_port": 9999, "login_attempts_threshold": 1}"#);
    let dir = crate::support::config_dir(&[
        ("configuration.yaml", "http:\n  server_port: 8300\n"),
        (".storage/http", &store),
    ]);
    let config = auth_host::load_config(&dir.path().join("configuration.yaml")).unwrap();
    assert_eq!(config.http.server_port, 8300);
    assert_eq!(config.http.login_attempts_threshold, -1);
}

#[test]
fn an_unusable_storage_http_is_refused_with_its_name() {
    let cases = [
        ("{nope".to_owned(), "invalid JSON"),
        (
            http_store(4, "{}"),
            "unsupported version 4 (newest understood: 3)",
        ),
        (
            r#"{"version": 3, "key": "auth", "data": {}}"#.to_owned(),
            "the envelope's key is 'auth', expected 'http'",
        ),
        (
            http_store(
                3,
                r#"{"trusted_proxies": ["10.0.0.1/8"], "use_x_forwarded_for": true}"#,
            ),
            "data.trusted_proxies[0]: '10.0.0.1/8' has host bits set",
        ),
        (
            http_store(3, r#"{"server_port": 0}"#),
            "data.server_port: expected a port number (1 to 65535)",
        ),
        (
            http_store(3, r#"{"use_x_forwarded_for": true}"#),
            "use_x_forwarded_for is on but trusted_proxies is empty",
        ),
    ];
    for (store, expected) in cases {
        let dir = crate::support::config_dir(&[
            ("configuration.yaml", "http:\n"),
            (".storage/http", &store),
        ]);
        let message = auth_host::load_config(&dir.path().join("configuration.yaml"))
            .unwrap_err()
            .to_string();
        let path = dir.path().join(".storage/http");
        let wanted = format!("{}: {expected}", path.display());
        assert!(message.starts_with(&wanted), "{message}\nwanted: {wanted}");
    }
}
