//! `http: fetch_client_redirect_uris`: the server fetches a client's page for the redirect URIs
//! it publishes, from a real client web server on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{serve, write_config};

/// A client web app whose `/app/` page publishes redirect URIs; counts the requests it gets.
struct ClientApp {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl ClientApp {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let page = format!(
            "<!doctype html><html><head>\
             <link rel=\"redirect_uri\" href=\"http://localhost:{port}/callback\">\
             <link rel=\"redirect_uri\" href=\"javascript:alert(document.cookie)\">\
             </head><body>A client app</body></html>"
        );
        let counter = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let page = page.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                        page.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { port, requests }
    }

    fn client_id(&self) -> String {
        format!("http://127.0.0.1:{}/app/", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

const CONFIG: &str = "homeassistant:
  auth_providers:
    - type: insecure_example
      users:
        - username: demo
          password: demo
";

/// Runs a login flow to its end for `client_id` and `redirect_uri`; returns status and body.
async fn finish_login(addr: SocketAddr, client_id: &str, redirect_uri: &str) -> (u16, Value) {
    let flow = Request::post("/auth/login_flow")
        .json(
            &json!({"client_id": client_id, "handler": ["insecure_example", null],
            "redirect_uri": redirect_uri}),
        )
        .send(addr)
        .await;
    if flow.status != 200 {
        return (flow.status, flow.json());
    }
    let flow = flow.json();
    let done = Request::post(&format!(
        "/auth/login_flow/{}",
        flow["flow_id"].as_str().unwrap()
    ))
    .json(&json!({"client_id": client_id, "username": "demo", "password": "demo"}))
    .send(addr)
    .await;
    (done.status, done.json())
}

#[tokio::test]
async fn published_redirect_uris_are_fetched_only_when_enabled() {
    let app = ClientApp::start().await;
    let published = format!("http://localhost:{}/callback", app.port);

    // Off (the default): the published URI is refused and the client page is never fetched.
    let off = TempConfig::empty();
    write_config(off.path(), CONFIG);
    let server = serve(off.path(), &["-c", off.path().to_str().unwrap()])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let (status, body) = finish_login(server.addr, &app.client_id(), &published).await;
    assert_eq!(
        (status, &body),
        (403, &json!({"message": "Invalid redirect URI"}))
    );
    assert_eq!(app.requests(), 0, "nothing is fetched unless enabled");
    server.stop().await;

    // On: the published URI is accepted after one fetch, and the code redeems.
    let on = TempConfig::empty();
    write_config(
        on.path(),
        &format!("{CONFIG}http:\n  fetch_client_redirect_uris: true\n"),
    );
    let server = serve(on.path(), &["-c", on.path().to_str().unwrap()])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let addr = server.addr;
    let (status, body) = finish_login(addr, &app.client_id(), &published).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "create_entry", "{body}");
    assert_eq!(app.requests(), 1);
    let tokens = Request::post("/auth/token")
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &app.client_id()),
            ("code", body["result"].as_str().unwrap()),
        ])
        .send(addr)
        .await;
    assert_eq!(tokens.status, 200, "{}", tokens.text());

    // A URI the page does not publish, and the javascript: link it does publish, are refused.
    for redirect_uri in [
        format!("http://localhost:{}/elsewhere", app.port),
        "javascript:alert(document.cookie)".to_owned(),
    ] {
        let (status, body) = finish_login(addr, &app.client_id(), &redirect_uri).await;
        assert_eq!(
            (status, &body),
            (403, &json!({"message": "Invalid redirect URI"})),
            "{redirect_uri}"
        );
    }

    // A client that cannot be reached publishes nothing.
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone_port = gone.local_addr().unwrap().port();
    drop(gone);
    let (status, _) = finish_login(
        addr,
        &format!("http://127.0.0.1:{gone_port}/app/"),
        &format!("http://localhost:{gone_port}/callback"),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(server.stop().await, 0);
}

#[tokio::test]
async fn a_bad_ca_file_stops_the_start_with_its_location() {
    let config = TempConfig::empty();
    write_config(
        config.path(),
        &format!(
            "{CONFIG}http:\n  fetch_client_redirect_uris: true\n  fetch_client_ca_file: home-ca.pem\n"
        ),
    );
    std::fs::write(config.path().join("home-ca.pem"), "not a certificate\n").unwrap();
    let output = match serve(config.path(), &["-c", config.path().to_str().unwrap()]).await {
        Ok(server) => panic!("started with a bad CA file on {}", server.addr),
        Err(output) => output,
    };
    assert_ne!(output.code, 0);
    assert!(
        output
            .stderr
            .contains("configuration.yaml:9:25: http.fetch_client_ca_file:")
            && output
                .stderr
                .contains("home-ca.pem: no PEM certificate in the file"),
        "{}",
        output.stderr
    );
}
