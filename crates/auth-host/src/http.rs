//! The `http:` section: where to listen, IP bans, reverse proxies, CORS, frame options.

use std::path::{Path, PathBuf};

use auth_core::ipnet::IpNet;

use crate::config::{check_unique, is_null};
use crate::error::ConfigError;
use crate::resolve::{Node, Resolver, Value, join_key};
use crate::yaml::{Mark, Raw, RawNode};

pub use auth_http::HttpOptions;
pub use auth_http::options::{
    DEFAULT_BAN_DURATION_SECS, DEFAULT_CORS_ORIGIN, DEFAULT_PORT, NO_LOGIN_ATTEMPT_THRESHOLD,
    SSL_INTERMEDIATE, SSL_MODERN,
};

fn invalid(mark: &Mark, key_path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        location: mark.location(),
        key_path: key_path.to_owned(),
        message: message.into(),
    }
}

/// An integer, or a string holding one (Home Assistant coerces).
fn integer(node: &Node) -> Option<i128> {
    match &node.value {
        Value::Int(i) => Some(*i),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Home Assistant's `cv.boolean`.
fn boolean(node: &Node, path: &str) -> Result<bool, ConfigError> {
    let parsed = match &node.value {
        Value::Bool(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        Value::Float(f) => Some(*f != 0.0),
        Value::Str(s) => match s.to_lowercase().as_str() {
            "1" | "true" | "yes" | "on" | "enable" => Some(true),
            "0" | "false" | "no" | "off" | "disable" => Some(false),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| {
        invalid(
            &node.mark,
            path,
            format!(
                "expected a boolean (true or false), found {}",
                node.value.describe()
            ),
        )
    })
}

/// A string or a list of strings (`cv.ensure_list` + `[cv.string]`).
fn string_list(node: &Node, path: &str, what: &str) -> Result<Vec<String>, ConfigError> {
    let scalar = |n: &Node, p: &str| -> Result<String, ConfigError> {
        match &n.value {
            Value::Str(s) => Ok(s.clone()),
            Value::Int(i) => Ok(i.to_string()),
            Value::Float(f) => Ok(f.to_string()),
            other => Err(invalid(
                &n.mark,
                p,
                format!("expected {what}, found {}", other.describe()),
            )),
        }
    };
    match &node.value {
        Value::Null => Ok(Vec::new()),
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| scalar(item, &format!("{path}[{i}]")))
            .collect(),
        _ => Ok(vec![scalar(node, path)?]),
    }
}

/// Home Assistant's `cv.isfile`: a path to an existing file (relative to `config_dir`).
fn file(node: &Node, path: &str, config_dir: &Path) -> Result<Option<PathBuf>, ConfigError> {
    match &node.value {
        Value::Null => Ok(None),
        Value::Str(name) if !name.trim().is_empty() => {
            let file = config_dir.join(name);
            if file.is_file() {
                Ok(Some(file))
            } else {
                Err(invalid(
                    &node.mark,
                    path,
                    format!("not a file: {}", file.display()),
                ))
            }
        }
        other => Err(invalid(
            &node.mark,
            path,
            format!("expected a file path, found {}", other.describe()),
        )),
    }
}

/// `ban_duration`: whole seconds (at least 1), or `forever`.
fn ban_duration(node: &Node, path: &str) -> Result<Option<std::time::Duration>, ConfigError> {
    if let Value::Str(s) = &node.value
        && s.trim().eq_ignore_ascii_case("forever")
    {
        return Ok(None);
    }
    integer(node)
        .filter(|s| *s >= 1)
        .and_then(|s| u64::try_from(s).ok())
        .map(|s| Some(std::time::Duration::from_secs(s)))
        .ok_or_else(|| {
            invalid(
                &node.mark,
                path,
                format!(
                    "expected a number of seconds (at least 1) or 'forever', found {}",
                    node.value.describe()
                ),
            )
        })
}

/// Python's `ipaddress.ip_network(value)` (strict: host bits must be zero).
pub(crate) fn ip_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<std::net::IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    let net: IpNet = text
        .parse()
        .map_err(|_| format!("'{text}' is not an IP network (e.g. 172.30.33.0/24)"))?;
    if net.trunc() != net {
        return Err(format!("'{text}' has host bits set"));
    }
    Ok(net)
}

/// Reads the `http:` section (absent or empty: defaults). Unknown keys are ignored, as Home
/// Assistant has many hass-auth does not use. Returns the settings and warnings.
pub(crate) fn parse_http(
    resolver: &Resolver<'_>,
    section: Option<&RawNode>,
    config_dir: &Path,
) -> Result<(HttpOptions, Vec<String>), ConfigError> {
    let mut settings = HttpOptions::default();
    let warnings = Vec::new();
    let Some(section) = section else {
        return Ok((settings, warnings));
    };
    let followed = resolver.follow(section, "http")?;
    let section_mark = followed.mark();
    let entries = match &followed.node.raw {
        Raw::Map(entries) => entries,
        _ if is_null(&followed.node) => return Ok((settings, warnings)),
        _ => {
            return Err(invalid(
                &section_mark,
                "http",
                "expected a mapping (server_port:, trusted_proxies:, ...)",
            ));
        }
    };
    // Resolve only the keys we use, so unrelated keys may use tags we do not support.
    let mut known: Vec<(crate::resolve::Key, Node)> = Vec::new();
    for (key, value) in entries {
        let name = resolver.key_name(key, "http", 1)?;
        let path = join_key("http", &name);
        match name.as_str() {
            "server_host"
            | "server_port"
            | "ip_ban_enabled"
            | "login_attempts_threshold"
            | "ban_duration"
            | "use_x_forwarded_for"
            | "trusted_proxies"
            | "use_x_frame_options"
            | "cors_allowed_origins"
            | "frontend_dir"
            | "fetch_client_redirect_uris"
            | "fetch_client_ca_file"
            | "ssl_certificate"
            | "ssl_key"
            | "ssl_peer_certificate"
            | "ssl_profile" => {
                let node = resolver.resolve(value, &path)?;
                known.push((
                    crate::resolve::Key {
                        name,
                        mark: key.mark.clone(),
                    },
                    node,
                ));
            }
            _ => tracing::debug!(key = path.as_str(), "ignoring http setting"),
        }
    }
    check_unique(&known, "http")?;
    let mut forwarded_set = false;
    let mut proxies_set = false;
    for (key, node) in &known {
        let path = join_key("http", &key.name);
        match key.name.as_str() {
            "server_host" => {
                let hosts = string_list(node, &path, "a host name or IP address")?;
                if hosts.is_empty() || hosts.iter().any(|h| h.trim().is_empty()) {
                    return Err(invalid(
                        &node.mark,
                        &path,
                        "expected a host name or IP address, or a non-empty list of them",
                    ));
                }
                settings.server_host = hosts;
            }
            "server_port" => {
                settings.server_port = integer(node)
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p >= 1)
                    .ok_or_else(|| {
                        invalid(&node.mark, &path, "expected a port number (1 to 65535)")
                    })?;
            }
            "ip_ban_enabled" => settings.ip_ban_enabled = boolean(node, &path)?,
            "login_attempts_threshold" => {
                settings.login_attempts_threshold = integer(node)
                    .filter(|t| *t >= 0 || *t == i128::from(NO_LOGIN_ATTEMPT_THRESHOLD))
                    .and_then(|t| i64::try_from(t).ok())
                    .ok_or_else(|| {
                        invalid(
                            &node.mark,
                            &path,
                            "expected a positive integer, or -1 to never ban",
                        )
                    })?;
            }
            "ban_duration" => settings.ban_duration = ban_duration(node, &path)?,
            "use_x_forwarded_for" => {
                forwarded_set = true;
                settings.use_x_forwarded_for = boolean(node, &path)?;
            }
            "trusted_proxies" => {
                proxies_set = true;
                let items = string_list(node, &path, "an IP network (e.g. 172.30.33.0/24)")?;
                let mut proxies = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let at = match &node.value {
                        Value::Seq(nodes) => nodes.get(i).map_or(&node.mark, |n| &n.mark),
                        _ => &node.mark,
                    };
                    proxies.push(ip_network(item).map_err(|m| invalid(at, &path, m))?);
                }
                settings.trusted_proxies = proxies;
            }
            "use_x_frame_options" => settings.use_x_frame_options = boolean(node, &path)?,
            "cors_allowed_origins" => {
                settings.cors_allowed_origins = string_list(node, &path, "an origin URL")?;
            }
            "frontend_dir" => match &node.value {
                Value::Str(dir) if !dir.trim().is_empty() => {
                    settings.frontend_dir = Some(config_dir.join(dir));
                }
                Value::Null => settings.frontend_dir = None,
                other => {
                    return Err(invalid(
                        &node.mark,
                        &path,
                        format!("expected a directory path, found {}", other.describe()),
                    ));
                }
            },
            "fetch_client_redirect_uris" => {
                settings.fetch_client_redirect_uris = boolean(node, &path)?;
            }
            "ssl_certificate" => settings.ssl_certificate = file(node, &path, config_dir)?,
            "ssl_key" => settings.ssl_key = file(node, &path, config_dir)?,
            "ssl_peer_certificate" => {
                settings.ssl_peer_certificate = file(node, &path, config_dir)?;
            }
            "ssl_profile" => match &node.value {
                Value::Str(p) if p == SSL_MODERN || p == SSL_INTERMEDIATE => {
                    settings.ssl_profile = p.clone();
                }
                other => {
                    return Err(invalid(
                        &node.mark,
                        &path,
                        format!(
                            "expected 'modern' or 'intermediate', found {}",
                            other.describe()
                        ),
                    ));
                }
            },
            "fetch_client_ca_file" => match &node.value {
                Value::Str(file) if !file.trim().is_empty() => {
                    let file = config_dir.join(file);
                    indieauth_fetch::load_pem_certificates(&file)
                        .map_err(|e| invalid(&node.mark, &path, e.to_string()))?;
                    settings.fetch_client_ca_file = Some(file);
                }
                Value::Null => settings.fetch_client_ca_file = None,
                other => {
                    return Err(invalid(
                        &node.mark,
                        &path,
                        format!("expected a PEM file path, found {}", other.describe()),
                    ));
                }
            },
            _ => {}
        }
    }
    if settings.ssl_key.is_some() && settings.ssl_certificate.is_none()
        || settings.ssl_peer_certificate.is_some() && settings.ssl_certificate.is_none()
    {
        return Err(invalid(
            &section_mark,
            "http",
            "ssl_key and ssl_peer_certificate need ssl_certificate",
        ));
    }
    if forwarded_set != proxies_set {
        return Err(invalid(
            &section_mark,
            "http",
            "use_x_forwarded_for and trusted_proxies must be set together (Home Assistant: some but not all values in the same group of inclusion 'proxy')",
        ));
    }
    Ok((settings, warnings))
}
