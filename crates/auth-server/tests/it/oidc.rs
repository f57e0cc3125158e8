//! The `oidc` provider against a real OpenID Provider (npm's `oidc-provider`, started from
//! `crates/provider-oidc/tests/op/`) and the real binary: sign-in through the external step and
//! `/auth/oidc/callback`, user creation and groups, `create_users: false`, a forged `state`, a key
//! rotation at the identity provider, and an identity provider that is down or silent.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use auth_testkit::webdriver::Browser;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use crate::support::{serve, write_config};

/// What our config registers at the OP as redirect URI (the test's "browser" stops there and
/// hands the query to the server under test).
const REDIRECT_URI: &str = "http://hass.test/auth/oidc/callback";
const CLIENT_ID: &str = "http://127.0.0.1:8123/";
const CLIENT_REDIRECT: &str = "http://127.0.0.1:8123/done";

fn op_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../provider-oidc/tests/op")
}

/// Installs the OP's npm packages (from package-lock.json) when they are missing.
fn ensure_npm_packages() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = op_dir();
        if dir.join("node_modules/oidc-provider/package.json").exists() {
            return;
        }
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .unwrap_or_else(|e| panic!("cannot run npm ({e}); install Node.js and npm (Debian: apt-get install nodejs npm)"));
        assert!(status.success(), "npm ci in {} failed", dir.display());
    });
}

/// A running OP; killed when dropped.
struct Op {
    addr: SocketAddr,
    child: Child,
}

impl Op {
    /// Starts the OP on `port` (0: any) with a fresh signing key named `kid`.
    async fn start(port: u16, kid: &str, alg: &str) -> Op {
        Self::start_for(port, kid, alg, REDIRECT_URI).await
    }

    /// Like [`Op::start`], with the client's redirect URI.
    async fn start_for(port: u16, kid: &str, alg: &str, redirect_uri: &str) -> Op {
        ensure_npm_packages();
        let mut child = Command::new("node")
            .arg("op.mjs")
            .arg(port.to_string())
            .arg(redirect_uri)
            .arg(kid)
            .arg(alg)
            .current_dir(op_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (install Node.js: apt-get install nodejs npm)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(port) = line.strip_prefix("listening ") {
                    return port.parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .expect("the OP reports its port in time")
        .expect("the OP started");
        // Keep reading its output: a closed pipe would kill it at its next log line.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Op {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        }
    }

    fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Signs `user` in at the OP for `authorization_url`; the query of the redirect back to us.
    async fn sign_in(&self, user: &str, authorization_url: &str) -> String {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("user", user)
            .append_pair("url", authorization_url)
            .finish();
        let answer = Request::get(&format!("/test/sign-in?{query}"))
            .send(self.addr)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let back = answer.text();
        back.strip_prefix(&format!("{REDIRECT_URI}?"))
            .unwrap_or_else(|| panic!("not a redirect to us: {back}"))
            .to_owned()
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn config(issuer: &str, extra: &str) -> String {
    config_for(issuer, REDIRECT_URI, extra)
}

fn config_for(issuer: &str, redirect_uri: &str, extra: &str) -> String {
    format!(
        "homeassistant:
  auth_providers:
    - type: oidc
      name: Test OP
      issuer: {issuer}
      client_id: hass
      client_secret: hass-secret
      redirect_uri: {redirect_uri}
      scopes: [openid, profile, groups]
      groups_claim: groups
      groups:
        admins: system-admin
        family: system-users
        guests: system-read-only
{extra}"
    )
}

async fn start_flow(server: SocketAddr) -> Value {
    let started = Request::post("/auth/login_flow")
        .json(&json!({"client_id": CLIENT_ID, "handler": ["oidc", null], "redirect_uri": CLIENT_REDIRECT}))
        .send(server)
        .await;
    assert_eq!(started.status, 200, "{}", started.text());
    started.json()
}

async fn step(server: SocketAddr, flow_id: &str) -> Value {
    let next = Request::post(&format!("/auth/login_flow/{flow_id}"))
        .json(&json!({"client_id": CLIENT_ID}))
        .send(server)
        .await;
    assert_eq!(next.status, 200, "{}", next.text());
    next.json()
}

async fn callback(server: SocketAddr, query: &str) -> (u16, String) {
    let answer = Request::get(&format!("/auth/oidc/callback?{query}"))
        .send(server)
        .await;
    (
        answer.status,
        answer
            .header("location")
            .unwrap_or(&answer.text())
            .to_owned(),
    )
}

/// Signs `user` in through the whole flow; the login flow's last answer.
async fn sign_in(server: SocketAddr, op: &Op, user: &str) -> Value {
    let external = start_flow(server).await;
    assert_eq!(external["type"], "external", "{external}");
    assert_eq!(external["step_id"], "external");
    let flow_id = external["flow_id"].as_str().unwrap().to_owned();
    let query = op.sign_in(user, external["url"].as_str().unwrap()).await;
    assert_eq!(
        callback(server, &query).await,
        (303, "/auth/authorize?external_done=1".to_owned())
    );
    let done = Request::get(&format!("/auth/login_flow/{flow_id}"))
        .send(server)
        .await
        .json();
    assert_eq!(done["type"], "external_done", "{done}");
    assert_eq!(done["step_id"], "finish");
    step(server, &flow_id).await
}

/// Redeems a login flow's code; the user id of the refresh token.
async fn redeem(server: SocketAddr, code: &str) -> Value {
    let token = Request::post("/auth/token")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", CLIENT_ID),
        ])
        .send(server)
        .await;
    assert_eq!(token.status, 200, "{}", token.text());
    token.json()
}

fn users(dir: &Path) -> Vec<Value> {
    let Ok(bytes) = std::fs::read(dir.join(".storage/auth")) else {
        return Vec::new();
    };
    let auth: Value = serde_json::from_slice(&bytes).unwrap();
    let users = auth["data"]["users"].as_array().unwrap().clone();
    let credentials = auth["data"]["credentials"].as_array().unwrap().clone();
    users
        .into_iter()
        .filter(|u| !u["system_generated"].as_bool().unwrap_or(false))
        .map(|u| {
            let creds: Vec<&Value> = credentials
                .iter()
                .filter(|c| c["user_id"] == u["id"])
                .collect();
            json!({"name": u["name"], "groups": u["group_ids"], "credentials": creds.iter().map(|c| json!({"type": c["auth_provider_type"], "data": c["data"]})).collect::<Vec<_>>()})
        })
        .collect()
}

#[tokio::test]
async fn first_sign_in_creates_the_user_with_its_mapped_group() {
    let op = Op::start(0, "k1", "RS256").await;
    let dir = TempConfig::empty();
    write_config(dir.path(), &config(&op.issuer(), ""));
    let server = serve(dir.path(), &["-c", dir.path().to_str().unwrap()])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));

