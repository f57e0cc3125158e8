//! Home Assistant's websocket API (`GET /api/websocket`), the part that belongs to auth
//! (`spec/websocket.md`): the authentication phase, the command envelope, and the `auth/*`,
//! `config/auth/*` and `config/auth_provider/homeassistant/*` commands; plus our own recovery
//! code and MFA reset commands (`recovery.rs`).
//!
//! One task per connection reads a message, runs its command(s) to completion and writes the
//! reply before reading the next one, so replies come in request order and at most one reply is
//! waiting to be written: a client that stops reading is disconnected after
//! [`WebsocketOptions::send_timeout`]. Connections are capped ([`WebsocketOptions::max_connections`]),
//! and so are message sizes (64 KiB before authentication, as HA 2026.11; 1 MiB after).
//!
//! A connection is bound to the refresh token behind its access token: revoking that token
//! (from anywhere) closes the socket. When the revocation comes from a command on the same
//! connection, its reply is written first and the socket closes
//! [`WebsocketOptions::revoke_close_delay`] later (HA waits 2 s).

mod auth;
mod config;
mod messages;
mod mfa_credentials;
mod password;
mod recovery;
mod schema;

use std::sync::Arc;
use std::time::Duration;

use auth_core::manager::RevokeHandle;
use auth_core::{AuthManager, RefreshToken, User};
use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::AuthHttp;
use crate::error::ApiError;
use crate::net::ClientAddr;

use messages::WsError;
use schema::{Field, Kind, opt, req};

/// Limits of the websocket endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct WebsocketOptions {
    /// Most connections open at once (authenticated or not) through one router (each
    /// [`AuthHttp::router`] call has its own count); more are refused with 503. HA has no limit.
    pub max_connections: usize,
    /// Time a client has to send its auth message (HA: 10 s).
    pub auth_timeout: Duration,
    /// Largest auth message; a bigger one closes the connection (HA 2026.11: 64 KiB).
    pub auth_message_limit: usize,
    /// Largest message (and frame) after authentication; a bigger one closes the connection.
    pub max_message_size: usize,
    /// How long writing one message may take before the client counts as gone.
    pub send_timeout: Duration,
    /// Delay between the reply of a command that revoked the connection's own token and the
    /// close (HA: 2 s).
    pub revoke_close_delay: Duration,
}

impl Default for WebsocketOptions {
    fn default() -> Self {
        Self {
            max_connections: 512,
            auth_timeout: Duration::from_secs(10),
            auth_message_limit: 64 * 1024,
            max_message_size: 1024 * 1024,
            send_timeout: Duration::from_secs(10),
            revoke_close_delay: Duration::from_millis(200),
        }
    }
}

/// The `/api/websocket` route; each call makes its own connection limit.
pub(crate) fn route(http: &AuthHttp) -> MethodRouter<AuthHttp> {
    let slots = Arc::new(Semaphore::new(http.options().websocket.max_connections));
    get(
        move |State(http): State<AuthHttp>,
              Extension(client): Extension<ClientAddr>,
              upgrade: WebSocketUpgrade| {
            let slots = Arc::clone(&slots);
            async move { accept(http, client, upgrade, slots) }
        },
    )
}

fn accept(
    http: AuthHttp,
    client: ClientAddr,
    upgrade: WebSocketUpgrade,
    slots: Arc<Semaphore>,
) -> Response {
    let Ok(permit) = slots.try_acquire_owned() else {
        tracing::warn!("refused a websocket connection: too many connections are open");
        return ApiError::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many websocket connections",
        )
        .into_response();
    };
    let size = http.options().websocket.max_message_size;
    upgrade
        .max_message_size(size)
        .max_frame_size(size)
        .on_upgrade(move |socket| connection(socket, http, client, permit))
}

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

/// What the client sent next, ignoring pings and pongs.
enum Incoming {
    Text(Utf8Bytes),
    /// A binary frame, a close, an error or the end of the stream.
    Gone,
}

async fn next_incoming(stream: &mut Stream) -> Incoming {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => return Incoming::Text(text),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_) | Message::Close(_))) | Some(Err(_)) | None => {
                return Incoming::Gone;
            }
        }
    }
}

async fn send(sink: &mut Sink, value: &Value, timeout: Duration) -> bool {
    let message = Message::Text(value.to_string().into());
    matches!(
        tokio::time::timeout(timeout, sink.send(message)).await,
        Ok(Ok(()))
    )
}

