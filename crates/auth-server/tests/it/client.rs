//! Clients of the running server that report a dead connection as an error (never a panic), for
//! tests that kill the server under load: every step either is acknowledged or is not.

use std::net::SocketAddr;
use std::time::Duration;

use auth_testkit::http::{Request, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The client id every test uses; a loopback URL stays valid whatever port the server gets.
pub const CLIENT_ID: &str = "http://127.0.0.1:8123/";
/// Its redirect URI.
pub const REDIRECT_URI: &str = "http://127.0.0.1:8123/?auth_callback=1";

/// Why a client step got no acknowledgement.
pub type Failure = String;

async fn send(addr: SocketAddr, request: Request) -> Result<Response, Failure> {
    request.try_send(addr).await.map_err(|e| e.to_string())
}

/// Runs a login flow for `handler` up to its result: `Ok(Some(code))` when the password was
/// accepted, `Ok(None)` when the flow said no (a form with an error, or an abort).
pub async fn login_code(
    addr: SocketAddr,
    handler: Value,
    username: &str,
    password: &str,
    from: Option<&str>,
) -> Result<Option<String>, Failure> {
    let with_ip = |request: Request| match from {
        Some(ip) => request.from_ip(ip),
        None => request,
    };
    let started = send(
        addr,
        with_ip(Request::post("/auth/login_flow").json(
            &json!({"client_id": CLIENT_ID, "handler": handler, "redirect_uri": REDIRECT_URI}),
        )),
    )
    .await?;
    if started.status != 200 {
        return Err(format!("start: {} {}", started.status, started.text()));
    }
    let flow_id = json_of(&started)?["flow_id"]
        .as_str()
        .ok_or("no flow id")?
        .to_owned();
    let done = send(
        addr,
        with_ip(
            Request::post(&format!("/auth/login_flow/{flow_id}"))
                .json(&json!({"client_id": CLIENT_ID, "username": username, "password": password})),
        ),
    )
    .await?;
    if done.status != 200 {
        return Err(format!("step: {} {}", done.status, done.text()));
    }
    let done = json_of(&done)?;
    match done["type"].as_str() {
        Some("create_entry") => Ok(done["result"].as_str().map(str::to_owned)),
        _ => Ok(None),
    }
}

/// Exchanges an authorization code: the token response, when it was 200.
pub async fn exchange(addr: SocketAddr, code: &str) -> Result<Value, Failure> {
    let response = send(
        addr,
        Request::post("/auth/token").form(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("code", code),
        ]),
    )
    .await?;
    if response.status != 200 {
        return Err(format!("token: {} {}", response.status, response.text()));
    }
    json_of(&response)
}

/// Logs in and exchanges the code.
pub async fn login(
    addr: SocketAddr,
    handler: Value,
    username: &str,
    password: &str,
) -> Result<Value, Failure> {
    match login_code(addr, handler, username, password, None).await? {
        Some(code) => exchange(addr, &code).await,
        None => Err(format!("{username}: the password was refused")),
    }
}

/// `grant_type=refresh_token`: the raw response.
pub async fn refresh(addr: SocketAddr, refresh_token: &str) -> Result<Response, Failure> {
    send(
        addr,
        Request::post("/auth/token").form(&[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("refresh_token", refresh_token),
        ]),
    )
    .await
}

/// `POST /auth/revoke`: whether it answered 200.
pub async fn revoke(addr: SocketAddr, refresh_token: &str) -> Result<(), Failure> {
    let response = send(
        addr,
        Request::post("/auth/revoke").form(&[("token", refresh_token)]),
    )
    .await?;
    match response.status {
        200 => Ok(()),
        other => Err(format!("revoke: {other}")),
    }
}

/// `GET /api/` with a bearer token: the status.
pub async fn api_status(addr: SocketAddr, access_token: &str) -> Result<u16, Failure> {
    Ok(send(addr, Request::get("/api/").bearer(access_token))
        .await?
        .status)
}

/// Creates the owner through onboarding and signs in: the token response.
pub async fn onboard(addr: SocketAddr, username: &str, password: &str) -> Value {
    let response = Request::post("/api/onboarding/users")
        .json(
            &json!({"client_id": CLIENT_ID, "name": "Owner", "username": username,
            "password": password, "language": "en"}),
        )
        .send(addr)
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let code = response.json()["auth_code"].as_str().unwrap().to_owned();
    exchange(addr, &code).await.expect("owner tokens")
}

fn json_of(response: &Response) -> Result<Value, Failure> {
    serde_json::from_slice(&response.body)
        .map_err(|e| format!("not JSON ({e}): {}", response.text()))
}

/// A websocket connection that went through the auth phase.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: i64,
}

impl Ws {
    /// Connects and authenticates with `access_token`.
    pub async fn connect(addr: SocketAddr, access_token: &str) -> Result<Ws, Failure> {
        let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/websocket"))
            .await
            .map_err(|e| e.to_string())?;
        let mut ws = Ws { stream, next_id: 0 };
        let required = ws.recv().await?;
        if required["type"] != "auth_required" {
            return Err(format!("expected auth_required: {required}"));
        }
        ws.send(json!({"type": "auth", "access_token": access_token}))
            .await?;
        let ok = ws.recv().await?;
        if ok["type"] != "auth_ok" {
            return Err(format!("auth refused: {ok}"));
        }
        Ok(ws)
    }

    async fn send(&mut self, value: Value) -> Result<(), Failure> {
        self.stream
            .send(Message::text(value.to_string()))
            .await
            .map_err(|e| e.to_string())
    }

    async fn recv(&mut self) -> Result<Value, Failure> {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(20), self.stream.next())
                .await
                .map_err(|_| "no reply in time".to_owned())?;
            match next {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str()).map_err(|e| e.to_string());
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => return Err(format!("unexpected message {other:?}")),
                Some(Err(error)) => return Err(error.to_string()),
                None => return Err("closed".to_owned()),
            }
        }
    }

    /// Runs a command; `Ok(result)` only when the server answered `success: true`.
    pub async fn ok(&mut self, mut command: Value) -> Result<Value, Failure> {
        let reply = self.command(&mut command).await?;
        if reply["success"] == true {
            Ok(reply["result"].clone())
        } else {
            Err(format!("{} failed: {reply}", command["type"]))
        }
    }

    /// Runs a command; its whole reply.
    pub async fn command(&mut self, command: &mut Value) -> Result<Value, Failure> {
        self.next_id += 1;
        command["id"] = json!(self.next_id);
        self.send(command.clone()).await?;
        let reply = self.recv().await?;
        if reply["id"] != json!(self.next_id) {
            return Err(format!("reply to another command: {reply}"));
        }
        Ok(reply)
    }
}
