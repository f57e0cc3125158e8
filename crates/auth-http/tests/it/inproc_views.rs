//! The HTTP views in-process (`Router::oneshot` on `AuthHttp::router()`), next to the
//! real-socket tests of the other modules: the same answers without a listener (issue 16 item 8).

use auth_http::{AuthHttp, HttpOptions};
use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Setup, build};
use crate::inproc::{Answer, get, request, send};

const CLIENT_ID: &str = "http://hass.local:8123/";
const PEER: &str = "192.168.1.20";

async fn app(options: HttpOptions) -> (AuthHttp, Router, auth_testkit::TempConfig) {
    let (http, config) = build(Setup {
        options,
        ..Setup::default()
    })
    .await;
    http.onboarding().mark_done("user").await.unwrap();
    let router = http.router();
    (http, router, config)
}

async fn post_json(router: &Router, uri: &str, body: &Value) -> Answer {
    send(
        router,
        request("POST", uri, PEER)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

async fn post_form(router: &Router, uri: &str, pairs: &[(&str, &str)]) -> Answer {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    send(
        router,
        request("POST", uri, PEER)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

/// Starts an insecure_example login flow; returns its id.
async fn start_demo_flow(router: &Router) -> String {
    let flow = post_json(
        router,
        "/auth/login_flow",
        &json!({"client_id": CLIENT_ID, "handler": ["insecure_example", null],
                "redirect_uri": format!("{CLIENT_ID}?auth_callback=1")}),
    )
    .await;
    assert_eq!(flow.status, StatusCode::OK, "{}", flow.body);
    flow.json()["flow_id"].as_str().unwrap().to_owned()
}

/// Signs `demo` in with the insecure_example provider; returns the token response.
async fn sign_in(router: &Router) -> Value {
    let flow_id = start_demo_flow(router).await;
    let done = post_json(
        router,
        &format!("/auth/login_flow/{flow_id}"),
        &json!({"client_id": CLIENT_ID, "username": "demo", "password": "demo-pass"}),
    )
    .await;
    assert_eq!(done.json()["type"], "create_entry", "{}", done.body);
    let code = done.json()["result"].as_str().unwrap().to_owned();
    let tokens = post_form(
        router,
        "/auth/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    assert_eq!(tokens.header("cache-control"), Some("no-store"));
    tokens.json()
}

#[tokio::test]
async fn providers_wait_for_onboarding_then_list_the_configured_ones() {
    let (http, _config) = build(Setup::default()).await;
    let before = send(&http.router(), get("/auth/providers", PEER, None)).await;
    assert_eq!(before.status, StatusCode::BAD_REQUEST);
    assert_eq!(before.json()["code"], "onboarding_required");
    http.onboarding().mark_done("user").await.unwrap();
    let after = send(&http.router(), get("/auth/providers", PEER, None)).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.body);
    let types: Vec<String> = after.json()["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["homeassistant", "insecure_example"]);
}

#[tokio::test]
async fn sign_in_refresh_and_revoke() {
    let (_http, router, _config) = app(HttpOptions::default()).await;
    let tokens = sign_in(&router).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["ha_auth_provider"], "insecure_example");
    let access = tokens["access_token"].as_str().unwrap();
    let api = send(&router, get("/api/", PEER, Some(access))).await;
    assert_eq!(api.json(), json!({"message": "API running."}));

    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let refreshed = post_form(
        &router,
        "/auth/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    assert!(refreshed.json()["access_token"].is_string());

    let revoked = post_form(&router, "/auth/revoke", &[("token", refresh_token)]).await;
    assert_eq!(revoked.status, StatusCode::OK);
    let again = post_form(
        &router,
        "/auth/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    assert_eq!(
        (again.status, again.json()),
        (StatusCode::BAD_REQUEST, json!({"error": "invalid_grant"}))
    );
}

#[tokio::test]
async fn a_code_is_redeemed_once() {
    let (_http, router, _config) = app(HttpOptions::default()).await;
    let flow_id = start_demo_flow(&router).await;
    let done = post_json(
        &router,
        &format!("/auth/login_flow/{flow_id}"),
        &json!({"client_id": CLIENT_ID, "username": "demo", "password": "demo-pass"}),
    )
    .await;
    let code = done.json()["result"].as_str().unwrap().to_owned();
    let grant = [
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT_ID),
        ("code", code.as_str()),
    ];
    assert_eq!(
        post_form(&router, "/auth/token", &grant).await.status,
        StatusCode::OK
    );
    let second = post_form(&router, "/auth/token", &grant).await;
    assert_eq!(
        (second.status, second.json()),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "Invalid code"})
        )
    );
}

#[tokio::test]
async fn a_wrong_password_is_a_form_error_and_an_unknown_flow_a_404() {
    let (_http, router, _config) = app(HttpOptions::default()).await;
    let flow_id = start_demo_flow(&router).await;
    let wrong = post_json(
        &router,
        &format!("/auth/login_flow/{flow_id}"),
        &json!({"client_id": CLIENT_ID, "username": "demo", "password": "nope"}),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert_eq!(wrong.json()["errors"], json!({"base": "invalid_auth"}));
    let unknown = post_json(
        &router,
        "/auth/login_flow/no-such-flow",
        &json!({"client_id": CLIENT_ID, "username": "demo", "password": "demo-pass"}),
    )
    .await;
    assert_eq!(
        (unknown.status, unknown.json()),
        (
            StatusCode::NOT_FOUND,
            json!({"message": "Invalid flow specified"})
        )
    );
}

#[tokio::test]
async fn well_known_documents_use_the_host_the_client_addressed() {
    let (_http, router, _config) = app(HttpOptions::default()).await;
    let metadata = send(
        &router,
        get("/.well-known/oauth-authorization-server", PEER, None),
    )
    .await;
    let metadata = metadata.json();
    assert_eq!(metadata["issuer"], "http://hass.local:8123");
    assert_eq!(
        metadata["token_endpoint"],
        "http://hass.local:8123/auth/token"
    );
    let resource = send(
        &router,
        get("/.well-known/oauth-protected-resource", PEER, None),
    )
    .await;
    assert_eq!(resource.json()["resource"], "http://hass.local:8123");
    let change = send(&router, get("/.well-known/change-password", PEER, None)).await;
    assert_eq!(
        (change.status, change.header("location")),
        (StatusCode::FOUND, Some("/profile"))
    );
}

#[tokio::test]
async fn cors_allows_every_origin_only_where_ha_does() {
    let (_http, router, _config) = app(HttpOptions::default()).await;
    let preflight = |uri: &str| {
        request("OPTIONS", uri, PEER)
            .header("origin", "https://elsewhere.example")
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .unwrap()
    };
    let token = send(&router, preflight("/auth/token")).await;
    assert_eq!(token.status, StatusCode::OK);
    assert_eq!(
        token.header("access-control-allow-origin"),
        Some("https://elsewhere.example")
    );
    let flow = send(&router, preflight("/auth/login_flow")).await;
    assert_eq!(flow.header("access-control-allow-origin"), None);
    let cast = send(
        &router,
        request("GET", "/auth/providers", PEER)
            .header("origin", "https://cast.home-assistant.io")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        cast.header("access-control-allow-origin"),
        Some("https://cast.home-assistant.io")
    );
}

#[tokio::test]
async fn filtered_oversized_and_unknown_requests() {
    let (_http, router, _config) = app(HttpOptions::default()).await;
    let filtered = send(
        &router,
        get("/auth/providers?file=../../etc/passwd", PEER, None),
    )
    .await;
    assert_eq!(
        (filtered.status, filtered.body.as_str()),
        (StatusCode::BAD_REQUEST, "400: Bad Request")
    );
    let big = send(
        &router,
        request("POST", "/auth/login_flow", PEER)
            .header("content-type", "application/json")
            .body(Body::from(vec![b' '; 70_000]))
            .unwrap(),
    )
    .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", big.body);
    let unknown = send(&router, get("/no/such/page", PEER, None)).await;
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (StatusCode::NOT_FOUND, "404: Not Found")
    );
    for answer in [&filtered, &big, &unknown] {
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
    }
}

#[tokio::test]
async fn unauthenticated_calls_to_authenticated_views_count_toward_a_ban() {
    let options = HttpOptions {
        login_attempts_threshold: 2,
        ..HttpOptions::default()
    };
    let (http, router, _config) = app(options).await;
    for _ in 0..2 {
        let link = post_json(
            &router,
            "/auth/link_user",
            &json!({"client_id": CLIENT_ID, "code": "x"}),
        )
        .await;
        assert_eq!(link.status, StatusCode::UNAUTHORIZED);
        assert!(link.header("www-authenticate").is_some());
    }
    assert!(http.bans().is_banned(PEER.parse().unwrap()));
    let banned = send(&router, get("/auth/providers", PEER, None)).await;
    assert_eq!(banned.status, StatusCode::FORBIDDEN);
    let other = send(&router, get("/auth/providers", "192.168.1.21", None)).await;
    assert_eq!(other.status, StatusCode::OK);
}
