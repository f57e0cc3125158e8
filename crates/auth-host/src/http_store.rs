//! `.storage/http`: Home Assistant 2026.8+ keeps its HTTP settings here (config.md §5,
//! storage.md §2). From store version 2 on, the settings in the store are the ones in force: Home
//! Assistant migrated the YAML `http:` block into it once and ignores that block since. Version 1
//! is older Home Assistant's "last known working configuration", a copy of the YAML used only in
//! recovery mode; it is not read.
//!
//! Merging, as Home Assistant does: every setting the store holds replaces the YAML one (a YAML
//! value it overrides gets a warning); settings the store lacks keep the YAML value or default.
//! hass-auth's own keys (`frontend_dir`, `fetch_client_*`, `ban_duration`) only come from YAML.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::ConfigError;
use crate::http::{
    HttpOptions, NO_LOGIN_ATTEMPT_THRESHOLD, SSL_INTERMEDIATE, SSL_MODERN, ip_network,
};

/// Newest major version of `.storage/http` we understand.
pub const HTTP_STORE_VERSION: u64 = 3;

fn bad(path: &Path, key: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::Store {
        path: path.to_owned(),
        message: if key.is_empty() {
            message.to_string()
        } else {
            format!("data.{key}: {message}")
        },
    }
}

/// Applies `<config_dir>/.storage/http` to `settings`; returns warnings. A missing file changes
/// nothing; an unreadable one is an error naming it (its settings are never silently dropped).
pub(crate) fn merge_http_store(
    settings: &mut HttpOptions,
    config_dir: &Path,
) -> Result<Vec<String>, ConfigError> {
    let path = config_dir.join(".storage").join("http");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(bad(&path, "", format!("cannot read: {error}"))),
    };
    let envelope: Value =
        serde_json::from_str(&text).map_err(|e| bad(&path, "", format!("invalid JSON: {e}")))?;
    let Some(envelope) = envelope.as_object() else {
        return Err(bad(
            &path,
            "",
            "expected a JSON object (a storage envelope)",
        ));
    };
    if let Some(key) = envelope.get("key").and_then(Value::as_str)
        && key != "http"
    {
        return Err(bad(
            &path,
            "",
            format!("the envelope's key is '{key}', expected 'http'"),
        ));
    }
    let version = envelope
        .get("version")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad(&path, "", "missing or invalid 'version'"))?;
    if version > HTTP_STORE_VERSION {
        return Err(bad(
            &path,
            "",
            format!("unsupported version {version} (newest understood: {HTTP_STORE_VERSION})"),
        ));
    }
    if version < 2 {
        tracing::debug!(file = %path.display(), "a version 1 .storage/http is Home Assistant's recovery copy; not read");
        return Ok(Vec::new());
    }
    let data = envelope
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| bad(&path, "", "missing 'data' object"))?;
    let yaml = settings.clone();
    apply(settings, data, &path, config_dir)?;
    let defaults = HttpOptions::default();
    let mut warnings = Vec::new();
    let mut overridden = |key: &str, yaml_set: bool, changed: bool| {
        if yaml_set && changed {
            warnings.push(format!(
                "http.{key} in configuration.yaml is ignored: {} (Home Assistant 2026.8+) holds this setting",
                path.display()
            ));
        }
    };
    macro_rules! check {
        ($($field:ident),*) => {$(
            overridden(
                stringify!($field),
                yaml.$field != defaults.$field,
                yaml.$field != settings.$field,
            );
        )*};
    }
    check!(
        server_host,
        server_port,
        ip_ban_enabled,
        login_attempts_threshold,
        use_x_forwarded_for,
        trusted_proxies,
        use_x_frame_options,
        cors_allowed_origins,
        ssl_certificate,
        ssl_key,
        ssl_peer_certificate,
        ssl_profile
    );
    Ok(warnings)
}

fn apply(
    settings: &mut HttpOptions,
    data: &Map<String, Value>,
    path: &Path,
    config_dir: &Path,
) -> Result<(), ConfigError> {
    let strings = |key: &str, value: &Value| -> Result<Vec<String>, ConfigError> {
        match value {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(bad(path, &format!("{key}[{i}]"), "expected a string")),
                })
                .collect(),
            Value::Null => Ok(Vec::new()),
            _ => Err(bad(path, key, "expected a string or a list of strings")),
        }
    };
    let boolean = |key: &str, value: &Value| {
        value
            .as_bool()
            .ok_or_else(|| bad(path, key, "expected true or false"))
    };
    let file = |key: &str, value: &Value| match value {
        Value::Null => Ok(None),
        Value::String(name) if !name.trim().is_empty() => {
            let file = config_dir.join(name);
            if file.is_file() {
                Ok(Some(file))
            } else {
                Err(bad(path, key, format!("not a file: {}", file.display())))
            }
        }
        _ => Err(bad(path, key, "expected a file path")),
    };
    for (key, value) in data {
        match key.as_str() {
            "server_host" => {
                let hosts = strings(key, value)?;
                if !hosts.is_empty() {
                    settings.server_host = hosts;
                }
            }
            "server_port" => {
                settings.server_port = value
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p >= 1)
                    .ok_or_else(|| bad(path, key, "expected a port number (1 to 65535)"))?;
            }
            "ip_ban_enabled" => settings.ip_ban_enabled = boolean(key, value)?,
            "login_attempts_threshold" => {
                settings.login_attempts_threshold = value
                    .as_i64()
                    .filter(|t| *t >= 0 || *t == NO_LOGIN_ATTEMPT_THRESHOLD)
                    .ok_or_else(|| {
                        bad(path, key, "expected a positive integer, or -1 to never ban")
                    })?;
            }
            "use_x_forwarded_for" => settings.use_x_forwarded_for = boolean(key, value)?,
            "trusted_proxies" => {
                settings.trusted_proxies = strings(key, value)?
                    .iter()
                    .enumerate()
                    .map(|(i, net)| {
                        ip_network(net).map_err(|m| bad(path, &format!("{key}[{i}]"), m))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "use_x_frame_options" => settings.use_x_frame_options = boolean(key, value)?,
            "cors_allowed_origins" => settings.cors_allowed_origins = strings(key, value)?,
            "ssl_certificate" => settings.ssl_certificate = file(key, value)?,
            "ssl_key" => settings.ssl_key = file(key, value)?,
            "ssl_peer_certificate" => settings.ssl_peer_certificate = file(key, value)?,
            "ssl_profile" => match value.as_str() {
                Some(p) if p == SSL_MODERN || p == SSL_INTERMEDIATE => {
                    settings.ssl_profile = p.to_owned();
                }
                _ => return Err(bad(path, key, "expected 'modern' or 'intermediate'")),
            },
            _ => tracing::debug!(key = key.as_str(), "ignoring a .storage/http setting"),
        }
    }
    if settings.use_x_forwarded_for && settings.trusted_proxies.is_empty() {
        return Err(bad(
            path,
            "",
            "use_x_forwarded_for is on but trusted_proxies is empty",
        ));
    }
    Ok(())
}
