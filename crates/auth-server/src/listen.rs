//! The accept loop of `hass-auth serve`: HTTP/1.1 (with upgrades for the websocket), bounded
//! connections (in all and per client address), a deadline for request headers that runs from
//! the moment a connection is ready for a request (so it also closes silent and idle keep-alive
//! connections), graceful shutdown.
//!
//! A client address (an IPv4 address, an IPv6 /64) holds at most `max_connections_per_ip`
//! connections; a further one is answered `503` and closed at once, so it holds no slot and one
//! address cannot take every slot from the others. Trusted proxies are not limited per address
//! (all their clients arrive from them).
//!
//! `axum::serve` has neither a connection bound nor a working header timeout (hyper's needs a
//! timer, which it does not set, and its HTTP/2 detection waits for a first byte without any
//! deadline), so clients that open connections and send nothing, or a header a byte at a time,
//! would hold sockets and file descriptors forever. Home Assistant's clients speak HTTP/1.1.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use std::sync::Mutex;

use auth_core::ipnet::IpNet;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::{Service, ServiceExt};

/// Limits of the HTTP listener.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Connections one client address (IPv6: its /64) may hold at once; more are refused.
    pub max_connections_per_ip: usize,
    /// Peers not limited per address (the trusted proxies).
    pub unlimited_peers: Vec<IpNet>,
    /// Time a client has to send a request's headers, counted from when the server is ready to
    /// read them (so it also bounds how long a keep-alive connection may sit idle).
    pub header_timeout: Duration,
    /// Time open connections get to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            max_connections_per_ip: 64,
            unlimited_peers: Vec::new(),
            header_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A connection's byte stream: plain TCP or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// Serves `app` on `listener` (over TLS when `tls` is given) until `stop` turns true, then lets
/// open requests finish (within the grace period). The TLS handshake must finish within the
/// header timeout.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    tls: Option<Arc<crate::tls::ReloadableTls>>,
) {
    let max = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let slots = Arc::new(Semaphore::new(max as usize));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let per_ip = Arc::new(PerIp {
        cap: limits.max_connections_per_ip.max(1),
        unlimited: limits.unlimited_peers.clone(),
        open: Mutex::new(HashMap::new()),
    });
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_error(&error).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let Some(ip_slot) = per_ip.admit(remote.ip()) else {
            refuse(&stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok(router) = make_service.call(remote).await;
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let router = router.clone();
            async move {
                let response = router.oneshot(request.map(Body::new)).await;
                Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
            }
        });
        let mut stop = stop.clone();
        let http = http.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let stream: Box<dyn Io> = match tls {
                None => Box::new(stream),
                Some(tls) => {
                    let handshake = tls.acceptor().accept(stream);
                    match tokio::time::timeout(limits.header_timeout, handshake).await {
                        Ok(Ok(stream)) => Box::new(stream),
                        Ok(Err(error)) => {
                            tracing::debug!(%remote, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%remote, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            let connection = http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stopped(&mut stop) => {
                    // Finish the request in progress, if any, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%remote, %error, "connection ended with an error");
            }
            drop(ip_slot);
            drop(permit);
        });
    }
    drop(listener);
    // Every connection holds a slot: all slots back means all connections closed.
    if tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(max))
        .await
        .is_err()
    {
        tracing::warn!(grace = ?limits.shutdown_grace, "connections still open at shutdown were dropped");
    }
}

/// Open connections per client address.
struct PerIp {
    cap: usize,
    unlimited: Vec<IpNet>,
    /// Addresses with at least one open connection (so at most `max_connections` entries).
    open: Mutex<HashMap<String, usize>>,
}

impl PerIp {
    /// A slot for a connection from `ip`, or `None` when the address holds its cap.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        if self.unlimited.iter().any(|net| net.contains(&ip)) {
            return Some(IpSlot {
                per_ip: Arc::clone(self),
                key: None,
            });
        }
        let key = auth_core::net::client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            per_ip: Arc::clone(self),
            key: Some(key),
        })
    }
}

/// One connection's place in its address's count; given back when dropped.
struct IpSlot {
    per_ip: Arc<PerIp>,
    key: Option<String>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let Some(key) = &self.key else { return };
        let mut open = self.per_ip.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(key);
            }
        }
    }
}

/// Answers a connection over its address's cap with a 503 (one non-blocking write, best
/// effort) and closes it.
fn refuse(stream: &tokio::net::TcpStream) {
    const BODY: &str = "Too many connections from your address";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 10\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(response.as_bytes());
    tracing::debug!("refused a connection: its address holds its connection cap");
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Accept errors: a client that gave up is no news; running out of file descriptors is logged
/// and retried after a pause instead of spinning.
async fn accept_error(error: &std::io::Error) {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted => {}
        _ => {
            tracing::warn!(%error, "cannot accept connections; retrying in 100 ms");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
