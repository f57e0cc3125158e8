//! Malformed input at every route: bodies, headers, paths, methods and raw bytes that are not
//! HTTP at all. Every request gets a complete answer below 500 (mostly 4xx), and the server
//! keeps answering afterwards. The cases are random but seeded, so a failure repeats.

use std::net::SocketAddr;
use std::time::Duration;

use auth_testkit::http::Request;
use serde_json::{Value, json};

use crate::harness::{Server, Setup, onboard, start};
use crate::routes::{ROUTES, concrete};

/// Requests per server.
const CASES: usize = 2000;

/// xorshift64: deterministic randomness without a dependency.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// JSON values of every type, including ones a handler might not expect.
fn junk_value(rng: &mut Seeded) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(1e300),
        4 => json!(""),
        5 => json!("a".repeat(5000)),
        6 => json!([]),
        7 => json!({}),
        8 => json!(["homeassistant", null, "extra"]),
        9 => json!({"nested": {"deeper": [1, {"x": null}]}}),
        10 => json!("\u{0}\u{202e}ü漢字"),
        _ => json!(u64::MAX),
    }
}

/// A plausible body for `path` with one field replaced by junk, or plain junk.
fn body(rng: &mut Seeded, server: &Server, path: &str) -> (Option<&'static str>, Vec<u8>) {
    let client_id = server.client_id();
    let redirect_uri = server.redirect_uri();
    let templates = [
        json!({"client_id": client_id, "handler": ["homeassistant", null], "redirect_uri": redirect_uri}),
        json!({"client_id": client_id, "username": "owner", "password": "x"}),
        json!({"client_id": client_id, "code": "x"}),
        json!({"client_id": client_id, "name": "N", "username": "n", "password": "p", "language": "en"}),
        json!({"client_id": client_id, "redirect_uri": redirect_uri}),
        json!({"client_id": client_id, "code": "123456"}),
    ];
    match rng.below(14) {
        0 => (None, Vec::new()),
        1 => (Some("application/json"), b"{".to_vec()),
        2 => (Some("application/json"), b"null".to_vec()),
        3 => (
            Some("application/json"),
            "[".repeat(20_000).into_bytes(),
        ),
        4 => (Some("application/json"), rng.bytes(300)),
        5 => (
            Some("application/json"),
            format!("{{\"client_id\": \"{}\"}}", "x".repeat(70_000)).into_bytes(),
        ),
        6 => (
            Some("application/x-www-form-urlencoded"),
            b"grant_type=refresh_token&refresh_token=%zz&&==&client_id".to_vec(),
        ),
        7 => (
            Some("application/x-www-form-urlencoded"),
            format!(
                "grant_type={}&code={}&client_id={}",
                rng.pick(&["authorization_code", "refresh_token", "password", "", "%00"]),
                rng.pick(&["", "x", "%FF%FE", &"9".repeat(4000)]),
                client_id
            )
            .into_bytes(),
        ),
        8 => (
            Some("multipart/form-data"),
            b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--x--".to_vec(),
        ),
        9 => (
            Some("multipart/form-data; boundary=x"),
            b"--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nrefresh_token\r\n--x\r\nbroken".to_vec(),
        ),
        10 => (Some("text/plain"), vec![0xff, 0xfe, 0x00, b'{']),
        _ => {
            let mut template = rng.pick(&templates).clone();
            let keys: Vec<String> = template.as_object().unwrap().keys().cloned().collect();
            let key = rng.pick(&keys).clone();
            match rng.below(3) {
                0 => {
                    template.as_object_mut().unwrap().remove(&key);
                }
                1 => template[key.as_str()] = junk_value(rng),
                _ => template["unexpected"] = junk_value(rng),
            }
            let _ = path;
            (Some("text/plain;charset=UTF-8"), template.to_string().into_bytes())
        }
    }
}

fn mangle_path(rng: &mut Seeded, path: &str) -> String {
    match rng.below(12) {
        0 => format!("{path}%00"),
        1 => format!("{path}/../../etc/passwd"),
        2 => format!("{path}?a=%ZZ&b&=&authSig=x.y.z"),
        3 => format!("{path}{}", "a".repeat(8000)),
        4 => path.replace('/', "//"),
        5 => format!("{path}?{}", "x=1&".repeat(2000)),
        6 => format!("{path}/%2e%2e/%2e%2e/"),
        7 => format!("{path}?authSig={}", "e".repeat(3000)),
        8 => path.replace("0123456789abcdef0123456789abcdef", "..%2F..%2Fauth"),
        _ => path.to_owned(),
    }
}

