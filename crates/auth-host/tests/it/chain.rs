//! Required MFA chains (`modules:` on a provider entry) from configuration.yaml: the issue's
//! YAML, enrolment on first login (totp), `enroll: false`, opt-in MFA on top, config errors.

use std::sync::Arc;

use auth_core::registry::PasswordPolicy;
use auth_core::{AuthManager, LoginContext, ManualClock, MfaModule};
use auth_host::{Host, HostOptions};
use serde_json::{Map, Value, json};
use time::Duration;

use crate::support::{config_dir, error, loader, parse};

/// The YAML of the issue (HA's first auth-module design), verbatim.
const ISSUE_YAML: &str = "homeassistant:
  auth_providers:
    - type: homeassistant
      modules:
        - type: totp
    - type: legacy_api_password
      api_password: !secret api_password
      modules:
        - type: insecure_example
          users: [{username: homeassistant, pin: \"123456\"}]
        - type: totp
";

struct Env {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    host: Host,
}

async fn host(files: &[(&str, &str)]) -> Env {
    let dir = config_dir(files);
    let clock = auth_testkit::clock_at(auth_testkit::FIXTURE_2026_NOW);
    let options = HostOptions {
        clock: clock.clone(),
        rng: auth_testkit::seeded_rng(5),
        password_policy: PasswordPolicy::fast_for_tests(),
        ..HostOptions::default()
    };
    let host = Host::from_config_dir_with(dir.path(), options, &loader())
        .await
        .unwrap();
    Env {
        _dir: dir,
        clock,
        host,
    }
}

impl Env {
    fn manager(&self) -> &AuthManager {
        self.host.manager()
    }

    fn now(&self) -> i64 {
        use auth_core::Clock;
        self.clock.now().unix_timestamp()
    }

    async fn start(&self, provider: &str) -> String {
        let context = LoginContext {
            ip_address: Some("127.0.0.1".parse().unwrap()),
            ..Default::default()
        };
        self.manager()
            .start_login_flow(provider, None, context)
            .await
            .unwrap()
            .expect("provider configured")
            .flow_id
    }

    async fn submit(&self, flow_id: &str, input: Value) -> Value {
        self.manager()
            .login_flows()
            .configure(flow_id, input.as_object().cloned())
            .await
            .unwrap()
            .to_json()
    }
}

fn chain_ids(manager: &AuthManager, provider: &str) -> Vec<(String, bool)> {
    manager
        .mfa_chain(provider, None)
        .iter()
        .map(|e| (e.module.id().to_owned(), e.enroll))
        .collect()
}

/// The code step of a chain: a normal form with one string field.
fn code_step(flow: &Value, field: &str, module: (&str, &str), step: (u32, u32)) -> Value {
    json!({
        "type": "form",
        "flow_id": flow["flow_id"],
        "handler": flow["handler"],
        "data_schema": [{"type": "string", "name": field, "required": true}],
        "errors": {},
        "description_placeholders": {
            "mfa_module_name": module.1,
            "mfa_module_id": module.0,
            "chain_step": step.0.to_string(),
            "chain_length": step.1.to_string(),
        },
        "last_step": null,
        "preview": null,
        "step_id": "mfa",
    })
}

#[test]
fn the_issue_yaml_loads_with_its_secret() {
    let dir = config_dir(&[
        ("configuration.yaml", ISSUE_YAML),
        ("secrets.yaml", "api_password: let-me-in\n"),
    ]);
    let config = crate::support::load(dir.path()).unwrap();
    let modules = |i: usize| -> Vec<(&str, Option<&str>, bool, Value)> {
        config.providers[i]
            .modules
            .iter()
            .map(|m| {
                (
                    m.entry.kind.as_str(),
                    m.entry.spec.id.as_deref(),
                    m.enroll,
                    m.entry.spec.config.clone(),
                )
            })
            .collect()
    };
    assert_eq!(modules(0), [("totp", None, true, json!({}))]);
    assert_eq!(
        modules(1),
        [
            (
                "insecure_example",
                None,
                true,
                json!({"users": [{"username": "homeassistant", "pin": "123456"}]})
            ),
            ("totp", None, true, json!({})),
        ]
    );
    // The providers never see `modules`; the secret is resolved.
    assert_eq!(config.providers[0].spec.config, json!({}));
    assert_eq!(
        config.providers[1].spec.config,
        json!({"api_password": "let-me-in"})
    );
    let chain = &config.providers[1].modules[0].entry;
    assert_eq!(chain.key_path, "homeassistant.auth_providers[1].modules[0]");
    assert!(
        chain.location.ends_with("configuration.yaml:9:11"),
        "{}",
        chain.location
    );
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("homeassistant.auth_providers[1].modules[0]: The insecure_example mfa module is for testing only.")),
        "{:?}",
        config.warnings
    );
}

