//! A host embedding auth-http: merging our routers into its own, and protecting its own routes
//! with `AuthHttp::layer()` and the `Authenticated` extractor (issue 16 items 1 and 2). All
//! in-process (`Router::oneshot`); `examples/host-app` does the same over real HTTP.

use std::time::Duration;

use auth_core::NewRefreshToken;
use auth_http::{AuthHttp, Authenticated, HttpOptions};
use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;

use crate::harness::{Setup, build};
use crate::inproc::{get as get_req, request, send};

/// The host's own `/api/states`: who is asking.
async fn states(auth: Authenticated) -> axum::Json<serde_json::Value> {
    axum::Json(json!({
        "user": auth.user.name,
        "refresh_token_id": auth.refresh_token.id,
    }))
}

/// A host page that shows more to a signed-in user.
async fn greeting(auth: Option<Authenticated>) -> String {
    match auth {
        Some(auth) => format!("hello {}", auth.user.name.unwrap_or_default()),
        None => "hello stranger".to_owned(),
    }
}

/// The host: its own `/`, `/api/`, fallback and protected routes, with our API and sign-in
/// pages merged in.
fn host(http: &AuthHttp) -> Router {
    let protected = Router::new()
        .route("/api/states", get(states).post(states))
        .route("/greeting", get(greeting))
        .layer(http.layer());
    Router::new()
        .route("/", get(|| async { "host home" }))
        .route("/api/", get(|| async { "host api" }))
        .merge(protected)
        .merge(http.api_router())
        .merge(http.sign_in_router())
        .fallback(|| async { (StatusCode::NOT_FOUND, "host 404") })
}

async fn http_with(options: HttpOptions) -> (AuthHttp, auth_testkit::TempConfig) {
    build(Setup {
        options,
        ..Setup::default()
    })
    .await
}

