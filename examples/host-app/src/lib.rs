//! An example host application embedding hass-auth (see `docs/embedding.md`).
//!
//! The host owns `/`, `/api/` and its fallback. It merges hass-auth's JSON API
//! ([`AuthHttp::api_router`]: `/auth/*`, onboarding, the websocket) and sign-in pages
//! ([`AuthHttp::sign_in_router`]) into its own router, and puts its own `/api/states` and
//! `/api/camera_proxy/{entity}` behind [`AuthHttp::layer`], where handlers read the caller with
//! the [`Authenticated`] extractor: the same token checks, signed paths, local-only users, IP
//! bans and failed-login counting as hass-auth's own `/api/`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let host = auth_host::Host::from_config_dir("config").await?;
//! let app = host_app::start(&host).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8123").await?;
//! host_app::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;

use auth_http::{AuthHttp, Authenticated};
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

/// How long the URLs of `/api/sign_path` stay valid, in seconds.
const SIGNED_PATH_SECONDS: i64 = 30;

/// The HTTP layer over `host`'s manager and `http:` settings, and the host's app around it.
pub async fn start(host: &auth_host::Host) -> anyhow::Result<Router> {
    let http = AuthHttp::new(
        host.manager().clone(),
        host.config().http.clone(),
        Some(host.config_dir().to_owned()),
    )
    .await?;
    Ok(app(&http))
}

/// The host's router with hass-auth's pieces merged in.
pub fn app(http: &AuthHttp) -> Router {
    // The host's own routes that need a signed-in user.
    let protected = Router::new()
        .route("/api/states", get(states))
        .route("/api/sign_path", post(sign_path))
        .route("/api/camera_proxy/{entity}", get(camera))
        .layer(http.layer())
        .with_state(http.clone());
    Router::new()
        .route("/", get(|| async { "Welcome to the host app" }))
        .route("/api/", get(|| async { "host API" }))
        .merge(protected)
        .merge(http.api_router())
        .merge(http.sign_in_router())
        .fallback(|| async { (StatusCode::NOT_FOUND, "The host has no such page") })
}

/// Serves `app` on `listener` with the peer addresses hass-auth needs (bans, local-only users).
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// `GET /api/states`: the host's data, for any signed-in user.
async fn states(auth: Authenticated) -> axum::Json<Value> {
    axum::Json(json!({
        "viewer": auth.user.name,
        "states": [{"entity_id": "light.kitchen", "state": "on"}],
    }))
}

/// `POST /api/sign_path` `{"path": ...}`: a URL the caller may hand to something that cannot
/// send a token (an `<img>`), valid for 30 seconds, as Home Assistant's `auth/sign_path`.
async fn sign_path(
    State(http): State<AuthHttp>,
    auth: Authenticated,
    axum::Json(body): axum::Json<Value>,
) -> Result<axum::Json<Value>, (StatusCode, &'static str)> {
    let path = body
        .get("path")
        .and_then(Value::as_str)
        .filter(|p| p.starts_with('/'))
        .ok_or((StatusCode::BAD_REQUEST, "path: expected an absolute path"))?;
    let signed = http.sign_path(path, SIGNED_PATH_SECONDS, &auth.refresh_token.id);
    Ok(axum::Json(json!({"path": signed})))
}

/// `GET /api/camera_proxy/{entity}`: reachable with a token or a signed path.
async fn camera(auth: Authenticated, UrlPath(entity): UrlPath<String>) -> String {
    format!(
        "snapshot of {entity} for {}",
        auth.user.name.unwrap_or_default()
    )
}
