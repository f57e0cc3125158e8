//! The pages a browser sees: our login page at `/auth/authorize` and onboarding page at
//! `/onboarding.html` (or Home Assistant's own, see [`crate::frontend`]), a landing page at `/`
//! and the profile page at `/profile`.
//!
//! They are small, accessible and dependency-free: plain HTML, CSS and JavaScript files under
//! `src/web/`, compiled in with `include_str!`. The scripts are separate files under
//! `/auth/static/`, so the pages carry a strict [`CONTENT_SECURITY_POLICY`] (`script-src 'self'`,
//! nothing inline, no other origin). Every response is `Cache-Control: no-store`.
//!
//! * `/auth/authorize` renders any login flow from its `data_schema` (provider picker, fields,
//!   errors, the `select_mfa_module`, `mfa` and `mfa_setup` steps with the QR code and secret of
//!   an enrolment, "Step 1 of 2" of a required chain, abort reasons, keep me logged in), then
//!   sends the browser to `redirect_uri` with `code`, `state` and `storeToken` (http-api.md §11).
//! * `/onboarding.html` (where the login page sends the browser while there is no owner) creates
//!   the owner with `POST /api/onboarding/users` and signs them in: back to the client that sent
//!   the browser when its `redirect_uri` is on the client's origin, else to `/profile`.
//! * `/` and `/profile` are one page, an OAuth client of this server with
//!   `client_id = <origin>/`: it links to the login page with a random `state`, exchanges the
//!   code that comes back, keeps the tokens in `sessionStorage` (the refresh token only with
//!   "keep me logged in") and shows the profile over the websocket API: the user, MFA modules
//!   to enable (`auth/setup_mfa`) or disable (`auth/depose_mfa`), refresh tokens to revoke
//!   (`auth/delete_refresh_token`), and sign out (`POST /auth/revoke`).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::{AuthHttp, frontend, views};

/// Our login page.
pub const AUTHORIZE_HTML: &str = include_str!("web/authorize.html");
/// The landing and profile page.
pub const APP_HTML: &str = include_str!("web/app.html");
/// Our onboarding page: creates the owner, then signs them in.
pub const ONBOARDING_HTML: &str = include_str!("web/onboarding.html");

/// Files under `/auth/static/`: (name, content type, body).
pub const STATIC_FILES: [(&str, &str, &str); 6] = [
    (
        "hass-auth.css",
        "text/css; charset=utf-8",
        include_str!("web/hass-auth.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("web/common.js"),
    ),
    (
        "authorize.js",
        "text/javascript; charset=utf-8",
        include_str!("web/authorize.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("web/app.js"),
    ),
    (
        "onboarding.js",
        "text/javascript; charset=utf-8",
        include_str!("web/onboarding.js"),
    ),
    (
        "webauthn.js",
        "text/javascript; charset=utf-8",
        include_str!("web/webauthn.js"),
    ),
];

/// The policy of our pages: their own scripts, styles and API only; images from this origin or
/// `data:` (the TOTP QR code); no plugins, no `<base>`, forms post only here.
/// `frame-ancestors 'self'` is added when `X-Frame-Options` is on.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     base-uri 'none'";

/// The sign-in pages (and [`frontend`]'s routes when a frontend directory is configured).
pub(crate) fn sign_in_router(http: &AuthHttp) -> Router<AuthHttp> {
    let router = Router::new()
        .route("/auth/authorize", get(authorize))
        .route("/onboarding.html", get(onboarding))
        .route("/auth/static/{file}", get(static_file));
    match &http.options().frontend_dir {
        Some(_) => frontend::routes(router),
        None => router,
    }
}

/// The landing and profile page.
pub(crate) fn home_router() -> Router<AuthHttp> {
    Router::new()
        .route("/", get(app))
        .route("/profile", get(app))
}

/// `GET /auth/authorize`: Home Assistant's page from the frontend directory, else ours.
pub async fn authorize(State(http): State<AuthHttp>) -> Response {
    match &http.options().frontend_dir {
        Some(dir) => frontend::authorize(dir).await,
        None => page(&http, AUTHORIZE_HTML),
    }
}

/// `GET /onboarding.html`: Home Assistant's onboarding page when the frontend directory has one,
/// else ours. Both ask `/api/onboarding` whether the owner still has to be created.
pub async fn onboarding(State(http): State<AuthHttp>) -> Response {
    match &http.options().frontend_dir {
        Some(dir) if frontend::has_page(dir, "onboarding.html").await => {
            frontend::page(dir, "onboarding.html").await
        }
        _ => page(&http, ONBOARDING_HTML),
    }
}

/// `GET /` and `GET /profile`.
pub async fn app(State(http): State<AuthHttp>) -> Response {
    page(&http, APP_HTML)
}

/// `GET /auth/static/{file}`.
pub async fn static_file(State(http): State<AuthHttp>, Path(file): Path<String>) -> Response {
    match STATIC_FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => respond(&http, content_type, body),
        None => views::not_found().await,
    }
}

fn page(http: &AuthHttp, html: &'static str) -> Response {
    respond(http, "text/html; charset=utf-8", html)
}

fn respond(http: &AuthHttp, content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let policy = if http.options().use_x_frame_options {
        HeaderValue::from_str(&format!(
            "{CONTENT_SECURITY_POLICY}; frame-ancestors 'self'"
        ))
    } else {
        HeaderValue::from_str(CONTENT_SECURITY_POLICY)
    };
    if let Ok(policy) = policy {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}
