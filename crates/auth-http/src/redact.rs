//! What a log line may show of a request URL: never a login flow id (it lets anyone read and
//! drive a sign-in), an authorization code, an `authSig` or any other query value.

/// Paths whose last segment is a flow id.
const FLOW_PATHS: [&str; 1] = ["/auth/login_flow/"];

/// `url` (path and optional query) with flow ids replaced by `{flow_id}` and every query value
/// by `…`; parameter names are kept so the log still says what kind of request it was.
pub fn loggable_url(url: &str) -> String {
    let (path, query) = match url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (url, None),
    };
    let mut out = loggable_path(path);
    if let Some(query) = query {
        out.push('?');
        let names: Vec<&str> = query
            .split('&')
            .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
            .collect();
        out.push_str(
            &names
                .iter()
                .map(|name| format!("{name}=…"))
                .collect::<Vec<_>>()
                .join("&"),
        );
    }
    out
}

/// `path` with a flow id replaced by `{flow_id}`.
pub fn loggable_path(path: &str) -> String {
    for prefix in FLOW_PATHS {
        if let Some(rest) = path.strip_prefix(prefix)
            && !rest.is_empty()
        {
            return format!("{prefix}{{flow_id}}");
        }
    }
    path.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_flow_ids_and_query_values() {
        assert_eq!(
            loggable_url("/auth/login_flow/0123abcd"),
            "/auth/login_flow/{flow_id}"
        );
        assert_eq!(
            loggable_url("/api/camera?token=x&authSig=eyJ.a.b&width"),
            "/api/camera?token=…&authSig=…&width=…"
        );
        assert_eq!(loggable_url("/auth/token"), "/auth/token");
        assert_eq!(loggable_url("/auth/login_flow"), "/auth/login_flow");
    }
}