async fn close(sink: &mut Sink, timeout: Duration) {
    let frame = CloseFrame {
        code: close_code::NORMAL,
        reason: Utf8Bytes::from_static(""),
    };
    let _ = tokio::time::timeout(timeout, async {
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = sink.close().await;
    })
    .await;
}

/// Unregisters the revoke callback when the connection ends.
struct RevokeGuard {
    manager: AuthManager,
    handle: RevokeHandle,
}

impl Drop for RevokeGuard {
    fn drop(&mut self) {
        self.manager.cancel_on_revoke(&self.handle);
    }
}

async fn connection(
    socket: WebSocket,
    http: AuthHttp,
    client: ClientAddr,
    permit: OwnedSemaphorePermit,
) {
    let _permit = permit;
    let options = http.options().websocket.clone();
    let (mut sink, mut stream) = socket.split();
    let authenticated = authenticate(&http, client, &options, &mut sink, &mut stream).await;
    if let Some((user, token)) = authenticated {
        let (notify, revoked) = watch::channel(false);
        let manager = http.manager().clone();
        let handle = manager.on_revoke(&token.id, move || {
            let _ = notify.send(true);
        });
        let _guard = RevokeGuard {
            manager: manager.clone(),
            handle,
        };
        // A revocation between validation and registration would otherwise go unnoticed.
        if manager.refresh_token(&token.id).is_some() {
            let version = &http.options().ha_version;
            if send(&mut sink, &messages::auth_ok(version), options.send_timeout).await {
                http.bans().reset(client.ip);
                let session = Session {
                    http: http.clone(),
                    user_id: user.id,
                    token_id: token.id.clone(),
                };
                commands(&session, &options, revoked, &mut sink, &mut stream).await;
            }
        }
    }
    close(&mut sink, options.send_timeout).await;
}

/// The auth phase (websocket.md §1); the user and token on success. Every failure has already
/// been answered (or deliberately not) when this returns `None`.
async fn authenticate(
    http: &AuthHttp,
    client: ClientAddr,
    options: &WebsocketOptions,
    sink: &mut Sink,
    stream: &mut Stream,
) -> Option<(User, Arc<RefreshToken>)> {
    let version = &http.options().ha_version;
    if !send(
        sink,
        &messages::auth_required(version),
        options.send_timeout,
    )
    .await
    {
        return None;
    }
    let text = match tokio::time::timeout(options.auth_timeout, next_incoming(stream)).await {
        Ok(Incoming::Text(text)) => text,
        Ok(Incoming::Gone) => return None,
        Err(_) => {
            tracing::debug!(ip = ?client.ip, "no websocket auth message in time");
            return None;
        }
    };
    if text.len() > options.auth_message_limit {
        tracing::debug!(ip = ?client.ip, "websocket auth message too large");
        return None;
    }
    let value: Value = serde_json::from_str(text.as_str()).ok()?;
    let token = match auth_message_token(&value) {
        Ok(token) => token,
        Err(detail) => {
            let message = format!("Auth message incorrectly formatted: {detail}");
            tracing::warn!("{message}");
            send(
                sink,
                &messages::auth_invalid(&message),
                options.send_timeout,
            )
            .await;
            return None;
        }
    };
    let manager = http.manager();
    let found = token
        .and_then(|t| manager.validate_access_token(t))
        .and_then(|refresh| Some((manager.user(&refresh.user_id)?, refresh)));
    let refusal = match &found {
        None => "Invalid access token or password",
        Some((user, _)) => match manager.user_not_allowed_reason(user, client.ip) {
            Some(reason) => reason,
            None => return found,
        },
    };
    send(sink, &messages::auth_invalid(refusal), options.send_timeout).await;
    if found.is_none() && token.is_some_and(|t| manager.is_stale_access_token(t)) {
        tracing::info!(ip = ?client.ip, "websocket auth with an expired or revoked access token; not counted as a failed login");
    } else {
        http.bans().record_failure(client.ip, "/api/websocket");
    }
    None
}

