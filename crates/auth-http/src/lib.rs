//! Home Assistant's `/auth` HTTP API as an axum router, so Home Assistant's own login page and
//! clients work against hass-auth unchanged (see `spec/http-api.md`).
//!
//! ```no_run
//! # async fn demo(manager: auth_core::AuthManager) -> Result<(), Box<dyn std::error::Error>> {
//! let http = auth_http::AuthHttp::new(manager, auth_http::HttpOptions::default(), None).await?;
//! let app = axum::Router::new().merge(http.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8123").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! This is the only crate that knows HTTP and the API's JSON shapes; [`error::ApiError`] is the
//! one place where errors become responses.

#![forbid(unsafe_code)]

pub mod ban_file;
pub mod bans;
pub mod body;
pub mod error;
pub mod external;
pub mod frontend;
pub mod indieauth;
pub mod net;
pub mod onboarding;
pub mod options;
pub mod page;
mod redact;
pub mod signed;
mod views;
pub mod websocket;

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;

use auth_core::{AuthManager, RefreshToken, StorageError, User};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::FutureExt;

pub use bans::Bans;
pub use error::ApiError;
pub use indieauth_fetch;
pub use net::{ClientAddr, LocalAddr};
pub use onboarding::Onboarding;
pub use options::HttpOptions;

/// Why the HTTP layer could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A store it needs could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// `frontend_dir` is not an unpacked `hass_frontend` directory.
    #[error("frontend_dir: {0}")]
    Frontend(String),
    /// The client redirect-URI fetcher could not be set up (e.g. its certificates).
    #[error("fetch_client_redirect_uris: {0}")]
    RedirectUriFetch(#[from] indieauth_fetch::SetupError),
}

/// The identity a request was authenticated as.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// The user.
    pub user: User,
    /// The refresh token behind the access token or signed path.
    pub refresh_token: Arc<RefreshToken>,
}

/// Everything the views share. Cheap to clone.
#[derive(Clone)]
pub struct AuthHttp {
    inner: Arc<Shared>,
}

struct Shared {
    manager: AuthManager,
    options: HttpOptions,
    bans: Bans,
    onboarding: Onboarding,
    signing_secret: String,
    onboarding_lock: tokio::sync::Mutex<()>,
    redirect_uri_fetcher: Option<indieauth_fetch::RedirectUriFetcher>,
}

impl std::fmt::Debug for AuthHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthHttp")
            .field("manager", &self.inner.manager)
            .finish_non_exhaustive()
    }
}

impl AuthHttp {
    /// The HTTP layer over `manager`; `config_dir` holds `ip_bans.yaml` (no ban file when `None`).
    pub async fn new(
        manager: AuthManager,
        options: HttpOptions,
        config_dir: Option<PathBuf>,
    ) -> Result<Self, SetupError> {
        if let Some(dir) = &options.frontend_dir {
            frontend::check_dir(dir).map_err(SetupError::Frontend)?;
        }
        let owner_exists = manager.owner().is_some();
        let onboarding = Onboarding::load(manager.store().storage().clone(), owner_exists).await?;
        let bans = Bans::new(
            &options,
            config_dir.map(|d| d.join("ip_bans.yaml")),
            manager.clock().clone(),
        );
        bans.share(manager.store().storage()).await?;
        let signing_secret = auth_core::rng::random_hex(manager.rng().as_ref(), 32);
        let redirect_uri_fetcher = if options.fetch_client_redirect_uris {
            Some(indieauth_fetch::RedirectUriFetcher::new(
                options.redirect_uri_fetch.clone(),
            )?)
        } else {
            None
        };
        Ok(Self {
            inner: Arc::new(Shared {
                manager,
                options,
                bans,
                onboarding,
                signing_secret,
                onboarding_lock: tokio::sync::Mutex::new(()),
                redirect_uri_fetcher,
            }),
        })
    }

    /// The auth manager.
    pub fn manager(&self) -> &AuthManager {
        &self.inner.manager
    }

    /// The HTTP options.
    pub fn options(&self) -> &HttpOptions {
        &self.inner.options
    }

    /// The ban manager.
    pub fn bans(&self) -> &Bans {
        &self.inner.bans
    }

    /// Onboarding progress.
    pub fn onboarding(&self) -> &Onboarding {
        &self.inner.onboarding
    }

