//! A small, blocking WebDriver client for browser tests: starts `chromedriver` on a free port
//! and a headless Chromium with a throwaway profile, and speaks the W3C WebDriver protocol
//! (HTTP/JSON) to it over 127.0.0.1 — no browser-automation crate.
//!
//! Every lookup waits explicitly (polling every 50 ms, up to [`Browser::timeout`]) and fails with
//! what it was waiting for. Screenshots go to an artifacts folder; when a test panics, dropping
//! the [`Browser`] saves a last screenshot, the page's HTML and the browser console there.
//!
//! Chromium and chromedriver come from `$HASS_AUTH_CHROMIUM` / `$HASS_AUTH_CHROMEDRIVER` or the
//! `PATH`. If they are missing, [`Browser::start`] panics with how to install them: browser tests
//! are never skipped silently.
//!
//! The client blocks its thread: use it from tests whose server runs elsewhere (another process,
//! or another runtime's threads).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key of an element reference in WebDriver JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How to get the browser when it is missing.
pub const INSTALL_HINT: &str = "browser tests need Chromium and chromedriver: run \
     `apt-get update && apt-get install -y chromium chromium-driver` (Debian/Ubuntu; `cargo xtask ci` \
     does this itself), or point HASS_AUTH_CHROMIUM and HASS_AUTH_CHROMEDRIVER at the binaries";

/// An error answer of the WebDriver server.
#[derive(Debug, Clone)]
pub struct WebDriverError {
    /// HTTP status.
    pub status: u16,
    /// WebDriver error code, e.g. `no such element`.
    pub error: String,
    /// Its message.
    pub message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.error, self.status, self.message)
    }
}

/// A running headless Chromium driven through chromedriver. Quits (and kills what is left of
/// the driver's process group) when dropped.
pub struct Browser {
    driver: Option<Child>,
    driver_addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
    artifacts: PathBuf,
    name: String,
    shots: u32,
    /// How long the `wait_*` helpers wait.
    pub timeout: Duration,
}

