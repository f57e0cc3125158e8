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

/// Whether `ip` lies in one of `networks`; an IPv4-mapped address also matches the IPv4 networks
/// that hold its IPv4 form.
pub fn in_networks(ip: IpAddr, networks: &[IpNet]) -> bool {
    let ip = canonical(ip);
    let unmapped = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    networks
        .iter()
        .any(|n| n.contains(&ip) || unmapped.is_some_and(|v4| n.contains(&v4)))
}

/// IPv4-mapped IPv6 addresses as plain IPv4, except link-local ones (`::ffff:169.254.0.0/16`):
/// those stay IPv6 because Home Assistant does not count them as local while it does count
/// `169.254.0.0/16` (tokens.md §6), and the client address decides local-only access.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) if !v4.is_link_local() => IpAddr::V4(v4),
            _ => IpAddr::V6(v6),
        },
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
    let text = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let text: String = decode_until_stable(&text)
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

/// `text` percent-decoded (invalid UTF-8 replaced by U+FFFD) again and again until it stops
/// changing, as HA's security filter does.
///
/// Each round decodes every `%XX` and turns the bytes of each run of adjacent ones into text;
/// a round that changes nothing leaves no `%XX` behind. Rounds are simulated exactly, but only
/// where something can change: every `%XX` of a round holds a character the previous round
/// produced, so a round only looks at the (at most two) characters before each new one. Each
/// `%XX` shrinks the text by at least two characters, so the work is about linear in the
/// length (rounds over the whole text would be quadratic: `%25252525…` needs one round per `25`).
pub fn decode_until_stable(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let len = chars.len();
    // A doubly linked list over `chars`; `len` is the end (and "no previous") marker. Nodes are
    // only ever unlinked or overwritten, so list order stays index order.
    let mut next: Vec<usize> = (1..=len).collect();
    let mut prev: Vec<usize> = (0..len).map(|i| if i == 0 { len } else { i - 1 }).collect();
    let hex = |c: char| c.to_digit(16).map(|d| d as u8);
    let mut candidates: Vec<usize> = (0..len).filter(|&i| chars[i] == '%').collect();
    loop {
        candidates.sort_unstable();
        candidates.dedup();
        // Every `%XX` of this round: (first node, last node, byte).
        let mut escapes = Vec::new();
        for &at in &candidates {
            if chars[at] != '%' {
                continue;
            }
            let high = next[at];
            let low = if high < len { next[high] } else { len };
            if low < len
                && let (Some(h), Some(l)) = (hex(chars[high]), hex(chars[low]))
            {
                escapes.push((at, low, h << 4 | l));
            }
        }
        if escapes.is_empty() {
            break;
        }
        let mut produced = Vec::new();
        let mut start = 0;
        while start < escapes.len() {
            let mut end = start;
            while end + 1 < escapes.len() && next[escapes[end].1] == escapes[end + 1].0 {
                end += 1;
            }
            let bytes: Vec<u8> = escapes[start..=end].iter().map(|e| e.2).collect();
            let after = next[escapes[end].1];
            // Write the run's text over its first nodes and unlink the rest (the text is never
            // longer than the run: one character at most per escape).
            let mut node = escapes[start].0;
            let mut last = len;
            for c in String::from_utf8_lossy(&bytes).chars() {
                chars[node] = c;
                produced.push(node);
                last = node;
                node = next[node];
            }
            next[last] = after;
            if after < len {
                prev[after] = last;
            }
            start = end + 1;
        }
        candidates.clear();
        for node in produced {
            candidates.push(node);
            let before = prev[node];
            if before < len {
                candidates.push(before);
                if prev[before] < len {
                    candidates.push(prev[before]);
                }
            }
        }
    }
    let mut out = String::with_capacity(len);
    let mut node = if len == 0 { len } else { 0 };
    while node < len {
        out.push(chars[node]);
        node = next[node];
    }
    out
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

/// The scheme and host a client used to reach this server: the `Host` header over plain HTTP,
/// or, for a request forwarded by a trusted proxy, `X-Forwarded-Proto` and `X-Forwarded-Host`
/// (so that a TLS-terminating proxy gets `https://` URLs in the well-known documents).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestBase {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// Host and optional port as the client wrote them; `None` without a usable `Host`.
    pub host: Option<String>,
}

/// Request extension set by a server that terminates TLS itself (`http: ssl_certificate`), so
/// that absolute URLs (issuer, well-known documents) say `https`.
#[derive(Clone, Copy, Debug)]
pub struct ServedOverTls;

impl RequestBase {
    /// Reads the base from `headers`; forwarded headers count only when `via_trusted_proxy`.
    pub fn resolve(headers: &HeaderMap, via_trusted_proxy: bool) -> Self {
        Self::resolve_for(headers, via_trusted_proxy, false)
    }

    /// Like [`RequestBase::resolve`] for a request that arrived over TLS when `tls` (the
    /// scheme is then `https` unless a trusted proxy says otherwise).
    pub fn resolve_for(headers: &HeaderMap, via_trusted_proxy: bool, tls: bool) -> Self {
        let mut base = Self {
            scheme: if tls { "https" } else { "http" },
            host: request_host(headers).filter(|h| is_authority(h)),
        };
        if via_trusted_proxy {
            match last_forwarded(headers, "x-forwarded-proto")
                .map(|p| p.to_ascii_lowercase())
                .as_deref()
            {
                Some("https") => base.scheme = "https",
                Some("http") => base.scheme = "http",
                _ => {}
            }
            if let Some(host) =
                last_forwarded(headers, "x-forwarded-host").filter(|h| is_authority(h))
            {
                base.host = Some(host);
            }
        }
        base
    }

    /// The base the request pipeline settled on for `request` (or the plain one without it).
    pub fn of<B>(request: &Request<B>) -> Self {
        request
            .extensions()
            .get::<Self>()
            .cloned()
            .unwrap_or_else(|| Self::resolve(request.headers(), false))
    }

    /// `scheme://host`, when the host is known.
    pub fn url(&self) -> Option<String> {
        self.host
            .as_ref()
            .map(|host| format!("{}://{host}", self.scheme))
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestBase {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Self>()
            .cloned()
            .unwrap_or_else(|| Self::resolve(&parts.headers, false)))
    }
}

/// The value the nearest proxy added to a comma-separated forwarded header (one header only).
fn last_forwarded(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let last = value.to_str().ok()?.rsplit(',').next()?.trim();
    (!last.is_empty()).then(|| last.to_owned())
}

/// Whether `text` is a bare `host[:port]` (no user info, path or spaces).
fn is_authority(text: &str) -> bool {
    !text.is_empty()
        && !text.contains(['/', '@', '?', '#', ' ', '\\'])
        && url::Url::parse(&format!("http://{text}/"))
            .ok()
            .is_some_and(|u| u.host_str().is_some())
}
