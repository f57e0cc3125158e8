//! Property tests: validation never panics and its output obeys the schema.

use flow_engine::{Field, Schema};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z0-9]{0,8}".prop_map(Value::String),
        prop_oneof![Just("a"), Just("b"), Just("fixed")].prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{0,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("s".to_owned()),
        Just("i".to_owned()),
        Just("f".to_owned()),
        Just("b".to_owned()),
        Just("sel".to_owned()),
        Just("c".to_owned()),
        "[a-z]{0,3}",
    ]
}

fn any_input() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((key(), any_json()), 0..8).prop_map(|pairs| pairs.into_iter().collect())
}

fn schema() -> Schema {
    Schema::new(vec![
        Field::string("s").required(),
        Field::integer("i").optional().with_default(json!(1)),
        Field::float("f"),
        Field::boolean("b").optional(),
        Field::select(
            "sel",
            vec![
                ("a".to_owned(), None),
                ("b".to_owned(), Some("B".to_owned())),
            ],
        ),
        Field::constant("c", json!("fixed")),
    ])
}

proptest! {
    #[test]
    fn validate_never_panics_and_respects_the_schema(input in any_input()) {
        let schema = schema();
        match schema.validate(&input) {
            Ok(output) => {
                // Only schema keys, in schema order; every given key kept as given.
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name.as_str()).collect();
                let keys: Vec<&str> = output.keys().map(String::as_str).collect();
                let mut expected: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|n| input.contains_key(*n) || *n == "i")
                    .collect();
                expected.dedup();
                prop_assert_eq!(keys, expected);
                for (k, v) in &input {
                    prop_assert_eq!(output.get(k), Some(v));
                }
                prop_assert!(output["s"].is_string());
            }
            Err(err) => {
                prop_assert!(!err.errors.is_empty());
                prop_assert!(!err.to_string().is_empty());
            }
        }
    }

    #[test]
    fn an_empty_schema_accepts_only_an_empty_map(input in any_input()) {
        let result = Schema::new(vec![]).validate(&input);
        prop_assert_eq!(result.is_ok(), input.is_empty());
    }
}