/// Finds `name` on the `PATH` (or takes `$env`).
fn binary(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|candidate| candidate.is_file())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium. `name` prefixes the artifacts saved in
    /// `artifacts` (created if needed). Panics with [`INSTALL_HINT`] when a binary is missing.
    pub fn start(name: &str, artifacts: &Path) -> Browser {
        let chromium = binary("HASS_AUTH_CHROMIUM", &["chromium", "chromium-browser"])
            .unwrap_or_else(|| panic!("Chromium not found. {INSTALL_HINT}"));
        let chromedriver = binary("HASS_AUTH_CHROMEDRIVER", &["chromedriver"])
            .unwrap_or_else(|| panic!("chromedriver not found. {INSTALL_HINT}"));
        std::fs::create_dir_all(artifacts).expect("can create the artifacts folder");
        remove_old_artifacts(artifacts, name);
        let profile = tempfile::tempdir().expect("a temp profile dir");
        let mut command = Command::new(&chromedriver);
        command
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group, so that the browser it starts can be cleaned up with it.
            command.process_group(0);
        }
        let mut driver = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e}. {INSTALL_HINT}",
                chromedriver.display()
            )
        });
        let stdout = driver.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut sent = false;
            for line in lines.by_ref().map_while(Result::ok) {
                if !sent
                    && let Some(port) = line
                        .split("started successfully on port ")
                        .nth(1)
                        .and_then(|p| p.trim_end_matches('.').trim().parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                    sent = true;
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(port) => port,
            Err(_) => {
                let _ = driver.kill();
                panic!(
                    "{} did not report its port within 20 s. {INSTALL_HINT}",
                    chromedriver.display()
                );
            }
        };
        let mut browser = Browser {
            driver: Some(driver),
            driver_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            session: String::new(),
            _profile: profile,
            artifacts: artifacts.to_owned(),
            name: name.to_owned(),
            shots: 0,
            timeout: Duration::from_secs(10),
        };
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1024,900".to_owned(),
            "--lang=en-US".to_owned(),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"pageLoad": 20000, "script": 10000, "implicit": 0},
        }}});
        let created = browser
            .call("POST", "/session", Some(capabilities))
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver cannot start {}: {e}. {INSTALL_HINT}",
                    chromium.display()
                )
            });
        browser.session = created["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        browser
    }

    /// One WebDriver call; returns the answer's `value`.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        let transport = |message: String| WebDriverError {
            status: 0,
            error: "transport".to_owned(),
            message,
        };
        let mut stream = TcpStream::connect_timeout(&self.driver_addr, Duration::from_secs(5))
            .map_err(|e| transport(format!("connect to chromedriver: {e}")))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| transport(e.to_string()))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = crate::http::Request::new(method, path)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body);
        // chromedriver may keep the connection open: exactly one response is read.
        let response = crate::http::exchange_blocking(
            &mut stream,
            &request.to_bytes(&self.driver_addr.to_string()),
        )
        .map_err(|e| transport(format!("exchange: {e}")))?;
        let status = response.status;
        let answer: Value = serde_json::from_slice(&response.body)
            .map_err(|e| transport(format!("not JSON ({e}): {}", response.text())))?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if status == 200 {
            Ok(value)
        } else {
            Err(WebDriverError {
                status,
                error: value["error"].as_str().unwrap_or("unknown").to_owned(),
                message: value["message"].as_str().unwrap_or_default().to_owned(),
            })
        }
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let full = format!("/session/{}{path}", self.session);
        self.call(method, &full, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    /// Navigates to `url` and waits for the page load.
    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.session_call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Polls `probe` every 50 ms until it gives a value; panics naming `what` after the timeout.
    pub fn wait_for<T>(&self, what: &str, mut probe: impl FnMut(&Self) -> Option<T>) -> T {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(value) = probe(self) {
                return value;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {:?} waiting for {what} (at {})",
                    self.timeout,
                    self.url()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The first element matching `css` that is displayed, if any.
    fn visible(&self, css: &str) -> Option<String> {
        let found = self
            .call(
                "POST",
                &format!("/session/{}/elements", self.session),
                Some(json!({"using": "css selector", "value": css})),
            )
            .ok()?;
        found.as_array()?.iter().find_map(|element| {
            let id = element[ELEMENT].as_str()?.to_owned();
            let shown = self
                .call(
                    "GET",
                    &format!("/session/{}/element/{id}/displayed", self.session),
                    None,
                )
                .ok()?;
            shown.as_bool().unwrap_or(false).then_some(id)
        })
    }

    /// Waits until an element matching `css` is displayed; returns its WebDriver id.
    pub fn wait_visible(&self, css: &str) -> String {
        self.wait_for(&format!("a visible `{css}`"), |b| b.visible(css))
    }

    /// Waits until nothing matching `css` is displayed.
    pub fn wait_hidden(&self, css: &str) {
        self.wait_for(&format!("`{css}` to be hidden"), |b| {
            b.visible(css).is_none().then_some(())
        });
    }

    /// The text of the element with WebDriver id `id`.
    pub fn element_text(&self, id: &str) -> Option<String> {
        self.call(
            "GET",
            &format!("/session/{}/element/{id}/text", self.session),
            None,
        )
        .ok()?
        .as_str()
        .map(str::to_owned)
    }

    /// Waits until a visible element matching `css` has text containing `needle`; returns the
    /// whole text.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        self.wait_for(&format!("`{css}` to show {needle:?}"), |b| {
            let text = b.element_text(&b.visible(css)?)?;
            text.contains(needle).then_some(text)
        })
    }

    /// Waits until the URL satisfies `check`.
    pub fn wait_url(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        self.wait_for(&format!("the URL to be {what}"), |b| {
            let url = b.url();
            check(&url).then_some(url)
        })
    }

    /// Runs `action` on the visible element matching `css`, finding it again when the page
    /// replaced it meanwhile (stale, not yet interactable), until the timeout.
    fn on_element(
        &self,
        css: &str,
        what: &str,
        action: impl Fn(&Self, &str) -> Result<(), WebDriverError>,
    ) {
        self.wait_for(&format!("{what} `{css}`"), |b| {
            let id = b.visible(css)?;
            match action(b, &id) {
                Ok(()) => Some(()),
                Err(error)
                    if matches!(
                        error.error.as_str(),
                        "stale element reference"
                            | "element not interactable"
                            | "element click intercepted"
                            | "no such element"
                    ) =>
                {
                    None
                }
                Err(error) => panic!("WebDriver: {what} `{css}`: {error}"),
            }
        });
    }

    /// Clicks the visible element matching `css` (waiting for it).
    pub fn click(&self, css: &str) {
        self.on_element(css, "clicking", |b, id| {
            b.element_call("POST", id, "click", json!({}))
        });
    }

    /// Clears the visible input matching `css` and types `text` into it.
    pub fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, "typing into", |b, id| {
            b.element_call("POST", id, "clear", json!({}))?;
            b.element_call("POST", id, "value", json!({ "text": text }))
        });
    }

    fn element_call(
        &self,
        method: &str,
        id: &str,
        command: &str,
        body: Value,
    ) -> Result<(), WebDriverError> {
        let path = format!("/session/{}/element/{id}/{command}", self.session);
        self.call(method, &path, Some(body)).map(drop)
    }

    /// The id of the element that has the focus (empty when none has).
    pub fn focused_id(&self) -> String {
        self.execute(
            "return document.activeElement ? document.activeElement.id : ''",
            json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Sends keys to the focused element (WebDriver key codes, e.g. `"\u{E004}"` for Tab).
    pub fn keys(&self, text: &str) {
        let actions: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                [
                    json!({"type": "keyDown", "value": c.to_string()}),
                    json!({"type": "keyUp", "value": c.to_string()}),
                ]
            })
            .collect();
        self.session_call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
        self.session_call("DELETE", "/actions", None);
    }

    /// The browser console since the last call (level and message of each entry).
    pub fn console(&self) -> Vec<(String, String)> {
        self.call(
            "POST",
            &format!("/session/{}/se/log", self.session),
            Some(json!({"type": "browser"})),
        )
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["level"].as_str().unwrap_or_default().to_owned(),
                e["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
    }

    /// Adds a W3C virtual authenticator (CTAP2, internal, with resident keys and user
    /// verification that always succeeds); returns its id.
    pub fn add_virtual_authenticator(&self) -> String {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        self.session_call("POST", "/webauthn/authenticator", Some(options))
            .as_str()
            .expect("an authenticator id")
            .to_owned()
    }

    /// The credentials a virtual authenticator holds (`credentialId`, `isResidentCredential`,
    /// `rpId`, `privateKey`, `userHandle`, `signCount`; binary values base64url).
    pub fn authenticator_credentials(&self, authenticator: &str) -> Vec<Value> {
        let path = format!("/webauthn/authenticator/{authenticator}/credentials");
        self.session_call("GET", &path, None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Puts `credential` (the shape [`Browser::authenticator_credentials`] returns) into a
    /// virtual authenticator.
    pub fn add_authenticator_credential(&self, authenticator: &str, credential: &Value) {
        let path = format!("/webauthn/authenticator/{authenticator}/credential");
        self.session_call("POST", &path, Some(credential.clone()));
    }

    /// Empties a virtual authenticator.
    pub fn remove_authenticator_credentials(&self, authenticator: &str) {
        let path = format!("/webauthn/authenticator/{authenticator}/credentials");
        self.session_call("DELETE", &path, None);
    }

    /// Saves a screenshot as `<artifacts>/<name>-<n>-<step>.png` and returns its path.
    pub fn screenshot(&mut self, step: &str) -> PathBuf {
        self.shots += 1;
        let path = self
            .artifacts
            .join(format!("{}-{:02}-{step}.png", self.name, self.shots));
        let data = self.session_call("GET", "/screenshot", None);
        let png = base64_decode(data.as_str().unwrap_or_default()).expect("screenshot is base64");
        std::fs::write(&path, png).expect("can write the screenshot");
        path
    }

    /// Ends the session (closes the browser) and stops chromedriver.
    pub fn quit(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
            self.session.clear();
        }
        if let Some(mut driver) = self.driver.take() {
            #[cfg(unix)]
            {
                // Whatever is left of the process group we created (the browser, if the
                // session could not be closed).
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", driver.id())])
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = driver.kill();
            let _ = driver.wait();
        }
    }

    fn save_failure_artifacts(&mut self) {
        if self.session.is_empty() {
            return;
        }
        let base = self.artifacts.join(format!("{}-failure", self.name));
        if let Ok(data) = self.call(
            "GET",
            &format!("/session/{}/screenshot", self.session),
            None,
        ) && let Some(png) = data.as_str().and_then(base64_decode)
        {
            let _ = std::fs::write(base.with_extension("png"), png);
        }
        if let Ok(html) = self.call("GET", &format!("/session/{}/source", self.session), None) {
            let _ = std::fs::write(
                base.with_extension("html"),
                html.as_str().unwrap_or_default(),
            );
        }
        let console: Vec<String> = self
            .console()
            .into_iter()
            .map(|(level, message)| format!("{level} {message}"))
            .collect();
        let _ = std::fs::write(base.with_extension("console.txt"), console.join("\n"));
        eprintln!("browser artifacts of the failure: {}.*", base.display());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.save_failure_artifacts();
        }
        self.shutdown();
    }
}

/// Removes what an earlier run of test `name` left: `<name>-NN-*.png` and `<name>-failure.*`.
fn remove_old_artifacts(artifacts: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(artifacts) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(name)) else {
            continue;
        };
        let numbered = rest.len() > 4
            && rest.as_bytes()[0] == b'-'
            && rest.as_bytes()[1..3].iter().all(u8::is_ascii_digit)
            && rest.as_bytes()[3] == b'-';
        if numbered || rest.starts_with("-failure.") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Standard base64 (with or without padding) to bytes.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes().filter(|b| !b.is_ascii_whitespace()) {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buffer = ((buffer << 6) | u32::from(value)) & 0xFFFF;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64_decode("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
        assert_eq!(base64_decode("a*"), None);
    }
}
