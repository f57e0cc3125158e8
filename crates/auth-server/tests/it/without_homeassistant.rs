//! The binary built without the `provider-homeassistant` feature (a leg of `cargo xtask ci`'s
//! feature matrix): nothing else needs that provider. Other providers sign users in, `type:
//! homeassistant` is an unknown type, and the password commands and onboarding's user step say
//! that no provider keeps local passwords instead of failing obscurely.

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use serde_json::json;

use crate::client::{CLIENT_ID, login};
use crate::support::{BASIC_CONFIG, run, serve, write_config};

const EXAMPLE_ONLY: &str = "homeassistant:\n  auth_providers:\n    - type: insecure_example\n      users:\n        - username: demo\n          password: demo\n";

#[tokio::test]
async fn other_providers_sign_in_and_password_admin_says_what_is_missing() {
    let config = TempConfig::empty();
    write_config(config.path(), EXAMPLE_ONLY);
    let dir = config.path().to_str().unwrap();

    let out = run(config.path(), &["user", "-c", dir, "list"]).await;
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr
            .contains("no auth provider with local usernames and passwords")
            && out.stderr.contains("provider-homeassistant feature"),
        "{}",
        out.stderr
    );

    let server = serve(config.path(), &["-c", dir])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let tokens = login(
        server.addr,
        json!(["insecure_example", null]),
        "demo",
        "demo",
    )
    .await
    .expect("insecure_example signs in");
    assert!(tokens["access_token"].is_string(), "{tokens}");
    let onboarding = Request::post("/api/onboarding/users")
        .json(
            &json!({"client_id": CLIENT_ID, "name": "Owner", "username": "owner",
            "password": "owner-pass", "language": "en"}),
        )
        .send(server.addr)
        .await;
    assert_eq!(onboarding.status, 400, "{}", onboarding.text());
    assert!(
        onboarding
            .text()
            .contains("No auth provider with local usernames and passwords"),
        "{}",
        onboarding.text()
    );
    assert_eq!(server.stop().await, 0);
}

#[tokio::test]
async fn type_homeassistant_is_not_compiled_in() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap();
    let out = run(config.path(), &["check-config", "-c", dir]).await;
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr
            .contains("auth_providers[0].type: unknown auth provider type 'homeassistant'"),
        "{}",
        out.stderr
    );
}
