//! The route table: every route of the router is classified here (a new route fails
//! `every_route_is_classified` until it is), and every route that needs a token refuses a
//! request without a valid one: none, garbage, another key's signature, `alg: none`, expired,
//! revoked, or a deactivated user's.

use std::collections::BTreeSet;
use std::path::Path;

use auth_core::Clock;
use auth_crypto::jwt::{AccessClaims, encode_access_token};
use auth_testkit::http::Request;
use base64::Engine;
use serde_json::{Value, json};

use crate::harness::{Server, Setup, login, onboard, start};
use crate::websocket::open;

/// Who may use a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone (login, token, discovery, pages, static files).
    Public,
    /// Anyone until onboarding created the owner; refused (403) afterwards. (Like every
    /// onboarding route, an unknown route (404) when all onboarding steps were done at start.)
    UntilOnboarded,
    /// A valid access token (or, for GET, a signed path).
    Token,
    /// The websocket: the upgrade is public; nothing but the auth message is accepted before
    /// a valid token.
    WebsocketAuthPhase,
}

/// Every route, with its methods and who may use it. Paths as registered in the router.
pub const ROUTES: &[(&str, &[&str], Access)] = &[
    ("/", &["GET"], Access::Public),
    ("/profile", &["GET"], Access::Public),
    ("/onboarding.html", &["GET"], Access::Public),
    ("/auth/authorize", &["GET"], Access::Public),
    ("/auth/static/{file}", &["GET"], Access::Public),
    ("/frontend_latest/{*path}", &["GET"], Access::Public),
    ("/frontend_es5/{*path}", &["GET"], Access::Public),
    ("/static/{*path}", &["GET"], Access::Public),
    ("/auth/providers", &["GET"], Access::Public),
    ("/auth/login_flow", &["POST"], Access::Public),
    (
        "/auth/login_flow/{flow_id}",
        &["GET", "POST", "DELETE"],
        Access::Public,
    ),
    ("/auth/token", &["POST"], Access::Public),
    ("/auth/revoke", &["POST"], Access::Public),
    ("/auth/link_user", &["POST"], Access::Token),
    (
        "/.well-known/oauth-authorization-server",
        &["GET"],
        Access::Public,
    ),
    (
        "/.well-known/oauth-protected-resource",
        &["GET"],
        Access::Public,
    ),
    ("/.well-known/change-password", &["GET"], Access::Public),
    ("/auth/oidc/callback", &["GET"], Access::Public),
    ("/api/", &["GET"], Access::Token),
    ("/api/websocket", &["GET"], Access::WebsocketAuthPhase),
    ("/api/onboarding", &["GET"], Access::Public),
    ("/api/onboarding/users", &["POST"], Access::UntilOnboarded),
    ("/api/onboarding/integration", &["POST"], Access::Token),
];

/// A concrete path for a route pattern (path parameters filled in).
pub fn concrete(pattern: &str) -> String {
    pattern
        .replace("{flow_id}", "0123456789abcdef0123456789abcdef")
        .replace("{file}", "login.js")
        .replace("{*path}", "x/y.js")
}

/// Paths registered with `.route("…"` anywhere in auth-http's sources.
fn registered_routes() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, _) in text.match_indices(".route(") {
                    let rest = text[i + ".route(".len()..].trim_start();
                    if let Some(rest) = rest.strip_prefix('"') {
                        out.insert(rest[..rest.find('"').unwrap()].to_owned());
                    }
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out
}

