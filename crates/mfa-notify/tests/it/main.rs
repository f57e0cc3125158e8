//! The notify module against a real `AuthManager` over file storage: the conformance suite with
//! a test command, a login end to end through a local webhook receiver, Home Assistant's store
//! read as is, and a command that hangs.

use std::path::Path;
use std::sync::Arc;

use auth_core::flow_engine::FlowResult;
use auth_core::registry::{PasswordPolicy, find_mfa_module};
use auth_core::{AuthAccess, AuthManager, LoginContext, MfaModule, PluginContext, PluginSpec};
use auth_testkit::TempConfig;
use auth_testkit::conformance::{MfaCase, check_mfa_module, manager_from_registry, object};
use auth_testkit::fakes::PasswordProvider;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use mfa_notify as _;

/// The code in the last message a `tee -a FILE` delivery appended.
fn last_code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let line = text.lines().last().expect("a message was delivered");
    line.split(' ').next().unwrap().to_owned()
}

#[tokio::test]
async fn passes_the_mfa_conformance_suite_with_a_test_command() {
    let config = TempConfig::empty();
    let inbox = config.path().join("inbox.txt");
    let module_config = json!({
        "services": {"file": {"command": ["tee", "-a", inbox.to_str().unwrap()]}}
    });
    let manager = manager_from_registry(&config, &[], &[("notify", module_config)]).await;
    let user = manager
        .create_user(Some("Alice".into()), vec![], false)
        .await
        .unwrap();
    let case = MfaCase {
        module_id: "notify".into(),
        user_id: user.id.clone(),
    };
    check_mfa_module(
        &manager,
        &case,
        |form: &Value| match form["step_id"].as_str() {
            Some("init") => {
                assert_eq!(
                    form["data_schema"][0],
                    json!({"type": "select", "options": [["file", null]], "name": "notify_service", "required": true})
                );
                object(json!({"notify_service": "file"}))
            }
            Some("setup") => {
                assert_eq!(form["description_placeholders"]["notify_service"], "file");
                object(json!({"code": last_code(&inbox)}))
            }
            other => panic!("unexpected step {other:?}"),
        },
        || object(json!({"code": last_code(&inbox)})),
        object(json!({"code": "000000x"})),
    )
    .await;
    let messages = std::fs::read_to_string(&inbox).unwrap();
    assert!(
        messages
            .lines()
            .all(|l| l.ends_with(" is your Home Assistant login code")),
        "{messages}"
    );
}

/// A webhook receiver on 127.0.0.1: answers 200 and hands over each JSON body.
async fn webhook_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = stream.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buffer.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buffer).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
                        assert!(
                            head.to_ascii_lowercase()
                                .contains("content-type: application/json")
                        );
                        break Some(body[..length].to_owned());
                    }
                }
            };
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            if let Some(body) = body {
                let _ = tx.send(serde_json::from_str(&body).unwrap());
            }
        }
    });
    (url, rx)
}

/// A manager with a password provider (`alice`) and the notify module built from `config`.
async fn manager_with(
    config: &TempConfig,
    module_config: Value,
) -> (AuthManager, Arc<dyn MfaModule>, String) {
    let storage = config.storage();
    let ctx = PluginContext {
        storage: storage.clone(),
        clock: Arc::new(auth_core::SystemClock),
        rng: Arc::new(auth_core::OsRng),
        password_policy: PasswordPolicy::fast_for_tests(),
        trusted_proxies: Vec::new(),
    };
    let spec = PluginSpec {
        id: None,
        name: None,
        config: module_config,
    };
    let module = (find_mfa_module("notify").unwrap().build)(spec, &ctx).unwrap();
    let provider = Arc::new(PasswordProvider::with_users("test", &[("alice", "pw")]));
    let manager = AuthManager::builder(storage)
        .provider(provider)
        .mfa_module(module.clone())
        .build()
        .await
        .unwrap();
    let user = manager
        .create_user(Some("Alice".into()), vec!["system-users".into()], false)
        .await
        .unwrap();
    let mut data = Map::new();
    data.insert("username".into(), json!("alice"));
    let credentials = AuthAccess::new_credentials(&manager, "test", None, data);
    manager.link_user(&user.id, credentials).await.unwrap();
    (manager, module, user.id)
}

async fn submit(manager: &AuthManager, flow_id: &str, input: Value) -> FlowResult {
    manager
        .login_flows()
        .configure(flow_id, input.as_object().cloned())
        .await
        .unwrap()
        .result
}

