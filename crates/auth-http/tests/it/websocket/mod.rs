//! The websocket API (`/api/websocket`) over a real socket.

mod auth_phase;
mod envelope;
mod ha_fixture;
mod mfa;
mod mfa_credentials;
mod password;
mod recovery;
mod tokens;
mod users;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::harness::{Server, login};

/// Longest wait for one message (tests never sleep; they wait for what they expect).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A websocket client speaking HA's protocol.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: i64,
}

/// Opens a websocket, optionally with extra request headers; the HTTP error if the upgrade fails.
pub async fn open(server: &Server, headers: &[(&str, &str)]) -> Result<Ws, WsError> {
    let mut request = format!("ws://{}/api/websocket", server.addr)
        .into_client_request()
        .expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let (stream, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(Ws { stream, next_id: 0 })
}

impl Ws {
    /// Connects and reads `auth_required`.
    pub async fn connect(server: &Server) -> Ws {
        let mut ws = open(server, &[]).await.expect("connect");
        assert_eq!(
            ws.recv().await,
            json!({"type": "auth_required", "ha_version": "2026.11.0"})
        );
        ws
    }

    /// Connects and authenticates with `access_token`.
    pub async fn authed(server: &Server, access_token: &str) -> Ws {
        let mut ws = Ws::connect(server).await;
        ws.send(json!({"type": "auth", "access_token": access_token}))
            .await;
        assert_eq!(
            ws.recv().await,
            json!({"type": "auth_ok", "ha_version": "2026.11.0"})
        );
        ws
    }

    pub async fn send(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    pub async fn send_frame(&mut self, message: Message) {
        self.stream.send(message).await.expect("send");
    }

    /// The next JSON message.
    pub async fn recv(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(READ_TIMEOUT, self.stream.next())
                .await
                .expect("a message in time")
                .expect("the socket is open")
                .expect("a frame");
            match message {
                Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// Asserts that the server closes the socket before sending anything else.
    pub async fn expect_closed(&mut self) {
        loop {
            let next = tokio::time::timeout(READ_TIMEOUT, self.stream.next())
                .await
                .expect("the server closes the socket in time");
            match next {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("expected the socket to close, got {other:?}"),
            }
        }
    }

    /// Sends `command` with the next id and returns the whole reply (whose id is checked).
    pub async fn command(&mut self, mut command: Value) -> Value {
        self.next_id += 1;
        command["id"] = json!(self.next_id);
        self.send(command).await;
        let reply = self.recv().await;
        assert_eq!(reply["id"], json!(self.next_id), "{reply}");
        assert_eq!(reply["type"], "result", "{reply}");
        reply
    }

    /// Runs a command that must succeed; its `result`.
    pub async fn ok(&mut self, command: Value) -> Value {
        let reply = self.command(command).await;
        assert_eq!(reply["success"], true, "{reply}");
        reply["result"].clone()
    }

    /// Runs a command that must fail; its `error` object.
    pub async fn err(&mut self, command: Value) -> Value {
        let reply = self.command(command).await;
        assert_eq!(reply["success"], false, "{reply}");
        reply["error"].clone()
    }

    /// The id the next command will carry.
    pub fn next_id(&self) -> i64 {
        self.next_id + 1
    }
}

/// `{"code": …, "message": …}`.
pub fn error(code: &str, message: &str) -> Value {
    json!({"code": code, "message": message})
}

/// A non-admin user `username` (group `system-users`) with a password, created by the owner;
/// returns (user id, access token, refresh token).
pub async fn add_user(
    server: &Server,
    owner: &mut Ws,
    name: &str,
    username: &str,
    password: &str,
    groups: &[&str],
) -> (String, String, String) {
    let created = owner
        .ok(json!({"type": "config/auth/create", "name": name, "group_ids": groups}))
        .await;
    let user_id = created["user"]["id"].as_str().unwrap().to_owned();
    let added = owner
        .ok(json!({"type": "config/auth_provider/homeassistant/create",
            "user_id": user_id, "username": username, "password": password}))
        .await;
    assert_eq!(added, Value::Null);
    let tokens = login(server, username, password).await;
    (
        user_id,
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// A system user (admin group when `admin`) and an access token of its system token.
pub async fn system_user(server: &Server, admin: bool) -> (String, String) {
    let manager = server.manager();
    let groups = if admin {
        vec!["system-admin".to_owned()]
    } else {
        vec!["system-read-only".to_owned()]
    };
    let user = manager
        .create_system_user(Some("Service".into()), groups, false)
        .await
        .unwrap();
    let token = manager
        .create_refresh_token(&user.id, auth_core::NewRefreshToken::default())
        .await
        .unwrap();
    let jwt = manager.create_access_token(&token.id, None).await.unwrap();
    (user.id, jwt)
}
