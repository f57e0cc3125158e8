//! Home Assistant's own login page, served from an unpacked `hass_frontend` directory (the
//! Python package `home-assistant-frontend`), set with [`HttpOptions::frontend_dir`]:
//!
//! * `/auth/authorize` is the directory's `authorize.html`, unchanged and not cached;
//! * `/frontend_latest/…`, `/frontend_es5/…` and `/static/…` are files below the folders of the
//!   same names, cached for 31 days like Home Assistant does (their names carry content hashes).
//!   When the browser accepts it, the package's precompressed `.br` or `.gz` twin is sent with
//!   `Content-Encoding`.
//!
//! A path is only ever joined from plain segments: empty, `.`, `..` and dot-file segments,
//! backslashes and NUL are refused (404), so no request reaches outside the directory. Symbolic
//! links inside the directory are followed: they are the operator's, like the files.
//!
//! [`HttpOptions::frontend_dir`]: crate::HttpOptions::frontend_dir

use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::{ApiError, AuthHttp};

/// The folders of the frontend package served below their own names.
pub const SERVED_FOLDERS: [&str; 3] = ["frontend_latest", "frontend_es5", "static"];

/// Cache lifetime of the served folders (Home Assistant: 31 days).
const CACHE_CONTROL: &str = "public, max-age=2678400";

pub(crate) fn routes(router: Router<AuthHttp>) -> Router<AuthHttp> {
    router
        .route("/frontend_latest/{*path}", get(frontend_latest))
        .route("/frontend_es5/{*path}", get(frontend_es5))
        .route("/static/{*path}", get(static_files))
}

/// Checks that `dir` looks like an unpacked `hass_frontend` (has `authorize.html`).
pub fn check_dir(dir: &Path) -> Result<(), String> {
    let page = dir.join("authorize.html");
    match std::fs::metadata(&page) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(format!("{} is not a file", page.display())),
        Err(error) => Err(format!(
            "{}: {error} (frontend_dir must be an unpacked hass_frontend directory of the \
             home-assistant-frontend package)",
            page.display()
        )),
    }
}

/// `GET /auth/authorize` from the frontend directory.
pub(crate) async fn authorize(dir: &Path) -> Response {
    page(dir, "authorize.html").await
}

/// Whether the frontend directory has the top-level page `name`.
pub(crate) async fn has_page(dir: &Path, name: &str) -> bool {
    is_file(&dir.join(name)).await
}

/// The top-level HTML page `name` of the frontend directory (`authorize.html`,
/// `onboarding.html`), never cached.
pub(crate) async fn page(dir: &Path, name: &str) -> Response {
    let path = dir.join(name);
    match tokio::fs::read(&path).await {
        Ok(body) => {
            let mut response = (StatusCode::OK, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "cannot read a page of the frontend");
            crate::views::internal_error().into_response()
        }
    }
}

async fn frontend_latest(
    State(http): State<AuthHttp>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    serve(&http, "frontend_latest", &path, &headers).await
}

async fn frontend_es5(
    State(http): State<AuthHttp>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    serve(&http, "frontend_es5", &path, &headers).await
}

async fn static_files(
    State(http): State<AuthHttp>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    serve(&http, "static", &path, &headers).await
}

/// `relative` (a decoded URL path below a served folder) as a relative file path, or `None`
/// when any segment is empty, `.`, `..`, starts with a dot, or holds `\`, `:` or NUL.
pub fn safe_relative(relative: &str) -> Option<PathBuf> {
    let mut path = PathBuf::new();
    for segment in relative.split('/') {
        let plain = !segment.is_empty()
            && !segment.starts_with('.')
            && !segment.contains(['\\', ':', '\0']);
        if !plain {
            return None;
        }
        path.push(segment);
    }
    Some(path)
}

/// The `Content-Type` of a served file, by extension.
pub fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match extension.as_str() {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "wasm" => "application/wasm",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

/// Whether `accept_encoding` allows `coding` (a `q=0` refuses it).
fn accepts(accept_encoding: &str, coding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        name.eq_ignore_ascii_case(coding) && !refused
    })
}

async fn is_file(path: &Path) -> bool {
    tokio::fs::metadata(path).await.is_ok_and(|m| m.is_file())
}

async fn serve(http: &AuthHttp, folder: &str, relative: &str, headers: &HeaderMap) -> Response {
    let Some(root) = http.options().frontend_dir.as_deref() else {
        return ApiError::Plain(StatusCode::NOT_FOUND).into_response();
    };
    let Some(relative) = safe_relative(relative) else {
        return ApiError::Plain(StatusCode::NOT_FOUND).into_response();
    };
    let path = root.join(folder).join(relative);
    let accept = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // The original decides the type; a precompressed twin only changes the encoding.
    let mut candidates: Vec<(PathBuf, Option<&'static str>)> = Vec::new();
    let compressible = !matches!(path.extension().and_then(|e| e.to_str()), Some("gz" | "br"));
    if compressible {
        for (suffix, coding) in [("br", "br"), ("gz", "gzip")] {
            if accepts(accept, coding) {
                let mut twin = path.clone().into_os_string();
                twin.push(".");
                twin.push(suffix);
                candidates.push((PathBuf::from(twin), Some(coding)));
            }
        }
    }
    candidates.push((path.clone(), None));
    for (candidate, coding) in candidates {
        if !is_file(&candidate).await {
            continue;
        }
        let body = match tokio::fs::read(&candidate).await {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(path = %candidate.display(), %error, "cannot read a frontend file");
                continue;
            }
        };
        let mut response = (StatusCode::OK, body).into_response();
        let out = response.headers_mut();
        out.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&path)),
        );
        out.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        );
        if compressible {
            out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        if let Some(coding) = coding {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        return response;
    }
    ApiError::Plain(StatusCode::NOT_FOUND).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_segments_are_joined() {
        assert_eq!(
            safe_relative("icons/favicon.ico"),
            Some(PathBuf::from("icons/favicon.ico"))
        );
        for bad in [
            "",
            "..",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/.",
            ".hidden",
            "a\\..\\b",
            "c:x",
            "a\0b",
            "/etc/passwd",
            "a/",
        ] {
            assert_eq!(safe_relative(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn types_by_extension() {
        for (name, expected) in [
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.JS", "text/javascript; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("a.json", "application/json"),
            ("a.js.map", "application/json"),
            ("a.svg", "image/svg+xml"),
            ("a.png", "image/png"),
            ("a.woff2", "font/woff2"),
            ("a.js.gz", "application/gzip"),
            ("a", "application/octet-stream"),
        ] {
            assert_eq!(content_type(Path::new(name)), expected, "{name}");
        }
    }

    #[test]
    fn accept_encoding() {
        assert!(accepts("gzip, deflate, br, zstd", "br"));
        assert!(accepts("gzip;q=0.5", "gzip"));
        assert!(!accepts("gzip;q=0", "gzip"));
        assert!(!accepts("deflate", "gzip"));
        assert!(!accepts("", "gzip"));
    }
}