    /// Signs `path` for `expires` seconds with refresh token `refresh_token_id` (tokens.md §8.1).
    pub fn sign_path(&self, path: &str, expires: i64, refresh_token_id: &str) -> String {
        signed::sign_path(
            &self.inner.signing_secret,
            path,
            expires,
            refresh_token_id,
            self.now_unix(),
        )
    }

    /// Whether `redirect_uri` may receive codes for `client_id` (http-api.md §8.2): the fixed
    /// rules first, then, when `fetch_client_redirect_uris` is on, the URIs the client publishes.
    pub async fn redirect_uri_allowed(
        &self,
        client_id: &str,
        redirect_uri: &str,
        pkce_s256: bool,
    ) -> bool {
        if indieauth::verify_redirect_uri(client_id, redirect_uri, pkce_s256, &[]) {
            return true;
        }
        let Some(fetcher) = &self.inner.redirect_uri_fetcher else {
            return false;
        };
        // Only fetch client ids that are valid on their own: domains and local addresses.
        if !indieauth::verify_client_id(client_id, None) {
            return false;
        }
        let published = fetcher.published_redirect_uris(client_id).await;
        indieauth::verify_redirect_uri(client_id, redirect_uri, pkce_s256, &published)
    }

    fn now_unix(&self) -> i64 {
        self.inner.manager.clock().now().unix_timestamp()
    }

    /// The router with every route of the API; serve it with connect info (`SocketAddr`).
    ///
    /// As in HA, the onboarding views (`/api/onboarding*`) exist only when onboarding was not
    /// complete when the router was built: afterwards they are unknown routes (404).
    pub fn router(&self) -> Router {
        let mut router = Router::new()
            .route("/auth/providers", get(views::providers))
            .route("/auth/login_flow", post(views::login_flow_start))
            .route(
                "/auth/login_flow/{flow_id}",
                get(views::login_flow_get)
                    .post(views::login_flow_step)
                    .delete(views::login_flow_delete),
            )
            .route("/auth/token", post(views::token))
            .route("/auth/revoke", post(views::revoke))
            .route("/auth/link_user", post(views::link_user))
            .route(
                "/.well-known/oauth-authorization-server",
                get(views::oauth_metadata),
            )
            .route(
                "/.well-known/oauth-protected-resource",
                get(views::protected_resource),
            )
            .route("/.well-known/change-password", get(views::change_password))
            // The `redirect_uri` registered at the identity provider.
            .route("/auth/oidc/callback", get(external::callback))
            .merge(page::router(self))
            .route("/api/", get(views::api_root))
            .route("/api/websocket", websocket::route(self));
        if !self.onboarding().is_complete() {
            router = router
                .route("/api/onboarding", get(views::onboarding_status))
                .route("/api/onboarding/users", post(views::onboarding_users))
                .route(
                    "/api/onboarding/integration",
                    post(views::onboarding_integration),
                );
        }
        router
            .fallback(views::not_found)
            // Inside the pipeline, so that a panicking view's 500 gets the security headers;
            // and once more outside it, for the pipeline itself.
            .layer(middleware::from_fn(catch_panic))
            .layer(middleware::from_fn_with_state(
                self.clone(),
                request_pipeline,
            ))
            .layer(middleware::from_fn(catch_panic))
            .with_state(self.clone())
    }
}

/// Paths whose CORS policy allows every origin.
const CORS_ALLOW_ALL: [&str; 4] = [
    "/auth/token",
    "/auth/revoke",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-protected-resource",
];