#[tokio::test]
async fn the_issue_yaml_chain_enrols_the_legacy_user_and_then_asks_for_both_codes() {
    let env = host(&[
        ("configuration.yaml", ISSUE_YAML),
        ("secrets.yaml", "api_password: let-me-in\n"),
    ])
    .await;
    let manager = env.manager();
    assert_eq!(
        chain_ids(manager, "homeassistant"),
        [("totp".to_owned(), true)]
    );
    assert_eq!(
        chain_ids(manager, "legacy_api_password"),
        [
            ("insecure_example".to_owned(), true),
            ("totp".to_owned(), true)
        ]
    );
    // One totp instance: the default opt-in module (`Authenticator app`) is the chains' module.
    let totp = manager.mfa_module("totp").unwrap();
    for provider in ["homeassistant", "legacy_api_password"] {
        let chained = manager
            .mfa_chain(provider, None)
            .iter()
            .find(|e| e.module.id() == "totp")
            .unwrap()
            .module
            .clone();
        assert!(Arc::ptr_eq(&totp, &chained));
    }
    // The chain-only PIN module is not an opt-in module.
    assert!(manager.mfa_module("insecure_example").is_none());

    // First login: password, the configured PIN (by username), then totp enrolment.
    let flow = env.start("legacy_api_password").await;
    let pin_step = env.submit(&flow, json!({"password": "let-me-in"})).await;
    assert_eq!(
        pin_step,
        code_step(
            &pin_step,
            "pin",
            ("insecure_example", "Insecure Personal Identify Number"),
            (1, 2)
        )
    );
    assert_eq!(pin_step["handler"], json!(["legacy_api_password", null]));
    let wrong = env.submit(&flow, json!({"pin": "654321"})).await;
    assert_eq!(wrong["errors"], json!({"base": "invalid_code"}));
    assert!(manager.users().is_empty(), "no user before enrolment");
    let setup = env.submit(&flow, json!({"pin": "123456"})).await;
    assert_eq!(setup["step_id"], "mfa_setup");
    assert_eq!(
        setup["data_schema"],
        json!([{"type": "string", "name": "code", "required": true}])
    );
    assert_eq!(setup["errors"], json!({}));
    let placeholders = setup["description_placeholders"].as_object().unwrap();
    let keys: Vec<&str> = placeholders.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "mfa_module_name",
            "mfa_module_id",
            "chain_step",
            "chain_length",
            "code",
            "url",
            "qr_code",
            "google_authenticator_url",
            "authy_url"
        ]
    );
    assert_eq!(placeholders["mfa_module_name"], "Authenticator app");
    assert_eq!(placeholders["chain_step"], "2");
    let secret = placeholders["code"].as_str().unwrap().to_owned();
    assert!(
        placeholders["url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Home%20Assistant:Legacy%20API%20password%20user?secret="),
        "{placeholders:?}"
    );
    // The user the login is about was created for the enrolment (named by the provider).
    let users = manager.users();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].name.as_deref(), Some("Legacy API password user"));

    let wrong = env.submit(&flow, json!({"code": "000000"})).await;
    assert_eq!(wrong["step_id"], "mfa_setup");
    assert_eq!(wrong["errors"], json!({"base": "invalid_code"}));
    let code = mfa_totp::code_at(&secret, env.now()).unwrap();
    let done = env.submit(&flow, json!({"code": code})).await;
    assert_eq!(done["type"], "create_entry", "{done}");
    assert!(
        !done.to_string().contains(&secret),
        "the secret stays inside"
    );
    let credentials = manager.credentials_from_flow(&done["data"]).unwrap();
    assert!(!credentials.is_new);
    let user = manager.get_or_create_user(&credentials).await.unwrap();
    assert_eq!(user.id, users[0].id);
    assert!(totp.is_user_setup(&user.id).await.unwrap());

    // Next login: both codes; totp (also the opt-in default module) is asked once.
    env.clock.advance(Duration::seconds(30));
    let flow = env.start("legacy_api_password").await;
    env.submit(&flow, json!({"password": "let-me-in"})).await;
    let totp_step = env.submit(&flow, json!({"pin": "123456"})).await;
    assert_eq!(
        totp_step,
        code_step(&totp_step, "code", ("totp", "Authenticator app"), (2, 2))
    );
    let code = mfa_totp::code_at(&secret, env.now()).unwrap();
    let done = env.submit(&flow, json!({"code": code})).await;
    assert_eq!(done["type"], "create_entry", "{done}");
}