    // The authorization request: code flow, PKCE S256, state and nonce, our redirect URI.
    let external = start_flow(server.addr).await;
    let url = url::Url::parse(external["url"].as_str().unwrap()).unwrap();
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(url.origin().ascii_serialization(), op.issuer());
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], "hass");
    assert_eq!(query["redirect_uri"], REDIRECT_URI);
    assert_eq!(query["scope"], "openid profile groups");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43);
    assert!(query["nonce"].len() >= 43);
    let flow_id = external["flow_id"].as_str().unwrap();
    assert!(query["state"].starts_with(&format!("{flow_id}.")));

    // The client polling the flow while the user is away changes nothing.
    let waiting = step(server.addr, flow_id).await;
    assert_eq!(waiting["type"], "external");
    assert_eq!(waiting["url"], external["url"]);

    // A callback with a forged state is refused and leaves the flow waiting.
    let back = op.sign_in("alice", external["url"].as_str().unwrap()).await;
    let forged = back.replace(&query["state"], &format!("{flow_id}.forged"));
    assert_eq!(callback(server.addr, &forged).await.0, 400);
    let missing = back.replace(flow_id, "0123456789abcdef0123456789abcdef");
    assert_eq!(callback(server.addr, &missing).await.0, 400);
    assert_eq!(
        step(server.addr, flow_id).await["type"],
        "external",
        "still waiting"
    );
    // The real callback completes it; replaying it is refused.
    assert_eq!(callback(server.addr, &back).await.0, 303);
    assert_eq!(callback(server.addr, &back).await.0, 400, "replayed");
    let done = step(server.addr, flow_id).await;
    assert_eq!(done["type"], "create_entry", "{done}");
    redeem(server.addr, done["result"].as_str().unwrap()).await;

    for user in ["bob", "carol"] {
        let done = sign_in(server.addr, &op, user).await;
        assert_eq!(done["type"], "create_entry", "{user}: {done}");
        redeem(server.addr, done["result"].as_str().unwrap()).await;
    }
    // Dave is in no mapped group.
    let refused = sign_in(server.addr, &op, "dave").await;
    assert_eq!(refused["type"], "abort");
    assert_eq!(refused["reason"], "user_not_allowed");
    // Alice again: the same user, no new one.
    let again = sign_in(server.addr, &op, "alice").await;
    redeem(server.addr, again["result"].as_str().unwrap()).await;
    server.stop().await;

    let users = users(dir.path());
    let summary: Vec<(String, Value)> = users
        .iter()
        .map(|u| (u["name"].as_str().unwrap().to_owned(), u["groups"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("Alice Admin".to_owned(), json!(["system-admin"])),
            ("Bob".to_owned(), json!(["system-users"])),
            ("Carol".to_owned(), json!(["system-read-only"])),
        ]
    );
    assert_eq!(users[0]["credentials"][0]["type"], "oidc");
    assert_eq!(users[0]["credentials"][0]["data"]["sub"], "alice");
    assert_eq!(users[0]["credentials"][0]["data"]["username"], "alice");
    op.stop().await;
}

