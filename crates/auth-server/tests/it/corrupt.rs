//! Corrupt and truncated storage: for each store the server reads (`auth`,
//! `auth_provider.homeassistant`, `auth_module.totp`, `onboarding`) and each kind of damage, the
//! server refuses to start with a message naming the file and the problem, keeps the file, and
//! `hass-auth storage restore KEY` brings back the last good copy it kept (`KEY.bak`), after
//! which the owner signs in and onboarding stays closed.

use std::path::Path;

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use serde_json::{Value, json};

use crate::client::{self, CLIENT_ID, REDIRECT_URI, Ws};
use crate::support::{run, serve};

/// The stores, with the field of `data` without which each cannot be read.
const STORES: [(&str, &str); 4] = [
    ("auth", "users"),
    ("auth_provider.homeassistant", "users"),
    ("auth_module.totp", "users"),
    ("onboarding", "done"),
];

#[derive(Clone, Copy, Debug)]
enum Damage {
    ZeroFilled,
    Truncated,
    InvalidJson,
    WrongVersion,
    WrongKey,
    MissingField,
}

const DAMAGES: [Damage; 6] = [
    Damage::ZeroFilled,
    Damage::Truncated,
    Damage::InvalidJson,
    Damage::WrongVersion,
    Damage::WrongKey,
    Damage::MissingField,
];

