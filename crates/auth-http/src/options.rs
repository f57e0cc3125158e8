//! Settings of the HTTP layer (Home Assistant's `http:` section plus hass-auth's own).

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

/// HTTP settings. `Default` matches Home Assistant's defaults.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Install the ban middleware (HA default: true).
    pub ip_ban_enabled: bool,
    /// Failed attempts before a ban; `-1` (HA default) never bans.
    pub login_attempts_threshold: i64,
    /// How long a ban lasts (HA: forever). `None` keeps HA's permanent bans.
    pub ban_duration: Option<Duration>,
    /// Most bans kept, in memory and in `ip_bans.yaml` (expired ones dropped first, then the
    /// oldest; HA: unbounded).
    pub max_bans: usize,
    /// Half-life of the failed-attempt counter (HA: never decays).
    pub failed_attempt_half_life: Duration,
    /// Take the client IP from `X-Forwarded-For` when the peer is a trusted proxy.
    pub use_x_forwarded_for: bool,
    /// Networks of trusted reverse proxies.
    pub trusted_proxies: Vec<IpNet>,
    /// Send `X-Frame-Options: SAMEORIGIN`.
    pub use_x_frame_options: bool,
    /// Origins allowed by CORS on views that do not allow all.
    pub cors_allowed_origins: Vec<String>,
    /// An unpacked `hass_frontend` directory to serve Home Assistant's own login page from.
    pub frontend_dir: Option<PathBuf>,
    /// Fetch the `client_id` page for published redirect URIs (off by default).
    pub fetch_client_redirect_uris: bool,
    /// Limits and trusted certificates of that fetch.
    pub redirect_uri_fetch: indieauth_fetch::FetchOptions,
    /// Body limit of unauthenticated auth endpoints (HA: 64 KiB).
    pub auth_body_limit: usize,
    /// Body limit of other endpoints (HA: 16 MiB).
    pub body_limit: usize,
    /// Time a request body has to arrive once its handler reads it (408 after).
    pub body_timeout: Duration,
    /// The version reported in websocket `auth_required`/`auth_ok`.
    pub ha_version: String,
    /// Limits of the websocket endpoint.
    pub websocket: crate::websocket::WebsocketOptions,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            ip_ban_enabled: true,
            login_attempts_threshold: -1,
            ban_duration: Some(Duration::from_secs(24 * 3600)),
            max_bans: crate::bans::DEFAULT_MAX_BANS,
            failed_attempt_half_life: Duration::from_secs(3600),
            use_x_forwarded_for: false,
            trusted_proxies: Vec::new(),
            use_x_frame_options: true,
            cors_allowed_origins: vec!["https://cast.home-assistant.io".to_owned()],
            frontend_dir: None,
            fetch_client_redirect_uris: false,
            redirect_uri_fetch: indieauth_fetch::FetchOptions::default(),
            auth_body_limit: 64 * 1024,
            body_limit: 16 * 1024 * 1024,
            body_timeout: Duration::from_secs(30),
            ha_version: "2026.11.0".to_owned(),
            websocket: crate::websocket::WebsocketOptions::default(),
        }
    }
}
