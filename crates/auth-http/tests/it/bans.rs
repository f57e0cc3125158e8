//! IP bans beyond the basics in `token.rs`: stale tokens are not failed logins, IPv6 clients
//! are banned by /64, and the ban list is bounded in memory and in `ip_bans.yaml`.

use std::time::Duration;

use auth_testkit::http::Request;
use serde_json::Value;

use crate::harness::{Server, Setup, login, onboard, start};

fn banning(threshold: i64) -> (Setup, std::sync::Arc<auth_core::ManualClock>) {
    let clock = auth_testkit::clock_at(1_795_303_506);
    let mut setup = Setup {
        clock: clock.clone(),
        ..Setup::default()
    };
    setup.options.login_attempts_threshold = threshold;
    setup.options.ban_duration = Some(Duration::from_secs(3600));
    (setup, clock)
}

async fn api_status(server: &Server, token: &str, ip: &str) -> u16 {
    server
        .send(Request::get("/api/").bearer(token).from_ip(ip))
        .await
        .status
}

fn ban_file_ips(server: &Server) -> Vec<String> {
    let text =
        std::fs::read_to_string(server.config.path().join("ip_bans.yaml")).unwrap_or_default();
    let map: serde_yaml::Mapping = serde_yaml::from_str(&text).unwrap_or_default();
    map.keys().map(|k| k.as_str().unwrap().to_owned()).collect()
}

/// Polls `ip_bans.yaml` (written off the request path) until it holds exactly `ips` (10 s).
async fn ban_file_holds(server: &Server, ips: &[&str], what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ban_file_ips(server) != ips {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: ip_bans.yaml holds {:?}, not {ips:?}",
            ban_file_ips(server)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn expired_or_revoked_tokens_do_not_ban_their_owner() {
    let (setup, clock) = banning(2);
    let server = start(setup).await;
    onboard(&server, "owner", "owner-pass").await;
    let phone: Value = login(&server, "owner", "owner-pass").await;
    let expired = phone["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api_status(&server, &expired, "127.0.0.5").await, 200);

    // The phone sleeps past its access token's lifetime and retries again and again.
    clock.advance(time::Duration::hours(1));
    for _ in 0..5 {
        assert_eq!(api_status(&server, &expired, "127.0.0.5").await, 401);
    }
    assert_eq!(server.http.bans().score("127.0.0.5".parse().unwrap()), 0.0);

    // Signed out elsewhere: a token of a revoked session (still within its lifetime).
    let tablet: Value = login(&server, "owner", "owner-pass").await;
    let revoked = tablet["access_token"].as_str().unwrap().to_owned();
    let issuer = server.manager().validate_access_token(&revoked).unwrap();
    server
        .manager()
        .remove_refresh_token(&issuer.id)
        .await
        .unwrap();
    for _ in 0..5 {
        assert_eq!(api_status(&server, &revoked, "127.0.0.5").await, 401);
    }
    assert_eq!(server.http.bans().score("127.0.0.5".parse().unwrap()), 0.0);

    // A token we never issued (a forged signature on a real issuer) still counts.
    let (signed, signature) = expired.rsplit_once('.').unwrap();
    let first = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{signed}.{first}{}", &signature[1..]);
    assert_eq!(api_status(&server, &forged, "127.0.0.5").await, 401);
    assert_eq!(api_status(&server, "garbage", "127.0.0.5").await, 401);
    assert_eq!(
        api_status(&server, &expired, "127.0.0.5").await,
        403,
        "banned after two real failures"
    );
}

#[tokio::test]
async fn ipv6_clients_are_counted_and_banned_by_their_64() {
    let (mut setup, _clock) = banning(2);
    setup.options.use_x_forwarded_for = true;
    setup.options.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let server = start(setup).await;
    onboard(&server, "owner", "owner-pass").await;
    let via = |client: &str| {
        Request::get("/api/")
            .bearer("garbage")
            .header("X-Forwarded-For", client)
    };
    assert_eq!(server.send(via("2001:db8:1:2::a")).await.status, 401);
    assert_eq!(
        server.send(via("2001:db8:1:2:ffff::b")).await.status,
        401,
        "another address of the same /64: the second failure"
    );
    let neighbour = Request::get("/auth/providers").header("X-Forwarded-For", "2001:db8:1:2::77");
    assert_eq!(
        server.send(neighbour).await.status,
        403,
        "the whole /64 is banned"
    );
    let other = Request::get("/auth/providers").header("X-Forwarded-For", "2001:db8:1:3::1");
    assert_eq!(server.send(other).await.status, 200, "the next /64 is not");
    ban_file_holds(&server, &["2001:db8:1:2:ffff::b"], "the client's address").await;
}

#[tokio::test]
async fn the_ban_list_is_bounded_in_memory_and_on_disk_expired_bans_first() {
    let (mut setup, clock) = banning(1);
    setup.options.max_bans = 3;
    let server = start(setup).await;
    onboard(&server, "owner", "owner-pass").await;
    // One ban a minute, so that "oldest" is well defined.
    let ban = |ip: &'static str| {
        let (server, clock) = (&server, &clock);
        async move {
            clock.advance(time::Duration::minutes(1));
            assert_eq!(api_status(server, "garbage", ip).await, 401);
            assert_eq!(api_status(server, "garbage", ip).await, 403, "{ip} banned");
        }
    };
    ban("127.0.0.10").await;
    clock.advance(time::Duration::hours(2));
    ban("127.0.0.11").await;
    ban("127.0.0.12").await;
    ban("127.0.0.13").await;
    let kept: Vec<String> = server
        .http
        .bans()
        .list()
        .iter()
        .map(|(ip, _)| ip.to_string())
        .collect();
    assert_eq!(kept, ["127.0.0.11", "127.0.0.12", "127.0.0.13"]);
    ban_file_holds(
        &server,
        &["127.0.0.11", "127.0.0.12", "127.0.0.13"],
        "the file was rewritten instead of growing past 3; the expired ban went first",
    )
    .await;
    ban("127.0.0.14").await;
    assert_eq!(server.http.bans().list().len(), 3);
    ban_file_holds(
        &server,
        &["127.0.0.12", "127.0.0.13", "127.0.0.14"],
        "then the oldest ban",
    )
    .await;
}
