//! Unit tests: schema serialisation (flows.md §3), strict validation, result JSON shapes
//! (flows.md §2) with exact key order.

use serde_json::{Map, Value, json};

use crate::{Field, FieldKind, FlowResponse, FlowResult, InvalidInput, MenuOptions, Schema};

/// Compact JSON text; `preserve_order` keeps key order, so this compares order too.
fn text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}

/// The spec's JSON (written in the spec's key order) re-serialised compactly.
fn spec(json: &str) -> String {
    let value: Value = serde_json::from_str(json).unwrap();
    serde_json::to_string(&value).unwrap()
}

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn credentials() -> Schema {
    Schema::new(vec![
        Field::string("username").required(),
        Field::string("password").required(),
    ])
}

mod schema_serialisation {
    use super::*;

    #[test]
    fn username_password_form() {
        assert_eq!(
            text(&credentials()),
            spec(
                r#"[{"type":"string","name":"username","required":true},{"type":"string","name":"password","required":true}]"#
            )
        );
    }

    #[test]
    fn trusted_networks_user_select() {
        let schema = Schema::new(vec![
            Field::select(
                "user",
                vec![
                    ("a1b2".to_owned(), Some("Alice".to_owned())),
                    ("c3d4".to_owned(), None),
                ],
            )
            .required(),
        ]);
        assert_eq!(
            text(&schema),
            spec(
                r#"[{"type":"select","options":[["a1b2","Alice"],["c3d4",null]],"name":"user","required":true}]"#
            )
        );
    }

    #[test]
    fn select_mfa_module_is_a_plain_key() {
        let schema = Schema::new(vec![Field::select(
            "multi_factor_auth_module",
            vec![
                ("totp".to_owned(), Some("Authenticator app".to_owned())),
                ("notify".to_owned(), Some("Notify".to_owned())),
            ],
        )]);
        assert_eq!(
            text(&schema),
            spec(
                r#"[{"type":"select","options":[["totp","Authenticator app"],["notify","Notify"]],"name":"multi_factor_auth_module","required":false}]"#
            )
        );
    }

    #[test]
    fn mfa_code_form() {
        let schema = Schema::new(vec![Field::string("code").required()]);
        assert_eq!(
            text(&schema),
            spec(r#"[{"type":"string","name":"code","required":true}]"#)
        );
    }

    #[test]
    fn insecure_example_pin_form() {
        let schema = Schema::new(vec![Field::string("pin").required()]);
        assert_eq!(
            text(&schema),
            spec(r#"[{"type":"string","name":"pin","required":true}]"#)
        );
    }

    #[test]
    fn notify_setup_init_with_optional_target() {
        let schema = Schema::new(vec![
            Field::select(
                "notify_service",
                vec![("svc".to_owned(), Some("svc".to_owned()))],
            )
            .required(),
            Field::string("target").optional(),
        ]);
        assert_eq!(
            text(&schema),
            spec(
                r#"[{"type":"select","options":[["svc","svc"]],"name":"notify_service","required":true},{"type":"string","name":"target","required":false,"optional":true}]"#
            )
        );
    }

    #[test]
    fn every_kind_marker_default_and_description() {
        let schema = Schema::new(vec![
            Field::integer("n").optional().with_default(json!(3)),
            Field::float("f"),
            Field::boolean("b").required().with_default(json!(true)),
            Field::constant("c", json!("fixed")),
            Field::string("s")
                .optional()
                .with_description(json!({"suggested_value": "x"})),
        ]);
        assert_eq!(
            text(&schema),
            spec(
                r#"[
                {"type":"integer","name":"n","required":false,"optional":true,"default":3},
                {"type":"float","name":"f","required":false},
                {"type":"boolean","name":"b","required":true,"default":true},
                {"type":"constant","value":"fixed","name":"c","required":false},
                {"type":"string","name":"s","description":{"suggested_value":"x"},"required":false,"optional":true}
                ]"#
            )
        );
    }

    #[test]
    fn builders_set_the_public_fields() {
        let field = Field::string("x").optional().required();
        assert_eq!(
            field,
            Field {
                name: "x".into(),
                kind: FieldKind::String,
                required: true,
                optional_marker: false,
                default: None,
                description: None,
            }
        );
        let field = Field::string("x").required().optional();
        assert!(!field.required);
        assert!(field.optional_marker);
    }

    #[test]
    fn empty_schema_is_an_empty_list() {
        assert_eq!(text(&Schema::new(vec![])), "[]");
        assert!(Schema::default().fields().is_empty());
    }
}

mod validation {
    use super::*;