#[tokio::test]
async fn totp_in_a_chain_enrols_on_first_login_and_asks_for_codes_after() {
    let env = host(&[(
        "configuration.yaml",
        "homeassistant:
  auth_providers:
    - type: insecure_example
      users: [{username: alice, password: pw, name: Alice}]
      modules:
        - type: totp
  auth_mfa_modules: []
",
    )])
    .await;
    let manager = env.manager();
    // A totp module only in the chain: not offered for opt-in, still loaded and used.
    assert!(manager.mfa_modules().is_empty());
    let flow = env.start("insecure_example").await;
    let setup = env
        .submit(&flow, json!({"username": "alice", "password": "pw"}))
        .await;
    assert_eq!(setup["step_id"], "mfa_setup");
    assert_eq!(
        setup["description_placeholders"]["mfa_module_name"],
        "Time-based One Time Password"
    );
    assert_eq!(setup["description_placeholders"]["chain_length"], "1");
    let secret = setup["description_placeholders"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = mfa_totp::code_at(&secret, env.now()).unwrap();
    let done = env.submit(&flow, json!({"code": code})).await;
    assert_eq!(done["type"], "create_entry", "{done}");
    let alice = manager.users().pop().unwrap();
    assert_eq!(alice.name.as_deref(), Some("Alice"));
    // The enrolment is on disk, in Home Assistant's format.
    let stored: Value = serde_json::from_str(
        &std::fs::read_to_string(env.host.storage().path("auth_module.totp")).unwrap(),
    )
    .unwrap();
    assert_eq!(stored["data"]["users"][&alice.id], json!(secret));

    // Second login: the code form; each wrong code counts (totp allows five).
    env.clock.advance(Duration::seconds(30));
    let flow = env.start("insecure_example").await;
    let step = env
        .submit(&flow, json!({"username": "alice", "password": "pw"}))
        .await;
    assert_eq!(
        step,
        code_step(
            &step,
            "code",
            ("totp", "Time-based One Time Password"),
            (1, 1)
        )
    );
    for _ in 0..4 {
        let wrong = env.submit(&flow, json!({"code": "000000"})).await;
        assert_eq!(wrong["errors"], json!({"base": "invalid_code"}));
    }
    let aborted = env.submit(&flow, json!({"code": "000000"})).await;
    assert_eq!(aborted["reason"], "too_many_retry", "{aborted}");

    // And the session limit: five minutes from the flow's start.
    let flow = env.start("insecure_example").await;
    env.submit(&flow, json!({"username": "alice", "password": "pw"}))
        .await;
    env.clock
        .advance(Duration::minutes(5) + Duration::seconds(1));
    let code = mfa_totp::code_at(&secret, env.now()).unwrap();
    let late = env.submit(&flow, json!({"code": code})).await;
    assert_eq!(late["reason"], "login_expired", "{late}");
}

#[tokio::test]
async fn enroll_false_refuses_logins_that_are_not_set_up() {
    let env = host(&[(
        "configuration.yaml",
        "homeassistant:
  auth_providers:
    - type: insecure_example
      users: [{username: alice, password: pw}]
      modules:
        - type: totp
          enroll: false
",
    )])
    .await;
    let manager = env.manager();
    assert_eq!(
        chain_ids(manager, "insecure_example"),
        [("totp".to_owned(), false)]
    );
    let flow = env.start("insecure_example").await;
    let refused = env
        .submit(&flow, json!({"username": "alice", "password": "pw"}))
        .await;
    assert_eq!(
        refused,
        json!({
            "type": "abort",
            "flow_id": flow,
            "handler": ["insecure_example", null],
            "reason": "mfa_setup_required",
            "description_placeholders": null,
        })
    );
    assert!(manager.users().is_empty(), "nobody was created");

    // Once the user exists and is enrolled (e.g. linked and set up by other means), it works.
    use auth_core::AuthAccess;
    let mut data = Map::new();
    data.insert("username".into(), json!("alice"));
    let credentials = manager.new_credentials("insecure_example", None, data);
    let alice = manager.get_or_create_user(&credentials).await.unwrap();
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let mut setup = Map::new();
    setup.insert("secret".into(), json!(secret));
    manager
        .enable_user_mfa(&alice.id, "totp", &setup)
        .await
        .unwrap();
    let flow = env.start("insecure_example").await;
    let step = env
        .submit(&flow, json!({"username": "alice", "password": "pw"}))
        .await;
    assert_eq!(step["step_id"], "mfa");
    let code = mfa_totp::code_at(secret, env.now()).unwrap();
    let done = env.submit(&flow, json!({"code": code})).await;
    assert_eq!(done["type"], "create_entry", "{done}");
}

#[tokio::test]
async fn opt_in_mfa_is_asked_after_a_chain_that_knows_the_login_by_username() {
    let env = host(&[(
        "configuration.yaml",
        "homeassistant:
  auth_providers:
    - type: insecure_example
      users: [{username: alice, password: pw}]
      modules:
        - type: insecure_example
          id: door_pin
          name: Door PIN
          users:
            - {username: alice, pin: \"2468\"}
  auth_mfa_modules:
    - type: totp
",
    )])
    .await;
    let manager = env.manager();
    // First sign-in: the PIN is known by username, so no user is needed before the token
    // exchange; new credentials have no opt-in MFA.
    let flow = env.start("insecure_example").await;
    let step = env
        .submit(&flow, json!({"username": "alice", "password": "pw"}))
        .await;
    assert_eq!(
        step,
        code_step(&step, "pin", ("door_pin", "Door PIN"), (1, 1))
    );
    let done = env.submit(&flow, json!({"pin": "2468"})).await;
    assert_eq!(done["type"], "create_entry", "{done}");
    let credentials = manager.credentials_from_flow(&done["data"]).unwrap();
    assert!(credentials.is_new);
    assert!(manager.users().is_empty());
    let alice = manager.get_or_create_user(&credentials).await.unwrap();

    // She enables totp herself: the chain's PIN first, then her own module.
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let mut setup = Map::new();
    setup.insert("secret".into(), json!(secret));
    manager
        .enable_user_mfa(&alice.id, "totp", &setup)
        .await
        .unwrap();
    let flow = env.start("insecure_example").await;
    env.submit(&flow, json!({"username": "alice", "password": "pw"}))
        .await;
    let opt_in = env.submit(&flow, json!({"pin": "2468"})).await;
    assert_eq!(
        opt_in,
        json!({
            "type": "form",
            "flow_id": flow,
            "handler": ["insecure_example", null],
            "data_schema": [{"type": "string", "name": "code", "required": true}],
            "errors": {},
            "description_placeholders": {
                "mfa_module_name": "Time-based One Time Password",
                "mfa_module_id": "totp"
            },
            "last_step": null,
            "preview": null,
            "step_id": "mfa",
        })
    );
    let code = mfa_totp::code_at(secret, env.now()).unwrap();
    let done = env.submit(&flow, json!({"code": code})).await;
    assert_eq!(done["type"], "create_entry", "{done}");
}

#[test]
fn chain_errors_have_precise_messages() {
    let cases: &[(&str, &str)] = &[
        (
            "homeassistant:
  auth_providers:
    - type: example_fork
      accounts: []
      modules:
        - type: totp
        - type: sms
",
            "configuration.yaml:7:11: homeassistant.auth_providers[0].modules[1].type: unknown mfa module type 'sms'; this build supports: insecure_example, notify, totp, webauthn",
        ),
        (
            "homeassistant:
  auth_providers:
    - type: example_fork
      accounts: []
      modules:
        - type: totp
        - type: insecure_example
          users: []
        - type: totp
",
            "configuration.yaml:9:11: homeassistant.auth_providers[0].modules[2]: mfa module totp is listed twice in the modules of this auth provider (first at line 6); a chain asks for each module once",
        ),
        (
            "homeassistant:
  auth_providers:
    - type: example_fork
      accounts: []
      modules:
        - {type: totp, id: second}
        - {type: insecure_example, id: second, data: []}
",
            "configuration.yaml:7:11: homeassistant.auth_providers[0].modules[1]: mfa module second is listed twice in the modules of this auth provider (first at line 6); a chain asks for each module once",
        ),
        (
            "homeassistant:
  auth_providers:
    - type: example_fork
      accounts: []
      modules: totp
",
            "configuration.yaml:5:16: homeassistant.auth_providers[0].modules: expected a list of mfa modules (or a single mapping), found a string",
        ),
        (
            "homeassistant:
  auth_providers:
    - type: example_fork
      accounts: []
      modules:
        - type: totp
          enroll: sometimes
",
            "configuration.yaml:7:19: homeassistant.auth_providers[0].modules[0].enroll: expected a boolean (true or false), found a string",
        ),
        (
            "homeassistant:
  auth_mfa_modules: []
  auth_providers:
    - type: example_fork
      accounts: []
      modules:
        - type: totp
          digits: 8
",
            "configuration.yaml:8:11: homeassistant.auth_providers[0].modules[0] (type totp): unknown field `digits`, there are no fields",
        ),
        (
            "homeassistant:
  auth_providers:
    - type: example_fork
      accounts: []
      modules:
        - type: insecure_example
          users: [{pin: \"1\"}]
",
            "configuration.yaml:6:11: homeassistant.auth_providers[0].modules[0] (type insecure_example): data[0]: missing field `user_id` (or `username`)",
        ),
        (
            "homeassistant:
  auth_mfa_modules:
    - type: insecure_example
      data: []
  auth_providers:
    - type: example_fork
      accounts: []
      modules:
        - type: insecure_example
          users: [{username: a, pin: \"1\"}]
",
            "configuration.yaml:9:11: homeassistant.auth_providers[0].modules[0]: mfa module insecure_example is already configured at line 3 with other settings; a chain uses that module: leave out the settings, or give this entry another id",
        ),
        (
            "homeassistant:
  auth_mfa_modules:
    - {type: totp, id: second}
  auth_providers:
    - type: example_fork
      accounts: []
      modules:
        - {type: insecure_example, id: second, data: []}
",
            "configuration.yaml:8:11: homeassistant.auth_providers[0].modules[0]: mfa module id second is already used by the totp module at line 3; give this entry another id",
        ),
        (
            "homeassistant:
  auth_providers:
    - type: example_fork
      accounts: []
      modules:
        - type: totp
          name: My app
",
            "configuration.yaml:6:11: homeassistant.auth_providers[0].modules[0]: mfa module totp is already configured at configuration.yaml (default) with other settings; a chain uses that module: leave out the settings, or give this entry another id",
        ),
        (
            "homeassistant:
  auth_mfa_modules:
    - type: totp
      modules: []
",
            "configuration.yaml:4:7: homeassistant.auth_mfa_modules[0] (type totp): unknown field `modules`, there are no fields",
        ),
    ];
    let mut failures = Vec::new();
    for (text, expected) in cases {
        let message = error(text);
        if message != *expected {
            failures.push(format!(
                "{text}\n  expected: {expected}\n  got:      {message}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn chains_share_modules_by_id_and_accept_a_single_mapping() {
    let config = parse(
        "homeassistant:
  auth_mfa_modules: []
  auth_providers:
    - type: example_fork
      id: a
      accounts: []
      modules:
        type: insecure_example
        id: door
        users: [{username: kiosk, pin: \"1\"}]
    - type: example_fork
      id: b
      accounts: []
      modules:
        - type: insecure_example
          id: door
        - type: totp
          enroll: no
    - type: example_fork
      id: c
      accounts: []
      modules:
",
    )
    .unwrap();
    let summary: Vec<Vec<(String, bool)>> = config
        .providers
        .iter()
        .map(|p| {
            p.modules
                .iter()
                .map(|m| (m.module_id().to_owned(), m.enroll))
                .collect()
        })
        .collect();
    assert_eq!(
        summary,
        [
            vec![("door".to_owned(), true)],
            vec![("door".to_owned(), true), ("totp".to_owned(), false)],
            vec![],
        ]
    );
    assert_eq!(
        config.providers[0].modules[0].entry.key_path,
        "homeassistant.auth_providers[0].modules"
    );
}

#[tokio::test]
async fn chains_that_name_the_same_id_use_one_instance() {
    let env = host(&[(
        "configuration.yaml",
        "homeassistant:
  auth_mfa_modules: []
  auth_providers:
    - type: example_fork
      id: a
      accounts: []
      modules:
        - type: insecure_example
          id: door
          users: [{username: kiosk, pin: \"1\"}]
    - type: example_fork
      id: b
      accounts: []
      modules:
        - {type: insecure_example, id: door}
",
    )])
    .await;
    let manager = env.manager();
    let module = |id: &str| -> Arc<dyn MfaModule> {
        manager.mfa_chain("example_fork", Some(id))[0]
            .module
            .clone()
    };
    assert!(Arc::ptr_eq(&module("a"), &module("b")));
}

#[tokio::test]
async fn a_chain_also_runs_for_trusted_networks_including_the_bypass_login() {
    let env = host(&[(
        "configuration.yaml",
        "homeassistant:
  auth_providers:
    - type: trusted_networks
      trusted_networks: [192.168.0.0/24]
      allow_bypass_login: true
      modules:
        - type: totp
",
    )])
    .await;
    let manager = env.manager();
    let user = manager
        .create_user(Some("Kiosk".into()), vec!["system-users".into()], false)
        .await
        .unwrap();
    let context = LoginContext {
        ip_address: Some("192.168.0.10".parse().unwrap()),
        ..Default::default()
    };
    // Without a chain the bypass would finish at once; here it asks to enrol.
    let started = manager
        .start_login_flow("trusted_networks", None, context)
        .await
        .unwrap()
        .unwrap()
        .to_json();
    assert_eq!(started["step_id"], "mfa_setup", "{started}");
    let secret = started["description_placeholders"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let flow = started["flow_id"].as_str().unwrap();
    let code = mfa_totp::code_at(&secret, env.now()).unwrap();
    let done = env.submit(flow, json!({"code": code})).await;
    assert_eq!(done["type"], "create_entry", "{done}");
    let totp = manager.mfa_module("totp").unwrap();
    assert!(totp.is_user_setup(&user.id).await.unwrap());
}
