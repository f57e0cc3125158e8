//! IndieAuth `client_id` and `redirect_uri` rules (http-api.md §8).

use std::net::IpAddr;

use url::{Host, Url};

/// The origin of the request being served: `(scheme, host, port)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestOrigin {
    /// `http` or `https`.
    pub scheme: String,
    /// Host as sent (lowercased).
    pub host: String,
    /// Port (default for the scheme when absent).
    pub port: u16,
}

fn parse(client_id: &str) -> Option<Url> {
    let url = Url::parse(client_id).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    Some(url)
}

/// Whether `client_id` is a valid IndieAuth client id for a request with `origin`.
pub fn verify_client_id(client_id: &str, origin: Option<&RequestOrigin>) -> bool {
    let Some(url) = parse(client_id) else {
        return false;
    };
    // Path segments "." and ".." are normalised away by the URL parser; look at the raw text.
    let raw_path = raw_path(client_id);
    if raw_path
        .split('/')
        .any(|segment| segment == "." || segment == ".." || segment.eq_ignore_ascii_case("%2e"))
    {
        return false;
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    match url.host() {
        None => false,
        Some(Host::Domain(_)) => true,
        Some(Host::Ipv4(v4)) => ip_allowed(IpAddr::V4(v4), &url, origin),
        Some(Host::Ipv6(v6)) => ip_allowed(IpAddr::V6(v6), &url, origin),
    }
}

fn raw_path(text: &str) -> &str {
    let after_scheme = text.split_once("://").map(|(_, rest)| rest).unwrap_or(text);
    let path_start = after_scheme
        .find('/')
        .map(|i| &after_scheme[i..])
        .unwrap_or("/");
    path_start.split(['?', '#']).next().unwrap_or("/")
}

fn ip_allowed(ip: IpAddr, url: &Url, origin: Option<&RequestOrigin>) -> bool {
    if auth_core::net::is_local(crate::net::canonical(ip)) {
        return true;
    }
    let Some(origin) = origin else { return false };
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_lowercase();
    let origin_host = origin
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_lowercase();
    url.scheme() == origin.scheme
        && host == origin_host
        && url.port_or_known_default() == Some(origin.port)
}

fn netloc(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_lowercase();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// Whether `redirect_uri` may receive codes for `client_id` (rules 1–3 and 5; published URIs are
/// passed in `published`, fetched by the caller when enabled).
pub fn verify_redirect_uri(
    client_id: &str,
    redirect_uri: &str,
    pkce_s256: bool,
    published: &[String],
) -> bool {
    if let (Some(client), Ok(redirect)) = (parse(client_id), Url::parse(redirect_uri))
        && client.scheme() == redirect.scheme()
        && netloc(&client) == netloc(&redirect)
    {
        return true;
    }
    if client_id == "https://home-assistant.io/iOS"
        && redirect_uri == "homeassistant://auth-callback"
    {
        return true;
    }
    if client_id == "https://home-assistant.io/android"
        && matches!(
            redirect_uri,
            "homeassistant://auth-callback"
                | "https://wear.googleapis.com/3p_auth/io.homeassistant.companion.android"
                | "https://wear.googleapis-cn.com/3p_auth/io.homeassistant.companion.android"
        )
    {
        return true;
    }
    if published.iter().any(|p| p == redirect_uri) {
        return true;
    }
    pkce_s256
        && published
            .iter()
            .any(|p| loopback_port_variant(p, redirect_uri))
}

/// RFC 8252 §7.3: two loopback `http` URIs that differ only in the port.
fn loopback_port_variant(published: &str, requested: &str) -> bool {
    let (Ok(a), Ok(b)) = (Url::parse(published), Url::parse(requested)) else {
        return false;
    };
    let loopback = |u: &Url| {
        u.scheme() == "http"
            && u.username().is_empty()
            && u.password().is_none()
            && u.fragment().is_none()
            && matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
            && u.port() != Some(0)
    };
    loopback(&a)
        && loopback(&b)
        && a.host_str() == b.host_str()
        && a.path() == b.path()
        && a.query() == b.query()
}

/// Whether a redirect URI uses a scheme the login page must never navigate to.
pub fn is_dangerous_redirect(redirect_uri: &str) -> bool {
    let lower = redirect_uri.trim().to_ascii_lowercase();
    ["javascript:", "data:", "vbscript:", "file:", "about:"]
        .iter()
        .any(|s| lower.starts_with(s))
}
