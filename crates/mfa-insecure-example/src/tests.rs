//! Unit tests: config parsing and the PIN table.

use serde_json::{Map, Value, json};

use super::*;

fn module(data: Value) -> InsecureExampleModule {
    let spec = PluginSpec {
        id: None,
        name: None,
        config: json!({ "data": data }),
    };
    InsecureExampleModule::new(spec.parse_config().unwrap(), &spec)
}

fn pin(value: &str) -> Map<String, Value> {
    json!({ "pin": value }).as_object().unwrap().clone()
}

#[test]
fn config_requires_data_and_forbids_other_keys() {
    let parse = |config: Value| {
        PluginSpec {
            id: None,
            name: None,
            config,
        }
        .parse_config::<Config>()
    };
    assert_eq!(
        parse(json!({"data": [{"user_id": "u", "pin": "1"}]})).unwrap(),
        Config {
            data: vec![PinEntry {
                user_id: "u".into(),
                pin: "1".into()
            }]
        }
    );
    assert!(parse(json!({})).is_err(), "data is required");
    assert!(parse(Value::Null).is_err(), "data is required");
    assert!(parse(json!({"data": [], "extra": 1})).is_err());
    assert!(parse(json!({"data": [{"user_id": "u", "pin": "1", "x": 1}]})).is_err());
    assert!(parse(json!({"data": [{"user_id": "u"}]})).is_err());
    assert!(parse(json!({"data": [{"user_id": "u", "pin": 1234}]})).is_err());
}

#[tokio::test]
async fn validate_needs_the_exact_pin_of_that_user() {
    let m = module(json!([
        {"user_id": "alice", "pin": "1234"},
        {"user_id": "bob", "pin": "9999"},
    ]));
    assert!(m.validate("alice", &pin("1234")).await.unwrap());
    for wrong in ["9999", "12345", "123", " 1234", "１２３４", ""] {
        assert!(
            !m.validate("alice", &pin(wrong)).await.unwrap(),
            "{wrong:?}"
        );
    }
    assert!(!m.validate("carol", &pin("1234")).await.unwrap());
    assert!(!m.validate("alice", &Map::new()).await.unwrap());
}

#[tokio::test]
async fn any_entry_of_the_user_matches_like_home_assistant() {
    let m = module(json!([
        {"user_id": "alice", "pin": "1111"},
        {"user_id": "alice", "pin": "2222"},
    ]));
    assert!(m.validate("alice", &pin("1111")).await.unwrap());
    assert!(m.validate("alice", &pin("2222")).await.unwrap());
    // Setting a PIN replaces them all (first entry updated in place).
    m.setup_user("alice", &pin("3333")).await.unwrap();
    assert_eq!(
        m.entries(),
        [PinEntry {
            user_id: "alice".into(),
            pin: "3333".into()
        }]
    );
    assert!(!m.validate("alice", &pin("2222")).await.unwrap());
}

#[tokio::test]
async fn setup_user_and_depose_user_change_the_table() {
    let m = module(json!([{"user_id": "bob", "pin": "9"}, {"user_id": "alice", "pin": "1"}]));
    assert_eq!(m.setup_user("carol", &pin("7")).await.unwrap(), Value::Null);
    m.setup_user("alice", &pin("2")).await.unwrap();
    let ids: Vec<_> = m
        .entries()
        .into_iter()
        .map(|e| (e.user_id, e.pin))
        .collect();
    assert_eq!(
        ids,
        [
            ("bob".to_owned(), "9".to_owned()),
            ("alice".to_owned(), "2".to_owned()),
            ("carol".to_owned(), "7".to_owned()),
        ]
    );
    assert!(matches!(
        m.setup_user("alice", &Map::new()).await,
        Err(MfaError::InvalidInput(_))
    ));
    m.depose_user("alice").await.unwrap();
    assert!(!m.is_user_setup("alice").await.unwrap());
    assert!(m.is_user_setup("bob").await.unwrap());
    m.depose_user("nobody").await.unwrap();
}
