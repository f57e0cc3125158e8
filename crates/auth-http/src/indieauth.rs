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

/// Rules 1–5 of §8.1 (what Home Assistant's client-id parser accepts): http(s), no `.`/`..`
/// path segment, no fragment, no user info, a host.
fn parse_client_id(client_id: &str) -> Option<Url> {
    let url = parse(client_id)?;
    // Path segments "." and ".." are normalised away by the URL parser; look at the raw text.
    if raw_path(client_id)
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return None;
    }
    if url.fragment().is_some_and(|f| !f.is_empty())
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    url.host()?;
    Some(url)
}

/// Whether `client_id` is a valid IndieAuth client id for a request with `origin`.
pub fn verify_client_id(client_id: &str, origin: Option<&RequestOrigin>) -> bool {
    let Some(url) = parse_client_id(client_id) else {
        return false;
    };
    match url.host() {
        None => false,
        Some(Host::Domain(_)) => true,
        Some(Host::Ipv4(v4)) => ip_allowed(IpAddr::V4(v4), &url, origin),
        Some(Host::Ipv6(v6)) => ip_allowed(IpAddr::V6(v6), &url, origin),
    }
}

/// The scheme and the network location of a URL as written (both lowercased), the way Python's
/// `urlparse` splits them: no `//` after the scheme means an empty location.
fn scheme_and_netloc(text: &str) -> (String, String) {
    let valid_scheme = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    };
    let (scheme, rest) = match text.split_once(':') {
        Some((scheme, rest)) if valid_scheme(scheme) => (scheme.to_ascii_lowercase(), rest),
        _ => (String::new(), text),
    };
    let netloc = rest
        .strip_prefix("//")
        .and_then(|r| r.split(['/', '?', '#']).next())
        .unwrap_or_default()
        .to_lowercase();
    (scheme, netloc)
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

/// Whether `redirect_uri` may receive codes for `client_id` (rules 1–5; published URIs are passed
/// in `published`, fetched by the caller when enabled). An invalid `client_id` allows nothing.
pub fn verify_redirect_uri(
    client_id: &str,
    redirect_uri: &str,
    pkce_s256: bool,
    published: &[String],
) -> bool {
    if parse_client_id(client_id).is_none() {
        return false;
    }
    if scheme_and_netloc(client_id) == scheme_and_netloc(redirect_uri) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_scheme_and_location_as_written() {
        let allowed = [
            ("https://example.com/", "https://example.com/cb?x=1"),
            ("https://Example.COM/app", "https://example.com/other"),
            (
                "http://192.168.1.5:8123/",
                "http://192.168.1.5:8123/?auth_callback=1",
            ),
            ("http://example.com", "HTTP://example.com/cb"),
            (
                "https://home-assistant.io/iOS",
                "homeassistant://auth-callback",
            ),
            (
                "https://home-assistant.io/android",
                "homeassistant://auth-callback",
            ),
        ];
        for (client_id, redirect_uri) in allowed {
            assert!(
                verify_redirect_uri(client_id, redirect_uri, false, &[]),
                "{client_id} -> {redirect_uri}"
            );
        }
        let refused = [
            // The location is compared as written: a default port or user info makes it differ.
            ("https://example.com/", "https://example.com:443/cb"),
            ("https://example.com/", "https://user@example.com/cb"),
            ("https://example.com/", "http://example.com/cb"),
            ("https://example.com/", "https://example.com.evil/cb"),
            (
                "https://example.com/",
                "javascript://example.com/%0aalert(1)",
            ),
            ("https://example.com/", "//example.com/cb"),
            // An invalid client id allows nothing, even its own location.
            ("https://user@example.com/", "https://user@example.com/cb"),
            ("https://example.com/a/../b", "https://example.com/cb"),
            ("https://example.com/#frag", "https://example.com/cb"),
            ("ftp://example.com/", "ftp://example.com/cb"),
            ("https://home-assistant.io/iOS", "homeassistant://other"),
        ];
        for (client_id, redirect_uri) in refused {
            assert!(
                !verify_redirect_uri(client_id, redirect_uri, false, &[]),
                "{client_id} -> {redirect_uri}"
            );
        }
    }

    #[test]
    fn client_id_rules() {
        for valid in [
            "https://example.com",
            "https://example.com/%2e/x",
            "https://example.com/#",
            "http://127.0.0.1:8123/",
            "http://[::1]/",
        ] {
            assert!(verify_client_id(valid, None), "{valid}");
        }
        for invalid in [
            "https://example.com/./x",
            "https://example.com/../x",
            "https://example.com/#f",
            "https://u:p@example.com/",
            "https://example.com:99999/",
            "file:///etc/passwd",
            "http://8.8.8.8/",
        ] {
            assert!(!verify_client_id(invalid, None), "{invalid}");
        }
    }
}
