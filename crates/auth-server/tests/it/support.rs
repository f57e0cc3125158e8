//! Runs the binary: one-shot commands, and a server process read until it says where it listens.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_hass-auth");

/// Output of a finished command.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `hass-auth args...` to completion (30 s limit).
pub async fn run(cwd: &Path, args: &[&str]) -> Output {
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(BIN)
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "warn")
            .output(),
    )
    .await
    .expect("command finished in time")
    .expect("binary runs");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A running server process.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub stdout_lines: Vec<String>,
    /// Everything the server wrote to stderr so far (drained continuously so it never blocks).
    pub stderr: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit code.
    pub async fn stop(mut self) -> i32 {
        let pid = self.pid().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("exits")
            .expect("wait");
        if !status.success() {
            use std::os::unix::process::ExitStatusExt;
            eprintln!(
                "server {pid} ended with {status:?} (signal {:?}); its stderr:\n{}",
                status.signal(),
                self.stderr()
            );
        }
        status.code().unwrap_or(-1)
    }

    /// SIGKILL: the process dies wherever it is, as in a power cut of the process.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL sent");
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("killed in time")
            .expect("wait");
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("not poisoned").clone()
    }
}

/// Starts `hass-auth serve args... --bind 127.0.0.1:0` and waits for its address.
pub async fn serve(cwd: &Path, args: &[&str]) -> Result<ServerProcess, Output> {
    serve_under(cwd, args, None).await
}

/// Like [`serve`], through `sh -c "<shell_prefix>; exec hass-auth serve ..."` when a prefix is
/// given (e.g. `ulimit -f 32`).
pub async fn serve_under(
    cwd: &Path,
    args: &[&str],
    shell_prefix: Option<&str>,
) -> Result<ServerProcess, Output> {
    serve_at(cwd, args, shell_prefix, "127.0.0.1:0").await
}

/// Like [`serve_under`], listening on `bind` instead of 127.0.0.1:0.
pub async fn serve_at(
    cwd: &Path,
    args: &[&str],
    shell_prefix: Option<&str>,
    bind: &str,
) -> Result<ServerProcess, Output> {
    let mut all: Vec<&str> = vec!["serve"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--bind", bind]);
    let mut command = match shell_prefix {
        None => Command::new(BIN),
        Some(prefix) => {
            let mut command = Command::new("sh");
            command.args(["-c", &format!("{prefix}; exec \"$0\" \"$@\""), BIN]);
            command
        }
    };
    let mut child = command
        .args(&all)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let stderr_pipe = child.stderr.take().expect("stderr");
    let stderr = Arc::new(Mutex::new(String::new()));
    let stderr_done = {
        let stderr = stderr.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr_pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = stderr.lock().expect("not poisoned");
                // Keep the most recent output only: a long run must not grow the test's memory.
                if text.len() > 1 << 20 {
                    let cut = text.len() - (1 << 19);
                    let cut = (cut..text.len())
                        .find(|i| text.is_char_boundary(*i))
                        .unwrap_or(0);
                    text.drain(..cut);
                }
                text.push_str(&line);
                text.push('\n');
            }
        })
    };
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push(line.clone());
            let addr = line
                .strip_prefix("hass-auth listening on http://")
                .or_else(|| line.strip_prefix("hass-auth listening on https://"));
            if let Some(addr) = addr {
                return Some(addr.parse::<SocketAddr>().expect("an address"));
            }
        }
        None
    })
    .await
    .expect("server reports its address in time");
    match found {
        Some(addr) => {
            // Keep draining stdout so the server never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok(ServerProcess {
                child,
                addr,
                stdout_lines: seen,
                stderr,
            })
        }
        None => {
            let status = child.wait().await.expect("exited");
            let _ = stderr_done.await;
            let stderr = stderr.lock().expect("not poisoned").clone();
            Err(Output {
                code: status.code().unwrap_or(-1),
                stdout: seen.join("\n"),
                stderr,
            })
        }
    }
}

/// Writes a configuration.yaml into `dir`.
pub fn write_config(dir: &Path, yaml: &str) {
    std::fs::write(dir.join("configuration.yaml"), yaml).expect("write config");
}

/// A config with the homeassistant provider and a demo insecure_example user.
pub const BASIC_CONFIG: &str = "homeassistant:\n  auth_providers:\n    - type: homeassistant\n    - type: insecure_example\n      users:\n        - username: demo\n          password: demo\n";

/// Where the browser tests leave screenshots (and, on failure, the page and its console):
/// `target/browser-artifacts/`.
pub fn browser_artifacts() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("browser-artifacts")
}

/// No script error and no content-security-policy violation in the browser console so far
/// (a missing favicon and a refused request's 400 are expected).
pub fn assert_clean_console(browser: &auth_testkit::webdriver::Browser) {
    let bad: Vec<_> = browser
        .console()
        .into_iter()
        .filter(|(level, message)| {
            level == "SEVERE"
                && !message.contains("favicon.ico")
                && !message.contains("status of 400")
        })
        .collect();
    assert!(bad.is_empty(), "browser console: {bad:?}");
}
