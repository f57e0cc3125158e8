//! Every vector of `totp-vectors.json` (made with pyotp), through complete login flows.

use auth_testkit::fixture_json;
use serde_json::{Value, json};

use crate::support::Env;

struct Case {
    vector: Value,
    /// Checks the window in order: two-away codes refused, then previous, current, next accepted.
    user: String,
    /// Logs in once with the fullwidth form of the current code.
    fullwidth_user: String,
}

#[tokio::test]
async fn every_vector_logs_in_with_current_previous_and_next_code() {
    let vectors = fixture_json("totp-vectors.json");
    let vectors = vectors.as_array().unwrap();
    assert_eq!(vectors.len(), 39);
    assert!(
        vectors
            .iter()
            .any(|v| v["expected_code"].as_str().unwrap().starts_with("00")),
        "the vectors include codes with leading zeros"
    );

    // Users first; then the secrets are written as Home Assistant would have stored them
    // (some are shorter than 128 bits, which only a stored file can hold), then reopen.
    let env = Env::new(1_795_303_380).await;
    let mut cases = Vec::new();
    let mut users = serde_json::Map::new();
    for (i, vector) in vectors.iter().enumerate() {
        let user = env.add_user(&format!("v{i}"), None).await;
        let fullwidth_user = env.add_user(&format!("v{i}-fullwidth"), None).await;
        for id in [&user, &fullwidth_user] {
            users.insert(id.clone(), vector["secret"].clone());
        }
        cases.push(Case {
            vector: vector.clone(),
            user: format!("v{i}"),
            fullwidth_user: format!("v{i}-fullwidth"),
        });
    }
    let file = json!({
        "version": 1, "minor_version": 1, "key": "auth_module.totp",
        "data": {"users": users},
    });
    std::fs::write(
        env.config.storage_dir().join("auth_module.totp"),
        serde_json::to_vec_pretty(&file).unwrap(),
    )
    .unwrap();
    let env = env.reopen().await;

    for case in &cases {
        let v = &case.vector;
        let code = |key: &str| v[key].as_str().unwrap().to_owned();
        env.set_time(v["unix_time"].as_i64().unwrap());
        for far in v["rejected_codes_two_steps_away"].as_array().unwrap() {
            let far = far.as_str().unwrap();
            assert!(
                !env.login_with_code(&case.user, far).await,
                "two steps away accepted: {far} for {v}"
            );
        }
        for key in ["prev_step_code", "expected_code", "next_step_code"] {
            assert!(
                env.login_with_code(&case.user, &code(key)).await,
                "{key} refused for {v}"
            );
        }
        assert!(
            env.login_with_code(&case.fullwidth_user, &code("nfkc_equivalent_also_accepted"))
                .await,
            "fullwidth code refused for {v}"
        );
    }
}
