//! The provider: running the program, remembering metadata, the login flow and credentials.

use std::collections::HashMap;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use auth_core::flow_engine::{FlowResult, Schema};
use auth_core::{
    AuthAccess, AuthProvider, Credentials, LoginContext, PluginIdentity, ProviderError,
    ProviderLoginFlow, UserMeta,
};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::meta::{Meta, is_python_whitespace, parse_meta};
use crate::{DEFAULT_NAME, PROVIDER_TYPE};

/// At most this much of the program's standard output (and of its standard error) is kept;
/// the rest is read and dropped, so a chatty program can neither block nor exhaust memory.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// Why the program did not confirm a login. Every variant means "invalid credentials" to the
/// login flow; the difference only matters for logs and tests.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The program could not be started (missing, not executable, permission denied, or a
    /// username/password containing a NUL byte).
    #[error("cannot run {command}: {source}")]
    Spawn {
        /// The configured program.
        command: String,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The program ended unsuccessfully (exit code ≠ 0 or killed by a signal).
    #[error("{command} ended with {status}")]
    Exit {
        /// The configured program.
        command: String,
        /// How it ended.
        status: ExitStatus,
    },
    /// The program ran longer than `timeout` and was killed.
    #[error("{command} did not finish within {timeout:?} and was killed")]
    TimedOut {
        /// The configured program.
        command: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// `max_concurrent` programs were already running for all of `timeout`; this one never ran.
    #[error("{command} not run: {max_concurrent} logins were already running it for {timeout:?}")]
    Busy {
        /// The configured program.
        command: String,
        /// The configured `max_concurrent`.
        max_concurrent: usize,
        /// The configured timeout.
        timeout: Duration,
    },
    /// Waiting for the program or reading its output failed.
    #[error("running {command} failed: {source}")]
    Io {
        /// The configured program.
        command: String,
        /// The operating system's reason.
        source: io::Error,
    },
}

/// The `command_line` auth provider: an external program decides whether a username and
/// password are valid.
#[derive(Clone)]
pub struct CommandLineProvider {
    inner: Arc<Inner>,
}

struct Inner {
    identity: PluginIdentity,
    config: Config,
    /// Metadata of the last successful login per username (only with `meta: true`).
    meta: Mutex<HashMap<String, Meta>>,
    /// One permit per program allowed to run at once (`max_concurrent`).
    slots: Semaphore,
}

impl std::fmt::Debug for CommandLineProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandLineProvider")
            .field("identity", &self.inner.identity)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What was read from one pipe.
#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

async fn read_bounded(pipe: Option<impl AsyncRead + Unpin>) -> io::Result<Captured> {
    let mut captured = Captured::default();
    let Some(mut pipe) = pipe else {
        return Ok(captured);
    };
    let mut chunk = [0u8; 8192];
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok(captured);
        }
        let room = MAX_OUTPUT_BYTES - captured.bytes.len();
        if n > room {
            captured.truncated = true;
        }
        captured.bytes.extend_from_slice(&chunk[..n.min(room)]);
    }
}