/// Validates the auth message; the access token, if one was sent.
fn auth_message_token(value: &Value) -> Result<Option<&str>, String> {
    let Value::Object(msg) = value else {
        return Err(format!(
            "expected a dictionary. Got {}",
            schema::summary(Some(value))
        ));
    };
    let fields = [
        req("type", Kind::Str),
        opt("access_token", Kind::Str),
        opt("api_password", Kind::Str),
    ];
    schema::validate(msg, &[], &fields)?;
    if msg.get("type").and_then(Value::as_str) != Some("auth") {
        return Err(schema::problem(
            "value must be 'auth'",
            "type",
            msg.get("type"),
        ));
    }
    if msg.contains_key("access_token") && msg.contains_key("api_password") {
        return Err(schema::problem(
            "two or more values in the same group of exclusion 'login'",
            "api_password",
            msg.get("api_password"),
        ));
    }
    Ok(msg.get("access_token").and_then(Value::as_str))
}

/// The command phase: read, run, reply, until the client leaves or the token is revoked.
async fn commands(
    session: &Session,
    options: &WebsocketOptions,
    mut revoked: watch::Receiver<bool>,
    sink: &mut Sink,
    stream: &mut Stream,
) {
    let mut last_id: i64 = 0;
    loop {
        let text = tokio::select! {
            biased;
            _ = revoked.changed() => return,
            incoming = next_incoming(stream) => match incoming {
                Incoming::Text(text) => text,
                Incoming::Gone => return,
            },
        };
        let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
            tracing::debug!("invalid JSON on a websocket; closing");
            return;
        };
        // HA accepts a JSON list of messages as well as one message.
        let batch = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        for message in batch {
            if *revoked.borrow() {
                break;
            }
            let reply = handle(session, &mut last_id, message).await;
            if !send(sink, &reply, options.send_timeout).await {
                return;
            }
        }
        if *revoked.borrow() {
            tokio::time::sleep(options.revoke_close_delay).await;
            return;
        }
    }
}

/// Who may run a command (HA's `ws_require_user` / `require_admin` decorators).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// Any authenticated connection.
    Any,
    /// An active user.
    User,
    /// An active user that is not a system user.
    HumanUser,
    /// An admin.
    Admin,
}

/// A schema rule over several keys; the validation message on failure.
type CrossCheck = fn(&Map<String, Value>) -> Result<(), String>;

/// One command: its type, schema and access rule.
struct Command {
    name: &'static str,
    fields: &'static [Field],
    /// Cross-field rules (exclusive keys) checked after the fields.
    extra: Option<CrossCheck>,
    access: Access,
}

const fn command(name: &'static str, fields: &'static [Field], access: Access) -> Command {
    Command {
        name,
        fields,
        extra: None,
        access,
    }
}

