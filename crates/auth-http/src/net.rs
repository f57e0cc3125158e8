//! The client's address (with trusted-proxy handling) and Home Assistant's request filter.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request};
use ipnet::IpNet;

use crate::error::ApiError;

/// Where a request came from, as the handlers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client IP (`None` when the transport gives none).
    pub ip: Option<IpAddr>,
    /// Whether the IP was taken from `X-Forwarded-For` of a trusted proxy.
    pub via_proxy: bool,
    /// The address the request was sent to, when known.
    pub local: Option<SocketAddr>,
}

/// The address the server accepted the connection on (inserted by the server per connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalAddr(pub SocketAddr);

/// Whether `ip` lies in one of `networks`.
pub fn in_networks(ip: IpAddr, networks: &[IpNet]) -> bool {
    let ip = canonical(ip);
    networks.iter().any(|n| n.contains(&ip))
}

/// IPv4-mapped IPv6 addresses as plain IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Resolves the client address: the peer, or (from a trusted proxy) the last untrusted hop of
/// `X-Forwarded-For`. A forwarded header the config does not expect is a 400, as in HA.
pub fn resolve_client<B>(
    request: &Request<B>,
    use_x_forwarded_for: bool,
    trusted_proxies: &[IpNet],
) -> Result<ClientAddr, ApiError> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| canonical(c.0.ip()));
    let local = request.extensions().get::<LocalAddr>().map(|l| l.0);
    let forwarded: Vec<_> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .collect();
    let Some(peer_ip) = peer else {
        return Ok(ClientAddr {
            ip: None,
            via_proxy: false,
            local,
        });
    };
    if forwarded.is_empty() {
        return Ok(ClientAddr {
            ip: Some(peer_ip),
            via_proxy: false,
            local,
        });
    }
    if !use_x_forwarded_for {
        tracing::error!(%peer_ip, "a request from a reverse proxy was received, but http: is not set up for reverse proxies");
        return Err(ApiError::Plain(axum::http::StatusCode::BAD_REQUEST));
    }
    if !in_networks(peer_ip, trusted_proxies) {
        tracing::error!(%peer_ip, "received X-Forwarded-For from an untrusted proxy");
        return Err(ApiError::Plain(axum::http::StatusCode::BAD_REQUEST));
    }
    if forwarded.len() > 1 {
        return Err(ApiError::Plain(axum::http::StatusCode::BAD_REQUEST));
    }
    let text = forwarded[0]
        .to_str()
        .map_err(|_| ApiError::Plain(axum::http::StatusCode::BAD_REQUEST))?;
    let mut hops = Vec::new();
    for part in text.split(',') {
        let ip: IpAddr = part
            .trim()
            .parse()
            .map_err(|_| ApiError::Plain(axum::http::StatusCode::BAD_REQUEST))?;
        hops.push(canonical(ip));
    }
    let client = hops
        .iter()
        .rev()
        .find(|ip| !in_networks(**ip, trusted_proxies))
        .or(hops.first())
        .copied();
    Ok(ClientAddr {
        ip: client.or(Some(peer_ip)),
        via_proxy: true,
        local,
    })
}

/// Whether HA's security filter rejects this path and query (http-api.md §1a).
pub fn is_unsafe_request(path: &str, query: Option<&str>) -> bool {
    let mut text = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    for _ in 0..10 {
        let decoded = percent_encoding::percent_decode_str(&text)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == text {
            break;
        }
        text = decoded;
    }
    let text: String = text
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect::<String>()
        .to_lowercase();
    if text.contains("proc/self/environ") || text.contains("../") {
        return true;
    }
    if let Some(open) = find_any(&text, &["<", "%3c"], 0)
        && let Some(script) = text[open..].find("script")
        && find_any(&text, &[">", "%3e"], open + script + 6).is_some()
    {
        return true;
    }
    if let Some(union) = text.find("union") {
        if let Some(select) = text[union..].find("select")
            && text[union + select..].contains('(')
        {
            return true;
        }
        if let Some(all) = text[union..].find("all")
            && text[union + all..].contains("select")
        {
            return true;
        }
    }
    if let Some(concat) = text.find("concat")
        && text[concat..].contains('(')
    {
        return true;
    }
    has_path_injection(text.as_bytes())
}

fn find_any(text: &str, needles: &[&str], from: usize) -> Option<usize> {
    needles
        .iter()
        .filter_map(|n| text.get(from..).and_then(|t| t.find(n)).map(|i| from + i))
        .min()
}

/// A word character, `=`, `/`, then at least one `[a-z0-9_.]` followed by `/` (e.g. `?v=/.//x`).
fn has_path_injection(bytes: &[u8]) -> bool {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let is_path = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.';
    (0..bytes.len().saturating_sub(4)).any(|i| {
        is_word(bytes[i])
            && bytes[i + 1] == b'='
            && bytes[i + 2] == b'/'
            && is_path(bytes[i + 3])
            && bytes[i + 4] == b'/'
    })
}

/// The `Host` header's host and port, for same-origin and base-URL decisions.
pub fn request_host(headers: &HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
}