/// HA's middleware chain: security filter, forwarded headers, ban, authentication, then security
/// headers and CORS on the way out.
async fn request_pipeline(
    State(http): State<AuthHttp>,
    mut request: Request<Body>,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let origin = request.headers().get(header::ORIGIN).cloned();
    let preflight = request.method() == Method::OPTIONS && origin.is_some();
    let mut response = if net::is_unsafe_request(&path, query.as_deref()) {
        tracing::warn!(
            path = crate::redact::loggable_path(&path),
            "filtered a request with a suspicious path or query"
        );
        ApiError::Plain(StatusCode::BAD_REQUEST).into_response()
    } else {
        match net::resolve_client(
            &request,
            http.inner.options.use_x_forwarded_for,
            &http.inner.options.trusted_proxies,
        ) {
            Err(error) => error.into_response(),
            Ok(client) => {
                if client.ip.is_some_and(|ip| http.inner.bans.is_banned(ip)) {
                    ApiError::Plain(StatusCode::FORBIDDEN).into_response()
                } else {
                    let authenticated = authenticate(&http, &request, client);
                    // Decided before the view runs: a token it revokes is not stale to it.
                    let stale = authenticated.is_none() && has_stale_bearer(&http, &request);
                    if let Some(auth) = authenticated {
                        request.extensions_mut().insert(auth);
                    }
                    request.extensions_mut().insert(client);
                    let tls = request.extensions().get::<net::ServedOverTls>().is_some();
                    let base =
                        net::RequestBase::resolve_for(request.headers(), client.via_proxy, tls);
                    request.extensions_mut().insert(base);
                    let url = format!(
                        "{path}{}",
                        query
                            .as_deref()
                            .map(|q| format!("?{q}"))
                            .unwrap_or_default()
                    );
                    let response = if preflight {
                        preflight_response()
                    } else {
                        next.run(request).await
                    };
                    if response.status() == StatusCode::UNAUTHORIZED && http.inner.bans.enabled() {
                        if stale {
                            tracing::info!(
                                ip = ?client.ip,
                                "request with an expired or revoked access token; not counted as a failed login"
                            );
                        } else {
                            http.inner.bans.record_failure(client.ip, &url);
                        }
                    }
                    response
                }
            }
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::SERVER, HeaderValue::from_static(""));
    if http.inner.options.use_x_frame_options {
        headers.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
    }
    if let Some(origin) = origin {
        let allowed = CORS_ALLOW_ALL.contains(&path.as_str())
            || origin.to_str().is_ok_and(|o| {
                http.inner
                    .options
                    .cors_allowed_origins
                    .iter()
                    .any(|a| a == o)
            });
        if allowed {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            if preflight {
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static(
                        "Origin, Accept, X-Requested-With, Content-Type, Authorization",
                    ),
                );
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, OPTIONS"),
                );
            }
        }
    }
    response
}

/// A panic while answering becomes HA's plain 500 (http-api.md §1) instead of a dropped
/// connection.
async fn catch_panic(request: Request<Body>, next: Next) -> Response {
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(message, "answering a request panicked");
            views::internal_error().into_response()
        }
    }
}

fn preflight_response() -> Response {
    (StatusCode::OK, "").into_response()
}

/// Bearer token first, then (GET/HEAD only) a signed path.
fn authenticate(
    http: &AuthHttp,
    request: &Request<Body>,
    client: ClientAddr,
) -> Option<Authenticated> {
    let manager = &http.inner.manager;
    if let Some(value) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some((scheme, token)) = value.split_once(' ')
        && scheme == "Bearer"
        && let Some(refresh) = manager.validate_access_token(token)
        && let Some(user) = manager.user(&refresh.user_id)
        && manager.user_not_allowed_reason(&user, client.ip).is_none()
    {
        return Some(Authenticated {
            user,
            refresh_token: refresh,
        });
    }
    if matches!(*request.method(), Method::GET | Method::HEAD)
        && request.uri().query().is_some_and(|q| q.contains("authSig"))
    {
        let query = request.uri().query().unwrap_or_default();
        let token_id = signed::verify(
            &http.inner.signing_secret,
            request.uri().path(),
            query,
            http.now_unix(),
        )?;
        let refresh = manager.refresh_token(&token_id)?;
        let user = manager.user(&refresh.user_id)?;
        if manager.user_not_allowed_reason(&user, client.ip).is_none() {
            return Some(Authenticated {
                user,
                refresh_token: refresh,
            });
        }
    }
    None
}

/// Whether the request carries a bearer token we issued that has expired or was revoked.
fn has_stale_bearer(http: &AuthHttp, request: &Request<Body>) -> bool {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme == "Bearer" && http.inner.manager.is_stale_access_token(token)
        })
}

/// `WWW-Authenticate` for 401s, pointing at the protected-resource metadata.
pub(crate) fn www_authenticate(base: &str) -> (HeaderName, HeaderValue) {
    let value = format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource\"");
    (
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Bearer")),
    )
}
