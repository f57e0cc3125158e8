//! `hass-auth serve`: the HTTP server over a configuration directory.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use auth_core::ManagerLimits;
use auth_host::{ConfigLoader, Host, HostOptions, HttpSettings};
use auth_http::{AuthHttp, HttpOptions};
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

fn http_options(settings: &HttpSettings, frontend_dir: Option<PathBuf>) -> Result<HttpOptions> {
    let mut redirect_uri_fetch = auth_http::indieauth_fetch::FetchOptions::default();
    if let Some(file) = &settings.fetch_client_ca_file {
        redirect_uri_fetch.extra_root_certificates =
            auth_http::indieauth_fetch::load_pem_certificates(file)
                .context("http.fetch_client_ca_file")?;
    }
    Ok(HttpOptions {
        ip_ban_enabled: settings.ip_ban_enabled,
        login_attempts_threshold: settings.login_attempts_threshold,
        use_x_forwarded_for: settings.use_x_forwarded_for,
        trusted_proxies: settings.trusted_proxies.clone(),
        use_x_frame_options: settings.use_x_frame_options,
        cors_allowed_origins: settings.cors_allowed_origins.clone(),
        frontend_dir: frontend_dir.or_else(|| settings.frontend_dir.clone()),
        fetch_client_redirect_uris: settings.fetch_client_redirect_uris,
        redirect_uri_fetch,
        ..HttpOptions::default()
    })
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
    let options = HostOptions {
        limits: limits(&args),
        ..HostOptions::default()
    };
    let host = Host::from_config_dir_with(&dir, options, &ConfigLoader::new())
        .await
        .with_context(|| format!("cannot open {}", dir.display()))?;
    for warning in &host.config().warnings {
        tracing::warn!("{warning}");
    }
    let settings = host.config().http.clone();
    let manager = host.manager().clone();
    let http = AuthHttp::new(
        manager.clone(),
        http_options(&settings, args.frontend_dir)?,
        Some(dir.clone()),
    )
    .await?;
    if demo && manager.owner().is_none() && !http.onboarding().is_done("user") {
        // The demo lets its insecure_example user in without creating an owner first.
        http.onboarding().mark_done("user").await?;
    }
    let expiry = manager.spawn_expiry_task();
    let app: Router = http.router();

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
        println!(
            "No owner yet: open the server in a browser to create one, or run\n  hass-auth user add -c {} USERNAME PASSWORD",
            dir.display()
        );
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    for listener in listeners {
        let local = listener.local_addr()?;
        println!("hass-auth listening on http://{local}");
        let app = app
            .clone()
            .layer(axum::Extension(auth_http::LocalAddr(local)));
        let mut stop = stop_rx.clone();
        servers.push(tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        }));
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for server in servers {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "server error"),
            Err(error) => tracing::error!(%error, "server task failed"),
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
