//! `hass-auth serve`: the HTTP server over a configuration directory.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use auth_core::ManagerLimits;
use auth_host::{ConfigLoader, Host, HostOptions};
use auth_http::AuthHttp;
use axum::Router;

/// The demo configuration written into an empty data directory.
const DEMO_CONFIG: &str = include_str!("../../../examples/demo/configuration.yaml");

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration directory; `data` (created with the demo config) when not given.
    #[arg(short = 'c', long = "config-dir")]
    config_dir: Option<PathBuf>,
    /// Listen on this address instead of `http: server_host/server_port`.
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// Serve Home Assistant's own login page from this unpacked `hass_frontend` directory.
    #[arg(long)]
    frontend_dir: Option<PathBuf>,
    /// Drop login and MFA setup flows untouched for this many seconds (default 600).
    #[arg(long, value_name = "SECONDS")]
    flow_idle_timeout: Option<u64>,
    /// Authorization codes can be redeemed for this many seconds (default 600, as Home Assistant).
    #[arg(long, value_name = "SECONDS")]
    auth_code_lifetime: Option<u64>,
    /// Keep users, tokens and the other stores in this PostgreSQL database
    /// (`postgres://user@host/db`) instead of `<config>/.storage`.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Connection limits.
    #[command(flatten)]
    connections: ConnectionArgs,
}

/// The database of `--database-url`, when given.
pub(crate) async fn database(
    url: Option<&str>,
) -> Result<Option<std::sync::Arc<dyn auth_core::Storage>>> {
    let Some(url) = url else { return Ok(None) };
    #[cfg(feature = "postgres")]
    {
        let storage = storage_postgres::PgStorage::connect(url)
            .await
            .context("cannot open the database of --database-url")?;
        Ok(Some(std::sync::Arc::new(storage)))
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = url;
        anyhow::bail!(
            "--database-url: this build has no PostgreSQL support (cargo feature `postgres`)"
        )
    }
}

/// Limits of the HTTP listener.
#[derive(Debug, clap::Args)]
struct ConnectionArgs {
    /// Connections served at once (default 1000); more clients wait until one closes. Keep it
    /// below the open-file limit (`ulimit -n`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,
    /// Seconds a client has to send a request's headers, and a keep-alive connection may stay
    /// idle (default 30).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: Option<u64>,
    /// Connections one client address (an IPv6 client: its /64) may hold at once (default 64);
    /// more are answered 503 and closed. Trusted proxies are not limited this way.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_ip: Option<u32>,
    /// Seconds a websocket client has to authenticate before it is disconnected (default 10,
    /// as Home Assistant).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    websocket_auth_timeout: Option<u64>,
}

/// The listener's limits with the command line's overrides; trusted proxies are not limited
/// per address.
fn connection_limits(
    args: &ConnectionArgs,
    trusted_proxies: &[auth_core::ipnet::IpNet],
) -> crate::listen::ConnectionLimits {
    let mut limits = crate::listen::ConnectionLimits::default();
    if let Some(max) = args.max_connections {
        limits.max_connections = max as usize;
    }
    if let Some(max) = args.max_connections_per_ip {
        limits.max_connections_per_ip = max as usize;
    }
    limits.unlimited_peers = trusted_proxies.to_vec();
    if let Some(seconds) = args.header_timeout {
        limits.header_timeout = Duration::from_secs(seconds);
    }
    limits
}

/// The manager's table limits with the command line's overrides.
fn limits(args: &ServeArgs) -> ManagerLimits {
    let mut limits = ManagerLimits::default();
    if let Some(seconds) = args.flow_idle_timeout {
        limits.login_flows.idle_timeout = Duration::from_secs(seconds);
        limits.mfa_setup_flows.idle_timeout = Duration::from_secs(seconds);
    }
    if let Some(seconds) = args.auth_code_lifetime {
        limits.auth_code_lifetime =
            time::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
    }
    limits
}

/// Catches SIGXFSZ so that a file-size limit (`ulimit -f`) makes a store write fail with EFBIG
/// (reported to the client; the previous file stays) instead of killing the server.
fn survive_file_size_limit() {
    #[cfg(all(
        any(target_os = "linux", target_os = "macos"),
        not(any(target_arch = "mips", target_arch = "mips64"))
    ))]
    {
        const SIGXFSZ: i32 = 25;
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::from_raw(SIGXFSZ)) {
            Ok(mut signals) => {
                tokio::spawn(async move {
                    while signals.recv().await.is_some() {
                        tracing::error!(
                            "a write exceeded the file size limit (SIGXFSZ); it failed"
                        );
                    }
                });
            }
            Err(error) => tracing::warn!(%error, "cannot catch SIGXFSZ"),
        }
    }
}