#[test]
fn every_route_is_classified() {
    let registered = registered_routes();
    let classified: BTreeSet<String> = ROUTES.iter().map(|(p, _, _)| (*p).to_owned()).collect();
    assert!(
        registered.len() > 10,
        "the scan finds the routes: {registered:?}"
    );
    let unclassified: Vec<_> = registered.difference(&classified).collect();
    let stale: Vec<_> = classified.difference(&registered).collect();
    assert!(
        unclassified.is_empty(),
        "add these routes to ROUTES in tests/it/routes.rs with who may use them: {unclassified:?}"
    );
    assert!(
        stale.is_empty(),
        "these routes are gone; remove them from ROUTES: {stale:?}"
    );
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Bearer tokens that must never authenticate, with what is wrong with them.
async fn bad_tokens(server: &Server, clock: &auth_core::ManualClock) -> Vec<(String, String)> {
    let manager = server.manager();
    let now = clock.now().unix_timestamp();
    let live = login(server, "owner", "owner-pass").await;
    let live_id = manager
        .refresh_token_by_value(live["refresh_token"].as_str().unwrap())
        .unwrap()
        .id
        .clone();
    let claims = AccessClaims {
        iss: live_id.clone(),
        iat: now,
        exp: now + 1800,
    };
    let mut tokens = vec![
        ("garbage".to_owned(), "garbage".to_owned()),
        ("empty".to_owned(), String::new()),
        ("huge".to_owned(), "a".repeat(60_000)),
        (
            "another key".to_owned(),
            encode_access_token(&claims, b"not the token's key"),
        ),
        (
            "alg none".to_owned(),
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","typ":"JWT"}"#),
                b64(json!({"iss": live_id, "iat": now, "exp": now + 1800})
                    .to_string()
                    .as_bytes())
            ),
        ),
    ];
    // Revoked: a real access token whose refresh token is gone.
    let revoked = login(server, "owner", "owner-pass").await;
    let revoked_id = manager
        .refresh_token_by_value(revoked["refresh_token"].as_str().unwrap())
        .unwrap()
        .id
        .clone();
    manager.remove_refresh_token(&revoked_id).await.unwrap();
    tokens.push((
        "revoked".to_owned(),
        revoked["access_token"].as_str().unwrap().to_owned(),
    ));
    // A deactivated user's token.
    let user = manager
        .create_user(Some("Gone".into()), vec!["system-users".into()], false)
        .await
        .unwrap();
    let refresh = manager
        .create_refresh_token(
            &user.id,
            auth_core::NewRefreshToken {
                client_id: Some(server.client_id()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let jwt = manager
        .create_access_token(&refresh.id, None)
        .await
        .unwrap();
    manager
        .update_user(
            &user.id,
            auth_core::UserUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tokens.push(("deactivated user".to_owned(), jwt));
    tokens
}

async fn request(server: &Server, method: &str, path: &str, bearer: Option<&str>) -> u16 {
    let mut request = Request::new(method, path);
    if method == "POST" {
        request = request.json(&json!({"client_id": server.client_id(), "redirect_uri": server.redirect_uri(), "code": "x"}));
    }
    if let Some(token) = bearer {
        request = request.bearer(token);
    }
    server.send(request).await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_needing_a_token_refuse_every_request_without_a_valid_one() {
    let clock = auth_testkit::clock_at(1_795_303_506);
    let server = start(Setup {
        clock: clock.clone(),
        ..Setup::default()
    })
    .await;
    let owner_access = onboard(&server, "owner", "owner-pass").await;
    let mut bad = bad_tokens(&server, &clock).await;
    // Expired: issued 31 minutes ago (access tokens live 30).
    let old = login(&server, "owner", "owner-pass").await;
    clock.advance(time::Duration::minutes(31));
    bad.push((
        "expired".to_owned(),
        old["access_token"].as_str().unwrap().to_owned(),
    ));
    let fresh = login(&server, "owner", "owner-pass").await;
    let fresh_access = fresh["access_token"].as_str().unwrap();
    let _ = owner_access;

    let mut checked = 0;
    for (pattern, methods, access) in ROUTES {
        if *access != Access::Token {
            continue;
        }
        let path = concrete(pattern);
        for method in *methods {
            assert_eq!(
                request(&server, method, &path, None).await,
                401,
                "{method} {path} without a token"
            );
            for (what, token) in &bad {
                assert_eq!(
                    request(&server, method, &path, Some(token)).await,
                    401,
                    "{method} {path} with a {what} token"
                );
            }
            // A signed path only ever authenticates the GET of its own path.
            let signed = server.http.sign_path(
                "/auth/providers",
                30,
                &server
                    .manager()
                    .refresh_token_by_value(fresh["refresh_token"].as_str().unwrap())
                    .unwrap()
                    .id,
            );
            let query = signed.split_once('?').unwrap().1;
            assert_eq!(
                request(&server, method, &format!("{path}?{query}"), None).await,
                401,
                "{method} {path} with another path's signature"
            );
            // The valid token gets past authentication.
            assert_ne!(
                request(&server, method, &path, Some(fresh_access)).await,
                401,
                "{method} {path} with a valid token"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 3);
}

#[tokio::test]
async fn public_routes_and_the_websocket_grant_nothing_without_a_token() {
    let server = start(Setup::default()).await;
    onboard(&server, "owner", "owner-pass").await;
    for (pattern, methods, access) in ROUTES {
        let path = concrete(pattern);
        match access {
            Access::UntilOnboarded => {
                for method in *methods {
                    let response = server
                        .send(Request::new(method, &path).json(&json!({
                            "client_id": server.client_id(), "name": "Mallory",
                            "username": "mallory", "password": "x", "language": "en"})))
                        .await;
                    assert_eq!(response.status, 403, "{method} {path} after onboarding");
                }
            }
            Access::WebsocketAuthPhase => {
                let mut ws = open(&server, &[]).await.expect("the upgrade is public");
                let required = ws.recv().await;
                assert_eq!(required["type"], "auth_required");
                ws.send(json!({"id": 1, "type": "config/auth/list"})).await;
                let reply: Value = ws.recv().await;
                assert_eq!(reply["type"], "auth_invalid", "{reply}");
                ws.expect_closed().await;
            }
            Access::Public | Access::Token => {}
        }
    }
}