const COMMANDS: &[Command] = &[
    command("auth/current_user", &[], Access::User),
    command(
        "auth/long_lived_access_token",
        &[
            req("lifespan", Kind::Int),
            req("client_name", Kind::Str),
            opt("client_icon", Kind::Str),
        ],
        Access::User,
    ),
    command("auth/refresh_tokens", &[], Access::User),
    command(
        "auth/delete_refresh_token",
        &[req("refresh_token_id", Kind::Str)],
        Access::User,
    ),
    command(
        "auth/delete_all_refresh_tokens",
        &[
            opt("token_type", Kind::Str),
            opt("delete_current_token", Kind::Bool),
        ],
        Access::User,
    ),
    command(
        "auth/refresh_token_set_expiry",
        &[
            req("refresh_token_id", Kind::Str),
            req("enable_expiry", Kind::Bool),
        ],
        Access::User,
    ),
    command(
        "auth/sign_path",
        &[req("path", Kind::Str), opt("expires", Kind::Int)],
        Access::User,
    ),
    Command {
        name: "auth/setup_mfa",
        fields: &[
            opt("mfa_module_id", Kind::Str),
            opt("flow_id", Kind::Str),
            opt("user_input", Kind::Any),
        ],
        extra: Some(auth::setup_mfa_schema),
        access: Access::HumanUser,
    },
    command(
        "auth/depose_mfa",
        &[req("mfa_module_id", Kind::Str)],
        Access::HumanUser,
    ),
    command("auth/recovery_codes", &[], Access::HumanUser),
    command("auth/sign_in_history", &[], Access::HumanUser),
    command("auth/recovery_codes/generate", &[], Access::HumanUser),
    command(
        "config/auth/reset_mfa",
        &[
            req("user_id", Kind::Str),
            opt("mfa_module_id", Kind::Str),
            opt("code", Kind::Str),
        ],
        Access::Admin,
    ),
    command(
        "auth/mfa_credentials",
        &[req("mfa_module_id", Kind::Str)],
        Access::HumanUser,
    ),
    command(
        "auth/mfa_credentials/remove",
        &[
            req("mfa_module_id", Kind::Str),
            req("credential_id", Kind::Str),
        ],
        Access::HumanUser,
    ),
    command("config/auth/list", &[], Access::Admin),
    command(
        "config/auth/create",
        &[
            req("name", Kind::Str),
            opt("group_ids", Kind::StrList),
            opt("local_only", Kind::Bool),
        ],
        Access::Admin,
    ),
    command(
        "config/auth/update",
        &[
            req("user_id", Kind::Str),
            opt("name", Kind::Str),
            opt("is_active", Kind::Bool),
            opt("group_ids", Kind::StrList),
            opt("local_only", Kind::Bool),
        ],
        Access::Admin,
    ),
    command(
        "config/auth/delete",
        &[req("user_id", Kind::Str)],
        Access::Admin,
    ),
    command(
        "config/auth_provider/homeassistant/create",
        &[
            req("user_id", Kind::Str),
            req("username", Kind::Str),
            req("password", Kind::Str),
        ],
        Access::Admin,
    ),
    command(
        "config/auth_provider/homeassistant/delete",
        &[req("username", Kind::Str)],
        Access::Admin,
    ),
    command(
        "config/auth_provider/homeassistant/change_password",
        &[
            req("current_password", Kind::Str),
            req("new_password", Kind::Str),
        ],
        Access::Any,
    ),
    command(
        "config/auth_provider/homeassistant/admin_change_password",
        &[req("user_id", Kind::Str), req("password", Kind::Str)],
        Access::Admin,
    ),
    command(
        "config/auth_provider/homeassistant/admin_change_username",
        &[req("user_id", Kind::Str), req("username", Kind::Str)],
        Access::Admin,
    ),
];

/// What a command sees of its connection.
pub(crate) struct Session {
    http: AuthHttp,
    user_id: String,
    token_id: String,
}

impl Session {
    fn manager(&self) -> &AuthManager {
        self.http.manager()
    }

    /// The connection's user as it is now.
    fn user(&self) -> Result<User, WsError> {
        self.manager()
            .user(&self.user_id)
            .ok_or_else(WsError::unauthorized)
    }
}

/// Runs one message through the envelope checks and its command; returns the reply.
async fn handle(session: &Session, last_id: &mut i64, message: Value) -> Value {
    // As HA: a message that is not an object is answered with id 0; one whose id is not a
    // positive integer, or whose type is not a non-empty string, with its own id (or null).
    let Value::Object(msg) = message else {
        return messages::error(&Value::from(0), &malformed());
    };
    let id_value = msg.get("id").cloned().unwrap_or(Value::Null);
    let id = id_value.as_i64().filter(|id| *id > 0);
    let kind = msg
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    let (Some(id), Some(kind)) = (id, kind) else {
        tracing::debug!("invalid websocket command");
        return messages::error(&id_value, &malformed());
    };
    if id <= *last_id {
        return messages::error(
            &id_value,
            &WsError::new("id_reuse", "Identifier values have to increase."),
        );
    }
    let Some(command) = COMMANDS.iter().find(|c| c.name == kind) else {
        tracing::debug!(kind, "unknown websocket command");
        return messages::error(
            &id_value,
            &WsError::new("unknown_command", "Unknown command."),
        );
    };
    *last_id = id;
    match run(session, command, &msg).await {
        Ok(result) => messages::result(&id_value, result),
        Err(error) => messages::error(&id_value, &error),
    }
}

fn malformed() -> WsError {
    WsError::invalid_format("Message incorrectly formatted.")
}