    fn errors(result: Result<Map<String, Value>, InvalidInput>) -> Vec<(String, String)> {
        result.unwrap_err().errors
    }

    fn pair(field: &str, message: &str) -> (String, String) {
        (field.to_owned(), message.to_owned())
    }

    #[test]
    fn valid_input_comes_back_in_schema_order() {
        let out = credentials()
            .validate(&obj(json!({"password": "pw", "username": "alice"})))
            .unwrap();
        assert_eq!(text(&out), r#"{"username":"alice","password":"pw"}"#);
    }

    #[test]
    fn extra_key_is_rejected() {
        let result =
            credentials().validate(&obj(json!({"username": "a", "password": "b", "foo": 1})));
        let err = result.unwrap_err();
        assert_eq!(err.errors, vec![pair("foo", "extra keys not allowed")]);
        assert_eq!(err.to_string(), "extra keys not allowed at 'foo'");
    }

    #[test]
    fn number_for_a_string_field_is_rejected() {
        let schema = Schema::new(vec![Field::string("code").required()]);
        let err = schema.validate(&obj(json!({"code": 123456}))).unwrap_err();
        assert_eq!(err.errors, vec![pair("code", "expected str")]);
        assert_eq!(err.to_string(), "expected str at 'code'");
    }

    #[test]
    fn null_for_a_string_field_is_rejected() {
        let schema = Schema::new(vec![Field::string("target").optional()]);
        assert_eq!(
            errors(schema.validate(&obj(json!({"target": null})))),
            vec![pair("target", "expected str")]
        );
    }

    #[test]
    fn missing_required_key() {
        let err = credentials()
            .validate(&obj(json!({"password": "b"})))
            .unwrap_err();
        assert_eq!(
            err.errors,
            vec![pair("username", "required key not provided")]
        );
        assert_eq!(err.to_string(), "required key not provided at 'username'");
    }

    #[test]
    fn missing_optional_and_plain_keys_are_left_out() {
        let schema = Schema::new(vec![
            Field::string("a").optional(),
            Field::string("b"),
            Field::string("c").required(),
        ]);
        let out = schema.validate(&obj(json!({"c": "x"}))).unwrap();
        assert_eq!(text(&out), r#"{"c":"x"}"#);
    }

    #[test]
    fn missing_optional_with_default_gets_the_default() {
        let schema = Schema::new(vec![
            Field::string("name").required(),
            Field::integer("retries").optional().with_default(json!(3)),
            Field::boolean("remember").with_default(json!(false)),
        ]);
        let out = schema.validate(&obj(json!({"name": "x"}))).unwrap();
        assert_eq!(text(&out), r#"{"name":"x","retries":3,"remember":false}"#);
        // A given value wins over the default.
        let out = schema
            .validate(&obj(json!({"remember": true, "retries": 7, "name": "x"})))
            .unwrap();
        assert_eq!(text(&out), r#"{"name":"x","retries":7,"remember":true}"#);
    }

    #[test]
    fn unknown_select_option() {
        let schema = Schema::new(vec![
            Field::select(
                "user",
                vec![
                    ("a".to_owned(), Some("A".to_owned())),
                    ("b".to_owned(), None),
                ],
            )
            .required(),
        ]);
        assert!(schema.validate(&obj(json!({"user": "b"}))).is_ok());
        let err = schema.validate(&obj(json!({"user": "c"}))).unwrap_err();
        assert_eq!(
            err.errors,
            vec![pair("user", "value must be one of ['a', 'b']")]
        );
        assert_eq!(err.to_string(), "value must be one of ['a', 'b'] at 'user'");
        // The label is not a value, and a non-string never matches.
        assert!(schema.validate(&obj(json!({"user": "A"}))).is_err());
        assert!(schema.validate(&obj(json!({"user": ["a"]}))).is_err());
    }

    #[test]
    fn boolean_must_be_a_json_bool() {
        let schema = Schema::new(vec![Field::boolean("b").required()]);
        assert!(schema.validate(&obj(json!({"b": false}))).is_ok());
        for bad in [json!(1), json!(0), json!("true"), json!(null)] {
            assert_eq!(
                errors(schema.validate(&obj(json!({ "b": bad })))),
                vec![pair("b", "expected bool")]
            );
        }
    }

    #[test]
    fn integer_must_be_a_json_integer() {
        let schema = Schema::new(vec![Field::integer("n").required()]);
        for good in [json!(0), json!(-5), json!(u64::MAX)] {
            assert!(schema.validate(&obj(json!({ "n": good }))).is_ok());
        }
        for bad in [json!(1.5), json!(1.0), json!("1"), json!(true)] {
            assert_eq!(
                errors(schema.validate(&obj(json!({ "n": bad })))),
                vec![pair("n", "expected int")]
            );
        }
    }

    #[test]
    fn float_must_be_a_json_float() {
        let schema = Schema::new(vec![Field::float("f").required()]);
        assert!(schema.validate(&obj(json!({"f": 1.5}))).is_ok());
        for bad in [json!(1), json!("1.5"), json!(false)] {
            assert_eq!(
                errors(schema.validate(&obj(json!({ "f": bad })))),
                vec![pair("f", "expected float")]
            );
        }
    }

    #[test]
    fn constant_must_match() {
        let schema = Schema::new(vec![Field::constant("c", json!("v")).required()]);
        assert!(schema.validate(&obj(json!({"c": "v"}))).is_ok());
        assert_eq!(
            errors(schema.validate(&obj(json!({"c": "w"})))),
            vec![pair("c", "not a valid value")]
        );
    }

    #[test]
    fn all_errors_are_reported_in_a_stable_order() {
        let err = credentials()
            .validate(&obj(json!({"zzz": 1, "password": 2})))
            .unwrap_err();
        assert_eq!(
            err.errors,
            vec![
                pair("zzz", "extra keys not allowed"),
                pair("username", "required key not provided"),
                pair("password", "expected str"),
            ]
        );
        assert_eq!(
            err.to_string(),
            "extra keys not allowed at 'zzz'; required key not provided at 'username'; expected str at 'password'"
        );
    }

    #[test]
    fn base_errors_display_without_a_location() {
        assert_eq!(InvalidInput::new("base", "bad").to_string(), "bad");
    }
}

mod result_json {
    use super::*;

    const FLOW_ID: &str = "2d4fb5a5d2333efb15a3b9138c7f19be";

    fn response(handler: Value, result: FlowResult) -> String {
        text(&FlowResponse {
            flow_id: FLOW_ID.to_owned(),
            handler,
            result,
        })
    }

    fn ha() -> Value {
        json!(["homeassistant", null])
    }

    fn placeholders() -> Map<String, Value> {
        obj(json!({"name": "x"}))
    }

    #[test]
    fn login_form_with_invalid_auth_matches_the_spec() {
        let result = FlowResult::form("init", Some(credentials()))
            .with_errors(obj(json!({"base": "invalid_auth"})));
        assert_eq!(
            response(ha(), result),
            spec(
                r#"{"type": "form", "flow_id": "2d4fb5a5d2333efb15a3b9138c7f19be",
                 "handler": ["homeassistant", null],
                 "data_schema": [{"type": "string", "name": "username", "required": true},
                                 {"type": "string", "name": "password", "required": true}],
                 "errors": {"base": "invalid_auth"}, "description_placeholders": null,
                 "last_step": null, "preview": null, "step_id": "init"}"#
            )
        );
    }

    #[test]
    fn form_with_nothing_set_has_nulls_and_empty_schema() {
        assert_eq!(
            response(ha(), FlowResult::form("init", None)),
            spec(
                r#"{"type":"form","flow_id":"2d4fb5a5d2333efb15a3b9138c7f19be","handler":["homeassistant",null],
                "data_schema":[],"errors":null,"description_placeholders":null,"last_step":null,"preview":null,"step_id":"init"}"#
            )
        );
    }

    #[test]
    fn form_with_everything_set() {
        let result = FlowResult::Form {
            step_id: "confirm".into(),
            data_schema: Some(Schema::new(vec![Field::boolean("ok").required()])),
            errors: Some(Map::new()),
            description_placeholders: Some(placeholders()),
            last_step: Some(true),
            preview: Some("thing".into()),
        };
        assert_eq!(
            response(json!("h"), result),
            spec(
                r#"{"type":"form","flow_id":"2d4fb5a5d2333efb15a3b9138c7f19be","handler":"h",
                "data_schema":[{"type":"boolean","name":"ok","required":true}],"errors":{},
                "description_placeholders":{"name":"x"},"last_step":true,"preview":"thing","step_id":"confirm"}"#
            )
        );
    }

    #[test]
    fn login_create_entry_matches_the_spec_after_http_filtering() {
        // auth-http drops data/context and appends the authorization code (flows.md §2.1).
        let result = FlowResult::create_entry(json!({"credential": "..."}));
        let mut json = FlowResponse {
            flow_id: FLOW_ID.to_owned(),
            handler: ha(),
            result,
        }
        .to_json();
        let object = json.as_object_mut().unwrap();
        // shift_remove keeps the order; Map::remove would swap the last key in.
        object.shift_remove("data");
        object.shift_remove("context");
        object.insert("result".into(), json!("74aa9bdb3fdd4349af77c51e59df201c"));
        assert_eq!(
            text(&json),
            spec(
                r#"{"type": "create_entry", "flow_id": "2d4fb5a5d2333efb15a3b9138c7f19be",
                 "handler": ["homeassistant", null], "description": null,
                 "description_placeholders": null, "result": "74aa9bdb3fdd4349af77c51e59df201c"}"#
            )
        );
    }

