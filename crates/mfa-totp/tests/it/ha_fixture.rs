//! Home Assistant 2026.2.3's own data: its stored secret, its recorded codes and responses.

use auth_core::flow_engine::FlowResult;
use auth_testkit::{TempConfig, fixture_json};
use serde_json::Value;

use crate::support::{Env, Options};

const HA_USER: &str = "277733626f56457a92a02e9ed1381f1a";
const HA_USERNAME: &str = "jörg-strasse-σασ";
const HA_SECRET: &str = "5O4XYKQRNBRTVGTLJOBAVBXMBTRGIUGF";

fn call(what: &str) -> Value {
    let fixture = fixture_json("ha-2026.2.3/fixture.json");
    fixture["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["what"] == what)
        .unwrap_or_else(|| panic!("call {what:?} is recorded"))
        .clone()
}

/// Unix time (whole seconds) of a recorded call.
fn time_of(call: &Value) -> i64 {
    call["t"].as_f64().unwrap().floor() as i64
}

async fn ha_env(now: i64) -> Env {
    let options = Options {
        provider_kind: "homeassistant",
        ..Options::default()
    };
    let env = Env::open(TempConfig::from_fixture("ha-2026.2.3"), now, options).await;
    env.provider.add(HA_USERNAME, crate::support::PASSWORD);
    env
}

#[test]
fn the_fixture_records_the_secret_it_stored() {
    let fixture = fixture_json("ha-2026.2.3/fixture.json");
    assert_eq!(
        fixture["users"]["unicode"]["totp_secret_stored"], HA_SECRET,
        "fixture.json and .storage/auth_module.totp agree"
    );
    // The setup confirmation HA accepted: the recorded code at the recorded time.
    let confirm = call("unicode ws: auth/setup_mfa totp (code, try 1)");
    let code = confirm["request"]["ws"]["user_input"]["code"]
        .as_str()
        .unwrap();
    assert_eq!(
        mfa_totp::code_at(HA_SECRET, time_of(&confirm)).unwrap(),
        code
    );
}

#[tokio::test]
async fn the_ha_user_logs_in_with_the_code_ha_accepted() {
    let submit = call("unicode user check: MFA code in fullwidth digits: submit MFA code");
    let now = time_of(&submit);
    let env = ha_env(now).await;
    assert!(env.totp.is_user_setup(HA_USER).await.unwrap());

    // The mfa form is exactly what HA showed (HA's config names the module by its default).
    let shown = env.login(HA_USERNAME).await;
    let mut recorded = call("unicode user check: MFA code in fullwidth digits: submit credentials")
        ["response"]
        .clone();
    recorded["flow_id"] = Value::String(shown.flow_id.clone());
    assert_eq!(shown.to_json(), recorded);

    // HA accepted the code sent in fullwidth digits.
    let code = submit["request"]["json"]["code"].as_str().unwrap();
    assert_eq!(code, "７４２５０５");
    let done = env.submit_code(&shown.flow_id, code).await;
    let FlowResult::CreateEntry { data, .. } = done.result else {
        panic!("expected create_entry, got {:?}", done.result);
    };
    let credentials = env.manager.credentials_from_flow(&data).unwrap();
    assert_eq!(credentials.id, "71a223f7d60f42b29535ae7c88fd3f4a");
}

#[tokio::test]
async fn replaying_the_code_ha_accepted_twice_is_refused_here() {
    // HA accepted "742505" twice within a second (fullwidth, then ASCII): it has no replay
    // protection. This module refuses the second use.
    let first = call("unicode user check: MFA code in fullwidth digits: submit MFA code");
    let second = call("unicode user: login with TOTP: submit MFA code");
    assert_eq!(second["response"]["type"], "create_entry", "HA accepted it");
    let env = ha_env(time_of(&first)).await;
    assert!(
        env.login_with_code(
            HA_USERNAME,
            first["request"]["json"]["code"].as_str().unwrap()
        )
        .await
    );
    env.set_time(time_of(&second));
    assert!(
        !env.login_with_code(
            HA_USERNAME,
            second["request"]["json"]["code"].as_str().unwrap()
        )
        .await
    );
}
