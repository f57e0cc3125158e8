//! Property tests of everything that reads bytes a crash, a full disk or a person may have
//! mangled: the envelope parser and `.storage/auth`'s loader never panic, and either load or
//! name the file and the problem. The login flow never panics on arbitrary input and never
//! finishes without the right password.

use auth_core::store::AuthData;
use auth_core::{LoginContext, StorageError, StoredDocument};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::support::fresh;

const LOCATION: &str = "/config/.storage/auth";

/// HA 2026.2.3's own `.storage/auth` (users, groups, credentials, tokens).
fn fixture_auth() -> Vec<u8> {
    std::fs::read(auth_testkit::fixtures_dir().join("ha-2026.2.3/.storage/auth"))
        .expect("fixture readable")
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("system-admin"),
            Just("u1"),
            Just("homeassistant"),
            Just("normal"),
            Just("2026-11-21T22:18:03.049983+00:00"),
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("user_id".to_owned()),
                    Just("users".to_owned()),
                    Just("groups".to_owned()),
                    Just("credentials".to_owned()),
                    Just("refresh_tokens".to_owned()),
                    Just("name".to_owned()),
                    Just("is_owner".to_owned()),
                    Just("group_ids".to_owned()),
                    Just("token".to_owned()),
                    Just("jwt_key".to_owned()),
                    Just("created_at".to_owned()),
                    "[a-z_]{0,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A path to one node of `value` picked by `choice`, with the node's parent.
fn nodes(value: &Value, path: Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(path.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let mut next = path.clone();
                next.push(PathStep::Key(key.clone()));
                nodes(child, next, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let mut next = path.clone();
                next.push(PathStep::Index(i));
                nodes(child, next, out);
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn node_mut<'a>(value: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
    path.iter().fold(value, |node, step| match step {
        PathStep::Key(key) => &mut node[key.as_str()],
        PathStep::Index(i) => &mut node[*i],
    })
}

/// How one node of a good file is damaged.
#[derive(Clone, Debug)]
enum Damage {
    Remove,
    Replace(Value),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        1 => Just(Damage::Remove),
        3 => any_json().prop_map(Damage::Replace),
    ]
}

fn assert_names_the_file(error: &StorageError) {
    let message = error.to_string();
    assert!(message.starts_with(LOCATION), "{message}");
    assert!(
        message.len() > LOCATION.len() + 2,
        "says what is wrong: {message}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes: an error naming the file, or a document; never a panic.
    #[test]
    fn arbitrary_bytes_never_panic_the_envelope_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        match StoredDocument::from_file_bytes("auth", LOCATION, &bytes) {
            Ok(_) => {}
            Err(error) => assert_names_the_file(&error),
        }
    }

    /// A good file cut anywhere, or with a stretch overwritten by zeros (what a crash without
    /// fsync leaves), is refused with the file's name; only the whole file loads.
    #[test]
    fn truncated_or_zeroed_files_are_refused(cut in 0.0f64..1.0, zero_from in 0.0f64..1.0, zero_len in 1usize..4096) {
        let good = fixture_auth();
        let at = ((good.len() as f64) * cut) as usize;
        if at < good.len() {
            let error = StoredDocument::from_file_bytes("auth", LOCATION, &good[..at])
                .expect_err("a truncated file is refused");
            assert_names_the_file(&error);
        }
        let mut zeroed = good.clone();
        let start = ((good.len() as f64) * zero_from) as usize;
        let end = (start + zero_len).min(good.len());
        zeroed[start..end].fill(0);
        if let Err(error) = StoredDocument::from_file_bytes("auth", LOCATION, &zeroed) {
            assert_names_the_file(&error);
        }
    }

    /// Arbitrary JSON as `data`: the loader never panics; errors name the file.
    #[test]
    fn arbitrary_json_never_panics_the_auth_loader(data in any_json()) {
        if let Err(error) = AuthData::from_json(LOCATION, &data) {
            assert_names_the_file(&error);
        }
    }

    /// HA's own file with one node removed or replaced: loads (a soft migration) or is refused
    /// with the file's name; what loads saves and loads again to the same data.
    #[test]
    fn damaged_ha_files_load_or_are_refused(choice in any::<prop::sample::Index>(), damage in damage()) {
        let doc = StoredDocument::from_file_bytes("auth", LOCATION, &fixture_auth())
            .expect("fixture parses")
            .expect("fixture has data");
        let mut data = doc.data;
        let mut paths = Vec::new();
        nodes(&data, Vec::new(), &mut paths);
        let path = choice.get(&paths[1..]).clone();
        match damage {
            Damage::Remove => {
                let (last, parent) = path.split_last().expect("not the root");
                match (node_mut(&mut data, parent), last) {
                    (Value::Object(map), PathStep::Key(key)) => { map.remove(key); }
                    (Value::Array(items), PathStep::Index(i)) => { items.remove(*i); }
                    _ => unreachable!("paths follow the tree"),
                }
            }
            Damage::Replace(value) => *node_mut(&mut data, &path) = value,
        }
        match AuthData::from_json(LOCATION, &data) {
            Ok(loaded) => {
                let saved = loaded.to_json();
                let again = AuthData::from_json(LOCATION, &saved).expect("what we save loads");
                prop_assert_eq!(again.to_json(), saved);
            }
            Err(error) => assert_names_the_file(&error),
        }
    }
}

/// Arbitrary input to each step of a login flow: never a panic, never credentials without the
/// right password.
#[test]
fn login_flow_input_never_panics_or_lets_in() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let input = prop::collection::vec(
        prop::collection::btree_map(
            prop_oneof![
                Just("username".to_owned()),
                Just("password".to_owned()),
                Just("code".to_owned()),
                Just("next_step_id".to_owned()),
                "\\PC{0,6}",
            ],
            prop_oneof![
                3 => any_json(),
                1 => Just(json!("alice")),
                1 => Just(json!("nearly-secret")),
            ],
            0..4,
        ),
        1..4,
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(128));
    runner
        .run(&input, |steps| {
            runtime.block_on(async {
                let (_config, _clock, manager) = fresh().await;
                let started = manager
                    .start_login_flow("test", None, LoginContext::default())
                    .await
                    .expect("starts")
                    .expect("the provider exists");
                for step in steps {
                    let input: Map<String, Value> = step.into_iter().collect();
                    let right_password = matches!(
                        input.get("password").and_then(Value::as_str),
                        Some("secret" | "hunter2")
                    );
                    match manager
                        .login_flows()
                        .configure(&started.flow_id, Some(input))
                        .await
                    {
                        Ok(response) if !right_password => {
                            prop_assert_ne!(response.result.type_name(), "create_entry");
                        }
                        Ok(_) | Err(_) => {}
                    }
                }
                Ok(())
            })
        })
        .expect("property holds");
}