/// Creates `./data` with the demo configuration when it does not exist yet.
fn prepare_demo(dir: &Path) -> Result<bool> {
    let config = dir.join("configuration.yaml");
    if config.exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&config, DEMO_CONFIG)
        .with_context(|| format!("cannot write {}", config.display()))?;
    Ok(true)
}

pub async fn run(args: ServeArgs) -> Result<ExitCode> {
    survive_file_size_limit();
    // Before anything is announced: a SIGTERM right after "listening" must be a clean stop.
    let shutdown = ShutdownSignal::install().context("cannot install signal handlers")?;
    let demo = args.config_dir.is_none();
    let dir = args
        .config_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("data"));
    if demo && prepare_demo(&dir)? {
        println!(
            "Created {} with the demo configuration (sign in as demo / demo).",
            dir.join("configuration.yaml").display()
        );
    }
    // Read once (the loader logs its warnings): its `storage:` key picks the store, unless
    // --database-url names one.
    let config = ConfigLoader::new()
        .load(&dir.join("configuration.yaml"))
        .with_context(|| format!("cannot open {}", dir.display()))?;
    let database_url = args.database_url.clone().or_else(|| config.storage.clone());
    let options = HostOptions {
        limits: limits(&args),
        storage: database(database_url.as_deref()).await?,
        ..HostOptions::default()
    };
    let host = Host::from_loaded_config(&dir, config, options)
        .await
        .with_context(|| format!("cannot open {}", dir.display()))?;
    let settings = host.config().http.clone();
    let manager = host.manager().clone();
    let mut options = settings.clone();
    if let Some(dir) = args.frontend_dir {
        options.frontend_dir = Some(dir);
    }
    if let Some(seconds) = args.connections.websocket_auth_timeout {
        options.websocket.auth_timeout = Duration::from_secs(seconds);
    }
    let http = AuthHttp::new(manager.clone(), options, Some(dir.clone())).await?;
    if demo && manager.owner().is_none() && !http.onboarding().is_done("user") {
        // The demo lets its insecure_example user in without creating an owner first.
        http.onboarding().mark_done("user").await?;
    }
    let expiry = manager.spawn_expiry_task();
    // The pieces of AuthHttp::router(), written out: this is where a host would put its own.
    let app: Router = http
        .api_router()
        .merge(http.sign_in_router())
        .merge(http.home_router())
        .merge(http.api_root_router())
        .merge(http.not_found_router());

    let addresses: Vec<SocketAddr> = match args.bind {
        Some(addr) => vec![addr],
        None => settings
            .server_host
            .iter()
            .filter_map(|h| h.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, settings.server_port))
            .collect(),
    };
    let mut listeners = Vec::new();
    for addr in addresses {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => listeners.push(listener),
            Err(error)
                if !listeners.is_empty() && error.kind() == std::io::ErrorKind::AddrInUse =>
            {
                tracing::debug!(%addr, "already covered by a dual-stack listener");
            }
            Err(error) => return Err(error).with_context(|| format!("cannot listen on {addr}")),
        }
    }
    if manager.owner().is_none() && !http.onboarding().is_done("user") {
        let bound: Vec<SocketAddr> = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        crate::owner::onboarding_open_notice(&dir, &bound);
    }
    let tls = match &settings.ssl_certificate {
        None => None,
        Some(certificate) => {
            let files = crate::tls::TlsFiles {
                certificate: certificate.clone(),
                key: settings.ssl_key.clone(),
                peer_certificate: settings.ssl_peer_certificate.clone(),
            };
            let tls = crate::tls::ReloadableTls::load(files).context("http.ssl_certificate")?;
            tls.reload_on_sighup()
                .context("cannot install the SIGHUP handler")?;
            Some(tls)
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    let connection_limits = connection_limits(&args.connections, &settings.trusted_proxies);
    for listener in listeners {
        let local = listener.local_addr()?;
        let mut app = app
            .clone()
            .layer(axum::Extension(auth_http::LocalAddr(local)));
        if tls.is_some() {
            app = app.layer(axum::Extension(auth_http::net::ServedOverTls));
        }
        servers.push(tokio::spawn(crate::listen::serve(
            listener,
            app,
            connection_limits.clone(),
            stop_rx.clone(),
            tls.clone(),
        )));
        println!("hass-auth listening on {scheme}://{local}");
    }
    shutdown.wait().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for server in servers {
        if let Err(error) = server.await {
            tracing::error!(%error, "server task failed");
        }
    }
    expiry.abort();
    manager
        .flush()
        .await
        .context("flushing pending changes on shutdown")?;
    drop(host);
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or Ctrl-C, with the handlers installed when created.
struct ShutdownSignal {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
