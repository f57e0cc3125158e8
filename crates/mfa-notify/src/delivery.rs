//! Sending a code: a `command` (a program run without a shell, the message on its stdin) or a
//! `webhook` (a JSON POST through `indieauth-fetch`, the crate that owns outgoing HTTP).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

/// Default time a delivery may take.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;
/// Commands run at once; more wait.
const MAX_COMMANDS: usize = 4;

/// How one notify service delivers (config `services: NAME: ...`; exactly one of `command`
/// and `webhook`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// A program and its arguments (no shell). The message is written to its stdin; the target,
    /// if any, is in the environment as `HASS_AUTH_NOTIFY_TARGET`. Exit status 0 = delivered.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// An http(s) URL that gets `POST {"message": ..., "target": [target]}` (target only when
    /// set); any 2xx answer = delivered. Redirects are not followed.
    #[serde(default)]
    pub webhook: Option<String>,
    /// Seconds the delivery may take (default 10); a command still running then is killed.
    #[serde(default)]
    pub timeout: Option<u64>,
}

impl Delivery {
    /// Why this entry cannot be used, if it cannot.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        match (&self.command, &self.webhook) {
            (Some(_), Some(_)) => Some("set either 'command' or 'webhook', not both"),
            (None, None) => {
                Some("set 'command' (a program and its arguments) or 'webhook' (a URL)")
            }
            (Some(argv), None) if argv.is_empty() || argv[0].is_empty() => {
                Some("'command' needs at least the program")
            }
            (None, Some(url)) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                Some("'webhook' must be an http:// or https:// URL")
            }
            _ if self.timeout == Some(0) => Some("'timeout' must be at least 1 second"),
            _ => None,
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS))
    }
}

/// Why a message was not delivered (never contains the message: it holds a code).
#[derive(Debug)]
pub(crate) struct DeliveryError(pub String);

/// Runs deliveries; shared by the module and its setup flows.
pub(crate) struct Sender {
    poster: Option<indieauth_fetch::JsonClient>,
    commands: Semaphore,
}

impl Sender {
    pub(crate) fn new() -> Arc<Self> {
        let poster = indieauth_fetch::JsonClient::new(indieauth_fetch::FetchOptions::default())
            .map_err(|error| tracing::error!(%error, "notify webhooks are unavailable"))
            .ok();
        Arc::new(Self {
            poster,
            commands: Semaphore::new(MAX_COMMANDS),
        })
    }

    /// Delivers `message` (to `target`) as `delivery` says, within its timeout.
    pub(crate) async fn send(
        &self,
        service: &str,
        delivery: &Delivery,
        message: &str,
        target: Option<&str>,
    ) -> Result<(), DeliveryError> {
        let fail = |what: String| DeliveryError(format!("notify service '{service}': {what}"));
        if let Some(argv) = &delivery.command {
            let _slot = self.commands.acquire().await.ok();
            return tokio::time::timeout(delivery.timeout(), run(argv, message, target))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "{} did not finish within {} s and was killed",
                        argv[0],
                        delivery.timeout().as_secs()
                    ))
                })
                .map_err(fail);
        }
        let Some(url) = &delivery.webhook else {
            return Err(fail("no delivery configured".into()));
        };
        let Some(poster) = &self.poster else {
            return Err(fail("webhooks are unavailable (TLS setup failed)".into()));
        };
        let mut body = json!({ "message": message });
        if let Some(target) = target {
            body["target"] = json!([target]);
        }
        tokio::time::timeout(delivery.timeout(), poster.post_json(url, &body))
            .await
            .map_err(|_| fail("the webhook did not answer in time".into()))?
            .map(drop)
            .map_err(|e| fail(e.to_string()))
    }
}

/// Runs `argv` with `message` on stdin; the child is killed if this future is dropped.
async fn run(argv: &[String], message: &str, target: Option<&str>) -> Result<(), String> {
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    match target {
        Some(target) => command.env("HASS_AUTH_NOTIFY_TARGET", target),
        None => command.env_remove("HASS_AUTH_NOTIFY_TARGET"),
    };
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A program that does not read its input is its own business; the exit status decides.
        let _ = stdin.write_all(message.as_bytes()).await;
        let _ = stdin.write_all(b"\n").await;
        drop(stdin);
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("waiting for {}: {e}", argv[0]))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", argv[0]))
    }
}