async fn run(
    session: &Session,
    command: &Command,
    msg: &Map<String, Value>,
) -> Result<Value, WsError> {
    schema::validate(msg, &["id", "type"], command.fields).map_err(WsError::invalid_format)?;
    if let Some(extra) = command.extra {
        extra(msg).map_err(WsError::invalid_format)?;
    }
    check_access(&session.user()?, command.access)?;
    match command.name {
        "auth/current_user" => auth::current_user(session).await,
        "auth/long_lived_access_token" => auth::long_lived_access_token(session, msg).await,
        "auth/refresh_tokens" => auth::refresh_tokens(session),
        "auth/delete_refresh_token" => auth::delete_refresh_token(session, msg).await,
        "auth/delete_all_refresh_tokens" => auth::delete_all_refresh_tokens(session, msg).await,
        "auth/refresh_token_set_expiry" => auth::refresh_token_set_expiry(session, msg).await,
        "auth/sign_path" => auth::sign_path(session, msg),
        "auth/setup_mfa" => auth::setup_mfa(session, msg).await,
        "auth/depose_mfa" => auth::depose_mfa(session, msg).await,
        "auth/recovery_codes" => recovery::status(session),
        "auth/sign_in_history" => Ok(recovery::sign_in_history(session)),
        "auth/recovery_codes/generate" => recovery::generate(session).await,
        "config/auth/reset_mfa" => recovery::reset_mfa(session, msg).await,
        "auth/mfa_credentials" => mfa_credentials::list(session, msg).await,
        "auth/mfa_credentials/remove" => mfa_credentials::remove(session, msg).await,
        "config/auth/list" => Ok(config::list(session)),
        "config/auth/create" => config::create(session, msg).await,
        "config/auth/update" => config::update(session, msg).await,
        "config/auth/delete" => config::delete(session, msg).await,
        "config/auth_provider/homeassistant/create" => password::create(session, msg).await,
        "config/auth_provider/homeassistant/delete" => password::delete(session, msg).await,
        "config/auth_provider/homeassistant/change_password" => {
            password::change_password(session, msg).await
        }
        "config/auth_provider/homeassistant/admin_change_password" => {
            password::admin_change_password(session, msg).await
        }
        "config/auth_provider/homeassistant/admin_change_username" => {
            password::admin_change_username(session, msg).await
        }
        other => {
            tracing::error!(other, "websocket command without a handler");
            Err(WsError::unknown())
        }
    }
}

/// HA's user checks, in its order: system user, active, admin.
fn check_access(user: &User, access: Access) -> Result<(), WsError> {
    if access == Access::HumanUser && user.system_generated {
        return Err(WsError::new(
            "not_system_user",
            "Not allowed as system user",
        ));
    }
    if matches!(access, Access::User | Access::HumanUser) && !user.is_active {
        return Err(WsError::new(
            "only_active_user",
            "Only allowed as active user",
        ));
    }
    if access == Access::Admin && !user.is_admin() {
        return Err(WsError::unauthorized());
    }
    Ok(())
}

/// `msg[key]` as a string (the schema has been checked).
fn str_field<'a>(msg: &'a Map<String, Value>, key: &str) -> &'a str {
    msg.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `msg[key]` as an optional string.
fn opt_str<'a>(msg: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    msg.get(key).and_then(Value::as_str)
}

/// `msg[key]` as an optional bool.
fn opt_bool(msg: &Map<String, Value>, key: &str) -> Option<bool> {
    msg.get(key).and_then(Value::as_bool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_message_schema() {
        assert_eq!(
            auth_message_token(&json!({"type": "auth", "access_token": "t"})),
            Ok(Some("t"))
        );
        assert_eq!(auth_message_token(&json!({"type": "auth"})), Ok(None));
        assert_eq!(
            auth_message_token(&json!({"type": "auth", "api_password": "p"})),
            Ok(None)
        );
        assert_eq!(
            auth_message_token(&json!({"access_token": "t"})),
            Err("required key not provided at 'type'. Got None".to_owned())
        );
        assert_eq!(
            auth_message_token(&json!({"type": "login"})),
            Err("value must be 'auth' at 'type'. Got 'login'".to_owned())
        );
        assert_eq!(
            auth_message_token(&json!({"type": "auth", "access_token": 1})),
            Err("expected str at 'access_token'. Got 1".to_owned())
        );
        assert_eq!(
            auth_message_token(&json!([1])),
            Err("expected a dictionary. Got [1]".to_owned())
        );
        assert!(
            auth_message_token(&json!({"type": "auth", "access_token": "t", "api_password": "p"}))
                .is_err()
        );
    }

    #[test]
    fn every_command_has_a_unique_name() {
        let mut names: Vec<_> = COMMANDS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len());
    }
}
