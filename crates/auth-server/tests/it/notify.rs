//! The `notify` MFA module through the real binary: enrolment over the websocket and a sign-in
//! over HTTP, the codes delivered by a test command (`tee -a inbox`).

use std::path::Path;
use std::time::Duration;

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use serde_json::{Value, json};

use crate::client::{CLIENT_ID, REDIRECT_URI, Ws, exchange, onboard};
use crate::support::{serve, write_config};

/// The code of the newest message in `inbox`, once there are `count` messages.
async fn code_number(inbox: &Path, count: usize) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(inbox).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() >= count {
            let line = lines[count - 1];
            assert!(
                line.ends_with(" is your Home Assistant login code"),
                "{line}"
            );
            return line.split(' ').next().unwrap().to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "message {count} never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn enrol_over_the_websocket_and_sign_in_with_a_code_sent_by_a_command() {
    let config = TempConfig::empty();
    let inbox = config.path().join("inbox.txt");
    write_config(
        config.path(),
        &format!(
            "homeassistant:\n  auth_providers:\n    - type: homeassistant\n  auth_mfa_modules:\n    - type: totp\n    - type: notify\n      services:\n        file:\n          command: [tee, -a, '{}']\n",
            inbox.display()
        ),
    );
    let dir = config.path().to_str().unwrap();
    let server = serve(config.path(), &["-c", dir])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let owner = onboard(server.addr, "owner", "owner-pass").await;
    let mut ws = Ws::connect(server.addr, owner["access_token"].as_str().unwrap())
        .await
        .unwrap();
    let init = ws
        .ok(json!({"type": "auth/setup_mfa", "mfa_module_id": "notify"}))
        .await
        .unwrap();
    assert_eq!(init["step_id"], "init", "{init}");
    let flow_id = init["flow_id"].as_str().unwrap().to_owned();
    let setup = ws
        .ok(json!({"type": "auth/setup_mfa", "flow_id": flow_id, "user_input": {"notify_service": "file"}}))
        .await
        .unwrap();
    assert_eq!(setup["step_id"], "setup", "{setup}");
    assert_eq!(setup["description_placeholders"]["notify_service"], "file");
    let code = code_number(&inbox, 1).await;
    let done = ws
        .ok(json!({"type": "auth/setup_mfa", "flow_id": flow_id, "user_input": {"code": code}}))
        .await
        .unwrap();
    assert_eq!(done["type"], "create_entry", "{done}");
    let stored: Value = serde_json::from_str(
        &std::fs::read_to_string(config.storage_dir().join("auth_module.notify")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        stored["data"]["users"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap(),
        &json!({"notify_service": "file", "target": null})
    );

    // Sign in: password, then the code the module sends when the mfa step is shown.
    let started = Request::post("/auth/login_flow")
        .json(&json!({"client_id": CLIENT_ID, "handler": ["homeassistant", null], "redirect_uri": REDIRECT_URI}))
        .send(server.addr)
        .await;
    let flow = started.json()["flow_id"].as_str().unwrap().to_owned();
    let path = format!("/auth/login_flow/{flow}");
    let mfa = Request::post(&path)
        .json(&json!({"client_id": CLIENT_ID, "username": "owner", "password": "owner-pass"}))
        .send(server.addr)
        .await
        .json();
    assert_eq!(mfa["step_id"], "mfa", "{mfa}");
    assert_eq!(mfa["description_placeholders"]["mfa_module_id"], "notify");
    let code = code_number(&inbox, 2).await;
    let done = Request::post(&path)
        .json(&json!({"client_id": CLIENT_ID, "code": code}))
        .send(server.addr)
        .await
        .json();
    assert_eq!(done["type"], "create_entry", "{done}");
    let tokens = exchange(server.addr, done["result"].as_str().unwrap())
        .await
        .unwrap();
    assert!(tokens["access_token"].is_string());
    assert_eq!(server.stop().await, 0);
}
