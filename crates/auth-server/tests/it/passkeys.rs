//! Passkeys (the `webauthn` MFA module and provider) in a real headless Chromium with a W3C
//! virtual authenticator, against the real binary. The pages are opened at
//! `http://localhost:<port>`: WebAuthn needs a secure context and a relying-party id that is a
//! name (never an IP address), and localhost is both.
//!
//! Refusals the server must make itself (not the browser) are provoked by handing the browser a
//! credential the request did not ask for: the page's `navigator.credentials.get` is wrapped so
//! that, when `window.__anyKey` is set, it drops `allowCredentials` and the authenticator answers
//! with whatever resident key it holds.

use std::net::SocketAddr;

use auth_testkit::TempConfig;
use auth_testkit::webdriver::Browser;
use serde_json::{Value, json};

use crate::support::{ServerProcess, serve, write_config};

const READONLY: (&str, &str) = ("readonly", "readonly-pass");

const CONFIG: &str = "homeassistant:
  auth_providers:
    - type: homeassistant
    - type: webauthn
      passwordless: true
  auth_mfa_modules:
    - type: totp
    - type: webauthn
      rp_origins: [http://localhost]
      allow_any_port: true
";

/// Every password login must pass a passkey (enrolled during the first one).
const CHAIN_CONFIG: &str = "homeassistant:
  auth_providers:
    - type: homeassistant
      modules:
        - type: webauthn
  auth_mfa_modules:
    - type: webauthn
      rp_origins: [http://localhost]
      allow_any_port: true
";

/// Makes the page's `navigator.credentials.get` ignore `allowCredentials` while
/// `window.__anyKey` is true.
const ANY_KEY_SCRIPT: &str = "
  if (!window.__wrapped) {
    const original = navigator.credentials.get.bind(navigator.credentials);
    navigator.credentials.get = (options) => {
      if (window.__anyKey) options.publicKey.allowCredentials = [];
      return original(options);
    };
    window.__wrapped = true;
  }
  window.__anyKey = arguments[0];
";

/// Registers a key that the server never saw, as a resident credential of the authenticator.
const ROGUE_KEY_SCRIPT: &str = "
  return navigator.credentials.create({ publicKey: {
    rp: { id: 'localhost', name: 'rogue' },
    user: { id: new Uint8Array(16).fill(7), name: 'rogue', displayName: 'rogue' },
    challenge: new Uint8Array(32).fill(1),
    pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
    authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
  } }).then((c) => c.id);
";

struct Site {
    server: Option<ServerProcess>,
    addr: SocketAddr,
    browser: Browser,
    authenticator: String,
    config: TempConfig,
}

impl Site {
    async fn start(name: &str) -> Site {
        Site::start_with(name, CONFIG).await
    }

    async fn start_with(name: &str, yaml: &str) -> Site {
        let config = TempConfig::from_fixture("ha-2026.2.3");
        write_config(config.path(), yaml);
        let server = serve(config.path(), &["-c", config.path().to_str().unwrap()])
            .await
            .unwrap_or_else(|o| panic!("server did not start: {}", o.stderr));
        let addr = server.addr;
        let browser = Browser::start(name, &crate::support::browser_artifacts());
        let authenticator = browser.add_virtual_authenticator();
        Site {
            server: Some(server),
            addr,
            browser,
            authenticator,
            config,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.addr.port())
    }

    /// From the landing page to the login page's first form.
    fn open_login(&self) {
        let b = &self.browser;
        b.goto(&self.url("/"));
        b.wait_text("#signed-out", "You are not signed in");
        b.click("#signin");
        b.wait_url("the login page", |u| u.contains("/auth/authorize?"));
        b.wait_visible("#field-username");
    }

    /// Username and password on the login page.
    fn sign_in_with_password(&self) {
        self.open_login();
        let b = &self.browser;
        b.wait_visible("#field-password");
        b.type_into("#field-username", READONLY.0);
        b.type_into("#field-password", READONLY.1);
        b.click("#submit");
    }

    /// The passkey step of the login page (second factor or passwordless).
    fn wait_passkey_step(&self) {
        let b = &self.browser;
        b.wait_text("#submit", "Use passkey");
        b.wait_text("#hint", "Use your passkey");
        // The assertion is never a typed field.
        assert_eq!(
            b.execute(
                "return document.querySelectorAll('#fields input').length",
                json!([])
            ),
            json!(0)
        );
    }

    fn wait_profile(&self) {
        let b = &self.browser;
        b.wait_text("#user-name", "Read Only");
        b.wait_visible("#tokens tr[data-current=true]");
    }

    fn sign_out(&self) {
        self.browser.click("#signout");
        self.browser.wait_text("#status", "You are signed out");
    }

    /// Adds a key named `name` on the profile page.
    fn enrol(&self, name: &str) {
        self.enrol_with(name, || {});
    }

    /// Adds a key named `name` on the profile page; a user who already has keys first confirms
    /// with one of them, then `before_create` runs (before the browser makes the new key).
    fn enrol_with(&self, name: &str, before_create: impl FnOnce()) {
        let b = &self.browser;
        let add = "#mfa-list button[data-add-key=webauthn]";
        let enable = "#mfa-list button[data-module=webauthn]";
        let button = b.wait_for("a button that adds a passkey", |b| {
            let found = b.execute(
                "return [document.querySelector(arguments[0]) !== null, \
                 document.querySelector(arguments[1])?.textContent]",
                json!([add, enable]),
            );
            if found[0] == json!(true) {
                Some(add)
            } else if found[1] == json!("Enable") {
                Some(enable)
            } else {
                None
            }
        });
        b.click(button);
        let confirm = b.wait_for("the key form or the confirmation", |b| {
            let text = b.execute(
                "return document.getElementById('mfa-submit').textContent",
                json!([]),
            );
            match text.as_str() {
                Some("Use passkey") => Some(true),
                Some("Add key") => Some(false),
                _ => None,
            }
        });
        if confirm {
            self.wait_confirmation();
            b.click("#mfa-submit");
        }
        // The confirmation (the browser asserting with an existing key) is over only once the
        // key form shows: `before_create` may take that key away, so it runs after. Run before,
        // it raced the assertion and failed a CI run now and then.
        b.wait_text("#mfa-setup-title", "Set up Passkey");
        before_create();
        b.wait_text("#mfa-submit", "Add key");
        b.wait_visible("#mfa-field-name");
        b.type_into("#mfa-field-name", name);
        b.click("#mfa-submit");
        b.wait_text("#status", "Passkey is enabled");
        b.wait_text("#mfa-list", name);
    }

    /// The profile page's "confirm with a key you have" step before another key is added.
    fn wait_confirmation(&self) {
        let b = &self.browser;
        b.wait_text("#mfa-setup-title", "Confirm it is you");
        b.wait_text("#mfa-submit", "Use passkey");
        b.wait_text("#mfa-hint", "Use one of your passkeys");
        // The assertion is never a typed field.
        assert_eq!(
            b.execute(
                "return document.querySelectorAll('#mfa-fields input').length",
                json!([])
            ),
            json!(0)
        );
    }

    /// The stored keys of every user (`.storage/auth_module.webauthn`).
    fn stored_keys(&self) -> Value {
        let path = self.config.storage_dir().join("auth_module.webauthn");
        let text = std::fs::read_to_string(&path).expect("the passkey store exists");
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(doc["key"], "auth_module.webauthn");
        assert_eq!(doc["version"], 1);
        doc["data"]["users"].clone()
    }

    /// The only key of the only enrolled user.
    fn stored_counter(&self, index: usize) -> u64 {
        let users = self.stored_keys();
        let (_, keys) = users.as_object().unwrap().iter().next().expect("a user");
        keys["credentials"][index]["passkey"]["cred"]["counter"]
            .as_u64()
            .expect("a counter")
    }

    fn only_credential(&self) -> Value {
        let credentials = self.browser.authenticator_credentials(&self.authenticator);
        assert_eq!(credentials.len(), 1, "{credentials:?}");
        credentials[0].clone()
    }

    /// Replaces the authenticator's keys with `credential`.
    fn hold_only(&self, credential: &Value) {
        self.browser
            .remove_authenticator_credentials(&self.authenticator);
        self.browser
            .add_authenticator_credential(&self.authenticator, credential);
    }

    fn any_key(&self, on: bool) {
        self.browser.execute(ANY_KEY_SCRIPT, json!([on]));
    }

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

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn passkey_as_second_factor_refuses_unknown_keys_and_counter_regressions() {
    let mut site = Site::start("passkey-2fa").await;
    site.sign_in_with_password();
    site.wait_profile();
    site.enrol("Laptop");
    site.browser.screenshot("enrolled");
    let key = site.only_credential();
    let users = site.stored_keys();
    assert_eq!(users.as_object().unwrap().len(), 1, "{users}");
    let (_, keys) = users.as_object().unwrap().iter().next().unwrap();
    assert_eq!(keys["credentials"][0]["name"], "Laptop");
    assert_eq!(keys["credentials"][0]["id"], key["credentialId"]);
    site.sign_out();

    // Password, then the passkey.
    site.sign_in_with_password();
    site.wait_passkey_step();
    site.browser.screenshot("passkey-step");
    site.browser.click("#submit");
    site.wait_profile();
    let counter = site.stored_counter(0);
    assert!(
        counter >= 1,
        "the authenticator counts its signatures: {counter}"
    );
    site.browser.wait_text("#mfa-list", "last used");
    site.sign_out();

    // A key the server never registered is refused by the server.
    site.browser
        .remove_authenticator_credentials(&site.authenticator);
    let rogue = site.browser.execute(ROGUE_KEY_SCRIPT, json!([]));
    assert!(rogue.is_string(), "{rogue}");
    site.sign_in_with_password();
    site.wait_passkey_step();
    site.any_key(true);
    site.browser.click("#submit");
    site.browser
        .wait_text("#error", "This passkey was not accepted");
    site.browser.screenshot("unknown-key-refused");

    // The registered key with a signature counter below the stored one (a clone) is refused.
    site.any_key(false);
    let mut clone = key.clone();
    clone["signCount"] = json!(0);
    site.hold_only(&clone);
    site.wait_passkey_step();
    site.browser.click("#submit");
    site.browser.wait_for("the second refusal", |b| {
        let text = b.execute(
            "return document.getElementById('error').textContent",
            json!([]),
        );
        // The same message again: wait until the page has asked the server (button enabled again
        // after a round trip).
        let busy = b.execute(
            "return document.getElementById('submit').disabled",
            json!([]),
        );
        (text
            .as_str()
            .is_some_and(|t| t.contains("This passkey was not accepted"))
            && busy == json!(false))
        .then_some(())
    });
    assert_eq!(
        site.stored_counter(0),
        counter,
        "a refused login saves nothing"
    );

    // The same key with a counter above the stored one goes through.
    let mut ahead = key.clone();
    ahead["signCount"] = json!(counter + 5);
    site.hold_only(&ahead);
    site.browser.click("#submit");
    site.wait_profile();
    assert!(site.stored_counter(0) > counter + 5);
    site.assert_clean_console();
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn passwordless_sign_in_with_several_keys_and_a_removed_key_refused() {
    let mut site = Site::start("passkey-passwordless").await;
    site.sign_in_with_password();
    site.wait_profile();
    site.enrol("Key one");
    let first = site.only_credential();
    // A second key, made by the same authenticator (emptied once the first key confirmed).
    site.enrol_with("Key two", || {
        site.browser
            .remove_authenticator_credentials(&site.authenticator)
    });
    let second = site.only_credential();
    let b = &site.browser;
    b.wait_text("#mfa-list", "Key one");
    b.wait_text("#mfa-list", "Key two");
    site.browser.screenshot("two-keys");
    // Remove the first one on the profile page.
    let remove = format!(
        "#mfa-list button[data-key='{}']",
        first["credentialId"].as_str().unwrap()
    );
    site.browser.click(&remove);
    site.browser.wait_text("#status", "Removed key Key one");
    site.browser
        .wait_for("the first key gone from the list", |b| {
            let text = b.execute(
                "return document.getElementById('mfa-list').textContent",
                json!([]),
            );
            (!text.as_str().unwrap_or_default().contains("Key one")).then_some(())
        });
    let users = site.stored_keys();
    let (_, keys) = users.as_object().unwrap().iter().next().unwrap();
    assert_eq!(keys["credentials"].as_array().unwrap().len(), 1, "{keys}");
    assert_eq!(keys["credentials"][0]["id"], second["credentialId"]);
    site.sign_out();

    // Passwordless: the Passkey provider, the username, the key. No password anywhere.
    site.open_login();
    site.browser
        .click("#providers button[data-key='[\"webauthn\",null]']");
    site.browser.wait_for("the username-only form", |b| {
        let fields = b.execute(
            "return document.querySelectorAll('#fields input').length",
            json!([]),
        );
        (fields == json!(1)).then_some(())
    });
    site.browser.type_into("#field-username", READONLY.0);
    site.browser.click("#submit");
    site.wait_passkey_step();
    site.browser.wait_text("#title", "Sign in with a passkey");
    site.browser.click("#submit");
    site.wait_profile();
    site.browser.wait_text("#user-credentials", "webauthn");
    site.sign_out();

    // The removed key is refused, even when the browser offers it.
    let mut removed = first.clone();
    removed["isResidentCredential"] = json!(true);
    removed["userHandle"] = json!("AAAAAAAAAAAAAAAAAAAAAA");
    site.open_login();
    site.browser
        .click("#providers button[data-key='[\"webauthn\",null]']");
    site.browser.wait_for("the username-only form", |b| {
        let fields = b.execute(
            "return document.querySelectorAll('#fields input').length",
            json!([]),
        );
        (fields == json!(1)).then_some(())
    });
    site.browser.type_into("#field-username", READONLY.0);
    site.browser.click("#submit");
    site.wait_passkey_step();
    site.hold_only(&removed);
    site.any_key(true);
    site.browser.click("#submit");
    site.browser
        .wait_text("#error", "This passkey was not accepted");
    site.browser.screenshot("removed-key-refused");
    site.assert_clean_console();
    site.stop().await;
}

/// A session alone (a stolen token, a browser left open) cannot add a key: a user with keys
/// proves one of them first. Before, the profile page went straight to "Add key".
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn adding_a_passkey_first_asks_for_one_already_registered() {
    let mut site = Site::start("passkey-add-confirms").await;
    site.sign_in_with_password();
    site.wait_profile();
    site.enrol("Key one");
    let first = site.only_credential();
    let b = &site.browser;

    // A key the server never registered does not confirm.
    b.click("#mfa-list button[data-add-key=webauthn]");
    site.wait_confirmation();
    site.browser
        .remove_authenticator_credentials(&site.authenticator);
    let rogue = site.browser.execute(ROGUE_KEY_SCRIPT, json!([]));
    assert!(rogue.is_string(), "{rogue}");
    site.any_key(true);
    site.browser.click("#mfa-submit");
    site.browser
        .wait_text("#mfa-error", "This passkey was not accepted");
    site.browser
        .wait_text("#mfa-setup-title", "Confirm it is you");
    site.browser.screenshot("add-key-unconfirmed");
    let users = site.stored_keys();
    let (_, keys) = users.as_object().unwrap().iter().next().unwrap();
    assert_eq!(keys["credentials"].as_array().unwrap().len(), 1, "{keys}");

    // The registered key confirms; then the new key is made and saved.
    site.any_key(false);
    site.hold_only(&first);
    site.browser.click("#mfa-submit");
    site.browser.wait_text("#mfa-submit", "Add key");
    site.browser
        .remove_authenticator_credentials(&site.authenticator);
    site.browser.type_into("#mfa-field-name", "Key two");
    site.browser.click("#mfa-submit");
    site.browser.wait_text("#mfa-list", "Key two");
    let users = site.stored_keys();
    let (_, keys) = users.as_object().unwrap().iter().next().unwrap();
    assert_eq!(keys["credentials"].as_array().unwrap().len(), 2, "{keys}");
    site.assert_clean_console();
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_required_passkey_is_enrolled_during_the_first_login_and_asked_for_afterwards() {
    let mut site = Site::start_with("passkey-chain", CHAIN_CONFIG).await;
    site.sign_in_with_password();
    let b = &site.browser;
    b.wait_text("#title", "Set up Passkey");
    b.wait_text("#submit", "Add key");
    b.wait_text("#progress", "Step 1 of 1");
    // Only the name is typed; the key is made by the browser.
    assert_eq!(
        b.execute(
            "return document.querySelectorAll('#fields input').length",
            json!([])
        ),
        json!(1)
    );
    // No name: refused on the page, before the authenticator is asked.
    b.click("#submit");
    b.wait_text("#error", "Give the key a name");
    assert!(
        site.browser
            .authenticator_credentials(&site.authenticator)
            .is_empty()
    );
    site.browser.type_into("#field-name", "Work laptop");
    site.browser.screenshot("chain-enrol");
    site.browser.click("#submit");
    site.wait_profile();
    let key = site.only_credential();
    let users = site.stored_keys();
    let (_, keys) = users.as_object().unwrap().iter().next().unwrap();
    assert_eq!(keys["credentials"][0]["name"], "Work laptop");
    assert_eq!(keys["credentials"][0]["id"], key["credentialId"]);
    site.sign_out();

    // The next login asks for the key (the chain's code step), and nothing else.
    site.sign_in_with_password();
    site.wait_passkey_step();
    site.browser.wait_text("#progress", "Step 1 of 1");
    site.browser.click("#submit");
    site.wait_profile();
    assert!(site.stored_counter(0) >= 1);
    site.assert_clean_console();
    site.stop().await;
}
