//! Unit tests: config, service filtering, codes.

use serde_json::json;

use super::*;

fn parse(config: Value) -> Result<Config, PluginConfigError> {
    PluginSpec {
        id: None,
        name: None,
        config,
    }
    .parse_config()
}

#[test]
fn config_keys_and_deliveries() {
    let config = parse(json!({
        "include": "phone",
        "exclude": ["sms"],
        "message": "Code: {}",
        "services": {"phone": {"webhook": "https://ntfy.example/x"}, "sms": {"command": ["/bin/true"], "timeout": 3}}
    }))
    .unwrap();
    assert_eq!(config.include, Some(StringOrList::One("phone".into())));
    assert_eq!(config.services["sms"].timeout, Some(3));
    assert!(parse(json!({"extra": 1})).is_err(), "no extra keys");
    assert!(parse(json!({"services": {"x": {"command": ["a"], "shell": true}}})).is_err());
    for (delivery, problem) in [
        (json!({}), "set 'command'"),
        (
            json!({"command": ["a"], "webhook": "http://x/"}),
            "not both",
        ),
        (json!({"command": []}), "at least the program"),
        (json!({"webhook": "ftp://x/"}), "http:// or https://"),
        (json!({"command": ["a"], "timeout": 0}), "at least 1 second"),
    ] {
        let d: Delivery = serde_json::from_value(delivery.clone()).unwrap();
        assert!(d.problem().unwrap().contains(problem), "{delivery}");
    }
}

#[test]
fn codes_are_six_digits_and_compared_exactly() {
    let rng: SharedRng = Arc::new(auth_core::SeededRng::new(7));
    let pending = PendingCode::new(&rng);
    let code = pending.code();
    assert_eq!(code.len(), 6);
    assert!(code.chars().all(|c| c.is_ascii_digit()));
    assert!(pending.matches(&code));
    assert!(!pending.matches(&format!(" {code}")));
    assert!(!pending.matches(""));
    assert!(pending.counter < 10u128.pow(32));
}
