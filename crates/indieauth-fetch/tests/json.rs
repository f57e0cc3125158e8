//! The JSON client (OpenID Connect calls) against raw HTTP servers on 127.0.0.1.

use std::time::{Duration, Instant};

use indieauth_fetch::{FetchOptions, JsonClient, JsonError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A server that answers every request with `reply` (or never, when `None`) and reports the
/// raw request it read (head and body).
async fn server(reply: Option<String>) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (seen, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let reply = reply.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    raw.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&raw).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if raw.len() >= end + 4 + length {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                let _ = seen.send(String::from_utf8_lossy(&raw).to_string());
                match reply {
                    Some(reply) => {
                        let _ = stream.write_all(reply.as_bytes()).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            });
        }
    });
    (base, requests)
}

fn answer(status: u16, body: &str) -> Option<String> {
    Some(format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}

fn client(timeout: Duration) -> JsonClient {
    JsonClient::new(FetchOptions {
        timeout,
        max_body_bytes: 1024,
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn a_form_is_posted_with_basic_auth_and_any_status_with_json_comes_back() {
    let (base, mut requests) = server(answer(400, r#"{"error":"invalid_grant"}"#)).await;
    let answer = client(Duration::from_secs(5))
        .post_form(
            &format!("{base}/token"),
            &[("grant_type", "authorization_code"), ("code", "a b&c")],
            Some(("hass", "s3:cret")),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error"], "invalid_grant");
    let request = requests.recv().await.unwrap();
    assert!(request.starts_with("POST /token HTTP/1.1\r\n"), "{request}");
    assert!(
        request.contains("content-type: application/x-www-form-urlencoded\r\n"),
        "{request}"
    );
    // base64("hass:s3%3Acret")
    assert!(
        request.contains("authorization: Basic aGFzczpzMyUzQWNyZXQ=\r\n"),
        "{request}"
    );
    assert!(
        request.ends_with("\r\n\r\ngrant_type=authorization_code&code=a+b%26c"),
        "{request}"
    );
}

#[tokio::test]
async fn get_json_wants_a_200_json_object_within_the_cap() {
    let (base, _r) = server(answer(200, r#"{"issuer":"x"}"#)).await;
    let got = client(Duration::from_secs(5))
        .get_json(&format!("{base}/d"))
        .await
        .unwrap();
    assert_eq!(got["issuer"], "x");

    let (base, _r) = server(answer(404, r#"{"error":"nope"}"#)).await;
    let error = client(Duration::from_secs(5))
        .get_json(&format!("{base}/d"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("HTTP status 404"), "{error}");

    let (base, _r) = server(answer(200, "[1,2]")).await;
    let error = client(Duration::from_secs(5))
        .get_json(&format!("{base}/d"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, JsonError::NotJson { status: 200, .. }),
        "{error}"
    );

    let big = format!(r#"{{"k":"{}"}}"#, "x".repeat(2000));
    let (base, _r) = server(answer(200, &big)).await;
    let error = client(Duration::from_secs(5))
        .get_json(&format!("{base}/d"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, JsonError::TooLarge { cap: 1024, .. }),
        "{error}"
    );

    let error = client(Duration::from_secs(5))
        .get_json("file:///etc/passwd")
        .await
        .unwrap_err();
    assert!(matches!(error, JsonError::Url(_)), "{error}");
}

#[tokio::test]
async fn a_silent_server_costs_the_deadline_and_a_closed_port_fails_at_once() {
    let (base, _r) = server(None).await;
    let started = Instant::now();
    let error = client(Duration::from_millis(300))
        .get_json(&format!("{base}/d"))
        .await
        .unwrap_err();
    assert!(matches!(error, JsonError::Timeout { .. }), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = client(Duration::from_secs(5))
        .get_json(&format!("http://127.0.0.1:{port}/d"))
        .await
        .unwrap_err();
    assert!(matches!(error, JsonError::Transport { .. }), "{error}");
}