#[tokio::test]
async fn without_create_users_a_stranger_is_refused() {
    let op = Op::start(0, "k1", "RS256").await;
    let dir = TempConfig::empty();
    write_config(
        dir.path(),
        &config(&op.issuer(), "      create_users: false\n"),
    );
    let server = serve(dir.path(), &["-c", dir.path().to_str().unwrap()])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let refused = sign_in(server.addr, &op, "alice").await;
    assert_eq!(refused["type"], "abort", "{refused}");
    assert_eq!(refused["reason"], "user_not_allowed");
    server.stop().await;
    assert!(users(dir.path()).is_empty());
    op.stop().await;
}

#[tokio::test]
async fn without_create_users_an_existing_user_of_the_same_username_is_linked() {
    let op = Op::start(0, "k1", "RS256").await;
    // Home Assistant's fixture: "owner" has a homeassistant credential of username "owner".
    let dir = TempConfig::from_fixture("ha-2026.2.3");
    write_config(
        dir.path(),
        &config(&op.issuer(), "      create_users: false\n"),
    );
    let before = users(dir.path());
    let server = serve(dir.path(), &["-c", dir.path().to_str().unwrap()])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    for _ in 0..2 {
        let done = sign_in(server.addr, &op, "owner").await;
        assert_eq!(done["type"], "create_entry", "{done}");
        redeem(server.addr, done["result"].as_str().unwrap()).await;
    }
    server.stop().await;
    let after = users(dir.path());
    assert_eq!(after.len(), before.len(), "no user was created");
    let owner = after
        .iter()
        .find(|u| {
            u["credentials"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == "oidc")
        })
        .expect("an oidc credential was linked");
    let types: Vec<&Value> = owner["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["type"])
        .collect();
    assert_eq!(types, [&json!("homeassistant"), &json!("oidc")], "{owner}");
    op.stop().await;
}

#[tokio::test]
async fn a_key_rotation_at_the_identity_provider_is_followed() {
    let op = Op::start(0, "first-key", "RS256").await;
    let port = op.addr.port();
    let dir = TempConfig::empty();
    write_config(dir.path(), &config(&op.issuer(), ""));
    let server = serve(dir.path(), &["-c", dir.path().to_str().unwrap()])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let done = sign_in(server.addr, &op, "alice").await;
    assert_eq!(done["type"], "create_entry", "{done}");
    op.stop().await;

    // Same issuer, new key (another id, another algorithm): the cached set is fetched again.
    let op = Op::start(port, "second-key", "ES256").await;
    let done = sign_in(server.addr, &op, "alice").await;
    assert_eq!(done["type"], "create_entry", "{done}");
    server.stop().await;
    op.stop().await;
}

#[tokio::test]
async fn an_identity_provider_that_is_down_or_silent_aborts_in_time() {
    // Down: nothing listens on the port.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    // Silent: accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_issuer = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    for issuer in [down, silent_issuer] {
        let dir = TempConfig::empty();
        write_config(dir.path(), &config(&issuer, "      timeout: 1\n"));
        let server = serve(dir.path(), &["-c", dir.path().to_str().unwrap()])
            .await
            .unwrap_or_else(|o| panic!("{}", o.stderr));
        let started = Instant::now();
        let aborted = start_flow(server.addr).await;
        assert_eq!(aborted["type"], "abort", "{aborted}");
        assert_eq!(aborted["reason"], "cannot_connect");
        assert!(started.elapsed() < Duration::from_secs(10));
        // The log names the issuer (its reader may be a moment behind the response).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.stderr().contains(&issuer) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stderr = server.stderr();
        server.stop().await;
        assert!(
            stderr.contains(&issuer),
            "the log names the issuer: {stderr}"
        );
    }
}