fn headers(rng: &mut Seeded, request: Request) -> Request {
    let long = "b".repeat(7000);
    let authorization = [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer a.b.c",
        "Bearer eyJhbGciOiJub25lIn0.e30.",
        "bearer x",
    ];
    match rng.below(8) {
        0 => {
            let value: &&str = rng.pick(&authorization);
            request.header("Authorization", value)
        }
        1 => request.header("Authorization", &format!("Bearer {long}")),
        2 => request.header("Origin", "null"),
        3 => request.header("X-Forwarded-For", "1.2.3.4, garbage, , ::1"),
        4 => request.header("Content-Type", "application/json; charset=utf-7"),
        5 => request.header("Accept-Encoding", "br;q=abc, *;q=-1"),
        _ => request,
    }
}

async fn fuzz(server: &Server, seed: u64, token: Option<&str>) {
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];
    let mut rng = Seeded(seed);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for case in 0..CASES {
        let (pattern, route_methods, _) = rng.pick(ROUTES);
        let method = if rng.below(3) == 0 {
            *rng.pick(&methods)
        } else {
            *rng.pick(route_methods)
        };
        let path = mangle_path(&mut rng, &concrete(pattern));
        let (content_type, body) = body(&mut rng, server, &path);
        let mut request = Request::new(method, &path).body(body);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        request = headers(&mut rng, request);
        if let Some(token) = token
            && rng.below(2) == 0
        {
            request = request.bearer(token);
        }
        let response = request
            .try_send(server.addr)
            .await
            .unwrap_or_else(|e| panic!("case {case}: {method} {path}: no answer: {e}"));
        assert!(
            response.status < 500,
            "case {case}: {method} {path}: {} {}",
            response.status,
            response.text()
        );
        *statuses.entry(response.status).or_default() += 1;
    }
    assert!(
        statuses.keys().any(|s| (400..500).contains(s)),
        "malformed input is refused: {statuses:?}"
    );
    eprintln!("statuses: {statuses:?}");
    still_answers(server.addr).await;
}

async fn still_answers(addr: SocketAddr) {
    let response = Request::get("/api/onboarding").send(addr).await;
    assert_eq!(response.status, 200, "the server still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_before_onboarding() {
    let server = start(Setup::default()).await;
    fuzz(&server, 0x5eed_0001, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_after_onboarding_with_and_without_a_token() {
    let mut setup = Setup::default();
    // Forwarded headers are parsed (and refused when the peer is no proxy).
    setup.options.use_x_forwarded_for = true;
    setup.options.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    let server = start(setup).await;
    let token = onboard(&server, "owner", "owner-pass").await;
    fuzz(&server, 0x5eed_0002, Some(&token)).await;
}

/// Bytes that are not a valid HTTP request: answered with a 4xx or a closed connection.
#[tokio::test]
async fn raw_garbage_gets_4xx_or_a_closed_connection() {
    let server = start(Setup::default()).await;
    let long_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "h".repeat(1_000_000)
    );
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..500)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect::<String>()
    );
    let cases: Vec<Vec<u8>> = vec![
        b"GARBAGE\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost x\r\n\r\n".to_vec(),
        b"GET /\x00\xff HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 5\r\n\r\nabcde".to_vec(),
        b"POST /auth/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".to_vec(),
        b"POST /auth/login_flow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n".to_vec(),
        b"POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\nshort".to_vec(),
        long_header.into_bytes(),
        many_headers.into_bytes(),
        vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03],
    ];
    for (i, raw) in cases.iter().enumerate() {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let answer = tokio::time::timeout(
            Duration::from_secs(3),
            auth_testkit::http::exchange(&mut stream, raw),
        )
        .await;
        match answer {
            // A client that sends a partial body is waited for; dropping it is its own business.
            Err(_) => {}
            Ok(Ok(response)) => assert!(
                (400..500).contains(&response.status),
                "case {i}: {} {}",
                response.status,
                response.text()
            ),
            // Closed without a word, or reset while we wrote: fine; anything but HTTP is not.
            Ok(Err(error)) => assert!(
                error.kind() != std::io::ErrorKind::UnexpectedEof
                    || error.to_string() == "incomplete response: \"\"",
                "case {i}: not HTTP: {error}"
            ),
        }
    }
    still_answers(server.addr).await;
}