#[tokio::test]
async fn a_login_gets_its_code_through_a_webhook() {
    let (url, mut inbox) = webhook_receiver().await;
    let config = TempConfig::empty();
    let (manager, module, user_id) = manager_with(
        &config,
        json!({"message": "Code {} for your home", "services": {"phone": {"webhook": url}}}),
    )
    .await;
    module
        .setup_user(
            &user_id,
            &object(json!({"notify_service": "phone", "target": "+15550100"})),
        )
        .await
        .unwrap();
    let start = manager
        .start_login_flow("test", None, LoginContext::default())
        .await
        .unwrap()
        .unwrap();
    let shown = submit(
        &manager,
        &start.flow_id,
        json!({"username": "alice", "password": "pw"}),
    )
    .await;
    assert_eq!(shown.step_id(), Some("mfa"), "{shown:?}");
    let sent = inbox.recv().await.unwrap();
    assert_eq!(sent["target"], json!(["+15550100"]));
    let message = sent["message"].as_str().unwrap();
    let code = message
        .strip_prefix("Code ")
        .and_then(|m| m.strip_suffix(" for your home"))
        .unwrap()
        .to_owned();
    assert_eq!(code.len(), 6);

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let again = submit(&manager, &start.flow_id, json!({"code": wrong})).await;
    let FlowResult::Form { errors, .. } = again else {
        panic!("expected the form again: {again:?}")
    };
    assert_eq!(errors, Some(object(json!({"base": "invalid_code"}))));
    assert!(inbox.try_recv().is_err(), "a wrong code does not resend");
    let done = submit(&manager, &start.flow_id, json!({"code": code})).await;
    assert!(matches!(done, FlowResult::CreateEntry { .. }), "{done:?}");
    assert!(
        !module
            .validate(&user_id, &object(json!({"code": code})))
            .await
            .unwrap(),
        "a code is used once"
    );
}

#[tokio::test]
async fn home_assistants_store_is_read_as_is_and_written_back_in_its_shape() {
    let config = TempConfig::empty();
    std::fs::create_dir_all(config.storage_dir()).unwrap();
    // The shape storage.md §2.4 gives (HA writes it with 2-space indents).
    std::fs::write(
        config.storage_dir().join("auth_module.notify"),
        r#"{
  "version": 1,
  "minor_version": 1,
  "key": "auth_module.notify",
  "data": {
    "users": {
      "8f7b3c1d2e4a4b6c9d0e1f2a3b4c5d6e": {
        "notify_service": "mobile_app_phone",
        "target": null
      }
    }
  }
}"#,
    )
    .unwrap();
    let (_manager, module, user_id) = manager_with(
        &config,
        json!({"services": {"mobile_app_phone": {"command": ["true"]}}}),
    )
    .await;
    assert!(
        module
            .is_user_setup("8f7b3c1d2e4a4b6c9d0e1f2a3b4c5d6e")
            .await
            .unwrap()
    );
    assert!(!module.is_user_setup(&user_id).await.unwrap());
    module
        .setup_user(
            &user_id,
            &object(json!({"notify_service": "mobile_app_phone"})),
        )
        .await
        .unwrap();
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(config.storage_dir().join("auth_module.notify")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        saved["data"]["users"]["8f7b3c1d2e4a4b6c9d0e1f2a3b4c5d6e"],
        json!({"notify_service": "mobile_app_phone", "target": null})
    );
    assert_eq!(
        saved["data"]["users"][&user_id],
        json!({"notify_service": "mobile_app_phone", "target": null})
    );

    // A damaged store is refused with its name, never read as "nobody enrolled".
    std::fs::write(
        config.storage_dir().join("auth_module.notify"),
        r#"{"version": 1, "key": "auth_module.notify", "data": {"users": {"u": {"target": null}}}}"#,
    )
    .unwrap();
    let ctx = PluginContext {
        storage: config.storage(),
        clock: Arc::new(auth_core::SystemClock),
        rng: Arc::new(auth_core::OsRng),
        password_policy: PasswordPolicy::fast_for_tests(),
        trusted_proxies: Vec::new(),
    };
    let spec = PluginSpec {
        id: None,
        name: None,
        config: json!({}),
    };
    let fresh = (find_mfa_module("notify").unwrap().build)(spec, &ctx).unwrap();
    let error = fresh.initialize().await.unwrap_err().to_string();
    assert!(
        error.contains("auth_module.notify") && error.contains("notify_service"),
        "{error}"
    );
}

#[tokio::test]
async fn a_delivery_that_fails_or_hangs_fails_the_login_step_with_a_clear_error() {
    let config = TempConfig::empty();
    let (_manager, module, user_id) = manager_with(
        &config,
        json!({"services": {
            "slow": {"command": ["sleep", "30"], "timeout": 1},
            "broken": {"command": ["false"]},
            "gone": {"webhook": "http://127.0.0.1:9/nothing-listens", "timeout": 5}
        }}),
    )
    .await;
    for (service, expected) in [
        (
            "slow",
            "notify service 'slow': sleep did not finish within 1 s and was killed",
        ),
        ("broken", "notify service 'broken': false failed"),
        ("gone", "notify service 'gone': 127.0.0.1: cannot connect"),
    ] {
        module
            .setup_user(&user_id, &object(json!({"notify_service": service})))
            .await
            .unwrap();
        let error = module.begin_login(&user_id).await.unwrap_err().to_string();
        assert!(error.starts_with(expected), "{service}: {error}");
    }
}