/// A user (local-only or not) with a refresh token; returns (access token, refresh token id).
async fn token_for(http: &AuthHttp, name: &str, local_only: bool) -> (String, String) {
    let manager = http.manager();
    let user = manager
        .create_user(Some(name.to_owned()), vec![], local_only)
        .await
        .unwrap();
    let refresh = manager
        .create_refresh_token(
            &user.id,
            NewRefreshToken {
                client_id: Some("http://hass.local:8123/".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let access = manager
        .create_access_token(&refresh.id, None)
        .await
        .unwrap();
    (access, refresh.id.clone())
}

#[tokio::test]
async fn a_host_router_with_its_own_root_api_and_fallback_merges_ours() {
    let (http, _config) = http_with(HttpOptions::default()).await;
    // Merging the whole `router()` here panicked in axum (two `/`, two `/api/`, two fallbacks).
    let app = host(&http);
    let home = send(&app, get_req("/", "127.0.0.1", None)).await;
    assert_eq!(
        (home.status, home.body.as_str()),
        (StatusCode::OK, "host home")
    );
    let api = send(&app, get_req("/api/", "127.0.0.1", None)).await;
    assert_eq!(api.body, "host api");
    let unknown = send(&app, get_req("/nope", "127.0.0.1", None)).await;
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (StatusCode::NOT_FOUND, "host 404")
    );
    // Ours, with our pipeline's headers.
    let metadata = send(
        &app,
        get_req("/.well-known/oauth-authorization-server", "127.0.0.1", None),
    )
    .await;
    assert_eq!(metadata.status, StatusCode::OK);
    assert_eq!(metadata.json()["issuer"], "http://hass.local:8123");
    assert_eq!(metadata.header("x-content-type-options"), Some("nosniff"));
    let onboarding = send(&app, get_req("/api/onboarding", "127.0.0.1", None)).await;
    assert_eq!(onboarding.status, StatusCode::OK, "{}", onboarding.body);
    let page = send(&app, get_req("/auth/authorize", "127.0.0.1", None)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header("content-security-policy").is_some());
    let flow = send(
        &app,
        request("POST", "/auth/login_flow", "127.0.0.1")
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"client_id": "http://hass.local:8123/", "handler": ["insecure_example", null],
                       "redirect_uri": "http://hass.local:8123/?auth_callback=1"})
                .to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(flow.status, StatusCode::OK, "{}", flow.body);
    assert_eq!(flow.json()["step_id"], "init");
}

#[tokio::test]
async fn the_full_router_is_the_pieces() {
    let (http, _config) = http_with(HttpOptions::default()).await;
    let app = http.router();
    let root = send(&app, get_req("/", "127.0.0.1", None)).await;
    assert_eq!(root.status, StatusCode::OK);
    assert!(
        root.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let api = send(&app, get_req("/api/", "127.0.0.1", None)).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    let unknown = send(&app, get_req("/nope", "127.0.0.1", None)).await;
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (StatusCode::NOT_FOUND, "404: Not Found")
    );
    // The fallback runs in the pipeline too.
    assert_eq!(unknown.header("referrer-policy"), Some("no-referrer"));
}

#[tokio::test]
async fn the_extractor_accepts_a_valid_bearer_token_and_says_who() {
    let (http, _config) = http_with(HttpOptions::default()).await;
    let (access, refresh_id) = token_for(&http, "Paulus", false).await;
    let app = host(&http);
    let answer = send(&app, get_req("/api/states", "192.168.1.20", Some(&access))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.json(),
        json!({"user": "Paulus", "refresh_token_id": refresh_id})
    );
    assert_eq!(answer.header("x-frame-options"), Some("SAMEORIGIN"));
    let greeting = send(&app, get_req("/greeting", "192.168.1.20", Some(&access))).await;
    assert_eq!(greeting.body, "hello Paulus");
    let stranger = send(&app, get_req("/greeting", "192.168.1.20", None)).await;
    assert_eq!(
        (stranger.status, stranger.body.as_str()),
        (StatusCode::OK, "hello stranger")
    );
}

#[tokio::test]
async fn without_a_valid_token_the_extractor_answers_401_with_www_authenticate() {
    let (http, _config) = http_with(HttpOptions::default()).await;
    let app = host(&http);
    for token in [None, Some("not-a-jwt")] {
        let answer = send(&app, get_req("/api/states", "192.168.1.20", token)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(answer.body, "401: Unauthorized");
        assert_eq!(
            answer.header("www-authenticate"),
            Some(
                "Bearer resource_metadata=\"http://hass.local:8123/.well-known/oauth-protected-resource\""
            )
        );
    }
}

#[tokio::test]
async fn signed_paths_open_get_only_for_that_path_and_query() {
    let (http, _config) = http_with(HttpOptions::default()).await;
    let (_, refresh_id) = token_for(&http, "Paulus", false).await;
    let app = host(&http);
    let signed = http.sign_path("/api/states?entity=light.kitchen", 30, &refresh_id);
    assert!(
        signed.starts_with("/api/states?entity=light.kitchen&authSig="),
        "{signed}"
    );
    let (path, query) = signed.split_once('?').unwrap();
    assert_eq!(
        http.verify_signed_path(path, query),
        Some(refresh_id.clone())
    );
    let answer = send(&app, get_req(&signed, "192.168.1.20", None)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.json()["refresh_token_id"], refresh_id);
    // Another query, another path, or a POST: not covered.
    let other_query = signed.replace("light.kitchen", "lock.front_door");
    assert_eq!(
        http.verify_signed_path(path, other_query.split_once('?').unwrap().1),
        None
    );
    let other_path = signed.replace("/api/states", "/greeting");
    for (method, uri) in [
        ("GET", other_query.as_str()),
        ("GET", &other_path),
        ("POST", &signed),
    ] {
        let answer = send(
            &app,
            request(method, uri, "192.168.1.20")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        let expected = if uri == other_path {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(answer.status, expected, "{method} {uri}");
        if uri == other_path {
            assert_eq!(answer.body, "hello stranger");
        }
    }
    // Removing the refresh token ends the signature.
    http.manager()
        .remove_refresh_token(&refresh_id)
        .await
        .unwrap();
    let answer = send(&app, get_req(&signed, "192.168.1.20", None)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_local_only_user_is_refused_from_outside_the_local_network() {
    let (http, _config) = http_with(HttpOptions::default()).await;
    let (access, _) = token_for(&http, "Kiosk", true).await;
    let app = host(&http);
    let inside = send(&app, get_req("/api/states", "192.168.1.20", Some(&access))).await;
    assert_eq!(inside.status, StatusCode::OK);
    let outside = send(&app, get_req("/api/states", "203.0.113.7", Some(&access))).await;
    assert_eq!(outside.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn failed_requests_to_host_routes_count_toward_a_ban() {
    let options = HttpOptions {
        login_attempts_threshold: 2,
        ban_duration: Some(Duration::from_secs(3600)),
        ..HttpOptions::default()
    };
    let (http, _config) = http_with(options).await;
    let (access, _) = token_for(&http, "Paulus", false).await;
    let app = host(&http);
    for _ in 0..2 {
        let answer = send(&app, get_req("/api/states", "203.0.113.9", Some("wrong"))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let ip = "203.0.113.9".parse().unwrap();
    assert!(http.bans().is_banned(ip));
    // Banned everywhere behind the layer, even with a good token; others are not affected.
    let banned = send(&app, get_req("/api/states", "203.0.113.9", Some(&access))).await;
    assert_eq!(banned.status, StatusCode::FORBIDDEN);
    let providers = send(&app, get_req("/auth/providers", "203.0.113.9", None)).await;
    assert_eq!(providers.status, StatusCode::FORBIDDEN);
    let other = send(&app, get_req("/api/states", "203.0.113.10", Some(&access))).await;
    assert_eq!(other.status, StatusCode::OK);
    // Routes outside the layer are the host's business.
    let home = send(&app, get_req("/", "203.0.113.9", None)).await;
    assert_eq!(home.status, StatusCode::OK);
}

#[tokio::test]
async fn a_revoked_token_is_refused_but_not_counted_as_a_failed_login() {
    let options = HttpOptions {
        login_attempts_threshold: 1,
        ..HttpOptions::default()
    };
    let (http, _config) = http_with(options).await;
    let (access, refresh_id) = token_for(&http, "Paulus", false).await;
    http.manager()
        .remove_refresh_token(&refresh_id)
        .await
        .unwrap();
    let app = host(&http);
    let answer = send(&app, get_req("/api/states", "203.0.113.9", Some(&access))).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(!http.bans().is_banned("203.0.113.9".parse().unwrap()));
}

#[tokio::test]
async fn the_extractor_on_a_route_without_the_layer_is_a_500_not_a_401() {
    let (http, _config) = http_with(HttpOptions::default()).await;
    let (access, _) = token_for(&http, "Paulus", false).await;
    let app = Router::new().route("/api/states", get(states));
    let answer = send(&app, get_req("/api/states", "192.168.1.20", Some(&access))).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn a_fetch_client_ca_file_that_is_not_pem_is_a_setup_error_naming_the_key() {
    let config = auth_testkit::TempConfig::empty();
    let bad = config.path().join("home-ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let manager = auth_core::AuthManager::builder(config.storage())
        .build()
        .await
        .unwrap();
    let options = HttpOptions {
        fetch_client_ca_file: Some(bad),
        ..HttpOptions::default()
    };
    let error = AuthHttp::new(manager, options, None).await.unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("http.fetch_client_ca_file: "), "{text}");
    assert!(text.contains("home-ca.pem"), "{text}");
}
