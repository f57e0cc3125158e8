//! Settings of the HTTP layer: Home Assistant's `http:` section (its names and defaults) plus
//! hass-auth's own. One type for the whole server: auth-host fills it from `configuration.yaml`
//! and `.storage/http`, [`crate::AuthHttp`] uses it, the binary listens where it says.

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

/// Home Assistant's default port.
pub const DEFAULT_PORT: u16 = 8123;
/// Home Assistant's default CORS origin.
pub const DEFAULT_CORS_ORIGIN: &str = "https://cast.home-assistant.io";
/// `ssl_profile: modern` (the default).
pub const SSL_MODERN: &str = "modern";
/// `ssl_profile: intermediate`.
pub const SSL_INTERMEDIATE: &str = "intermediate";
/// Default `ban_duration`: one day.
pub const DEFAULT_BAN_DURATION_SECS: u64 = 24 * 3600;
/// `login_attempts_threshold` value meaning "never ban".
pub const NO_LOGIN_ATTEMPT_THRESHOLD: i64 = -1;

/// HTTP settings. `Default` matches Home Assistant's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpOptions {
    /// `server_host`: addresses or host names to listen on (a string or a list); default
    /// Home Assistant's `["0.0.0.0", "::"]` (every interface). Used by the binary.
    pub server_host: Vec<String>,
    /// `server_port` (default 8123). Used by the binary.
    pub server_port: u16,
    /// `ip_ban_enabled` (default true): install the ban middleware.
    pub ip_ban_enabled: bool,
    /// `login_attempts_threshold`: failed attempts before an IP is banned; -1 (default) = never.
    pub login_attempts_threshold: i64,
    /// `ban_duration` (hass-auth only): how long a ban lasts (default one day); `None`
    /// (`forever`) keeps Home Assistant's permanent bans.
    pub ban_duration: Option<Duration>,
    /// Most bans kept, in memory and in `ip_bans.yaml` (expired ones dropped first, then the
    /// oldest; HA: unbounded).
    pub max_bans: usize,
    /// Half-life of the failed-attempt counter (HA: never decays).
    pub failed_attempt_half_life: Duration,
    /// `use_x_forwarded_for`: take the client IP from `X-Forwarded-For` sent by trusted proxies.
    pub use_x_forwarded_for: bool,
    /// `trusted_proxies`: networks of reverse proxies (bare addresses become /32 or /128).
    pub trusted_proxies: Vec<IpNet>,
    /// `use_x_frame_options` (default true): send `X-Frame-Options: SAMEORIGIN`.
    pub use_x_frame_options: bool,
    /// `cors_allowed_origins`: origins allowed by CORS on views that do not allow all (default
    /// `["https://cast.home-assistant.io"]`).
    pub cors_allowed_origins: Vec<String>,
    /// `frontend_dir` (hass-auth only): an unpacked `hass_frontend` directory to serve Home
    /// Assistant's own login page from (auth-host makes it absolute).
    pub frontend_dir: Option<PathBuf>,
    /// `fetch_client_redirect_uris` (hass-auth only, default false): fetch a client's
    /// `client_id` page for the redirect URIs it publishes (IndieAuth), bounded and http(s) only.
    pub fetch_client_redirect_uris: bool,
    /// `fetch_client_ca_file` (hass-auth only): a PEM file of certificates trusted for that
    /// fetch in addition to the built-in roots; read by [`crate::AuthHttp::new`].
    pub fetch_client_ca_file: Option<PathBuf>,
    /// Limits (and further trusted certificates) of that fetch.
    pub redirect_uri_fetch: indieauth_fetch::FetchOptions,
    /// `ssl_certificate`: serve HTTPS with this PEM certificate chain. Used by the binary.
    pub ssl_certificate: Option<PathBuf>,
    /// `ssl_key`: the PEM private key (default: read from the certificate file).
    pub ssl_key: Option<PathBuf>,
    /// `ssl_peer_certificate`: PEM CA certificates; clients must present a certificate they sign.
    pub ssl_peer_certificate: Option<PathBuf>,
    /// `ssl_profile`: `modern` (default) or `intermediate`.
    pub ssl_profile: String,
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
            server_host: vec!["0.0.0.0".to_owned(), "::".to_owned()],
            server_port: DEFAULT_PORT,
            ip_ban_enabled: true,
            login_attempts_threshold: NO_LOGIN_ATTEMPT_THRESHOLD,
            ban_duration: Some(Duration::from_secs(DEFAULT_BAN_DURATION_SECS)),
            max_bans: crate::bans::DEFAULT_MAX_BANS,
            failed_attempt_half_life: Duration::from_secs(3600),
            use_x_forwarded_for: false,
            trusted_proxies: Vec::new(),
            use_x_frame_options: true,
            cors_allowed_origins: vec![DEFAULT_CORS_ORIGIN.to_owned()],
            frontend_dir: None,
            fetch_client_redirect_uris: false,
            fetch_client_ca_file: None,
            redirect_uri_fetch: indieauth_fetch::FetchOptions::default(),
            ssl_certificate: None,
            ssl_key: None,
            ssl_peer_certificate: None,
            ssl_profile: SSL_MODERN.to_owned(),
            auth_body_limit: 64 * 1024,
            body_limit: 16 * 1024 * 1024,
            body_timeout: Duration::from_secs(30),
            ha_version: "2026.11.0".to_owned(),
            websocket: crate::websocket::WebsocketOptions::default(),
        }
    }
}