/// The damaged bytes of `good` (store `key`), and what the refusal must say about them.
fn damage(good: &[u8], key: &str, field: &str, damage: Damage) -> (Vec<u8>, String) {
    let mut envelope: Value = serde_json::from_slice(good).unwrap();
    let reencode = |value: &Value| serde_json::to_vec_pretty(value).unwrap();
    match damage {
        Damage::ZeroFilled => (vec![0; good.len()], "only zero bytes".to_owned()),
        Damage::Truncated => (
            good[..good.len() / 2].to_vec(),
            "not valid JSON: EOF while parsing".to_owned(),
        ),
        Damage::InvalidJson => {
            let text = String::from_utf8(good.to_vec()).unwrap();
            (
                text.replacen("\"data\": {", "\"data\" {", 1).into_bytes(),
                "not valid JSON: expected `:`".to_owned(),
            )
        }
        Damage::WrongVersion => {
            envelope["version"] = json!(99);
            (
                reencode(&envelope),
                "unsupported storage version 99".to_owned(),
            )
        }
        Damage::WrongKey => {
            let other = if key == "auth" { "onboarding" } else { "auth" };
            envelope["key"] = json!(other);
            (
                reencode(&envelope),
                format!("the envelope's key is '{other}', expected '{key}'"),
            )
        }
        Damage::MissingField => {
            envelope["data"].as_object_mut().unwrap().remove(field);
            let problem = match key {
                "auth" => "data.users is missing",
                "auth_provider.homeassistant" => "missing field `users`",
                "auth_module.totp" => "'data.users' is missing",
                _ => "data.done is missing",
            };
            (reencode(&envelope), problem.to_owned())
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != ".hass-auth.lock" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Home Assistant's config directory after one session of normal use, in which the server wrote
/// each of the four stores over an existing file, and so kept a last good copy of each.
async fn used_config() -> TempConfig {
    let config = TempConfig::from_fixture("ha-2026.2.3");
    let dir = config.path().to_str().unwrap().to_owned();
    let server = serve(config.path(), &["-c", &dir])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let addr = server.addr;
    // Signing in re-hashes the owner's bcrypt password (auth_provider.homeassistant) and creates
    // a refresh token (auth).
    let owner = client::login(addr, json!(["homeassistant", null]), "owner", "owner-pass")
        .await
        .unwrap();
    let owner_token = owner["access_token"].as_str().unwrap();
    let integration = Request::post("/api/onboarding/integration")
        .bearer(owner_token)
        .json(&json!({"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI}))
        .send(addr)
        .await;
    assert_eq!(integration.status, 200, "{}", integration.text());
    // Another user enrols in TOTP (auth_module.totp).
    let readonly = client::login(
        addr,
        json!(["homeassistant", null]),
        "readonly",
        "readonly-pass",
    )
    .await
    .unwrap();
    let mut ws = Ws::connect(addr, readonly["access_token"].as_str().unwrap())
        .await
        .unwrap();
    let form = ws
        .ok(json!({"type": "auth/setup_mfa", "mfa_module_id": "totp"}))
        .await
        .unwrap();
    let secret = form["description_placeholders"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut enrolled = false;
    for _ in 0..2 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let code = mfa_totp::code_at(&secret, now).unwrap();
        let result = ws
            .ok(json!({"type": "auth/setup_mfa", "flow_id": form["flow_id"], "user_input": {"code": code}}))
            .await
            .unwrap();
        if result["type"] == "create_entry" {
            enrolled = true;
            break;
        }
    }
    assert!(enrolled, "TOTP enrolment");
    assert_eq!(server.stop().await, 0);
    for (key, _) in STORES {
        assert!(
            config.storage_dir().join(format!("{key}.bak")).exists(),
            "the server kept a last good copy of {key}"
        );
    }
    config
}

/// One store damaged one way: refused, kept, restored, and then the server works.
async fn refuse_keep_restore(template: &Path, key: &str, field: &str, kind: Damage) {
    let config = TempConfig::empty();
    copy_dir(template, config.path());
    let dir = config.path().to_str().unwrap().to_owned();
    let path = config.storage_dir().join(key);
    let backup = config.storage_dir().join(format!("{key}.bak"));
    let good_backup = std::fs::read(&backup).unwrap();
    let (bad, problem) = damage(&std::fs::read(&path).unwrap(), key, field, kind);
    std::fs::write(&path, &bad).unwrap();

    let refused = serve(config.path(), &["-c", &dir])
        .await
        .err()
        .unwrap_or_else(|| panic!("{key} {kind:?}: the server started"));
    assert_eq!(refused.code, 3, "{key} {kind:?}: {}", refused.stderr);
    assert!(
        refused.stderr.contains(&path.display().to_string()),
        "{key} {kind:?}: the message names the file: {}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(&problem),
        "{key} {kind:?}: the message says {problem:?}: {}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains(&format!("hint: `hass-auth storage -c {dir} restore {key}`")),
        "{key} {kind:?}: the message says how to restore: {}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bad,
        "{key} {kind:?}: the file is kept"
    );
    assert_eq!(
        std::fs::read(&backup).unwrap(),
        good_backup,
        "{key} {kind:?}: the last good copy is untouched"
    );

    let restored = run(config.path(), &["storage", "-c", &dir, "restore", key]).await;
    assert_eq!(restored.code, 0, "{key} {kind:?}: {}", restored.stderr);
    assert_eq!(std::fs::read(&path).unwrap(), good_backup);
    assert_eq!(
        std::fs::read(config.storage_dir().join(format!("{key}.rejected"))).unwrap(),
        bad,
        "{key} {kind:?}: the bad file is kept aside"
    );

    let server = serve(config.path(), &["-c", &dir])
        .await
        .unwrap_or_else(|o| panic!("{key} {kind:?}: after restore: {}", o.stderr));
    let addr = server.addr;
    let onboarding = Request::get("/api/onboarding").send(addr).await.json();
    assert_eq!(
        onboarding[0],
        json!({"step": "user", "done": true}),
        "{key} {kind:?}: onboarding stays closed"
    );
    let owner = Request::post("/api/onboarding/users")
        .json(
            &json!({"client_id": CLIENT_ID, "name": "Intruder", "username": "intruder",
            "password": "x", "language": "en"}),
        )
        .send(addr)
        .await;
    assert_eq!(owner.status, 403, "{key} {kind:?}: nobody becomes owner");
    assert_eq!(Request::get("/auth/providers").send(addr).await.status, 200);
    let code = client::login_code(
        addr,
        json!(["homeassistant", null]),
        "owner",
        "owner-pass",
        None,
    )
    .await
    .unwrap();
    assert!(code.is_some(), "{key} {kind:?}: the owner signs in");
    assert_eq!(server.stop().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_stores_are_refused_kept_and_restorable() {
    let used = used_config().await;
    for (key, field) in STORES {
        let cases = DAMAGES.map(|kind| {
            let template = used.path().to_owned();
            tokio::spawn(async move { refuse_keep_restore(&template, key, field, kind).await })
        });
        for case in cases {
            case.await.unwrap();
        }
    }
}
