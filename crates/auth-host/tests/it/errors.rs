//! Broken configurations: every one is an error with file:line:column and key path, never a panic.

use proptest::prelude::*;

use crate::support::{error, parse};

#[test]
fn broken_configs_have_precise_messages() {
    let cases: &[(&str, &str)] = &[
        (
            "homeassistant:\n  auth_providers: [\n",
            "configuration.yaml:3:1: invalid YAML: ",
        ),
        ("a: 1\n a: 2\n", "configuration.yaml:2:3: invalid YAML: "),
        (
            "- just\n- a list\n",
            "configuration.yaml:1:1: (top level): expected a mapping of integrations (homeassistant:, http:, ...)",
        ),
        (
            "homeassistant: 5\n",
            "configuration.yaml:1:16: homeassistant: expected a mapping (name:, auth_providers:, ...)",
        ),
        (
            "homeassistant:\n  auth_providers: example_fork\n",
            "configuration.yaml:2:19: homeassistant.auth_providers: expected a list of auth providers (or a single mapping), found a string",
        ),
        (
            "homeassistant:\n  auth_providers:\n    - example_fork\n",
            "configuration.yaml:3:7: homeassistant.auth_providers[0]: expected a mapping with a 'type' key, found a string",
        ),
        (
            "homeassistant:\n  auth_providers:\n    - name: no type\n",
            "configuration.yaml:3:7: homeassistant.auth_providers[0]: required key 'type' not provided",
        ),
        (
            "homeassistant:\n  auth_providers:\n    - type: 5\n",
            "configuration.yaml:3:13: homeassistant.auth_providers[0].type: expected a string, found an integer",
        ),
        (
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      id: [a]\n      accounts: []\n",
            "configuration.yaml:4:11: homeassistant.auth_providers[0].id: expected a string, found a list",
        ),
        (
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      name: yes\n      accounts: []\n",
            "configuration.yaml:4:13: homeassistant.auth_providers[0].name: expected a string, found a boolean",
        ),
        (
            "homeassistant:\n  auth_mfa_modules:\n    - type: totp\n      type: notify\n",
            "configuration.yaml:4:7: homeassistant.auth_mfa_modules[0].type: duplicate key 'type' (first defined at line 3)",
        ),
        (
            "homeassistant:\n  auth_providers: []\n  auth_providers: []\n",
            "configuration.yaml:3:3: homeassistant.auth_providers: duplicate key 'auth_providers' (first defined at line 2)",
        ),
        (
            "http:\n  server_port: 1\nhttp:\n  server_port: 2\n",
            "configuration.yaml:3:1: http: duplicate key 'http' (first defined at line 1)",
        ),
        // The plugin's own (serde) messages, pointed at the offending key.
        (
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts: []\n      acounts: []\n",
            "configuration.yaml:5:7: homeassistant.auth_providers[0] (type example_fork): unknown field `acounts`, expected `accounts`",
        ),
        (
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts:\n        - login: a\n          secret: b\n          display: c\n",
            "configuration.yaml:7:11: homeassistant.auth_providers[0] (type example_fork): unknown field `display`, expected one of `login`, `secret`, `display_name`",
        ),
        (
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n",
            "configuration.yaml:3:7: homeassistant.auth_providers[0] (type example_fork): missing field `accounts`",
        ),
        (
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts: {login: a}\n",
            "configuration.yaml:3:7: homeassistant.auth_providers[0] (type example_fork): invalid type: map, expected a sequence",
        ),
        (
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts:\n        - {login: a, secret: 1}\n",
            "configuration.yaml:3:7: homeassistant.auth_providers[0] (type example_fork): invalid type: integer `1`, expected a string",
        ),
        (
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts:\n        - {login: a, secret: b}\n        - {login: a, secret: c}\n",
            "configuration.yaml:3:7: homeassistant.auth_providers[0] (type example_fork): accounts: login 'a' is listed twice",
        ),
        (
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts:\n        - {login: a, secret: b, login: c}\n",
            "configuration.yaml:5:33: homeassistant.auth_providers[0].accounts[0].login: duplicate key 'login' (first defined at line 5)",
        ),
        (
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts:\n        - {[a]: b}\n",
            "configuration.yaml:5:12: homeassistant.auth_providers[0].accounts[0]: mapping keys must be scalars",
        ),
        (
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts: *nothing\n",
            "configuration.yaml:4:17: invalid YAML: ",
        ),
        (
            "homeassistant:\n  auth_providers:\n    - <<: 5\n      type: example_fork\n",
            "configuration.yaml:3:11: homeassistant.auth_providers[0].<<: a merge key (<<) takes a mapping or a list of mappings",
        ),
    ];
    let mut failures = Vec::new();
    for (text, expected) in cases {
        let message = error(text);
        let ok = if expected.ends_with(": ") {
            message.starts_with(expected)
        } else {
            message == *expected
        };
        if !ok {
            failures.push(format!(
                "{text:?}\n  expected: {expected}\n  got:      {message}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn secret_values_are_not_shown_in_plugin_errors() {
    let dir = crate::support::config_dir(&[
        (
            "configuration.yaml",
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts: !secret accounts\n",
        ),
        ("secrets.yaml", "accounts: hunter2-the-password\n"),
    ]);
    let message = crate::support::load(dir.path()).unwrap_err().to_string();
    assert!(!message.contains("hunter2"), "{message}");
    assert_eq!(
        crate::support::relative(&message, dir.path()),
        "configuration.yaml:3:7: homeassistant.auth_providers[0] (type example_fork): invalid type: string \"<redacted>\", expected a sequence"
    );
}

#[test]
fn secret_numbers_are_not_shown_either() {
    let dir = crate::support::config_dir(&[
        (
            "configuration.yaml",
            "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts:\n        - {login: a, secret: !secret pin}\n",
        ),
        ("secrets.yaml", "pin: 987654\n"),
    ]);
    let message = crate::support::load(dir.path()).unwrap_err().to_string();
    assert_eq!(
        crate::support::relative(&message, dir.path()),
        "configuration.yaml:3:7: homeassistant.auth_providers[0] (type example_fork): invalid type: integer `<redacted>`, expected a string"
    );
}

#[test]
fn a_config_that_is_not_a_file_is_a_read_error() {
    let dir = crate::support::config_dir(&[]);
    let message = crate::support::load(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("configuration.yaml: cannot read the configuration: "),
        "{message}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary text never panics the loader.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse(&text);
    }

    /// Text made of YAML's structural characters never panics the loader.
    #[test]
    fn yaml_ish_text_never_panics(
        text in proptest::collection::vec(
            prop_oneof![
                Just("homeassistant:"), Just("auth_providers:"), Just("http:"), Just("\n"), Just("  "),
                Just("- "), Just("type: "), Just("example_fork"), Just("accounts: "), Just("["), Just("]"),
                Just("{"), Just("}"), Just(", "), Just(": "), Just("&a "), Just("*a"), Just("<<: "),
                Just("!secret x"), Just("!include y"), Just("!env_var Z"), Just("!!str "), Just("'"),
                Just("\""), Just("|"), Just(">"), Just("#"), Just("---"), Just("..."), Just("? "),
                Just("%TAG ! tag:x,2000:\n"), Just("server_port: "), Just("trusted_proxies: "), Just("1"),
            ],
            0..40,
        )
    ) {
        let _ = parse(&text.concat());
    }
}

#[cfg(feature = "provider-trusted-networks")]
#[test]
fn a_misspelt_trusted_networks_key_points_at_its_line() {
    let message = error(
        "homeassistant:
  auth_providers:
    - type: example_fork
      accounts: []
    - type: trusted_networks
      trusted_network:
        - 192.168.0.0/24
",
    );
    assert!(
        message.starts_with(
            "configuration.yaml:6:7: homeassistant.auth_providers[1] (type trusted_networks): unknown field `trusted_network`, expected one of "
        ),
        "{message}"
    );
}

#[test]
fn plugin_errors_in_included_files_point_into_them() {
    let dir = crate::support::config_dir(&[
        (
            "configuration.yaml",
            "homeassistant:\n  auth_providers: !include providers.yaml\n",
        ),
        (
            "providers.yaml",
            "# kiosks\n- type: example_fork\n  accounts:\n    - login: a\n      secret: b\n      colour: red\n",
        ),
    ]);
    let message = crate::support::load(dir.path()).unwrap_err().to_string();
    assert_eq!(
        crate::support::relative(&message, dir.path()),
        "providers.yaml:6:7: homeassistant.auth_providers[0] (type example_fork): unknown field `colour`, expected one of `login`, `secret`, `display_name`"
    );
}

/// An alias "bomb" (each anchor refers to the one before ten times) is refused quickly, never
/// expanded to 10^9 nodes.
#[test]
fn alias_bombs_do_not_explode() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    text.push_str(
        "homeassistant:\n  auth_providers:\n    - type: example_fork\n      accounts: *a9\n",
    );
    let started = std::time::Instant::now();
    let message = error(&text);
    assert!(message.contains("expands to more than"), "{message}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
