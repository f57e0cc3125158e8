//! The fetcher against real HTTP and HTTPS servers on 127.0.0.1.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indieauth_fetch::{FetchOptions, RedirectUriFetcher, load_pem_certificates};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What the test server does with a request for a path.
#[derive(Clone)]
enum Reply {
    /// Writes these bytes and closes.
    Raw(Vec<u8>),
    /// Never answers.
    Hang,
    /// Sends a response head and then one body byte every 100 ms, forever.
    Drip,
}

fn ok(content_type: &str, body: &str) -> Reply {
    Reply::Raw(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn status(code: u16, content_type: &str, body: &str) -> Reply {
    Reply::Raw(
        format!(
            "HTTP/1.1 {code} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn redirect(location: &str) -> Reply {
    Reply::Raw(
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
    )
}

/// A server on 127.0.0.1 answering by path; reports every request line it reads.
struct TestServer {
    port: u16,
    requests: mpsc::UnboundedReceiver<String>,
}

impl TestServer {
    async fn start(
        routes: Vec<(&'static str, Reply)>,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Self {
        Self::start_with(|_| routes, tls).await
    }

    /// Like `start`, with routes that may mention the server's own port.
    async fn start_with(
        routes: impl FnOnce(u16) -> Vec<(&'static str, Reply)>,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (seen, requests) = mpsc::unbounded_channel();
        let routes = Arc::new(routes(port));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let routes = routes.clone();
                let seen = seen.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, &routes, &seen).await;
                            }
                        }
                        None => serve(stream, &routes, &seen).await,
                    }
                });
            }
        });
        Self { port, requests }
    }

    fn seen(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(line) = self.requests.try_recv() {
            out.push(line);
        }
        out
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    routes: &[(&'static str, Reply)],
    seen: &mpsc::UnboundedSender<String>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let _ = seen.send(head.clone());
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    let reply = routes
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| status(404, "text/plain", "not found"));
    match reply {
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
        Reply::Drip => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                .await;
            loop {
                if stream.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn certs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/certs")
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let chain = load_pem_certificates(&certs_dir().join("server.pem")).expect("server cert");
    let key = PrivateKeyDer::from_pem_file(certs_dir().join("server.key")).expect("server key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn fetcher() -> RedirectUriFetcher {
    RedirectUriFetcher::new(FetchOptions {
        timeout: Duration::from_millis(1500),
        ..FetchOptions::default()
    })
    .expect("fetcher")
}

fn trusting_fetcher() -> RedirectUriFetcher {
    RedirectUriFetcher::new(FetchOptions {
        timeout: Duration::from_millis(1500),
        extra_root_certificates: load_pem_certificates(&certs_dir().join("ca.pem"))
            .expect("test CA"),
        ..FetchOptions::default()
    })
    .expect("fetcher")
}

const PAGE: &str = r#"<!doctype html><html><head><title>App</title>
<link rel="redirect_uri" href="/callback">
<link rel="redirect_uri" href="https://elsewhere.example/cb">
<link rel="redirect_uri" href="javascript:alert(document.cookie)">
</head><body>hello</body></html>"#;

#[tokio::test]
async fn html_links_are_read_and_resolved_against_the_client_id() {
    let mut server = TestServer::start(vec![("/app/", ok("text/html", PAGE))], None).await;
    let client_id = format!("http://127.0.0.1:{}/app/", server.port);
    let uris = fetcher().published_redirect_uris(&client_id).await;
    assert_eq!(
        uris,
        vec![
            format!("http://127.0.0.1:{}/callback", server.port),
            "https://elsewhere.example/cb".to_owned(),
        ]
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].starts_with("GET /app/ HTTP/1.1\r\n"), "{}", seen[0]);
    assert!(
        seen[0].contains(&format!("host: 127.0.0.1:{}\r\n", server.port)),
        "{}",
        seen[0]
    );
}

#[tokio::test]
async fn a_chunked_page_is_read_whole() {
    let body = "<link rel=\"redirect_uri\" href=\"/a\"><link rel=\"redirect_uri\" href=\"/b\">";
    let (first, second) = body.split_at(20);
    let chunked = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    );
    let server = TestServer::start(vec![("/", Reply::Raw(chunked.into_bytes()))], None).await;
    let uris = fetcher()
        .published_redirect_uris(&format!("http://127.0.0.1:{}/", server.port))
        .await;
    assert_eq!(
        uris,
        vec![
            format!("http://127.0.0.1:{}/a", server.port),
            format!("http://127.0.0.1:{}/b", server.port)
        ]
    );
}

#[tokio::test]
async fn redirects_are_followed_but_links_resolve_against_the_client_id() {
    let server = TestServer::start(
        vec![
            ("/old", redirect("/new/page")),
            (
                "/new/page",
                ok("text/html", "<link rel=redirect_uri href=cb>"),
            ),
        ],
        None,
    )
    .await;
    let uris = fetcher()
        .published_redirect_uris(&format!("http://127.0.0.1:{}/old", server.port))
        .await;
    assert_eq!(uris, vec![format!("http://127.0.0.1:{}/cb", server.port)]);
}

#[tokio::test]
async fn redirects_to_other_schemes_and_redirect_loops_give_nothing() {
    let server = TestServer::start(
        vec![
            ("/js", redirect("javascript:alert(1)")),
            ("/file", redirect("file:///etc/passwd")),
            ("/loop", redirect("/loop")),
            (
                "/metadata",
                redirect("http://169.254.169.254/latest/meta-data/"),
            ),
            (
                "/nowhere",
                Reply::Raw(b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n".to_vec()),
            ),
        ],
        None,
    )
    .await;
    for path in ["/js", "/file", "/loop", "/nowhere", "/metadata"] {
        let uris = fetcher()
            .published_redirect_uris(&format!("http://127.0.0.1:{}{path}", server.port))
            .await;
        assert!(uris.is_empty(), "{path}: {uris:?}");
    }
}

#[tokio::test]
async fn only_the_first_10240_bytes_are_read() {
    let early = "<link rel=\"redirect_uri\" href=\"/early\">";
    let late = "<link rel=\"redirect_uri\" href=\"/late\">";
    let padding = " ".repeat(10_240 - early.len() - 5);
    let body = format!("{early}{padding}{late}{}", " ".repeat(1_000_000));
    let server = TestServer::start(vec![("/", ok("text/html", &body))], None).await;
    let uris = fetcher()
        .published_redirect_uris(&format!("http://127.0.0.1:{}/", server.port))
        .await;
    assert_eq!(
        uris,
        vec![format!("http://127.0.0.1:{}/early", server.port)]
    );
}

#[tokio::test]
async fn a_silent_or_slow_server_costs_at_most_the_timeout() {
    let server =
        TestServer::start(vec![("/hang", Reply::Hang), ("/drip", Reply::Drip)], None).await;
    let fetcher = RedirectUriFetcher::new(FetchOptions {
        timeout: Duration::from_millis(300),
        ..FetchOptions::default()
    })
    .expect("fetcher");
    for path in ["/hang", "/drip"] {
        let client_id = format!("http://127.0.0.1:{}{path}", server.port);
        // The outer guard only catches a fetcher that ignores its deadline.
        let outcome = tokio::time::timeout(
            Duration::from_secs(30),
            fetcher.published_redirect_uris(&client_id),
        )
        .await;
        assert_eq!(outcome.ok(), Some(Vec::new()), "{path}");
    }
}

#[tokio::test]
async fn unreachable_clients_and_bad_client_ids_give_nothing() {
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let fetcher = fetcher();
    for client_id in [
        format!("http://127.0.0.1:{port}/"),
        "ftp://127.0.0.1/".to_owned(),
        "javascript:alert(1)".to_owned(),
        "not a url".to_owned(),
        "http://name.invalid/".to_owned(),
    ] {
        assert!(
            fetcher.published_redirect_uris(&client_id).await.is_empty(),
            "{client_id}"
        );
    }
}

fn metadata(client_id: &str, uris: &[&str]) -> String {
    serde_json::json!({"client_id": client_id, "client_name": "Test app", "redirect_uris": uris})
        .to_string()
}

/// An HTTPS server on 127.0.0.1 whose `/client.json` is `document(client_id)` with `status`.
async fn metadata_server(
    status_code: u16,
    document: impl FnOnce(&str) -> String,
    extra: Vec<(&'static str, Reply)>,
) -> (TestServer, String) {
    let server = TestServer::start_with(
        |port| {
            let client_id = format!("https://127.0.0.1:{port}/client.json");
            let mut routes = vec![(
                "/client.json",
                status(status_code, "application/json", &document(&client_id)),
            )];
            routes.extend(extra);
            routes
        },
        Some(tls_acceptor()),
    )
    .await;
    let client_id = format!("https://127.0.0.1:{}/client.json", server.port);
    (server, client_id)
}

#[tokio::test]
async fn an_https_metadata_document_lists_its_http_redirect_uris() {
    let (_server, client_id) = metadata_server(
        200,
        |id| {
            metadata(
                id,
                &[
                    "https://app.example/cb",
                    "com.example.app:/cb",
                    "http://127.0.0.1:9/cb",
                ],
            )
        },
        vec![],
    )
    .await;
    assert_eq!(
        trusting_fetcher().published_redirect_uris(&client_id).await,
        vec!["https://app.example/cb", "http://127.0.0.1:9/cb"]
    );
}

#[tokio::test]
async fn an_untrusted_certificate_gives_nothing() {
    let (mut server, client_id) =
        metadata_server(200, |id| metadata(id, &["https://app.example/cb"]), vec![]).await;
    assert!(
        fetcher()
            .published_redirect_uris(&client_id)
            .await
            .is_empty()
    );
    assert!(
        server.seen().is_empty(),
        "no request may cross an untrusted TLS session"
    );
}

#[tokio::test]
async fn metadata_counts_only_when_every_rule_holds() {
    // Not 200.
    let (_s, id) =
        metadata_server(203, |id| metadata(id, &["https://app.example/cb"]), vec![]).await;
    assert!(
        trusting_fetcher()
            .published_redirect_uris(&id)
            .await
            .is_empty()
    );
    // Names another client.
    let (_s, id) = metadata_server(
        200,
        |_| metadata("https://other.example/c.json", &["https://app.example/cb"]),
        vec![],
    )
    .await;
    assert!(
        trusting_fetcher()
            .published_redirect_uris(&id)
            .await
            .is_empty()
    );
    // Too big: exactly the cap is already too big.
    let (_s, id) = metadata_server(
        200,
        |id| {
            let doc = metadata(id, &["https://app.example/cb"]);
            let pad = 10_240 - doc.len();
            format!("{}{}", " ".repeat(pad), doc)
        },
        vec![],
    )
    .await;
    assert!(
        trusting_fetcher()
            .published_redirect_uris(&id)
            .await
            .is_empty()
    );
    // Reached through a redirect.
    let (server, _) =
        metadata_server(200, |id| metadata(id, &["https://app.example/cb"]), vec![]).await;
    let port = server.port;
    let redirector = TestServer::start_with(
        move |_| {
            vec![(
                "/client.json",
                redirect(&format!("https://127.0.0.1:{port}/client.json")),
            )]
        },
        Some(tls_acceptor()),
    )
    .await;
    let id = format!("https://127.0.0.1:{}/client.json", redirector.port);
    assert!(
        trusting_fetcher()
            .published_redirect_uris(&id)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn plain_http_client_ids_never_use_metadata() {
    let server = TestServer::start_with(
        |port| {
            let id = format!("http://127.0.0.1:{port}/client.json");
            vec![(
                "/client.json",
                ok(
                    "application/json",
                    &metadata(&id, &["https://app.example/cb"]),
                ),
            )]
        },
        None,
    )
    .await;
    let id = format!("http://127.0.0.1:{}/client.json", server.port);
    assert!(fetcher().published_redirect_uris(&id).await.is_empty());
}

#[tokio::test]
async fn html_links_win_over_a_metadata_shaped_body() {
    let (_s, id) = metadata_server(
        200,
        |id| {
            format!(
                "<link rel=redirect_uri href=/from-html>{}",
                metadata(id, &["https://app.example/cb"])
            )
        },
        vec![],
    )
    .await;
    let port = id
        .split(':')
        .nth(2)
        .and_then(|p| p.split('/').next())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        trusting_fetcher().published_redirect_uris(&id).await,
        vec![format!("https://127.0.0.1:{port}/from-html")]
    );
}

#[test]
fn certificate_files_are_checked() {
    let dir = std::env::temp_dir().join(format!("indieauth-fetch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").expect("write");
    let error = load_pem_certificates(&empty).expect_err("empty file refused");
    assert!(error.to_string().contains("empty.pem"), "{error}");
    let missing = dir.join("missing.pem");
    let error = load_pem_certificates(&missing).expect_err("missing file refused");
    assert!(error.to_string().contains("missing.pem"), "{error}");
    assert_eq!(
        load_pem_certificates(&certs_dir().join("ca.pem"))
            .expect("CA")
            .len(),
        1
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn unspecified_addresses_are_never_connected_to() {
    // 0.0.0.0 reaches this host on Linux; a redirect there must not sneak past the client-id rules.
    let mut server = TestServer::start_with(
        |port| {
            vec![
                ("/start", redirect(&format!("http://0.0.0.0:{port}/page"))),
                ("/page", ok("text/html", "<link rel=redirect_uri href=/cb>")),
            ]
        },
        None,
    )
    .await;
    let uris = fetcher()
        .published_redirect_uris(&format!("http://127.0.0.1:{}/start", server.port))
        .await;
    assert!(uris.is_empty(), "{uris:?}");
    let seen = server.seen();
    assert_eq!(
        seen.len(),
        1,
        "only the first request reached the server: {seen:?}"
    );
    let direct = fetcher()
        .published_redirect_uris(&format!("http://0.0.0.0:{}/page", server.port))
        .await;
    assert!(direct.is_empty());
    assert!(server.seen().is_empty());
}
