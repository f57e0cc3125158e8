//! Golden JSON recorded from a real Home Assistant (tests/fixtures/README.md): our
//! serialisation must match byte for byte, key order included.

use flow_engine::{Field, FlowResponse, FlowResult, Schema};
use serde_json::{Map, Value, json};

use crate::common::*;

fn cases() -> Vec<(String, Value)> {
    let text = include_str!("../fixtures/ha-2026.2.3-flow-results.json");
    let root: Value = serde_json::from_str(text).unwrap();
    root["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            (
                case["label"].as_str().unwrap().to_owned(),
                case["response"].clone(),
            )
        })
        .collect()
}

fn case(label: &str) -> Value {
    cases()
        .into_iter()
        .find(|(l, _)| l == label)
        .unwrap_or_else(|| panic!("no fixture case {label}"))
        .1
}

fn credentials() -> Schema {
    Schema::new(vec![
        Field::string("username").required(),
        Field::string("password").required(),
    ])
}

fn code() -> Schema {
    Schema::new(vec![Field::string("code").required()])
}

/// Builds the response with our types, taking ids and free-form values from the recording.
fn ours(recorded: &Value, result: FlowResult) -> FlowResponse {
    FlowResponse {
        flow_id: recorded["flow_id"].as_str().unwrap().to_owned(),
        handler: recorded["handler"].clone(),
        result,
    }
}

fn placeholders(recorded: &Value) -> Map<String, Value> {
    recorded["description_placeholders"]
        .as_object()
        .unwrap()
        .clone()
}

#[test]
fn every_case_is_checked() {
    let labels: Vec<String> = cases().into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels.len(), 7, "{labels:?}");
}

#[test]
fn login_form_first_display() {
    let recorded = case("login form, first display (errors {})");
    let result = FlowResult::form("init", Some(credentials())).with_errors(Map::new());
    assert_eq!(text(&ours(&recorded, result)), text(&recorded));
}

#[test]
fn login_form_wrong_password() {
    let recorded = case("login form, wrong password");
    let result = FlowResult::form("init", Some(credentials()))
        .with_errors(obj(json!({"base": "invalid_auth"})));
    assert_eq!(text(&ours(&recorded, result)), text(&recorded));
}

#[test]
fn insecure_example_form_with_null_errors() {
    let recorded = case("insecure_example form (errors null)");
    let result = FlowResult::form("init", Some(credentials()));
    assert_eq!(text(&ours(&recorded, result)), text(&recorded));
}

#[test]
fn mfa_form_with_placeholders() {
    let recorded = case("mfa form with placeholders");
    let result = FlowResult::form("mfa", Some(code()))
        .with_errors(Map::new())
        .with_placeholders(placeholders(&recorded));
    assert_eq!(text(&ours(&recorded, result)), text(&recorded));
}

#[test]
fn totp_setup_form() {
    let recorded = case("totp setup form (websocket)");
    let result = FlowResult::form("init", Some(code()))
        .with_errors(Map::new())
        .with_placeholders(placeholders(&recorded));
    assert_eq!(text(&ours(&recorded, result)), text(&recorded));
}

#[test]
fn totp_setup_create_entry() {
    let recorded = case("totp setup create_entry (websocket)");
    let result = FlowResult::create_entry(recorded["data"].clone());
    assert_eq!(text(&ours(&recorded, result)), text(&recorded));
}

#[test]
fn login_create_entry_as_the_http_view_sends_it() {
    let recorded = case("login create_entry (HTTP, filtered)");
    let mut json = ours(
        &recorded,
        FlowResult::create_entry(json!({"credential": "x"})),
    )
    .to_json();
    let object = json.as_object_mut().unwrap();
    object.shift_remove("data");
    object.shift_remove("context");
    object.insert("result".into(), recorded["result"].clone());
    assert_eq!(text(&json), text(&recorded));
}
