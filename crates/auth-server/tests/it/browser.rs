//! Our login and profile pages in a real headless Chromium (driven through chromedriver) against
//! the real `hass-auth` binary on 127.0.0.1, over a copy of Home Assistant's 2026.2.3 fixture.
//!
//! Chromium and chromedriver are required: when they are missing these tests fail with how to
//! install them (`cargo xtask ci` installs them). Screenshots land in `target/browser-artifacts/`; a
//! failing test also leaves the page's HTML and browser console there.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use auth_testkit::webdriver::Browser;
use serde_json::{Value, json};

use crate::support::{ServerProcess, serve, write_config};

/// Fixture users (see the fixture's FIXTURE.md).
const OWNER: (&str, &str) = ("owner", "owner-pass");
const READONLY: (&str, &str) = ("readonly", "readonly-pass");
const JOERG: &str = "jörg-strasse-σασ";
const JOERG_PASSWORD: &str = "0123456789012345678901234567890123456789012345678901234567890123456789aé-beyond-the-72-byte-limit";
const JOERG_TOTP: &str = "5O4XYKQRNBRTVGTLJOBAVBXMBTRGIUGF";
const FIXTURE_LLAT_ID: &str = "0da87881ddf24ee7a3dcbd4e8f290c4d";

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";

struct Site {
    server: Option<ServerProcess>,
    addr: SocketAddr,
    browser: Browser,
    _config: TempConfig,
}

