//! Authenticated routes, signed paths and discovery documents.

use auth_testkit::http::Request;
use serde_json::json;

use crate::harness::{login, onboarded};

#[tokio::test]
async fn api_root_requires_a_valid_bearer() {
    let (server, owner) = onboarded().await;
    for bad in [
        Request::get("/api/"),
        Request::get("/api/").bearer("x.y.z"),
        Request::get("/api/").header("Authorization", &format!("bearer {owner}")),
    ] {
        let response = server.send(bad).await;
        assert_eq!(
            (response.status, response.text()),
            (401, "401: Unauthorized".to_owned())
        );
        assert_eq!(
            response.header("www-authenticate"),
            Some(
                format!(
                    "Bearer resource_metadata=\"http://{}/.well-known/oauth-protected-resource\"",
                    server.addr
                )
                .as_str()
            )
        );
    }
    assert_eq!(
        server
            .send(Request::get("/api/").bearer(&owner))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn signed_paths_grant_one_get() {
    let (server, _owner) = onboarded().await;
    let tokens = login(&server, "owner", "owner-pass").await;
    let refresh = server
        .manager()
        .refresh_token_by_value(tokens["refresh_token"].as_str().unwrap())
        .unwrap();
    let signed = server.http.sign_path("/api/?a=1&width=3", 30, &refresh.id);
    assert!(signed.starts_with("/api/?a=1&authSig="), "{signed}");
    assert_eq!(server.send(Request::get(&signed)).await.status, 200);
    assert_eq!(
        server
            .send(Request::get(&format!("{signed}&width=10")))
            .await
            .status,
        200,
        "width/height may be re-added"
    );
    assert_eq!(
        server
            .send(Request::get(&signed.replace("a=1", "a=2")))
            .await
            .status,
        401,
        "params are signed"
    );
    assert_eq!(server.send(Request::post(&signed)).await.status, 405);
    server
        .manager()
        .remove_refresh_token(&refresh.id)
        .await
        .unwrap();
    assert_eq!(
        server.send(Request::get(&signed)).await.status,
        401,
        "revoked token"
    );
}

#[tokio::test]
async fn discovery_documents() {
    let (server, _owner) = onboarded().await;
    let base = format!("http://{}", server.addr);
    let metadata = server
        .send(Request::get("/.well-known/oauth-authorization-server"))
        .await
        .json();
    assert_eq!(
        metadata,
        json!({
            "authorization_endpoint": format!("{base}/auth/authorize"),
            "token_endpoint": format!("{base}/auth/token"),
            "revocation_endpoint": format!("{base}/auth/revoke"),
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "client_id_metadata_document_supported": true,
            "code_challenge_methods_supported": ["S256"],
            "response_types_supported": ["code"],
            "service_documentation": "https://contributors.home-assistant.io/core/internals/auth-api/",
            "issuer": base,
        })
    );
    let resource = server
        .send(Request::get("/.well-known/oauth-protected-resource"))
        .await
        .json();
    assert_eq!(resource["authorization_servers"], json!([base]));
    let change = server
        .send(Request::get("/.well-known/change-password"))
        .await;
    assert_eq!(
        (change.status, change.header("location")),
        (302, Some("/profile"))
    );
    let page = server
        .send(Request::get("/auth/authorize?client_id=x&redirect_uri=y"))
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().contains("/auth/static/authorize.js"));
    let cors = server
        .send(
            Request::post("/auth/token")
                .header("Origin", "https://app.example")
                .form(&[("grant_type", "x")]),
        )
        .await;
    assert_eq!(
        cors.header("access-control-allow-origin"),
        Some("https://app.example")
    );
}

#[tokio::test]
async fn behind_a_trusted_tls_proxy_urls_use_the_forwarded_scheme_and_host() {
    let mut setup = crate::harness::Setup::default();
    setup.options.use_x_forwarded_for = true;
    setup.options.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let server = crate::harness::start(setup).await;
    let forwarded = |request: Request| {
        request
            .header("X-Forwarded-For", "203.0.113.5")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "ha.example.com")
    };
    let metadata = server
        .send(forwarded(Request::get(
            "/.well-known/oauth-authorization-server",
        )))
        .await
        .json();
    assert_eq!(metadata["issuer"], "https://ha.example.com");
    assert_eq!(
        metadata["token_endpoint"],
        "https://ha.example.com/auth/token"
    );
    let denied = server.send(forwarded(Request::get("/api/"))).await;
    assert_eq!(denied.status, 401);
    assert_eq!(
        denied.header("www-authenticate"),
        Some(
            "Bearer resource_metadata=\"https://ha.example.com/.well-known/oauth-protected-resource\""
        )
    );
    // Without X-Forwarded-For the request did not come through the proxy: its own Host counts.
    let direct = server
        .send(
            Request::get("/.well-known/oauth-authorization-server")
                .header("X-Forwarded-Proto", "https")
                .header("X-Forwarded-Host", "evil.example"),
        )
        .await
        .json();
    assert_eq!(direct["issuer"], format!("http://{}", server.addr));
    // Garbage in the forwarded host is ignored.
    let garbage = server
        .send(
            Request::get("/.well-known/oauth-authorization-server")
                .header("X-Forwarded-For", "203.0.113.5")
                .header("X-Forwarded-Host", "a/b@c"),
        )
        .await
        .json();
    assert_eq!(garbage["issuer"], format!("http://{}", server.addr));
}

#[tokio::test]
async fn untrusted_peers_cannot_choose_the_advertised_urls() {
    let (server, _owner) = onboarded().await;
    // Not configured for proxies: a forwarded request is refused outright (as HA does).
    let refused = server
        .send(
            Request::get("/.well-known/oauth-authorization-server")
                .header("X-Forwarded-For", "203.0.113.5")
                .header("X-Forwarded-Proto", "https"),
        )
        .await;
    assert_eq!(refused.status, 400);
}
