//! The browser pages: our login page, the landing/profile page and their static files; Home
//! Assistant's own login page and frontend files from a `frontend_dir`.

use std::path::Path;

use auth_http::{AuthHttp, HttpOptions, SetupError};
use auth_testkit::TempConfig;
use auth_testkit::http::{Request, Response};

use crate::harness::{Server, Setup, start};

fn assert_page_headers(response: &Response, content_type: &str) {
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some(content_type));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(response.header("x-frame-options"), Some("SAMEORIGIN"));
    let policy = response
        .header("content-security-policy")
        .expect("a content security policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "frame-ancestors 'self'",
    ] {
        assert!(policy.contains(directive), "{directive} missing: {policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
}

/// `src="…"` and `href="…"` values of a page.
fn references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (start, _) in html.match_indices(attribute) {
            let rest = &html[start + attribute.len()..];
            found.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    found
}

#[tokio::test]
async fn our_pages_are_self_contained_and_strictly_confined() {
    let server = start(Setup::default()).await;
    for (path, title) in [
        ("/auth/authorize?client_id=x&redirect_uri=y", "Sign in"),
        ("/", "Profile"),
        ("/profile", "Profile"),
        ("/onboarding.html", "Create the owner account"),
    ] {
        let page = server.send(Request::get(path)).await;
        assert_page_headers(&page, "text/html; charset=utf-8");
        let html = page.text();
        assert!(html.contains(&format!("<title>{title}")), "{path}: {html}");
        // Nothing inline that the policy would block: scripts and styles are files.
        assert!(!html.contains("<style"), "{path}");
        assert!(!html.contains(" style="), "{path}");
        let handler = html.match_indices(" on").any(|(i, _)| {
            let rest = &html[i + 3..];
            let name = rest.len()
                - rest
                    .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                    .len();
            name > 0 && rest[name..].starts_with('=')
        });
        assert!(!handler, "{path}: inline event handler");
        for script in html.match_indices("<script").map(|(i, _)| &html[i..]) {
            let tag = &script[..script.find('>').unwrap()];
            assert!(tag.contains(" src=\"/auth/static/"), "{path}: {tag}");
        }
        let referenced = references(&html);
        assert!(referenced.iter().any(|r| r.ends_with(".js")), "{path}");
        for reference in referenced.iter().filter(|r| r.starts_with("/auth/static/")) {
            let file = server.send(Request::get(reference)).await;
            let expected = if reference.ends_with(".css") {
                "text/css; charset=utf-8"
            } else {
                "text/javascript; charset=utf-8"
            };
            assert_page_headers(&file, expected);
        }
    }
    let missing = server.send(Request::get("/auth/static/nope.js")).await;
    assert_eq!(missing.status, 404);
    // The login page's script drives the login flow API, the profile the websocket API.
    let script = server
        .send(Request::get("/auth/static/authorize.js"))
        .await
        .text();
    assert!(script.contains("/auth/login_flow"));
    let app = server
        .send(Request::get("/auth/static/app.js"))
        .await
        .text();
    for needle in [
        "/api/websocket",
        "auth/current_user",
        "auth/setup_mfa",
        "auth/depose_mfa",
        "auth/refresh_tokens",
        "auth/delete_refresh_token",
        "/auth/revoke",
        "sessionStorage",
    ] {
        assert!(app.contains(needle), "{needle}");
    }
    // The onboarding page asks for the user step, creates the owner, then signs them in.
    let onboarding = server
        .send(Request::get("/auth/static/onboarding.js"))
        .await
        .text();
    for needle in [
        "/api/onboarding",
        "/api/onboarding/users",
        "hass-auth.pending-state",
    ] {
        assert!(onboarding.contains(needle), "{needle}");
    }
    // No frontend directory: its folders are not served.
    for path in ["/frontend_latest/app.js", "/static/icons/favicon.ico"] {
        assert_eq!(server.send(Request::get(path)).await.status, 404, "{path}");
    }
}

#[tokio::test]
async fn without_x_frame_options_the_policy_allows_framing() {
    let mut setup = Setup::default();
    setup.options.use_x_frame_options = false;
    let server = start(setup).await;
    let page = server.send(Request::get("/profile")).await;
    let policy = page.header("content-security-policy").unwrap();
    assert!(!policy.contains("frame-ancestors"), "{policy}");
    assert_eq!(page.header("x-frame-options"), None);
}

/// A small stand-in for an unpacked `hass_frontend`, inside `root/hass_frontend`; `root` also
/// holds a file that must never be served.
fn fake_frontend(root: &Path) -> std::path::PathBuf {
    let dir = root.join("hass_frontend");
    let files: [(&str, &[u8]); 12] = [
        (
            "authorize.html",
            b"<!DOCTYPE html><title>Home Assistant</title><ha-authorize></ha-authorize>",
        ),
        ("index.html", b"{{ theme_color }}"),
        (
            "frontend_latest/authorize.0123abcd.js",
            b"console.log('latest')",
        ),
        (
            "frontend_latest/authorize.0123abcd.js.gz",
            b"\x1f\x8bgzipped",
        ),
        ("frontend_latest/authorize.0123abcd.js.map", b"{}"),
        ("frontend_es5/authorize.4567.js", b"console.log('es5')"),
        ("static/icons/favicon-192x192.png", b"\x89PNG"),
        ("static/fonts/roboto/Roboto-Regular.woff2", b"wOF2"),
        ("static/translations/page-authorize/en.json", b"{\"a\":1}"),
        ("static/images/logo.svg", b"<svg/>"),
        ("static/style.css", b"body{}"),
        ("static/.hidden", b"hidden"),
    ];
    for (name, body) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    std::fs::write(root.join("secret.txt"), "outside").unwrap();
    std::fs::write(dir.join("secret.txt"), "not in a served folder").unwrap();
    dir
}

async fn frontend_server() -> (Server, TempConfig) {
    let root = TempConfig::empty();
    let mut setup = Setup::default();
    setup.options.frontend_dir = Some(fake_frontend(root.path()));
    (start(setup).await, root)
}

#[tokio::test]
async fn onboarding_page_is_home_assistants_when_the_frontend_has_one_else_ours() {
    let (server, root) = frontend_server().await;
    // The fake frontend has no onboarding page: ours, under our policy.
    let ours = server.send(Request::get("/onboarding.html")).await;
    assert_page_headers(&ours, "text/html; charset=utf-8");
    assert!(ours.text().contains("<title>Create the owner account"));
    std::fs::write(
        root.path().join("hass_frontend/onboarding.html"),
        "<!DOCTYPE html><title>Home Assistant</title><ha-onboarding></ha-onboarding>",
    )
    .unwrap();
    let theirs = server.send(Request::get("/onboarding.html")).await;
    assert_eq!(theirs.status, 200);
    assert_eq!(theirs.header("cache-control"), Some("no-store"));
    assert!(
        theirs.text().contains("<ha-onboarding>"),
        "{}",
        theirs.text()
    );
    assert_eq!(theirs.header("content-security-policy"), None);
}

#[tokio::test]
async fn frontend_dir_serves_home_assistants_login_page_and_files() {
    let (server, _root) = frontend_server().await;
    let page = server
        .send(Request::get("/auth/authorize?client_id=x&redirect_uri=y"))
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(page.text().contains("<ha-authorize>"), "{}", page.text());
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    // Home Assistant's page has inline scripts: our policy is not put on it.
    assert_eq!(page.header("content-security-policy"), None);
    for (path, content_type, body) in [
        (
            "/frontend_latest/authorize.0123abcd.js",
            "text/javascript; charset=utf-8",
            &b"console.log('latest')"[..],
        ),
        (
            "/frontend_latest/authorize.0123abcd.js.map",
            "application/json",
            b"{}",
        ),
        (
            "/frontend_latest/authorize.0123abcd.js.gz",
            "application/gzip",
            b"\x1f\x8bgzipped",
        ),
        (
            "/frontend_es5/authorize.4567.js",
            "text/javascript; charset=utf-8",
            b"console.log('es5')",
        ),
        ("/static/icons/favicon-192x192.png", "image/png", b"\x89PNG"),
        (
            "/static/fonts/roboto/Roboto-Regular.woff2",
            "font/woff2",
            b"wOF2",
        ),
        (
            "/static/translations/page-authorize/en.json",
            "application/json",
            b"{\"a\":1}",
        ),
        ("/static/images/logo.svg", "image/svg+xml", b"<svg/>"),
        ("/static/style.css", "text/css; charset=utf-8", b"body{}"),
    ] {
        let response = server.send(Request::get(path)).await;
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "{path}"
        );
        assert_eq!(response.body, body, "{path}");
        assert_eq!(
            response.header("cache-control"),
            Some("public, max-age=2678400"),
            "{path}"
        );
        assert_eq!(response.header("content-encoding"), None, "{path}");
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    }
    // A browser that accepts gzip gets the package's precompressed twin.
    let gzipped = server
        .send(
            Request::get("/frontend_latest/authorize.0123abcd.js")
                .header("Accept-Encoding", "gzip, deflate, br"),
        )
        .await;
    assert_eq!(gzipped.status, 200);
    assert_eq!(
        gzipped.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert_eq!(gzipped.header("vary"), Some("Accept-Encoding"));
    assert_eq!(gzipped.body, b"\x1f\x8bgzipped");
    let refused = server
        .send(
            Request::get("/frontend_latest/authorize.0123abcd.js")
                .header("Accept-Encoding", "gzip;q=0"),
        )
        .await;
    assert_eq!(refused.header("content-encoding"), None);
    // HEAD works like GET without a body.
    let head = server.send(Request::new("HEAD", "/static/style.css")).await;
    assert_eq!(
        (head.status, head.header("content-type")),
        (200, Some("text/css; charset=utf-8"))
    );
    // Our own pages stay where they are.
    assert_eq!(server.send(Request::get("/profile")).await.status, 200);
    assert_eq!(
        server
            .send(Request::get("/auth/static/app.js"))
            .await
            .status,
        200
    );
    for missing in [
        "/static/nope.js",
        "/static/icons",
        "/static/icons/",
        "/frontend_latest/",
        "/index.html",
        "/secret.txt",
    ] {
        assert_eq!(
            server.send(Request::get(missing)).await.status,
            404,
            "{missing}"
        );
    }
}

#[tokio::test]
async fn frontend_dir_refuses_directory_traversal() {
    let (server, _root) = frontend_server().await;
    // Rejected by the request filter (a `../` after decoding) or by the file server (segments
    // that are not plain names); either way nothing outside the served folders comes back.
    for path in [
        "/static/../secret.txt",
        "/static/../../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E%2Fsecret.txt",
        "/static/..%2f..%2fsecret.txt",
        "/static/%252e%252e%252fsecret.txt",
        "/static/icons/..%5c..%5csecret.txt",
        "/static/..\\secret.txt",
        "/static/..",
        "/static/%2e%2e",
        "/static/icons/%2e%2e",
        "/static/.hidden",
        "/static/%2ehidden",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/icons/.",
        "/static/icons/./favicon-192x192.png",
        "/static/c:%5cwindows",
        "/static/a%00b",
        "/frontend_latest/..",
        "/frontend_es5/%2e%2e",
    ] {
        let response = server.send(Request::get(path)).await;
        assert!(
            matches!(response.status, 400 | 404),
            "{path}: {} {}",
            response.status,
            response.text()
        );
        let body = response.text();
        assert!(
            !body.contains("outside")
                && !body.contains("not in a served folder")
                && !body.contains("hidden")
                && !body.contains("root:"),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn frontend_dir_without_authorize_html_is_refused_at_setup() {
    let config = TempConfig::empty();
    let manager = auth_core::AuthManager::builder(config.storage())
        .build()
        .await
        .unwrap();
    let empty = TempConfig::empty();
    let options = HttpOptions {
        frontend_dir: Some(empty.path().to_path_buf()),
        ..HttpOptions::default()
    };
    let error = AuthHttp::new(manager, options, None).await.unwrap_err();
    assert!(matches!(error, SetupError::Frontend(_)), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with("frontend_dir: ")
            && text.contains("authorize.html")
            && text.contains("hass_frontend"),
        "{text}"
    );
}
