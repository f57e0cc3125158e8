//! Brute force under concurrency: no race lets more guesses through than the limits allow.
//! Concurrent wrong passwords from one IP are evaluated at most `login_attempts_threshold`
//! times, then the IP is banned; concurrent wrong MFA codes to one login flow are counted at
//! most `max_retry` times, then the flow is aborted.

use std::time::Duration;

use auth_core::ManagerLimits;
use auth_testkit::http::{Request, Response};
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::harness::{Server, Setup, onboard, start, start_flow, step};

const ATTACKER: &str = "127.0.0.9";
const CONCURRENCY: usize = 50;

/// Starts a homeassistant login flow with the request `client` makes of it; returns its id.
async fn start_flow_as(server: &Server, client: impl FnOnce(Request) -> Request) -> String {
    let request = Request::post("/auth/login_flow").json(
        &json!({"client_id": server.client_id(), "handler": ["homeassistant", null],
        "redirect_uri": server.redirect_uri()}),
    );
    let response = server.send(client(request)).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["flow_id"].as_str().unwrap().to_owned()
}

async fn start_flow_from(server: &Server, ip: &str) -> String {
    start_flow_as(server, |request| request.from_ip(ip)).await
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

/// A server behind a trusted proxy on 127.0.0.1: clients are told apart by X-Forwarded-For
/// (loopback clients themselves share no flow quota).
async fn behind_proxy() -> Server {
    let mut setup = Setup::default();
    setup.options.use_x_forwarded_for = true;
    setup.options.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let server = start(setup).await;
    onboard(&server, "owner", "owner-pass").await;
    server
}

/// Starts a flow for the forwarded client `client` (see [`behind_proxy`]).
async fn start_flow_for(server: &Server, client: &str) -> String {
    start_flow_as(server, |request| request.header("X-Forwarded-For", client)).await
}

async fn sign_in_for(server: &Server, client: &str, flow_id: &str) -> Response {
    server
        .send(
            Request::post(&format!("/auth/login_flow/{flow_id}"))
                .json(&json!({"client_id": server.client_id(),
                    "username": "owner", "password": "owner-pass"}))
                .header("X-Forwarded-For", client),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ip_filling_the_login_flow_table_does_not_lock_others_out() {
    let server = behind_proxy().await;
    let limits = ManagerLimits::default().login_flows;
    let flooder = "203.0.113.66";
    // More flows than the whole table holds, from one IP: every one starts.
    let mut flooded = Vec::new();
    for _ in 0..limits.max_flows + 10 {
        flooded.push(start_flow_for(&server, flooder).await);
    }
    // The flooding IP holds its share, its newest flows.
    assert_eq!(
        server.manager().login_flows().len(),
        limits.max_flows_per_owner
    );
    let oldest = sign_in_for(&server, flooder, &flooded[0]).await;
    assert_eq!(oldest.status, 404, "{}", oldest.text());
    let newest = sign_in_for(&server, flooder, flooded.last().unwrap()).await;
    assert_eq!(newest.json()["type"], "create_entry", "{}", newest.text());
    // Another client signs in meanwhile, in a flow it started after the flood.
    let other = "198.51.100.7";
    let flow_id = start_flow_for(&server, other).await;
    let done = sign_in_for(&server, other, &flow_id).await;
    assert_eq!(done.json()["type"], "create_entry", "{}", done.text());
}

#[tokio::test]
async fn an_ipv6_client_shares_one_quota_across_its_64() {
    let server = behind_proxy().await;
    let share = ManagerLimits::default().login_flows.max_flows_per_owner;
    let mut first = None;
    for n in 1..=share + 5 {
        let flow_id = start_flow_for(&server, &format!("2001:db8:1:2::{n:x}")).await;
        first.get_or_insert(flow_id);
    }
    assert_eq!(server.manager().login_flows().len(), share);
    let evicted = sign_in_for(&server, "2001:db8:1:2::1", &first.unwrap()).await;
    assert_eq!(evicted.status, 404, "{}", evicted.text());
    // The next /64 is another client.
    let flow_id = start_flow_for(&server, "2001:db8:1:3::1").await;
    assert_eq!(server.manager().login_flows().len(), share + 1);
    let done = sign_in_for(&server, "2001:db8:1:3::1", &flow_id).await;
    assert_eq!(done.json()["type"], "create_entry", "{}", done.text());
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

/// Enrols the owner in TOTP with a known secret; returns the secret.
async fn owner_with_totp(server: &Server) -> String {
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let owner = server.manager().owner().unwrap();
    let totp = server.manager().mfa_module("totp").unwrap();
    totp.setup_user(&owner.id, json!({"secret": secret}).as_object().unwrap())
        .await
        .unwrap();
    secret.to_owned()
}

/// Starts a flow from `ip` and passes the password step; returns the flow at its code step.
async fn at_code_step(server: &Server, ip: &str) -> String {
    let flow_id = start_flow_from(server, ip).await;
    let mfa = step_from(
        server,
        ip,
        &flow_id,
        json!({"username": "owner", "password": "owner-pass"}),
    )
    .await
    .json();
    assert_eq!(mfa["step_id"], "mfa", "{mfa}");
    flow_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_across_flows_lock_the_account_and_say_why() {
    const FLOWS: usize = 20;
    let server = start(Setup::default()).await;
    onboard(&server, "owner", "owner-pass").await;
    let secret = owner_with_totp(&server).await;
    let mut flows = Vec::new();
    for _ in 0..FLOWS {
        flows.push(at_code_step(&server, ATTACKER).await);
    }
    // One wrong code in each flow, all at once: no flow reaches its own retry limit.
    let guesses = flows
        .iter()
        .map(|flow_id| step_from(&server, ATTACKER, flow_id, json!({"code": "12345"})));
    let responses = join_all(guesses).await;
    let errors: Vec<Option<String>> = responses.iter().map(base_error).collect();
    let evaluated = errors
        .iter()
        .filter(|e| e.as_deref() == Some("invalid_code"))
        .count();
    let locked = errors
        .iter()
        .filter(|e| e.as_deref() == Some("mfa_locked"))
        .count();
    let limit = auth_core::MfaLockoutPolicy::default().max_failures as usize;
    assert_eq!(evaluated, limit, "{errors:?}");
    assert_eq!(evaluated + locked, FLOWS, "{errors:?}");
    // Now even the right code is refused, with the reason and how long it lasts, in a form of
    // Home Assistant's shape; the flow stays (the user can wait it out).
    let owner = server.manager().owner().unwrap();
    assert!(server.manager().mfa_locked_until(&owner.id).is_some());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let right = mfa_totp::code_at(&secret, now).unwrap();
    let refused = step_from(&server, ATTACKER, &flows[0], json!({"code": right})).await;
    assert_eq!(refused.status, 200);
    let refused = refused.json();
    assert_eq!(refused["type"], "form", "{refused}");
    assert_eq!(refused["step_id"], "mfa", "{refused}");
    assert_eq!(
        refused["errors"],
        json!({"base": "mfa_locked"}),
        "{refused}"
    );
    assert_eq!(
        refused["description_placeholders"]["mfa_locked_minutes"], "15",
        "{refused}"
    );
    // Another client with the password is refused the same way: the lock is the account's.
    let other = at_code_step(&server, "127.0.0.10").await;
    let refused = step_from(&server, "127.0.0.10", &other, json!({"code": right})).await;
    assert_eq!(base_error(&refused).as_deref(), Some("mfa_locked"));
}

#[tokio::test]
async fn wrong_codes_count_toward_the_ip_ban_including_the_last_one() {
    let max_retry = mfa_totp::MAX_RETRY as usize;
    let mut setup = Setup::default();
    setup.options.login_attempts_threshold = max_retry as i64;
    let server = start(setup).await;
    onboard(&server, "owner", "owner-pass").await;
    owner_with_totp(&server).await;
    let flow_id = at_code_step(&server, ATTACKER).await;
    for n in 1..=max_retry {
        let response = step_from(&server, ATTACKER, &flow_id, json!({"code": "12345"})).await;
        assert_eq!(response.status, 200, "{}", response.text());
        let body = response.json();
        if n < max_retry {
            assert_eq!(body["errors"]["base"], "invalid_code", "{body}");
        } else {
            assert_eq!(body["reason"], "too_many_retry", "{body}");
        }
    }
    // The wrong code that aborted the flow was counted too: the IP reached the threshold.
    assert!(server.http.bans().is_banned(ATTACKER.parse().unwrap()));
    let later = server
        .send(Request::get("/auth/providers").from_ip(ATTACKER))
        .await;
    assert_eq!(later.status, 403);
}
