//! Home Assistant's own `.storage`, served as-is: its users log in, its tokens work.

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use serde_json::json;

use crate::harness::{Setup, login, start};

#[tokio::test]
async fn ha_fixture_users_log_in_and_llat_validates() {
    let fixture = auth_testkit::fixture_json("ha-2026.2.3/fixture.json");
    let server = start(Setup {
        config: TempConfig::from_fixture("ha-2026.2.3"),
        ..Setup::default()
    })
    .await;
    // Onboarding is done: an owner exists.
    assert_eq!(
        server.send(Request::get("/auth/providers")).await.status,
        200
    );
    let tokens = login(&server, "owner", "owner-pass").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        server
            .send(Request::get("/api/").bearer(access))
            .await
            .status,
        200
    );
    let owner_id = fixture["users"]["owner"]["id"].as_str().unwrap();
    let refresh = server
        .manager()
        .refresh_token_by_value(tokens["refresh_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        refresh.user_id, owner_id,
        "the existing HA user, not a new one"
    );

    // The long-lived token HA issued (10 years) works here unchanged.
    let llat = fixture["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["refresh_token_id"] == "0da87881ddf24ee7a3dcbd4e8f290c4d")
        .unwrap();
    let jwt = llat["access_token"]["jwt"].as_str().unwrap();
    let response = server.send(Request::get("/api/").bearer(jwt)).await;
    assert_eq!(response.status, 200, "{}", response.text());

    // The local-only user is refused from a non-local address (through a trusted proxy).
    let _ = json!(null);
}

#[tokio::test]
async fn local_only_users_are_blocked_from_remote_addresses() {
    let mut setup = Setup {
        config: TempConfig::from_fixture("ha-2026.2.3"),
        ..Setup::default()
    };
    setup.options.use_x_forwarded_for = true;
    setup.options.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let server = start(setup).await;
    let fixture = auth_testkit::fixture_json("ha-2026.2.3/fixture.json");
    let local = &fixture["users"]["localonly"];
    let username = local["credentials"][0]["data"]["username"]
        .as_str()
        .unwrap();
    let password = local["password"].as_str().unwrap();
    let client = server.client_id();
    let flow = server
        .send(
            Request::post("/auth/login_flow")
                .header("X-Forwarded-For", "8.8.8.8")
                .json(&json!({"client_id": client, "handler": ["homeassistant", null], "redirect_uri": server.redirect_uri()})),
        )
        .await
        .json();
    let done = server
        .send(
            Request::post(&format!(
                "/auth/login_flow/{}",
                flow["flow_id"].as_str().unwrap()
            ))
            .header("X-Forwarded-For", "8.8.8.8")
            .json(&json!({"client_id": client, "username": username, "password": password})),
        )
        .await;
    assert_eq!(
        (done.status, done.text()),
        (
            403,
            r#"{"message":"Login blocked: User cannot authenticate remotely"}"#.to_owned()
        )
    );
    // From the LAN it works.
    let tokens = login(&server, username, password).await;
    assert_eq!(tokens["token_type"], "Bearer");
    // A forwarded header from a peer that is not a trusted proxy is refused outright.
    let untrusted = server
        .send(
            Request::get("/auth/providers")
                .from_ip("127.0.0.5")
                .header("X-Forwarded-For", "1.2.3.4"),
        )
        .await;
    assert_eq!(untrusted.status, 400);
}

/// tokens.md §6: an IPv4-mapped link-local address is not local (HA's link-local test does not
/// match it), while the plain IPv4 one and mapped private/loopback ones are; the client address
/// keeps that difference wherever it comes from.
#[tokio::test]
async fn ipv4_mapped_link_local_addresses_are_not_local() {
    use auth_http::net::{canonical, in_networks};
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert_eq!(canonical(ip("::ffff:192.168.1.5")), ip("192.168.1.5"));
    assert_eq!(
        canonical(ip("::ffff:169.254.1.1")),
        ip("::ffff:169.254.1.1")
    );
    // Configured IPv4 networks still match a mapped link-local address.
    let proxies = ["169.254.0.0/16".parse().unwrap()];
    assert!(in_networks(ip("::ffff:169.254.1.1"), &proxies));
    assert!(in_networks(ip("169.254.1.1"), &proxies));
    assert!(!in_networks(ip("::ffff:10.0.0.1"), &proxies));

    let mut setup = Setup {
        config: TempConfig::from_fixture("ha-2026.2.3"),
        ..Setup::default()
    };
    setup.options.use_x_forwarded_for = true;
    setup.options.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let server = start(setup).await;
    for (client, local) in [
        ("169.254.7.7", true),
        ("::ffff:169.254.7.7", false),
        ("::ffff:192.168.1.5", true),
        ("::ffff:127.0.0.2", true),
        ("fe80::1", true),
        ("::ffff:8.8.8.8", false),
    ] {
        let providers = server
            .send(Request::get("/auth/providers").header("X-Forwarded-For", client))
            .await;
        assert_eq!(
            providers.json()["preselect_remember_me"],
            local,
            "{client}: {}",
            providers.text()
        );
    }

    // The local-only user cannot sign in from a mapped link-local address.
    let fixture = auth_testkit::fixture_json("ha-2026.2.3/fixture.json");
    let local = &fixture["users"]["localonly"];
    let username = local["credentials"][0]["data"]["username"]
        .as_str()
        .unwrap();
    let password = local["password"].as_str().unwrap();
    let client = server.client_id();
    for (from, expected) in [
        (
            "::ffff:169.254.1.1",
            Some(r#"{"message":"Login blocked: User cannot authenticate remotely"}"#),
        ),
        ("169.254.1.1", None),
    ] {
        let flow = server
            .send(
                Request::post("/auth/login_flow")
                    .header("X-Forwarded-For", from)
                    .json(
                        &json!({"client_id": client, "handler": ["homeassistant", null],
                                  "redirect_uri": server.redirect_uri()}),
                    ),
            )
            .await
            .json();
        let done = server
            .send(
                Request::post(&format!(
                    "/auth/login_flow/{}",
                    flow["flow_id"].as_str().unwrap()
                ))
                .header("X-Forwarded-For", from)
                .json(&json!({"client_id": client, "username": username, "password": password})),
            )
            .await;
        match expected {
            Some(blocked) => assert_eq!((done.status, done.text()), (403, blocked.to_owned())),
            None => assert_eq!(done.json()["type"], "create_entry", "{}", done.text()),
        }
    }
}
