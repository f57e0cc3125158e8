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
mod extract;
pub mod frontend;
pub mod indieauth;
pub mod net;
pub mod onboarding;
pub mod options;
pub mod page;
pub mod pipeline;
mod redact;
pub mod signed;
mod views;
pub mod websocket;

use std::path::PathBuf;
use std::sync::Arc;

use auth_core::{AuthManager, RefreshToken, StorageError, User};
use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};

pub use bans::Bans;
pub use error::ApiError;
pub use indieauth_fetch;
pub use net::{ClientAddr, LocalAddr};
pub use onboarding::Onboarding;
pub use options::HttpOptions;
pub use pipeline::AuthLayer;

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
    /// `fetch_client_ca_file` could not be read as PEM certificates.
    #[error("http.fetch_client_ca_file: {0}")]
    CaFile(indieauth_fetch::SetupError),
}

/// The identity a request was authenticated as: a bearer access token, or (GET/HEAD) a signed
/// path, of an active user allowed from the client's address.
///
/// Also an axum extractor for routes behind [`AuthHttp::layer`]: a request that is not
/// authenticated is answered `401` with `WWW-Authenticate` (counted toward an IP ban, as on
/// `/api/`); `Option<Authenticated>` lets a route serve both.
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
        let mut fetch = options.redirect_uri_fetch.clone();
        if let Some(file) = &options.fetch_client_ca_file {
            // Read even when fetching is off: a broken file is reported at start, not later.
            let certificates =
                indieauth_fetch::load_pem_certificates(file).map_err(SetupError::CaFile)?;
            fetch.extra_root_certificates.extend(certificates);
        }
        let redirect_uri_fetcher = if options.fetch_client_redirect_uris {
            Some(indieauth_fetch::RedirectUriFetcher::new(fetch)?)
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

    /// Signs `path` (which may carry a query) for `expires` seconds with refresh token
    /// `refresh_token_id` (tokens.md §8.1): the result, `path?...&authSig=...`, lets a GET or
    /// HEAD through [`AuthHttp::layer`] without a bearer token until it expires or the refresh
    /// token is removed.
    pub fn sign_path(&self, path: &str, expires: i64, refresh_token_id: &str) -> String {
        signed::sign_path(
            &self.inner.signing_secret,
            path,
            expires,
            refresh_token_id,
            self.now_unix(),
        )
    }

    /// The refresh token id a signed request for `path` with `query` (which holds `authSig`)
    /// was signed with, when the signature is ours, unexpired and covers exactly this path and
    /// query. The caller still has to check that the refresh token and its user may be used;
    /// [`AuthHttp::layer`] does all of it.
    pub fn verify_signed_path(&self, path: &str, query: &str) -> Option<String> {
        signed::verify(&self.inner.signing_secret, path, query, self.now_unix())
    }

    /// The request pipeline of our routes as a [`tower::Layer`] for a host's own routes: the
    /// same filter, ban check, authentication (bearer token, signed path, local-only users) and
    /// failed-login counting (a `401` counts toward an IP ban) as `/api/`, and the same security
    /// headers. Handlers read the caller with the [`Authenticated`] extractor.
    ///
    /// Serve the app with connect info (`SocketAddr`), as for [`AuthHttp::router`].
    pub fn layer(&self) -> AuthLayer {
        AuthLayer::new(self.clone())
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

    /// Every route, as `hass-auth serve` serves them: [`AuthHttp::api_router`],
    /// [`AuthHttp::sign_in_router`], [`AuthHttp::home_router`], [`AuthHttp::api_root_router`] and
    /// [`AuthHttp::not_found_router`] merged. Serve it with connect info (`SocketAddr`).
    ///
    /// A host with routes of its own (`/`, `/api/`, a fallback) merges the pieces it wants
    /// instead; each piece runs our request pipeline on its own routes only.
    pub fn router(&self) -> Router {
        self.api_router()
            .merge(self.sign_in_router())
            .merge(self.home_router())
            .merge(self.api_root_router())
            .merge(self.not_found_router())
    }

    /// The JSON API: `/auth/*` (providers, login flow, token, revoke, link user), the OIDC
    /// callback, the `/.well-known/` documents, `/api/websocket` and, as in HA, the onboarding
    /// views (`/api/onboarding*`) only while onboarding was not complete when the router was
    /// built (afterwards they are unknown routes).
    pub fn api_router(&self) -> Router {
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
        self.finish(router)
    }

    /// The sign-in pages: `/auth/authorize` (ours, or Home Assistant's from `frontend_dir` with
    /// its assets), `/onboarding.html` and their files under `/auth/static/`.
    pub fn sign_in_router(&self) -> Router {
        self.finish(page::sign_in_router(self))
    }

    /// Our landing and profile page: `/` and `/profile` (a host usually owns `/`).
    pub fn home_router(&self) -> Router {
        self.finish(page::home_router())
    }

    /// `/api/`: `{"message": "API running."}` to an authenticated caller, as in HA.
    pub fn api_root_router(&self) -> Router {
        self.finish(Router::new().route("/api/", get(views::api_root)))
    }

    /// A router with only a fallback: HA's plain `404: Not Found`, through the pipeline (so it
    /// has the security headers). Merge it last, and only into an app without a fallback.
    pub fn not_found_router(&self) -> Router {
        self.finish(Router::new().fallback(views::not_found))
    }

    /// `router` behind the request pipeline, with our state.
    fn finish(&self, router: Router<AuthHttp>) -> Router {
        router.layer(self.layer()).with_state(self.clone())
    }
}

/// `WWW-Authenticate` for 401s, pointing at the protected-resource metadata.
pub(crate) fn www_authenticate(base: &str) -> (HeaderName, HeaderValue) {
    let value = format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource\"");
    (
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Bearer")),
    )
}