    #[test]
    fn mfa_setup_create_entry_matches_the_spec() {
        let result =
            FlowResult::create_entry(json!({"result": "CBQ5BL4IANZU55YW5LROEEJO725YD6XF"}));
        let json = FlowResponse {
            flow_id: "67b3013b348a35fb013474c034bd6452".into(),
            handler: json!("totp"),
            result,
        };
        assert_eq!(
            text(&json),
            spec(
                r#"{"type": "create_entry", "flow_id": "67b3013b348a35fb013474c034bd6452",
                 "handler": "totp", "data": {"result": "CBQ5BL4IANZU55YW5LROEEJO725YD6XF"},
                 "description": null, "description_placeholders": null, "context": {}}"#
            )
        );
    }

    #[test]
    fn create_entry_with_title_puts_it_last() {
        let result = FlowResult::CreateEntry {
            title: Some("T".into()),
            data: json!({"a": 1}),
            description: Some("d".into()),
            description_placeholders: Some(placeholders()),
            context: json!({"source": "user"}),
        };
        assert_eq!(
            response(json!("h"), result.clone()),
            spec(
                r#"{"type":"create_entry","flow_id":"2d4fb5a5d2333efb15a3b9138c7f19be","handler":"h",
                "data":{"a":1},"description":"d","description_placeholders":{"name":"x"},
                "context":{"source":"user"},"title":"T"}"#
            )
        );
        let built = FlowResult::create_entry(json!({"a": 1}))
            .with_title("T")
            .with_context(json!({"source": "user"}));
        assert_eq!(built.step_id(), None);
        assert!(built.is_finished());
    }

    #[test]
    fn abort_matches_the_spec() {
        assert_eq!(
            text(&FlowResponse {
                flow_id: "4ad3415c713993880a87c29881ce9964".into(),
                handler: ha(),
                result: FlowResult::abort("login_expired"),
            }),
            spec(
                r#"{"type": "abort", "flow_id": "4ad3415c713993880a87c29881ce9964",
                 "handler": ["homeassistant", null], "reason": "login_expired",
                 "description_placeholders": null}"#
            )
        );
        assert_eq!(
            response(
                json!("notify"),
                FlowResult::abort("no_available_service").with_placeholders(placeholders())
            ),
            spec(
                r#"{"type":"abort","flow_id":"2d4fb5a5d2333efb15a3b9138c7f19be","handler":"notify",
                "reason":"no_available_service","description_placeholders":{"name":"x"}}"#
            )
        );
    }

    #[test]
    fn external_and_external_done() {
        assert_eq!(
            response(
                json!("h"),
                FlowResult::external_step("auth", "https://example.invalid/x")
            ),
            spec(
                r#"{"type":"external","flow_id":"2d4fb5a5d2333efb15a3b9138c7f19be","handler":"h",
                "url":"https://example.invalid/x","description_placeholders":null,"step_id":"auth"}"#
            )
        );
        assert_eq!(
            response(json!("h"), FlowResult::external_step_done("finish")),
            spec(
                r#"{"type":"external_done","flow_id":"2d4fb5a5d2333efb15a3b9138c7f19be","handler":"h","step_id":"finish"}"#
            )
        );
    }

    #[test]
    fn progress_and_progress_done() {
        assert_eq!(
            response(
                json!("h"),
                FlowResult::show_progress("wait", "waiting").with_placeholders(placeholders())
            ),
            spec(
                r#"{"type":"progress","flow_id":"2d4fb5a5d2333efb15a3b9138c7f19be","handler":"h",
                "progress_action":"waiting","description_placeholders":{"name":"x"},"step_id":"wait"}"#
            )
        );
        assert_eq!(
            response(json!("h"), FlowResult::show_progress_done("next")),
            spec(
                r#"{"type":"progress_done","flow_id":"2d4fb5a5d2333efb15a3b9138c7f19be","handler":"h","step_id":"next"}"#
            )
        );
    }

    #[test]
    fn menu_as_list() {
        let result = FlowResult::menu("user", MenuOptions::List(vec!["one".into(), "two".into()]));
        assert_eq!(
            response(json!("h"), result),
            spec(
                r#"{"type":"menu","flow_id":"2d4fb5a5d2333efb15a3b9138c7f19be","handler":"h",
                "data_schema":[{"type":"select","options":[["one","one"],["two","two"]],"name":"next_step_id","required":false}],
                "menu_options":["one","two"],"description_placeholders":null,"step_id":"user"}"#
            )
        );
    }

    #[test]
    fn menu_labeled_and_sorted() {
        let result = FlowResult::Menu {
            step_id: "user".into(),
            menu_options: MenuOptions::Labeled(vec![
                ("b".into(), "Bee".into()),
                ("a".into(), "Ay".into()),
            ]),
            description_placeholders: Some(placeholders()),
            sort: true,
        };
        assert_eq!(
            response(json!("h"), result),
            spec(
                r#"{"type":"menu","flow_id":"2d4fb5a5d2333efb15a3b9138c7f19be","handler":"h",
                "data_schema":[{"type":"select","options":[["b","Bee"],["a","Ay"]],"name":"next_step_id","required":false}],
                "menu_options":{"b":"Bee","a":"Ay"},"description_placeholders":{"name":"x"},"sort":true,"step_id":"user"}"#
            )
        );
    }

    #[test]
    fn to_json_equals_serialize() {
        let response = FlowResponse {
            flow_id: FLOW_ID.into(),
            handler: ha(),
            result: FlowResult::form("init", Some(credentials())),
        };
        assert_eq!(text(&response.to_json()), text(&response));
    }

    #[test]
    fn step_ids_type_names_and_finished() {
        let cases = [
            (FlowResult::form("a", None), Some("a"), "form", false),
            (
                FlowResult::create_entry(json!({})),
                None,
                "create_entry",
                true,
            ),
            (FlowResult::abort("r"), None, "abort", true),
            (
                FlowResult::external_step("b", "u"),
                Some("b"),
                "external",
                false,
            ),
            (
                FlowResult::external_step_done("c"),
                Some("c"),
                "external_done",
                false,
            ),
            (
                FlowResult::show_progress("d", "p"),
                Some("d"),
                "progress",
                false,
            ),
            (
                FlowResult::show_progress_done("e"),
                Some("e"),
                "progress_done",
                false,
            ),
            (
                FlowResult::menu("f", MenuOptions::List(vec![])),
                Some("f"),
                "menu",
                false,
            ),
        ];
        for (result, step_id, type_name, finished) in cases {
            assert_eq!(result.step_id(), step_id);
            assert_eq!(result.type_name(), type_name);
            assert_eq!(result.is_finished(), finished);
        }
    }

    #[test]
    fn builders_do_not_touch_other_types() {
        let abort = FlowResult::abort("r");
        assert_eq!(
            abort
                .clone()
                .with_errors(obj(json!({"base": "x"})))
                .with_last_step(true)
                .with_title("t"),
            abort
        );
        let done = FlowResult::external_step_done("x");
        assert_eq!(done.clone().with_placeholders(placeholders()), done);
    }

    #[test]
    fn menu_options_contains() {
        let list = MenuOptions::List(vec!["a".into()]);
        let labeled = MenuOptions::Labeled(vec![("b".into(), "B".into())]);
        assert!(list.contains("a") && !list.contains("b"));
        assert!(labeled.contains("b") && !labeled.contains("B"));
    }
}
