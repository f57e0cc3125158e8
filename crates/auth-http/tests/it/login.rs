//! The login flow over HTTP: exact JSON, errors, pins, limits.

use auth_testkit::http::Request;
use serde_json::json;

use crate::harness::{Server, Setup, onboarded, start, start_flow, step};

#[tokio::test]
async fn homeassistant_flow_forms_match_ha() {
    let (server, _owner) = onboarded().await;
    let flow = start_flow(&server, json!(["homeassistant", null])).await;
    assert_eq!(flow.status, 200);
    let body = flow.json();
    let flow_id = body["flow_id"].as_str().unwrap().to_owned();
    assert_eq!(flow_id.len(), 32);
    assert_eq!(
        flow.text(),
        format!(
            r#"{{"type":"form","flow_id":"{flow_id}","handler":["homeassistant",null],"data_schema":[{{"type":"string","name":"username","required":true}},{{"type":"string","name":"password","required":true}}],"errors":{{}},"description_placeholders":null,"last_step":null,"preview":null,"step_id":"init"}}"#
        )
    );
    let wrong = step(
        &server,
        &flow_id,
        json!({"username": "owner", "password": "nope"}),
    )
    .await;
    assert_eq!(wrong.status, 200);
    assert_eq!(wrong.json()["errors"], json!({"base": "invalid_auth"}));
    let done = step(
        &server,
        &flow_id,
        json!({"username": " OWNER ", "password": "owner-pass"}),
    )
    .await;
    let done_json = done.json();
    let code = done_json["result"].as_str().unwrap();
    assert_eq!(
        done.text(),
        format!(
            r#"{{"type":"create_entry","flow_id":"{flow_id}","handler":["homeassistant",null],"description":null,"description_placeholders":null,"result":"{code}"}}"#
        )
    );
    // The flow is consumed.
    let gone = step(
        &server,
        &flow_id,
        json!({"username": "owner", "password": "owner-pass"}),
    )
    .await;
    assert_eq!(
        (gone.status, gone.text()),
        (404, r#"{"message":"Invalid flow specified"}"#.to_owned())
    );
}

#[tokio::test]
async fn start_errors() {
    let (server, _owner) = onboarded().await;
    let send = |body: serde_json::Value| server.send(Request::post("/auth/login_flow").json(&body));
    let redirect = server.redirect_uri();
    let client = server.client_id();
    let cases = [
        (
            json!({"client_id": "ftp://x/", "handler": ["homeassistant", null], "redirect_uri": redirect}),
            400,
            r#"{"message":"Invalid client id"}"#,
        ),
        (
            json!({"client_id": "http://8.8.8.8/", "handler": ["homeassistant", null], "redirect_uri": redirect}),
            400,
            r#"{"message":"Invalid client id"}"#,
        ),
        (
            json!({"client_id": client, "handler": ["nope", null], "redirect_uri": redirect}),
            404,
            r#"{"message":"Invalid handler specified"}"#,
        ),
        (
            json!({"client_id": client, "handler": ["homeassistant", null], "redirect_uri": redirect, "response_type": "token"}),
            400,
            r#"{"message":"Response type not supported"}"#,
        ),
        (
            json!({"client_id": client, "handler": ["homeassistant", null], "redirect_uri": redirect, "code_challenge_method": "S256"}),
            400,
            r#"{"message":"code_challenge required when code_challenge_method is provided"}"#,
        ),
        (
            json!({"client_id": client, "handler": ["homeassistant", null], "redirect_uri": redirect, "code_challenge": "a".repeat(43)}),
            400,
            r#"{"message":"Transform algorithm not supported"}"#,
        ),
    ];
    for (body, status, text) in cases {
        let response = send(body.clone()).await;
        assert_eq!(
            (response.status, response.text()),
            (status, text.to_owned()),
            "{body}"
        );
    }
    // Home Assistant 2026.11's validator wording, word for word.
    for (body, detail) in [
        (
            json!({"client_id": client, "handler": ["homeassistant", null]}),
            "required key not provided at 'redirect_uri'",
        ),
        (
            json!({"client_id": client, "handler": ["homeassistant"], "redirect_uri": redirect}),
            "length of value must be at least 2 at 'handler'",
        ),
        (
            json!({"client_id": client, "handler": [], "redirect_uri": redirect}),
            "length of value must be at least 2 at 'handler'",
        ),
        (
            json!({"client_id": client, "handler": ["homeassistant", null, null], "redirect_uri": redirect}),
            "length of value must be at most 2 at 'handler'",
        ),
        (
            json!({"client_id": client, "handler": "homeassistant", "redirect_uri": redirect}),
            "expected a list at 'handler'",
        ),
        (
            json!({"client_id": client, "handler": ["homeassistant", null], "redirect_uri": redirect, "extra": 1}),
            "not a valid option at 'extra'",
        ),
        (
            json!({"client_id": 5, "handler": ["homeassistant", null], "redirect_uri": redirect}),
            "expected str at 'client_id'",
        ),
    ] {
        let response = send(body.clone()).await;
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(
            response.json()["message"],
            format!("Message format incorrect: {detail}"),
            "{body}"
        );
    }
    let get = server.send(Request::get("/auth/login_flow")).await;
    assert_eq!(get.status, 405);
}

#[tokio::test]
async fn step_errors_and_ip_pinning() {
    let (server, _owner) = onboarded().await;
    let flow_id = start_flow(&server, json!(["homeassistant", null]))
        .await
        .json()["flow_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/auth/login_flow/{flow_id}");
    let malformed = step(
        &server,
        &flow_id,
        json!({"username": "owner", "password": 5}),
    )
    .await;
    assert_eq!(
        (malformed.status, malformed.text()),
        (400, r#"{"message":"User input malformed"}"#.to_owned())
    );
    let extra = step(
        &server,
        &flow_id,
        json!({"username": "owner", "password": "x", "x": 1}),
    )
    .await;
    assert_eq!(extra.status, 400);
    let no_client = server
        .send(Request::post(&path).json(&json!({"username": "owner"})))
        .await;
    assert_eq!(no_client.status, 400);
    let other_ip = server
        .send(
            Request::post(&path)
                .from_ip("127.0.0.2")
                .json(&json!({"client_id": server.client_id(), "username": "owner", "password": "owner-pass"})),
        )
        .await;
    assert_eq!(
        (other_ip.status, other_ip.text()),
        (400, r#"{"message":"IP address changed"}"#.to_owned())
    );
    // GET returns the current step; DELETE aborts.
    let current = server.send(Request::get(&path)).await;
    assert_eq!(current.json()["step_id"], "init");
    let deleted = server.send(Request::new("DELETE", &path)).await;
    assert_eq!(
        (deleted.status, deleted.text()),
        (200, r#"{"message":"Flow aborted"}"#.to_owned())
    );
    let again = server.send(Request::new("DELETE", &path)).await;
    assert_eq!(
        (again.status, again.text()),
        (404, r#"{"message":"Invalid flow specified"}"#.to_owned())
    );
}

#[tokio::test]
async fn redirect_uri_is_checked_when_the_flow_finishes() {
    let (server, _owner) = onboarded().await;
    let flow = server
        .send(Request::post("/auth/login_flow").json(&json!({
            "client_id": server.client_id(), "handler": ["homeassistant", null],
            "redirect_uri": "http://evil.example/callback"
        })))
        .await;
    assert_eq!(flow.status, 200, "checked only at the end");
    let flow_id = flow.json()["flow_id"].as_str().unwrap().to_owned();
    let done = step(
        &server,
        &flow_id,
        json!({"username": "owner", "password": "owner-pass"}),
    )
    .await;
    assert_eq!(
        (done.status, done.text()),
        (403, r#"{"message":"Invalid redirect URI"}"#.to_owned())
    );
}

#[tokio::test]
async fn insecure_example_and_blocked_users() {
    let (server, _owner) = onboarded().await;
    let flow = start_flow(&server, json!(["insecure_example", null]))
        .await
        .json();
    assert_eq!(flow["errors"], json!(null));
    let done = step(
        &server,
        flow["flow_id"].as_str().unwrap(),
        json!({"username": "demo", "password": "demo-pass"}),
    )
    .await
    .json();
    let tokens = crate::harness::exchange(&server, done["result"].as_str().unwrap()).await;
    assert_eq!(tokens["ha_auth_provider"], "insecure_example");
    let user = server
        .manager()
        .users()
        .into_iter()
        .find(|u| u.name.as_deref() == Some("Demo"))
        .unwrap();
    assert!(!user.is_owner);
    server.manager().deactivate_user(&user.id).await.unwrap();
    let flow = start_flow(&server, json!(["insecure_example", null]))
        .await
        .json();
    let blocked = step(
        &server,
        flow["flow_id"].as_str().unwrap(),
        json!({"username": "demo", "password": "demo-pass"}),
    )
    .await;
    assert_eq!(
        (blocked.status, blocked.text()),
        (
            403,
            r#"{"message":"Login blocked: User is not active"}"#.to_owned()
        )
    );
}

#[tokio::test]
async fn security_filter_headers_and_body_limit() {
    let server = start(Setup::default()).await;
    for path in [
        "/auth/providers?x=../../etc/passwd",
        "/auth/providers?q=%3Cscript%3Ealert(1)%3C/script%3E",
        "/a?v=/.//x",
        "/proc/self/environ",
    ] {
        let response = server.send(Request::get(path)).await;
        assert_eq!(response.status, 400, "{path}");
    }
    let response = server.send(Request::get("/auth/providers")).await;
    assert_eq!(response.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("x-frame-options"), Some("SAMEORIGIN"));
    let huge = server
        .send(Request::post("/auth/login_flow").body(vec![b'x'; 70_000]))
        .await;
    assert_eq!(huge.status, 413);
    assert_eq!(
        huge.text(),
        "Maximum request body size 65536 exceeded, actual body size 70000"
    );
    let unknown = server.send(Request::get("/nope")).await;
    assert_eq!(
        (unknown.status, unknown.text()),
        (404, "404: Not Found".to_owned())
    );
}

/// Sends raw bytes on a fresh connection and returns the response.
async fn raw_exchange(server: &Server, bytes: &[u8]) -> auth_testkit::http::Response {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        auth_testkit::http::exchange(&mut stream, bytes),
    )
    .await
    .expect("the server answered in time")
    .expect("an HTTP response")
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    let server = start(Setup::default()).await;
    let chunk = "x".repeat(40_000);
    let request = format!(
        "POST /auth/login_flow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        len = chunk.len()
    );
    let answer = raw_exchange(&server, request.as_bytes()).await;
    assert_eq!(
        (answer.status, answer.text()),
        (
            413,
            "Maximum request body size 65536 exceeded, actual body size 65537".to_owned()
        )
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_408_after_the_body_timeout() {
    let mut setup = Setup::default();
    setup.options.body_timeout = std::time::Duration::from_secs(1);
    let server = start(setup).await;
    // Ten bytes of the announced hundred, then nothing.
    let request =
        b"POST /auth/login_flow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"client_i";
    let answer = raw_exchange(&server, request).await;
    assert_eq!(answer.status, 408, "{}", answer.text());
    // The server is not stuck on it.
    let fine = server
        .send(Request::get("/.well-known/oauth-authorization-server"))
        .await;
    assert_eq!(fine.status, 200);
}

/// `text` percent-encoded `times` times (every byte of the first round, then `%` → `%25`).
fn encode_times(text: &str, times: usize) -> String {
    let mut out: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
    for _ in 1..times {
        out = out.replace('%', "%25");
    }
    out
}

/// http-api.md §1a: the filter decodes until the text stops changing, however deep.
#[tokio::test]
async fn the_security_filter_decodes_until_nothing_changes() {
    use auth_http::net::{decode_until_stable, is_unsafe_request};
    for times in [1, 10, 11, 12, 50, 300] {
        let encoded = encode_times("proc/self/environ", times);
        assert_eq!(
            decode_until_stable(&encoded),
            "proc/self/environ",
            "{times}"
        );
        assert!(
            is_unsafe_request("/x", Some(&format!("q={encoded}"))),
            "{times}"
        );
        assert!(is_unsafe_request(&format!("/{encoded}"), None), "{times}");
        let dots = encode_times("../", times);
        assert!(
            is_unsafe_request("/x", Some(&format!("f={dots}etc"))),
            "{times}"
        );
    }
    let server = start(Setup::default()).await;
    let deep = encode_times("proc/self/environ", 15);
    let response = server
        .send(Request::get(&format!("/auth/providers?x={deep}")))
        .await;
    assert_eq!(response.status, 400);
    // Deeply encoded harmless text passes.
    let harmless = encode_times("hello world", 15);
    assert!(!is_unsafe_request("/x", Some(&format!("q={harmless}"))));
    // A URI-sized nesting decodes in about linear time (a full pass per round would be
    // quadratic: 32 000 rounds over 64 KB).
    let nested = format!("/%{}2E%{}2E/etc", "25".repeat(30_000), "25".repeat(2_000));
    let decoded = decode_until_stable(&nested);
    assert!(decoded == "/../etc", "{} chars left", decoded.len());
    assert!(is_unsafe_request(&nested, None));
}

/// The straightforward definition: decode the whole text until it stops changing.
fn decode_naively(text: &str) -> String {
    let mut text = text.to_owned();
    loop {
        let decoded = percent_encoding::percent_decode_str(&text)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == text {
            return text;
        }
        text = decoded;
    }
}

/// The fast decoder gives exactly what round after round of full decoding gives, including
/// invalid UTF-8 (U+FFFD) and escapes that only appear after a round.
#[test]
fn the_fast_decoder_matches_full_rounds() {
    const PIECES: [&str; 22] = [
        "%", "%25", "%2", "5", "2", "4", "1", "A", "a", "%41", "%C3", "%A9", "%E2", "%82", "%AC",
        "%FF", "%F0", "%9F", "é", "€", "x", "%%",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for case in 0..20_000 {
        let len = (next() % 12) as usize;
        let text: String = (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        assert_eq!(
            decode_until_stable_checked(&text),
            decode_naively(&text),
            "case {case}: {text:?}"
        );
    }
    for text in [
        "",
        "%",
        "%%",
        "%2",
        "%252",
        "%25%32%35",
        "%C3%A9",
        "%25C3%A9",
        "%2525C3%25A9",
    ] {
        assert_eq!(
            decode_until_stable_checked(text),
            decode_naively(text),
            "{text:?}"
        );
    }
}

fn decode_until_stable_checked(text: &str) -> String {
    auth_http::net::decode_until_stable(text)
}

/// Issue 14 item 7: a flow is read and aborted only from the IP that started it, as its steps are
/// (its form can carry a secret being enrolled). Before, any client with the id could.
#[tokio::test]
async fn a_flow_is_read_and_aborted_only_from_its_own_ip() {
    let (server, _) = onboarded().await;
    let started = start_flow(&server, json!(["homeassistant", null])).await;
    let flow_id = started.json()["flow_id"].as_str().unwrap().to_owned();
    let path = format!("/auth/login_flow/{flow_id}");
    for request in [
        Request::get(&path).from_ip("127.0.0.2"),
        Request::new("DELETE", &path).from_ip("127.0.0.2"),
    ] {
        let refused = server.send(request).await;
        assert_eq!(
            (refused.status, refused.text()),
            (400, r#"{"message":"IP address changed"}"#.to_owned())
        );
    }
    let unknown = server
        .send(
            Request::get("/auth/login_flow/00000000000000000000000000000000").from_ip("127.0.0.2"),
        )
        .await;
    assert_eq!(unknown.status, 404);
    // The flow is still there for its own client.
    let current = server.send(Request::get(&path)).await;
    assert_eq!(
        (current.status, current.json()["step_id"].clone()),
        (200, json!("init"))
    );
    assert!(
        can_finish(&server, &flow_id).await,
        "the stranger's DELETE did not abort it"
    );
}

async fn can_finish(server: &crate::harness::Server, flow_id: &str) -> bool {
    let done = step(
        server,
        flow_id,
        json!({"username": "owner", "password": "owner-pass"}),
    )
    .await
    .json();
    done["type"] == "create_entry"
}