impl CommandLineProvider {
    /// A provider for `config`; `name` defaults to `Command Line Authentication`.
    pub fn new(config: Config, id: Option<String>, name: Option<String>) -> Self {
        if !std::path::Path::new(&config.command).is_absolute() {
            tracing::warn!(
                command = config.command,
                "command_line auth: the command is not an absolute path; it runs without PATH"
            );
        }
        Self {
            inner: Arc::new(Inner {
                identity: PluginIdentity::new(
                    PROVIDER_TYPE,
                    id,
                    name.as_deref().unwrap_or(DEFAULT_NAME),
                ),
                slots: Semaphore::new(config.max_concurrent.max(1)),
                config,
                meta: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Runs the program for `username` and `password` (taken as given, not stripped); `Ok` when
    /// it exits with code 0. With `meta: true` its output's metadata is remembered for
    /// `username`, replacing what an earlier login printed.
    ///
    /// # Errors
    ///
    /// [`CommandError`] for every refusal (logged here, without the password).
    pub async fn validate_login(&self, username: &str, password: &str) -> Result<(), CommandError> {
        self.inner.validate_login(username, password).await
    }

    /// The metadata remembered for `username`, if a login with `meta: true` succeeded.
    pub fn meta_for(&self, username: &str) -> Option<Meta> {
        self.inner.meta.lock().get(username).cloned()
    }
}

impl Inner {
    async fn validate_login(&self, username: &str, password: &str) -> Result<(), CommandError> {
        let result = self.run(username, password).await;
        match &result {
            Ok(_) => {}
            Err(error @ CommandError::Exit { .. }) => {
                tracing::warn!(username, %error, "command_line auth: login refused");
            }
            Err(error) => {
                tracing::error!(username, %error, "command_line auth: login refused");
            }
        }
        let stdout = result?;
        if self.config.meta {
            let meta = parse_meta(&stdout);
            self.meta.lock().insert(username.to_owned(), meta);
        }
        Ok(())
    }

    /// Runs the program (once a slot is free); returns its (bounded) standard output when it
    /// succeeded. The program leads a process group of its own, and whatever is left of that
    /// group when the program ends, times out or the login is abandoned is killed.
    async fn run(&self, username: &str, password: &str) -> Result<Vec<u8>, CommandError> {
        let config = &self.config;
        let command_name = || config.command.clone();
        let Ok(Ok(_slot)) = tokio::time::timeout(config.timeout, self.slots.acquire()).await else {
            return Err(CommandError::Busy {
                command: command_name(),
                max_concurrent: config.max_concurrent,
                timeout: config.timeout,
            });
        };
        // The program's own `timeout` starts now, not while it waited for the slot.
        let mut command = Command::new(&config.command);
        command
            .args(&config.args)
            .env_clear()
            .env("username", username)
            .env("password", password)
            .stdin(Stdio::null())
            .stdout(if config.meta {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn().map_err(|source| CommandError::Spawn {
            command: command_name(),
            source,
        })?;
        // Declared after `child`, so it is dropped first: the group is killed while the
        // program is not yet reaped (its pid, the group's id, cannot have been reused).
        let mut group = ProcessGroup::of(&child);
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let finished = tokio::time::timeout(config.timeout, async {
            tokio::join!(child.wait(), read_bounded(stdout), read_bounded(stderr))
        })
        .await;
        let Ok((status, stdout, stderr)) = finished else {
            group.kill();
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(CommandError::TimedOut {
                command: command_name(),
                timeout: config.timeout,
            });
        };
        // The program ended: processes it left behind in its group go too. It is reaped by
        // now, but a group with members keeps its id reserved, and an empty group's id could
        // only name another group after the pid counter wrapped around in between.
        group.kill();
        let io_error = |source| CommandError::Io {
            command: command_name(),
            source,
        };
        let status = status.map_err(io_error)?;
        match stderr {
            Ok(stderr) if !stderr.bytes.is_empty() => {
                let text = String::from_utf8_lossy(&stderr.bytes);
                let text = if password.is_empty() {
                    text.into_owned()
                } else {
                    text.replace(password, "<password>")
                };
                tracing::debug!(
                    command = config.command,
                    username,
                    truncated = stderr.truncated,
                    stderr = text,
                    "command_line auth: program wrote to stderr"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "command_line auth: reading stderr failed");
            }
        }
        if !status.success() {
            return Err(CommandError::Exit {
                command: command_name(),
                status,
            });
        }
        let mut stdout = stdout.map_err(io_error)?;
        if stdout.truncated {
            // Drop the cut-off last line rather than read half a value.
            let keep = stdout
                .bytes
                .iter()
                .rposition(|b| matches!(b, b'\n' | b'\r'))
                .map_or(0, |i| i + 1);
            stdout.bytes.truncate(keep);
            tracing::warn!(
                command = config.command,
                username,
                "command_line auth: output longer than {MAX_OUTPUT_BYTES} bytes; the rest is ignored"
            );
        }
        Ok(stdout.bytes)
    }
}

/// The process group a program leads; killed (SIGKILL to every member) on [`ProcessGroup::kill`]
/// and when dropped, e.g. when the login that ran it is abandoned mid-way.
struct ProcessGroup {
    #[cfg(unix)]
    leader: Option<rustix::process::Pid>,
}

impl ProcessGroup {
    fn of(child: &tokio::process::Child) -> Self {
        #[cfg(unix)]
        {
            let leader = child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .and_then(rustix::process::Pid::from_raw);
            Self { leader }
        }
        #[cfg(not(unix))]
        {
            let _ = child;
            Self {}
        }
    }

    /// Sends SIGKILL to every process of the group, once (a group already gone is fine).
    fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(leader) = self.leader.take() {
            let _ = rustix::process::kill_process_group(leader, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `init` form's fields: `username` and `password`, both required strings.
pub fn login_schema() -> Schema {
    auth_core::provider::username_password_schema()
}

#[async_trait]
impl AuthProvider for CommandLineProvider {
    fn identity(&self) -> &PluginIdentity {
        &self.inner.identity
    }

    async fn login_flow(
        &self,
        _context: &LoginContext,
        _auth: Arc<dyn AuthAccess>,
    ) -> Result<Box<dyn ProviderLoginFlow>, ProviderError> {
        Ok(Box::new(LoginSteps {
            provider: self.inner.clone(),
        }))
    }

    async fn user_meta_for_credentials(
        &self,
        credentials: &Credentials,
    ) -> Result<UserMeta, ProviderError> {
        let meta = credentials
            .data_str("username")
            .and_then(|username| self.inner.meta.lock().get(username).cloned())
            .unwrap_or_default();
        Ok(UserMeta {
            is_active: true,
            local_only: Some(meta.is_local_only()),
            name: meta.name,
            group: meta.group,
        })
    }
}

/// One login flow's provider steps: the username/password form.
struct LoginSteps {
    provider: Arc<Inner>,
}

#[async_trait]
impl ProviderLoginFlow for LoginSteps {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, ProviderError> {
        if step_id != "init" {
            return Err(ProviderError::Failed(format!("unknown step {step_id}")));
        }
        let mut errors = Map::new();
        if let Some(input) = input {
            let username = input
                .get("username")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim_matches(is_python_whitespace);
            let password = input
                .get("password")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if self
                .provider
                .validate_login(username, password)
                .await
                .is_ok()
            {
                // The password is dropped; the stripped username goes on.
                return Ok(FlowResult::create_entry(json!({ "username": username })));
            }
            errors.insert("base".to_owned(), Value::String("invalid_auth".to_owned()));
        }
        Ok(FlowResult::form("init", Some(login_schema())).with_errors(errors))
    }
}
