//! Brute force under concurrency: no race lets more guesses through than the limits allow.
//! Concurrent wrong passwords from one IP are evaluated at most `login_attempts_threshold`
//! times, then the IP is banned; concurrent wrong MFA codes to one login flow are counted at
//! most `max_retry` times, then the flow is aborted.

use std::time::Duration;

use auth_testkit::http::{Request, Response};
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::harness::{Server, Setup, onboard, start, start_flow, step};

const ATTACKER: &str = "127.0.0.9";
const CONCURRENCY: usize = 50;

async fn start_flow_from(server: &Server, ip: &str) -> String {
    let response = server
        .send(
            Request::post("/auth/login_flow")
                .json(
                    &json!({"client_id": server.client_id(), "handler": ["homeassistant", null],
                    "redirect_uri": server.redirect_uri()}),
                )
                .from_ip(ip),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["flow_id"].as_str().unwrap().to_owned()
}

async fn step_from(server: &Server, ip: &str, flow_id: &str, mut input: Value) -> Response {
    input["client_id"] = json!(server.client_id());
    server
        .send(
            Request::post(&format!("/auth/login_flow/{flow_id}"))
                .json(&input)
                .from_ip(ip),
        )
        .await
}

fn base_error(response: &Response) -> Option<String> {
    if response.status != 200 {
        return None;
    }
    response.json()["errors"]["base"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_passwords_are_evaluated_at_most_threshold_times() {
    const THRESHOLD: usize = 5;
    let mut setup = Setup::default();
    setup.options.login_attempts_threshold = THRESHOLD as i64;
    setup.options.ban_duration = Some(Duration::from_secs(3600));
    let server = start(setup).await;
    onboard(&server, "owner", "owner-pass").await;

    let mut flows = Vec::new();
    for _ in 0..CONCURRENCY {
        flows.push(start_flow_from(&server, ATTACKER).await);
    }
    let guesses = flows.iter().enumerate().map(|(i, flow_id)| {
        step_from(
            &server,
            ATTACKER,
            flow_id,
            json!({"username": "owner", "password": format!("guess-{i}")}),
        )
    });
    let responses = join_all(guesses).await;
    let evaluated = responses
        .iter()
        .filter(|r| base_error(r).as_deref() == Some("invalid_auth"))
        .count();
    let refused = responses
        .iter()
        .filter(|r| r.status == 429 || r.status == 403)
        .count();
    assert_eq!(
        evaluated + refused,
        CONCURRENCY,
        "every guess is either evaluated or refused: {:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(
        evaluated, THRESHOLD,
        "exactly the threshold's worth of guesses is evaluated"
    );
    // Banned: later requests are refused, even with the right password.
    assert!(server.http.bans().is_banned(ATTACKER.parse().unwrap()));
    let later = server
        .send(Request::get("/auth/providers").from_ip(ATTACKER))
        .await;
    assert_eq!(later.status, 403);
    let right = step_from(
        &server,
        ATTACKER,
        &flows[0],
        json!({"username": "owner", "password": "owner-pass"}),
    )
    .await;
    assert_eq!(right.status, 403);
    // Other clients are unaffected.
    let flow = start_flow(&server, json!(["homeassistant", null]))
        .await
        .json();
    let ok = step(
        &server,
        flow["flow_id"].as_str().unwrap(),
        json!({"username": "owner", "password": "owner-pass"}),
    )
    .await
    .json();
    assert_eq!(ok["type"], "create_entry", "{ok}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_codes_are_counted_at_most_max_retry_times() {
    let server = start(Setup::default()).await;
    onboard(&server, "owner", "owner-pass").await;
    let owner = server.manager().owner().unwrap();
    let totp = server.manager().mfa_module("totp").unwrap();
    totp.setup_user(&owner.id, &serde_json::Map::new())
        .await
        .unwrap();
    server
        .manager()
        .store()
        .flush()
        .await
        .expect("store written");

    let flow_id = start_flow_from(&server, ATTACKER).await;
    let mfa = step_from(
        &server,
        ATTACKER,
        &flow_id,
        json!({"username": "owner", "password": "owner-pass"}),
    )
    .await
    .json();
    assert_eq!(mfa["step_id"], "mfa", "{mfa}");

    let (mut invalid_code, mut aborted, mut busy, mut gone) = (0, 0, 0, 0);
    for _wave in 0..20 {
        let codes = (0..CONCURRENCY)
            .map(|_| step_from(&server, ATTACKER, &flow_id, json!({"code": "12345"})));
        for response in join_all(codes).await {
            match response.status {
                200 => {
                    let body = response.json();
                    match (body["type"].as_str(), body["reason"].as_str()) {
                        (Some("form"), _) => {
                            assert_eq!(body["errors"]["base"], "invalid_code", "{body}");
                            invalid_code += 1;
                        }
                        (Some("abort"), Some("too_many_retry")) => aborted += 1,
                        other => panic!("unexpected {other:?}: {body}"),
                    }
                }
                409 => busy += 1,
                404 => gone += 1,
                other => panic!("unexpected status {other}: {}", response.text()),
            }
        }
        if gone > 0 {
            break;
        }
    }
    let max_retry = mfa_totp::MAX_RETRY as usize;
    assert_eq!(aborted, 1, "the flow is aborted once");
    assert_eq!(
        invalid_code + aborted,
        max_retry,
        "exactly max_retry wrong codes are counted (busy: {busy})"
    );
    assert!(gone > 0, "the aborted flow is gone");
    // Even the right code does not bring the flow back.
    let secret_user = server.manager().owner().unwrap();
    assert_eq!(secret_user.id, owner.id);
    let after = step_from(&server, ATTACKER, &flow_id, json!({"code": "000000"})).await;
    assert_eq!(after.status, 404);
}