#[tokio::test]
async fn the_providers_mfa_chain_still_applies_after_the_identity_provider() {
    let op = Op::start(0, "k1", "RS256").await;
    let dir = TempConfig::empty();
    let chain = "      modules:
        - type: insecure_example
          users: [{username: alice, pin: \"123456\"}]
";
    write_config(dir.path(), &config(&op.issuer(), chain));
    let server = serve(dir.path(), &["-c", dir.path().to_str().unwrap()])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let asked = sign_in(server.addr, &op, "alice").await;
    assert_eq!(asked["type"], "form", "{asked}");
    assert_eq!(asked["step_id"], "mfa");
    let flow_id = asked["flow_id"].as_str().unwrap();
    let send = |pin: &'static str| {
        Request::post(&format!("/auth/login_flow/{flow_id}"))
            .json(&json!({"client_id": CLIENT_ID, "pin": pin}))
    };
    let wrong = send("000000").send(server.addr).await.json();
    assert_eq!(wrong["errors"], json!({"base": "invalid_code"}), "{wrong}");
    let done = send("123456").send(server.addr).await.json();
    assert_eq!(done["type"], "create_entry", "{done}");
    server.stop().await;
    op.stop().await;
}

/// A stand-in for a reverse proxy in front of the server: answers every request with a redirect
/// to the same path and query at the server, once the server's address is known.
async fn redirector(target: Arc<OnceLock<SocketAddr>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_string();
                let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
                let server = target.get().expect("the server runs");
                let answer = format!(
                    "HTTP/1.1 302 Found\r\nLocation: http://{server}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

/// The whole sign-in in a real Chromium through our login page: "Continue with Test OP", the
/// identity provider, back through the callback to the login page, which finishes the flow and
/// lands on the profile of the new user.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn chromium_signs_in_through_our_login_page() {
    let server_addr = Arc::new(OnceLock::new());
    let proxy = redirector(server_addr.clone()).await;
    let redirect_uri = format!("http://{proxy}/auth/oidc/callback");
    let op = Op::start_for(0, "k1", "RS256", &redirect_uri).await;
    let dir = TempConfig::from_fixture("ha-2026.2.3");
    write_config(dir.path(), &config_for(&op.issuer(), &redirect_uri, ""));
    let server = serve(dir.path(), &["-c", dir.path().to_str().unwrap()])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    server_addr.set(server.addr).unwrap();
    assert_eq!(
        Request::get("/test/next-user?user=alice")
            .send(op.addr)
            .await
            .status,
        200
    );

    let mut b = Browser::start("oidc", &crate::support::browser_artifacts());
    b.goto(&format!("http://{}/", server.addr));
    b.wait_text("#signed-out", "You are not signed in");
    b.click("#signin");
    b.wait_url("the login page", |u| u.contains("/auth/authorize?"));
    b.wait_text("#submit", "Continue with Test OP");
    b.wait_text("#title", "Sign in with Test OP");
    b.screenshot("oidc-login-page");
    // "Keep me logged in" is pre-ticked here; untick it: the choice survives the trip.
    b.click("#remember");
    b.click("#submit");
    // At the identity provider and back: the login page finishes the flow by itself.
    b.wait_text("#user-name", "Alice Admin");
    b.wait_url("the landing page", |u| {
        u == format!("http://{}/", server.addr)
    });
    b.wait_text("#user-role", "Administrator");
    b.wait_text("#user-credentials", "oidc");
    b.screenshot("oidc-profile");
    let kept = b.execute(
        "return JSON.parse(sessionStorage.getItem('hass-auth.session')).refresh_token || null",
        json!([]),
    );
    assert_eq!(
        kept,
        Value::Null,
        "not kept: the box was unticked before leaving"
    );
    crate::support::assert_clean_console(&b);
    b.quit();
    assert_eq!(server.stop().await, 0);
    op.stop().await;
}
