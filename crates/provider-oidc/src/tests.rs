use serde_json::{Value, json};

use crate::config::Config;

fn base() -> Value {
    json!({
        "issuer": "https://id.example",
        "client_id": "hass",
        "client_secret": "s3cret",
        "redirect_uri": "https://home.example/auth/oidc/callback",
    })
}

fn parse(changes: Value) -> Result<Config, String> {
    let mut value = base();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            value.as_object_mut().unwrap().remove(k);
        } else {
            value[k] = v.clone();
        }
    }
    let config: Config = serde_json::from_value(value).map_err(|e| e.to_string())?;
    config.validate().map_err(|e| e.0)?;
    Ok(config)
}

#[test]
fn defaults_are_applied() {
    let config = parse(json!({})).unwrap();
    assert_eq!(config.scopes, ["openid", "profile"]);
    assert_eq!(config.username_claim, "preferred_username");
    assert!(config.create_users);
    assert_eq!(config.timeout, 10);
    assert_eq!(config.groups_claim, None);
}

#[test]
fn bad_values_are_refused_naming_the_key() {
    let cases = [
        (json!({"issuer": null}), "issuer"),
        (json!({"client_secret": null}), "client_secret"),
        (json!({"issuer": "ftp://id.example"}), "issuer"),
        (json!({"issuer": "not a url"}), "issuer"),
        (
            json!({"redirect_uri": "/auth/oidc/callback"}),
            "redirect_uri",
        ),
        (json!({"client_id": ""}), "client_id"),
        (json!({"username_claim": ""}), "username_claim"),
        (json!({"timeout": 0}), "timeout"),
        (
            json!({"groups_claim": "groups", "groups": {"admins": "root"}}),
            "groups",
        ),
        (
            json!({"groups": {"admins": "system-admin"}}),
            "groups_claim",
        ),
        (json!({"client_secrett": "typo"}), "client_secrett"),
    ];
    for (change, key) in cases {
        let error = parse(change.clone()).unwrap_err();
        assert!(error.contains(key), "{change}: {error}");
    }
}

#[test]
fn the_most_privileged_mapped_group_wins() {
    let config = parse(json!({
        "groups_claim": "groups",
        "groups": {"admins": "system-admin", "family": "system-users", "guests": "system-read-only"},
    }))
    .unwrap();
    assert_eq!(
        config.map_groups(["family", "admins"]),
        Some("system-admin")
    );
    assert_eq!(
        config.map_groups(["guests", "family"]),
        Some("system-users")
    );
    assert_eq!(
        config.map_groups(["guests", "other"]),
        Some("system-read-only")
    );
    assert_eq!(config.map_groups(["other"]), None);
    assert_eq!(config.map_groups([]), None);
}

#[test]
fn the_secret_is_not_in_debug_output() {
    let config = parse(json!({})).unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("<redacted>"));
}
