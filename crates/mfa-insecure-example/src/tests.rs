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
            data: vec![PinEntry::for_user("u", "1")]
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
    assert_eq!(m.entries(), [PinEntry::for_user("alice", "3333")]);
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
        .map(|e| (e.user_id.unwrap(), e.pin))
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

fn subject(user_id: Option<&str>, username: Option<&str>) -> MfaSubject {
    MfaSubject {
        user_id: user_id.map(str::to_owned),
        username: username.map(str::to_owned),
    }
}

#[test]
fn entries_name_a_user_id_or_a_username_and_users_is_another_name_for_data() {
    let parse = |config: Value| {
        let config = PluginSpec {
            id: None,
            name: None,
            config,
        }
        .parse_config::<Config>()?;
        config.check().map(|()| config)
    };
    assert_eq!(
        parse(json!({"users": [{"username": "homeassistant", "pin": "123456"}]})).unwrap(),
        Config {
            data: vec![PinEntry::for_username("homeassistant", "123456")]
        }
    );
    assert_eq!(
        parse(json!({"data": [{"username": "u", "pin": "1", "user_id": "x"}]}))
            .unwrap_err()
            .0,
        "data[0]: give either `user_id` or `username`, not both"
    );
    assert_eq!(
        parse(json!({"data": [{"user_id": "a", "pin": "1"}, {"pin": "1"}]}))
            .unwrap_err()
            .0,
        "data[1]: missing field `user_id` (or `username`)"
    );
    assert!(parse(json!({"data": [], "users": []})).is_err());
}

#[tokio::test]
async fn username_entries_count_for_chain_subjects_only() {
    let m = module(json!([
        {"username": "homeassistant", "pin": "123456"},
        {"user_id": "alice", "pin": "1111"},
    ]));
    let legacy = subject(None, Some("homeassistant"));
    assert!(m.is_subject_setup(&legacy).await.unwrap());
    assert!(m.validate_subject(&legacy, &pin("123456")).await.unwrap());
    assert!(!m.validate_subject(&legacy, &pin("1111")).await.unwrap());
    // A linked login matches both its user's and its username's entries.
    let linked = subject(Some("alice"), Some("homeassistant"));
    assert!(m.validate_subject(&linked, &pin("1111")).await.unwrap());
    assert!(m.validate_subject(&linked, &pin("123456")).await.unwrap());
    // Other usernames, and logins without any, are not set up.
    assert!(
        !m.is_subject_setup(&subject(None, Some("bob")))
            .await
            .unwrap()
    );
    assert!(!m.is_subject_setup(&subject(None, None)).await.unwrap());
    assert!(
        !m.validate_subject(&subject(None, None), &pin("123456"))
            .await
            .unwrap()
    );
    // Opt-in MFA looks at user ids only: a user id equal to the username does not match.
    assert!(!m.is_user_setup("homeassistant").await.unwrap());
    assert!(!m.validate("homeassistant", &pin("123456")).await.unwrap());
    // Deposing a user leaves the username entries alone.
    m.setup_user("carol", &pin("7")).await.unwrap();
    m.depose_user("carol").await.unwrap();
    m.depose_user("homeassistant").await.unwrap();
    assert!(m.is_subject_setup(&legacy).await.unwrap());
}
