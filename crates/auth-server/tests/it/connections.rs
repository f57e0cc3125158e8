//! The listener's limits: slow or silent clients cannot hold connections forever, the number of
//! connections is bounded (in all and per client address), unauthenticated websockets have a
//! deadline, and open connections do not hold up a clean shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{BASIC_CONFIG, ServerProcess, serve, write_config};

async fn server(extra: &[&str]) -> (TempConfig, ServerProcess) {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap().to_owned();
    let mut args = vec!["-c", dir.as_str()];
    args.extend_from_slice(extra);
    let server = serve(config.path(), &args)
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    (config, server)
}

/// Reads until the server closes the connection (or 20 s pass); returns what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    outcome.ok().map(|()| received)
}

async fn providers_status(addr: SocketAddr) -> u16 {
    tokio::time::timeout(
        Duration::from_secs(20),
        Request::get("/.well-known/oauth-authorization-server").send(addr),
    )
    .await
    .expect("answered in time")
    .status
}

#[tokio::test]
async fn silent_half_sent_and_idle_connections_are_closed_after_the_header_timeout() {
    let (_config, server) = server(&["--header-timeout", "1"]).await;
    let addr = server.addr;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The idle one gets its answer, then sits on a keep-alive connection.
    let mut answered = Vec::new();
    while !answered.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut buf = [0u8; 1024];
        let n = idle.read(&mut buf).await.unwrap();
        assert!(n > 0, "answered before closing");
        answered.extend_from_slice(&buf[..n]);
    }
    assert!(answered.starts_with(b"HTTP/1.1 200"), "{answered:?}");
    assert!(
        read_until_closed(&mut silent).await.is_some(),
        "silent client dropped"
    );
    assert!(
        read_until_closed(&mut half).await.is_some(),
        "half-sent header dropped"
    );
    assert!(
        read_until_closed(&mut idle).await.is_some(),
        "idle keep-alive dropped"
    );
    assert_eq!(providers_status(addr).await, 200, "the server still serves");
    assert_eq!(server.stop().await, 0);
}

#[tokio::test]
async fn connections_beyond_the_bound_wait_for_a_free_slot() {
    let (_config, server) = server(&["--max-connections", "1"]).await;
    let addr = server.addr;
    // The holder is served once and keeps its keep-alive connection (the only slot) open.
    let mut holder = TcpStream::connect(addr).await.unwrap();
    holder
        .write_all(b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    assert!(holder.read(&mut buf).await.unwrap() > 0, "holder served");
    let waiting = tokio::spawn(providers_status(addr));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a second connection cannot be served while the only slot is taken"
    );
    drop(holder);
    assert_eq!(waiting.await.unwrap(), 200, "served once the slot is free");
    assert_eq!(server.stop().await, 0);
}

#[tokio::test]
async fn open_connections_do_not_hold_up_a_clean_shutdown() {
    let (_config, server) = server(&[]).await;
    let addr = server.addr;
    let _silent = TcpStream::connect(addr).await.unwrap();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    assert!(idle.read(&mut buf).await.unwrap() > 0);
    assert_eq!(server.stop().await, 0, "SIGTERM stops at once, cleanly");
}

#[tokio::test]
async fn limits_must_be_positive() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    for flag in [
        "--max-connections",
        "--header-timeout",
        "--max-connections-per-ip",
        "--websocket-auth-timeout",
    ] {
        let out = crate::support::run(
            config.path(),
            &["serve", "-c", config.path().to_str().unwrap(), flag, "0"],
        )
        .await;
        assert_eq!(out.code, 2, "{flag}: {}", out.stderr);
        assert!(out.stderr.contains(flag), "{flag}: {}", out.stderr);
    }
}

/// A connection to `addr` from the loopback address `from`.
async fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test]
async fn one_address_holding_its_share_of_connections_does_not_starve_others() {
    let (_config, server) =
        server(&["--max-connections", "5", "--max-connections-per-ip", "3"]).await;
    let addr = server.addr;
    let attacker = "127.0.0.2";
    // Three idle connections: the attacker's share, held open (the header timeout is 30 s).
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(attacker, addr).await);
    }
    // Its further connections are answered 503 and closed, holding no slot.
    for _ in 0..3 {
        let mut refused = connect_from(attacker, addr).await;
        let answer = read_until_closed(&mut refused)
            .await
            .expect("closed at once");
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 503"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    // Two slots of five are left for everybody else.
    for other in ["127.0.0.3", "127.0.0.4"] {
        let status = tokio::time::timeout(
            Duration::from_secs(20),
            Request::get("/.well-known/oauth-authorization-server")
                .from_ip(other)
                .send(addr),
        )
        .await
        .expect("served while the attacker holds its share")
        .status;
        assert_eq!(status, 200, "{other}");
    }
    // The attacker gets a slot back when it closes one.
    drop(held.pop());
    let mut again = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while again.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the freed slot came back"
        );
        let response = Request::get("/.well-known/oauth-authorization-server")
            .from_ip(attacker)
            .try_send(addr)
            .await;
        again = response.ok().filter(|r| r.status == 200);
        if again.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(held);
    assert_eq!(server.stop().await, 0);
}

#[tokio::test]
async fn an_unauthenticated_websocket_is_closed_after_the_auth_deadline() {
    let (_config, server) = server(&["--websocket-auth-timeout", "1"]).await;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/api/websocket", server.addr))
            .await
            .expect("websocket connects");
    let first = socket.next().await.expect("a message").expect("readable");
    let Message::Text(text) = first else {
        panic!("expected auth_required, got {first:?}")
    };
    assert!(text.contains("auth_required"), "{text}");
    // Send nothing: the server ends the connection by itself.
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(other)) => assert!(
                    matches!(other, Message::Ping(_) | Message::Pong(_)),
                    "unexpected {other:?}"
                ),
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the idle websocket was closed");
    assert_eq!(server.stop().await, 0);
}