impl Site {
    /// The fixture's config dir (optionally with another configuration.yaml) served by the
    /// binary, and a fresh browser.
    async fn start(name: &str, config_yaml: Option<&str>) -> Site {
        let config = TempConfig::from_fixture("ha-2026.2.3");
        if let Some(yaml) = config_yaml {
            write_config(config.path(), yaml);
        }
        let server = serve(config.path(), &["-c", config.path().to_str().unwrap()])
            .await
            .unwrap_or_else(|o| panic!("server did not start: {}", o.stderr));
        let addr = server.addr;
        let browser = Browser::start(name, &crate::support::browser_artifacts());
        Site {
            server: Some(server),
            addr,
            browser,
            _config: config,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// From the landing page through the login page's first step, by keyboard only.
    fn sign_in(&mut self, username: &str, password: &str, keep: bool) {
        let b = &self.browser;
        b.goto(&self.url("/"));
        b.wait_text("#signed-out", "You are not signed in");
        b.click("#signin");
        b.wait_url("the login page", |u| u.contains("/auth/authorize?"));
        b.wait_visible("#field-username");
        // The page puts the focus into the first field; Tab and Enter do the rest.
        b.wait_for("focus in the username field", |b| {
            (b.focused_id() == "field-username").then_some(())
        });
        b.keys(username);
        b.keys(TAB);
        b.keys(password);
        // "Keep me logged in" (pre-ticked on a local network): Space toggles it.
        b.keys(TAB);
        assert_eq!(b.focused_id(), "remember");
        let ticked = b.execute("return document.activeElement.checked", json!([]));
        if ticked != json!(keep) {
            b.keys(" ");
        }
        b.keys(ENTER);
    }

    /// Waits for the profile of `name`.
    fn wait_profile(&self, name: &str) {
        let b = &self.browser;
        b.wait_text("#user-name", name);
        b.wait_url("the landing page without the code", |u| {
            u == self.url("/").as_str()
        });
        b.wait_visible("#tokens tr[data-current=true]");
    }

    fn session(&self) -> Value {
        let raw = self.browser.execute(
            "return sessionStorage.getItem('hass-auth.session')",
            json!([]),
        );
        raw.as_str()
            .map(|s| serde_json::from_str(s).expect("session JSON"))
            .unwrap_or(Value::Null)
    }

    /// No script error and no content-security-policy violation in the console so far.
    fn assert_clean_console(&self) {
        crate::support::assert_clean_console(&self.browser);
    }

    async fn stop(mut self) {
        self.browser.quit();
        if let Some(server) = self.server.take() {
            assert_eq!(server.stop().await, 0);
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The current TOTP code of `secret`; waits out the last two seconds of a 30-s step, so that
/// the server still sees the same step (setup accepts only the current one).
fn fresh_code(secret: &str) -> String {
    while now() % 30 >= 28 {
        std::thread::sleep(Duration::from_millis(100));
    }
    mfa_totp::code_at(secret, now()).expect("a valid secret")
}

/// A code that is wrong in every step the server accepts now.
fn wrong_code(secret: &str) -> String {
    let t = now();
    let valid: Vec<String> = (-2..=2)
        .map(|d| mfa_totp::code_at(secret, t + d * 30).unwrap())
        .collect();
    (0..10)
        .map(|d| d.to_string().repeat(6))
        .find(|c| !valid.contains(c))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn login_lands_on_the_profile_and_sign_out_revokes() {
    let mut site = Site::start("login", None).await;
    site.sign_in(OWNER.0, OWNER.1, true);
    site.wait_profile("Owner");
    let b = &site.browser;
    b.wait_text("#user-role", "Owner");
    b.wait_text("#user-credentials", "homeassistant");
    b.wait_text("#tokens tr[data-current=true]", "This browser");
    b.wait_text("#mfa-list", "Time-based One Time Password");
    site.browser.screenshot("profile");
    site.assert_clean_console();
    // "Keep me logged in": the refresh token is kept in sessionStorage.
    let session = site.session();
    let refresh = session["refresh_token"].as_str().expect("kept").to_owned();
    let access = session["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        Request::get("/api/")
            .bearer(&access)
            .send(site.addr)
            .await
            .status,
        200
    );
    // A reload keeps the session.
    site.browser.goto(&site.url("/profile"));
    site.browser.wait_text("#user-name", "Owner");
    site.browser.click("#signout");
    site.browser.wait_text("#status", "You are signed out");
    site.browser.wait_visible("#signin");
    assert_eq!(site.session(), Value::Null);
    // Signed out for real: the refresh token is revoked on the server.
    let refused = Request::post("/auth/token")
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &site.url("/")),
            ("refresh_token", &refresh),
        ])
        .send(site.addr)
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(
        Request::get("/api/")
            .bearer(&access)
            .send(site.addr)
            .await
            .status,
        401
    );
    site.assert_clean_console();
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn wrong_password_shows_the_error() {
    let mut site = Site::start("wrong-password", None).await;
    site.sign_in(OWNER.0, "not-the-password", false);
    let b = &site.browser;
    b.wait_text("#error", "Invalid username or password");
    // The username stays, the focus is back in the (emptied) password field.
    b.wait_for("focus in the password field", |b| {
        (b.focused_id() == "field-password").then_some(())
    });
    let username = b.execute(
        "return document.getElementById('field-username').value",
        json!([]),
    );
    assert_eq!(username, json!(OWNER.0));
    site.browser.screenshot("error");
    site.browser.keys(OWNER.1);
    site.browser.keys(ENTER);
    site.wait_profile("Owner");
    // Without "keep me logged in" the refresh token is not stored.
    let session = site.session();
    assert!(session["access_token"].is_string());
    assert!(session.get("refresh_token").is_none(), "{session}");
    site.assert_clean_console();
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn totp_user_is_asked_for_the_code() {
    let mut site = Site::start("mfa-login", None).await;
    site.sign_in(JOERG, JOERG_PASSWORD, false);
    let b = &site.browser;
    b.wait_text("#title", "Two-factor authentication");
    b.wait_text("#hint", "Enter the code from Time-based One Time Password");
    b.wait_for("focus in the code field", |b| {
        (b.focused_id() == "field-code").then_some(())
    });
    site.browser.screenshot("mfa");
    site.browser.keys(&wrong_code(JOERG_TOTP));
    site.browser.keys(ENTER);
    site.browser.wait_text("#error", "Invalid code");
    site.browser
        .type_into("#field-code", &fresh_code(JOERG_TOTP));
    site.browser.click("#submit");
    site.wait_profile("Jörg Straße");
    site.browser.wait_text(
        "#mfa-list li:first-child",
        "Time-based One Time Password Enabled",
    );
    site.assert_clean_console();
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn too_many_wrong_codes_end_the_login_with_the_reason() {
    let mut site = Site::start("mfa-abort", None).await;
    site.sign_in(JOERG, JOERG_PASSWORD, false);
    site.browser
        .wait_text("#title", "Two-factor authentication");
    let wrong = wrong_code(JOERG_TOTP);
    // totp allows 5 wrong codes per login; the 5th ends the flow.
    for attempt in 1..=5 {
        let b = &site.browser;
        b.wait_for("focus in the code field", |b| {
            (b.focused_id() == "field-code").then_some(())
        });
        b.keys(&wrong);
        b.keys(ENTER);
        if attempt < 5 {
            b.wait_text("#error", "Invalid code");
            b.wait_for("the code field to be emptied", |b| {
                let value = b.execute(
                    "return document.getElementById('field-code').value",
                    json!([]),
                );
                (value == json!("")).then_some(())
            });
        }
    }
    // The page says why and starts over with a new login.
    site.browser
        .wait_text("#error", "Too many wrong codes, please log in again");
    site.browser.wait_text("#title", "Sign in");
    site.browser.wait_visible("#field-password");
    site.browser.screenshot("abort");
    site.assert_clean_console();
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn totp_setup_on_the_profile_then_login_with_it() {
    let mut site = Site::start("mfa-setup", None).await;
    site.sign_in(READONLY.0, READONLY.1, true);
    site.wait_profile("Read Only");
    let b = &site.browser;
    b.wait_text("#mfa-list", "Not enabled");
    b.click("#mfa-list button[data-module=totp]");
    b.wait_text("#mfa-setup-title", "Set up Time-based One Time Password");
    b.wait_visible("#mfa-setup-box .qr img");
    // The QR code is a data: URL image that the browser could decode.
    let qr = b.execute(
        "const img = document.querySelector('#mfa-setup-box .qr img'); \
         return [img.complete, img.naturalWidth, img.src.slice(0, 26)]",
        json!([]),
    );
    assert_eq!(qr[0], json!(true), "{qr}");
    assert!(qr[1].as_u64().unwrap() > 0, "{qr}");
    assert_eq!(qr[2], json!("data:image/svg+xml;base64,"));
    let secret = b.wait_for("the secret", |b| {
        let text = b.element_text(&b.wait_visible("#mfa-secret"))?;
        (text.len() == 32).then_some(text)
    });
    assert!(
        b.execute(
            "return document.getElementById('mfa-otpauth').href",
            json!([])
        )
        .as_str()
        .unwrap()
        .contains(&format!("secret={secret}")),
    );
    site.browser.screenshot("setup");
    let b = &site.browser;
    b.type_into("#mfa-field-code", &wrong_code(&secret));
    b.click("#mfa-submit");
    b.wait_text("#mfa-error", "Invalid code");
    b.type_into("#mfa-field-code", &fresh_code(&secret));
    b.click("#mfa-submit");
    b.wait_text("#status", "Time-based One Time Password is enabled");
    b.wait_hidden("#mfa-setup");
    b.wait_text(
        "#mfa-list li:first-child",
        "Time-based One Time Password Enabled",
    );
    // The first second factor comes with ten recovery codes, shown once.
    let b = &site.browser;
    b.wait_visible("#recovery-new");
    let codes = b.execute(
        "return [...document.querySelectorAll('#recovery-codes li')].map(li => li.textContent)",
        json!([]),
    );
    let codes: Vec<String> = serde_json::from_value(codes).unwrap();
    assert_eq!(codes.len(), 10, "{codes:?}");
    b.wait_text("#recovery-status", "10 of 10 codes left");
    site.browser.screenshot("enabled");
    let b = &site.browser;
    b.click("#recovery-done");
    b.wait_hidden("#recovery-new");
    assert_eq!(b.focused_id(), "recovery-generate");
    // A second module (a PIN: a plain form, no QR code).
    let b = &site.browser;
    b.click("#mfa-list button[data-module=insecure_example]");
    b.wait_text(
        "#mfa-setup-title",
        "Set up Insecure Personal Identify Number",
    );
    b.wait_hidden("#mfa-setup-box");
    b.type_into("#mfa-field-pin", "2468");
    b.click("#mfa-submit");
    b.wait_text("#status", "Insecure Personal Identify Number is enabled");
    b.wait_text(
        "#mfa-list li:nth-child(2)",
        "Insecure Personal Identify Number Enabled",
    );
    // The next login offers both and asks for a code of the secret the page showed.
    site.browser.click("#signout");
    site.browser.wait_visible("#signin");
    site.sign_in(READONLY.0, READONLY.1, false);
    let b = &site.browser;
    b.wait_text("#hint", "Choose how you want to confirm that it is you");
    b.wait_visible("#field-multi_factor_auth_module");
    let options = b.execute(
        "return [...document.querySelectorAll('#field-multi_factor_auth_module option')]\
         .map(o => [o.value, o.textContent])",
        json!([]),
    );
    assert_eq!(
        options,
        json!([
            ["totp", "Time-based One Time Password"],
            ["insecure_example", "Insecure Personal Identify Number"]
        ])
    );
    site.browser.screenshot("select");
    let b = &site.browser;
    b.click("#field-multi_factor_auth_module option[value=totp]");
    b.click("#submit");
    b.wait_text("#hint", "Enter the code from Time-based One Time Password");
    b.wait_for("focus in the code field", |b| {
        (b.focused_id() == "field-code").then_some(())
    });
    // The enrolment used this time step's code, and hass-auth refuses replays: the next
    // step's code (a clock 30 s ahead, still inside the login window) gets in.
    b.keys(&mfa_totp::code_at(&secret, now() + 30).unwrap());
    b.keys(ENTER);
    site.wait_profile("Read Only");
    // Lost the phone: a recovery code in the code field gets in, once.
    site.browser.click("#signout");
    site.browser.wait_visible("#signin");
    site.sign_in(READONLY.0, READONLY.1, false);
    let b = &site.browser;
    b.wait_visible("#field-multi_factor_auth_module");
    b.click("#field-multi_factor_auth_module option[value=totp]");
    b.click("#submit");
    b.wait_visible("#field-code");
    b.type_into("#field-code", &codes[4]);
    b.click("#submit");
    site.wait_profile("Read Only");
    site.browser
        .wait_text("#recovery-status", "9 of 10 codes left");
    // The sign-in history shows it, newest first, with the sign-ins before it.
    site.browser
        .wait_text("#history tr:first-child", "homeassistant + recovery code");
    site.browser
        .wait_text("#history tr:nth-child(2)", "homeassistant + totp");
    site.browser
        .wait_text("#history tr:first-child", "127.0.0.1");
    site.browser
        .wait_text("#history tr:first-child", "Signed in");
    // Disable both again.
    for (id, name) in [
        ("totp", "Time-based One Time Password"),
        ("insecure_example", "Insecure Personal Identify Number"),
    ] {
        site.browser
            .click(&format!("#mfa-list button[data-module={id}]"));
        site.browser
            .wait_text("#status", &format!("{name} is disabled"));
    }
    site.browser
        .wait_text("#mfa-list li:first-child", "Not enabled");
    site.browser
        .wait_text("#mfa-list li:nth-child(2)", "Not enabled");
    site.browser.wait_hidden("#recovery");
    site.assert_clean_console();
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn tokens_are_listed_and_revoked_on_the_profile() {
    let mut site = Site::start("tokens", None).await;
    site.sign_in(OWNER.0, OWNER.1, false);
    site.wait_profile("Owner");
    let b = &site.browser;
    let llat_row = format!("#tokens tr[data-token=\"{FIXTURE_LLAT_ID}\"]");
    b.wait_text(&llat_row, "Fixture LLAT");
    b.wait_text(&llat_row, "Long-lived access token");
    site.browser.screenshot("tokens");
    let b = &site.browser;
    b.click(&format!("{llat_row} button"));
    b.wait_text("#status", "Revoked Fixture LLAT");
    b.wait_hidden(&llat_row);
    let access = site.session()["access_token"].as_str().unwrap().to_owned();
    // Revoking this browser's own token signs out.
    site.browser.click("#tokens tr[data-current=true] button");
    site.browser
        .wait_text("#status", "This browser's session was revoked");
    site.browser.wait_visible("#signin");
    assert_eq!(site.session(), Value::Null);
    assert_eq!(
        Request::get("/api/")
            .bearer(&access)
            .send(site.addr)
            .await
            .status,
        401
    );
    site.assert_clean_console();
    site.stop().await;
}

/// A provider with a required chain: a PIN known by username, then TOTP enrolled inside the
/// login (the `mfa_setup` step with QR code and secret).
const CHAIN_CONFIG: &str = "homeassistant:
  auth_providers:
    - type: insecure_example
      users:
        - username: chain-user
          password: chain-pass
          name: Chain User
      modules:
        - type: insecure_example
          users: [{username: chain-user, pin: \"4321\"}]
        - type: totp
  auth_mfa_modules:
    - type: totp
";

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn required_chain_enrols_totp_inside_the_login() {
    let mut site = Site::start("chain", Some(CHAIN_CONFIG)).await;
    site.sign_in("chain-user", "chain-pass", false);
    let b = &site.browser;
    b.wait_text("#progress", "Step 1 of 2");
    b.wait_visible("#field-pin");
    b.type_into("#field-pin", "4321");
    b.click("#submit");
    b.wait_text("#progress", "Step 2 of 2");
    b.wait_text("#title", "Set up Time-based One Time Password");
    b.wait_visible("#setup .qr img");
    let secret = b.wait_for("the secret", |b| {
        let text = b.element_text(&b.wait_visible("#secret"))?;
        (text.len() == 32).then_some(text)
    });
    site.browser.screenshot("enrol");
    let b = &site.browser;
    b.type_into("#field-code", &wrong_code(&secret));
    b.click("#submit");
    b.wait_text("#error", "Invalid code");
    // Same step, same secret.
    assert_eq!(b.element_text(&b.wait_visible("#secret")).unwrap(), secret);
    b.type_into("#field-code", &fresh_code(&secret));
    b.click("#submit");
    site.wait_profile("Chain User");
    site.assert_clean_console();
    site.stop().await;
}

/// Issue 17.1: a fresh directory sends the browser from the login page to our onboarding page,
/// which creates the owner (keyboard only, mismatched passwords refused first) and lands signed
/// in on the profile; afterwards the page says the server is set up.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn onboarding_page_creates_the_owner_and_signs_them_in() {
    let config = TempConfig::empty();
    write_config(
        config.path(),
        "homeassistant:\n  auth_providers:\n    - type: homeassistant\n",
    );
    let server = serve(config.path(), &["-c", config.path().to_str().unwrap()])
        .await
        .unwrap_or_else(|o| panic!("server did not start: {}", o.stderr));
    let mut site = Site {
        addr: server.addr,
        server: Some(server),
        browser: Browser::start("onboarding", &crate::support::browser_artifacts()),
        _config: config,
    };
    let b = &site.browser;
    b.goto(&site.url("/"));
    b.wait_visible("#signin");
    b.click("#signin");
    b.wait_url("the onboarding page", |u| u.contains("/onboarding.html?"));
    b.wait_for("focus in the name field", |b| {
        (b.focused_id() == "name").then_some(())
    });
    b.keys("Ada Lovelace");
    b.keys(TAB);
    // The username follows the name until it is edited.
    assert_eq!(
        b.execute("return document.activeElement.value", json!([])),
        json!("ada_lovelace")
    );
    b.keys(TAB);
    b.keys("analytical-engine");
    b.keys(TAB);
    b.keys("analytical-engin");
    b.keys(ENTER);
    b.wait_text("#error", "The passwords do not match");
    assert_eq!(b.focused_id(), "password-confirm");
    assert_eq!(
        b.execute(
            "return document.activeElement.getAttribute('aria-invalid')",
            json!([])
        ),
        json!("true")
    );
    site.browser.screenshot("onboarding-mismatch");
    let b = &site.browser;
    b.keys("e");
    b.keys(ENTER);
    site.wait_profile("Ada Lovelace");
    let b = &site.browser;
    b.wait_text("#user-role", "Owner");
    b.wait_text("#user-credentials", "homeassistant");
    site.assert_clean_console();
    // The owner exists and signs in with the password they chose.
    let session = site.session();
    assert!(session["access_token"].is_string(), "{session}");
    site.browser.click("#signout");
    site.browser.wait_visible("#signin");
    site.sign_in("ada_lovelace", "analytical-engine", false);
    site.wait_profile("Ada Lovelace");
    // Onboarding is over: the page says so and offers to sign in.
    site.browser.goto(&site.url("/onboarding.html"));
    site.browser.wait_text("#title", "Already set up");
    site.browser.wait_visible("#signin");
    site.stop().await;
}

/// Issue 14 item 12: before anything is typed, the login page says which client receives the
/// tokens (the client_id's host), as text that assistive technology reads with the form.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_login_page_names_the_client_before_sign_in() {
    let mut site = Site::start("client-host", None).await;
    let b = &site.browser;
    let client_id = "https://app.example.org:8443/hass/";
    let url = site.url(&format!(
        "/auth/authorize?response_type=code&client_id={}&redirect_uri={}",
        urlencode(client_id),
        urlencode("https://app.example.org:8443/hass/callback")
    ));
    b.goto(&url);
    b.wait_visible("#field-username");
    b.wait_visible("#client");
    b.wait_text("#client-host", "app.example.org:8443");
    // The form is described by that sentence (what a screen reader announces with it).
    let description = b.execute(
        "const ids = document.getElementById('form').getAttribute('aria-describedby') || '';\
         return ids.split(/\\s+/).map(id => (document.getElementById(id) || {}).textContent || '').join(' ');",
        json!([]),
    );
    let description = description.as_str().unwrap_or_default().to_owned();
    assert!(
        description.contains("Signing in to app.example.org:8443"),
        "{description:?}"
    );
    // The host is text, never markup: a client id that is not a URL is shown as written.
    b.goto(&site.url(&format!(
        "/auth/authorize?response_type=code&client_id={}&redirect_uri={}",
        urlencode("<img src=x onerror=alert(1)>"),
        urlencode("https://app.example.org/cb")
    )));
    b.wait_text("#client-host", "<img src=x onerror=alert(1)>");
    let images = b.execute(
        "return document.querySelectorAll('#client img').length",
        json!([]),
    );
    assert_eq!(images, json!(0));
    site.browser.screenshot("client-host");
    site.stop().await;
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
