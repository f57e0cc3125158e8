//! The listener's limits: slow or silent clients cannot hold connections forever, the number of
//! connections is bounded, and open connections do not hold up a clean shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    for flag in ["--max-connections", "--header-timeout"] {
        let out = crate::support::run(
            config.path(),
            &["serve", "-c", config.path().to_str().unwrap(), flag, "0"],
        )
        .await;
        assert_eq!(out.code, 2, "{flag}: {}", out.stderr);
        assert!(out.stderr.contains(flag), "{flag}: {}", out.stderr);
    }
}
