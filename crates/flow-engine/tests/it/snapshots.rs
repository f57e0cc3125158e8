//! insta snapshots of whole flow transcripts (reviewed against flows.md §2/§3).

use flow_engine::FlowLimits;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn login_with_mfa_transcript() {
    let manager = manager::<()>(FlowLimits::default());
    let (flow, _) = Login::new(true);
    let mut transcript: Vec<Value> = Vec::new();
    let shown = manager
        .start(json!(["homeassistant", null]), (), Box::new(flow))
        .await
        .unwrap();
    let flow_id = shown.flow_id.clone();
    transcript.push(shown.to_json());
    for body in [
        json!({"username": "alice", "password": "wrong"}),
        json!({"username": "alice", "password": "secret"}),
        json!({"code": "000000"}),
        json!({"code": "123456"}),
    ] {
        let response = manager.configure(&flow_id, input(body)).await.unwrap();
        transcript.push(response.to_json());
    }
    insta::assert_json_snapshot!(transcript, {"[].flow_id" => "[flow_id]"});
}

#[tokio::test]
async fn menu_transcript() {
    let manager = manager::<()>(FlowLimits::default());
    let calls = Calls::default();
    let shown = manager
        .start(json!("demo"), (), Box::new(MenuFlow { calls }))
        .await
        .unwrap();
    let next = manager
        .configure(&shown.flow_id, input(json!({"next_step_id": "b"})))
        .await
        .unwrap();
    insta::assert_json_snapshot!(
        vec![shown.to_json(), next.to_json()],
        {"[].flow_id" => "[flow_id]"}
    );
}
