//! The provider's config keys and their (Home Assistant compatible) parsing: strict networks,
//! UUID4-hex user ids, `{group: id}` entries, lenient booleans.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// This provider's own config keys (unknown keys are refused).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Networks (or single IPs) whose requests may sign in without a password: one or a list.
    /// Strict: `192.168.0.1/24` (host bits set) is refused; `192.168.0.10` means `/32`.
    #[serde(deserialize_with = "de_networks")]
    #[schemars(schema_with = "networks_schema")]
    pub trusted_networks: Vec<IpNet>,
    /// Per network (config order; the first network containing the request IP applies): the
    /// user ids and `{group: <group id>}` entries offered to that network.
    #[serde(default, deserialize_with = "de_trusted_users")]
    #[schemars(schema_with = "trusted_users_schema")]
    pub trusted_users: Vec<(IpNet, Vec<TrustedUser>)>,
    /// Sign in without asking when exactly one user is available (lenient boolean).
    #[serde(default, deserialize_with = "de_lenient_bool")]
    #[schemars(schema_with = "lenient_bool_schema")]
    pub allow_bypass_login: bool,
}

/// One entry of a `trusted_users` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustedUser {
    /// A user id (32 lowercase hex characters, UUID version 4).
    User(String),
    /// Every member of the group with this id (see the crate docs: differs from Home Assistant).
    Group(String),
}

/// Why a network string was refused (Home Assistant's `ip_network` messages).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// Neither an IPv4 nor an IPv6 network.
    #[error("'{0}' does not appear to be an IPv4 or IPv6 network")]
    Invalid(String),
    /// The address has bits set beyond the prefix (strict parsing).
    #[error("{given} has host bits set (did you mean {network}?)")]
    HostBitsSet {
        /// The network as given, in `address/prefix` form.
        given: String,
        /// The network the value lies in.
        network: IpNet,
    },
}

/// Parses a network like Python's `ipaddress.ip_network(text, strict=True)`: `addr`, `addr/len`
/// or (IPv4) `addr/netmask` / `addr/hostmask`; a single address becomes `/32` or `/128`.
///
/// # Errors
///
/// [`NetworkError`] for anything else, including set host bits (`192.168.0.1/24`).
pub fn parse_network(text: &str) -> Result<IpNet, NetworkError> {
    let invalid = || NetworkError::Invalid(text.to_owned());
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address.parse().map_err(|_| invalid())?;
    let max = match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let prefix_len = match prefix {
        None => max,
        Some(prefix) if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) => {
            let digits = prefix.trim_start_matches('0');
            match digits.parse::<u8>() {
                Ok(len) if len <= max => len,
                _ if digits.is_empty() => 0,
                _ => return Err(invalid()),
            }
        }
        Some(mask) => match (address, mask.parse::<Ipv4Addr>()) {
            (IpAddr::V4(_), Ok(mask)) => v4_mask_prefix(mask).ok_or_else(invalid)?,
            _ => return Err(invalid()),
        },
    };
    let network = IpNet::new(address, prefix_len).map_err(|_| invalid())?;
    let truncated = network.trunc();
    if truncated != network {
        return Err(NetworkError::HostBitsSet {
            given: network.to_string(),
            network: truncated,
        });
    }
    Ok(network)
}

/// Prefix length of an IPv4 netmask (`255.255.255.0`) or hostmask (`0.0.0.255`).
fn v4_mask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let as_netmask = |bits: u32| {
        let len = bits.leading_ones();
        (bits.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
    };
    as_netmask(bits).or_else(|| as_netmask(!bits))
}

/// Validates a user id like Home Assistant's `uuid4_hex`: 32 hex characters (any case) with the
/// UUID version 4 and RFC 4122 variant bits; returns it in lowercase.
///
/// # Errors
///
/// `Invalid Version4 UUID` (Home Assistant's message) with the value.
pub fn parse_user_id(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let valid = bytes.len() == 32
        && bytes.iter().all(u8::is_ascii_hexdigit)
        && bytes[12] == b'4'
        && matches!(bytes[16].to_ascii_lowercase(), b'8' | b'9' | b'a' | b'b');
    if valid {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!("Invalid Version4 UUID: '{text}'"))
    }
}

/// Home Assistant's lenient boolean (`cv.boolean`): real booleans; numbers (non-zero is true);
/// strings `1/true/yes/on/enable` and `0/false/no/off/disable` in any case, surrounding
/// whitespace ignored.
///
/// # Errors
///
/// `invalid boolean value <value>` for anything else.
pub fn parse_lenient_bool(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => return Ok(*b),
        Value::Number(n) => return Ok(n.as_f64().is_some_and(|f| f != 0.0)),
        Value::String(s) => match s.trim().to_lowercase().as_str() {
            "1" | "true" | "yes" | "on" | "enable" => return Ok(true),
            "0" | "false" | "no" | "off" | "disable" => return Ok(false),
            _ => {}
        },
        _ => {}
    }
    Err(format!("invalid boolean value {value}"))
}

