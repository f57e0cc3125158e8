//! The provider's config keys.

use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Default of `timeout`: how long the program may run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default of `max_concurrent`: programs running at once.
pub const DEFAULT_MAX_CONCURRENT: usize = 4;

/// This provider's own config keys (unknown keys are refused).
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The program to run (no shell), normalised like Python's `os.path.normpath`. Give an
    /// absolute path: the program runs without `PATH`.
    #[serde(deserialize_with = "de_command")]
    pub command: String,
    /// Arguments passed to the program (default none; null means none).
    #[serde(default, deserialize_with = "de_args")]
    #[schemars(with = "Option<Vec<String>>")]
    pub args: Vec<String>,
    /// Read `name`, `group` and `local_only` for new users from the program's standard output.
    #[serde(default)]
    pub meta: bool,
    /// Seconds the program may run before it is killed and the login refused (default 10;
    /// a hass-auth addition, not a Home Assistant key).
    #[serde(default = "default_timeout", deserialize_with = "de_timeout")]
    #[schemars(schema_with = "timeout_schema", extend("default" = DEFAULT_TIMEOUT.as_secs()))]
    pub timeout: Duration,
    /// Programs of this provider running at once (default 4; a hass-auth addition). Further
    /// logins wait for a free slot, at most `timeout`, then are refused.
    #[serde(
        default = "default_max_concurrent",
        deserialize_with = "de_max_concurrent"
    )]
    #[schemars(range(min = 1), extend("default" = DEFAULT_MAX_CONCURRENT))]
    pub max_concurrent: usize,
}

impl Config {
    /// A config running `command` with no arguments, no meta and the default timeout.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: normpath(&command.into()),
            args: Vec::new(),
            meta: false,
            timeout: DEFAULT_TIMEOUT,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
        }
    }
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

fn default_max_concurrent() -> usize {
    DEFAULT_MAX_CONCURRENT
}

fn de_max_concurrent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    let value = Value::deserialize(deserializer)?;
    value
        .as_u64()
        .filter(|n| *n >= 1)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            D::Error::custom(format!(
                "max_concurrent: expected a whole number of at least 1, got {value}"
            ))
        })
}

/// Normalises a path like Python's `posixpath.normpath`: collapses repeated separators and
/// `.` components and resolves `..` lexically (`/usr//bin/../bin/./x` → `/usr/bin/x`).
pub fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    // POSIX keeps exactly two leading slashes; one or three and more become one.
    let leading = path.bytes().take_while(|b| *b == b'/').count();
    let root = match leading {
        0 => "",
        2 => "//",
        _ => "/",
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if !root.is_empty() => {}
            other => parts.push(other),
        }
    }
    let joined = format!("{root}{}", parts.join("/"));
    if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

fn de_command<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(normpath(&String::deserialize(deserializer)?))
}

fn de_args<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

fn de_timeout<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let value = Value::deserialize(deserializer)?;
    value
        .as_f64()
        .filter(|secs| *secs > 0.0)
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| {
            D::Error::custom(format!(
                "timeout: expected a positive number of seconds, got {value}"
            ))
        })
}

fn timeout_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "number",
        "exclusiveMinimum": 0,
    })
}