/// Home Assistant's `ensure_list`: null is empty, a list stays, anything else is one item.
fn ensure_list(value: Value) -> Vec<Value> {
    match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items,
        other => vec![other],
    }
}

fn network_from_value<E: serde::de::Error>(key: &str, value: &Value) -> Result<IpNet, E> {
    match value {
        Value::String(text) => parse_network(text).map_err(|e| E::custom(format!("{key}: {e}"))),
        other => Err(E::custom(format!(
            "{key}: expected a network string, got {other}"
        ))),
    }
}

fn de_networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    ensure_list(Value::deserialize(deserializer)?)
        .iter()
        .map(|v| network_from_value("trusted_networks", v))
        .collect()
}

fn trusted_user_from_value<E: serde::de::Error>(
    network: &str,
    value: Value,
) -> Result<TrustedUser, E> {
    let context = |message: String| E::custom(format!("trusted_users[{network}]: {message}"));
    match value {
        Value::String(id) => parse_user_id(&id).map(TrustedUser::User).map_err(context),
        Value::Object(map) => {
            if let Some(key) = map.keys().find(|k| *k != "group") {
                return Err(context(format!(
                    "extra key '{key}' not allowed (expected {{group: <group id>}})"
                )));
            }
            match map.get("group") {
                Some(Value::String(group)) => Ok(TrustedUser::Group(group.clone())),
                Some(other) => Err(context(format!(
                    "group must be a string (a group id), got {other}"
                ))),
                None => Err(context("required key 'group' not provided".to_owned())),
            }
        }
        other => Err(context(format!(
            "expected a user id or {{group: <group id>}}, got {other}"
        ))),
    }
}

fn de_trusted_users<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(IpNet, Vec<TrustedUser>)>, D::Error> {
    let map = match Value::deserialize(deserializer)? {
        Value::Object(map) => map,
        Value::Null => return Ok(Vec::new()),
        other => {
            return Err(D::Error::custom(format!(
                "trusted_users: expected a map of network -> users, got {other}"
            )));
        }
    };
    let mut out: Vec<(IpNet, Vec<TrustedUser>)> = Vec::new();
    for (key, value) in map {
        let network =
            parse_network(&key).map_err(|e| D::Error::custom(format!("trusted_users: {e}")))?;
        let users = ensure_list(value)
            .into_iter()
            .map(|item| trusted_user_from_value(&key, item))
            .collect::<Result<Vec<_>, D::Error>>()?;
        // Two spellings of one network (`10.0.0.1`, `10.0.0.1/32`): the later list wins, in the
        // earlier position (as Home Assistant's dict of parsed keys does).
        match out.iter_mut().find(|(n, _)| *n == network) {
            Some(entry) => entry.1 = users,
            None => out.push((network, users)),
        }
    }
    Ok(out)
}

fn de_lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    parse_lenient_bool(&Value::deserialize(deserializer)?)
        .map_err(|e| D::Error::custom(format!("allow_bypass_login: {e}")))
}

fn network_string_schema() -> Value {
    serde_json::json!({
        "type": "string",
        "description": "An IPv4/IPv6 network (`192.168.0.0/24`, `fd00::/8`) or a single address",
    })
}

fn networks_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            network_string_schema(),
            {"type": "array", "items": network_string_schema()},
            {"type": "null", "description": "No networks: the provider is never offered"},
        ]
    })
}

fn trusted_users_schema(_: &mut SchemaGenerator) -> Schema {
    let entry = serde_json::json!({
        "anyOf": [
            {
                "type": "string",
                "description": "A user id (UUID4, 32 hex characters)",
                "pattern": "^[0-9a-fA-F]{12}4[0-9a-fA-F]{3}[89abAB][0-9a-fA-F]{15}$",
            },
            {
                "type": "object",
                "properties": {"group": {"type": "string", "description": "A group id"}},
                "required": ["group"],
                "additionalProperties": false,
            },
        ]
    });
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "anyOf": [entry.clone(), {"type": "array", "items": entry}, {"type": "null"}]
        },
        "default": {},
    })
}

fn lenient_bool_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "boolean"},
            {"type": "number"},
            {
                "type": "string",
                "description": "true/false, yes/no, on/off, 1/0, enable/disable (any case)",
            },
        ],
        "default": false,
    })
}

impl fmt::Display for TrustedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustedUser::User(id) => f.write_str(id),
            TrustedUser::Group(id) => write!(f, "{{group: {id}}}"),
        }
    }
}
