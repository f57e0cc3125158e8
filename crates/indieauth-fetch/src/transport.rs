//! One bounded HTTP/1.1 GET over TCP or TLS, following http(s) redirects.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use url::{Host, Url};

use crate::addresses::refusal;
use crate::{FetchOptions, SetupError};

pub(crate) mod send;

/// What one fetch produced.
#[derive(Debug)]
pub(crate) struct Page {
    /// Status of the final response.
    pub status: u16,
    /// At most `max_body_bytes` of the body.
    pub body: Vec<u8>,
    /// The body had more than `max_body_bytes`.
    pub truncated: bool,
    /// At least one redirect was followed.
    pub redirected: bool,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("{0} has no host")]
    NoHost(String),
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    #[error("{addr} is not an address a client page can live on: {reason}")]
    Forbidden {
        addr: SocketAddr,
        reason: &'static str,
    },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS with {host}: {source}")]
    Tls {
        host: String,
        source: std::io::Error,
    },
    #[error("invalid TLS server name {0}")]
    ServerName(String),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("redirect without a usable Location")]
    BadRedirect,
    #[error("redirect to a non-http(s) URL {0}")]
    RedirectScheme(String),
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
}

/// Connection settings shared by every fetch.
pub(crate) struct Transport {
    tls: TlsConnector,
    slots: Semaphore,
    max_body_bytes: usize,
    max_redirects: usize,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_redirects", &self.max_redirects)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub(crate) fn new(options: &FetchOptions) -> Result<Self, SetupError> {
        Ok(Self {
            tls: tls_connector(options)?,
            slots: Semaphore::new(options.max_concurrent.max(1)),
            max_body_bytes: options.max_body_bytes,
            max_redirects: options.max_redirects,
        })
    }

    /// GETs `url`, following redirects; the caller bounds the total time.
    pub(crate) async fn get(&self, mut url: Url) -> Result<Page, FetchError> {
        let _slot = self.slots.acquire().await.ok();
        let mut redirected = false;
        for _ in 0..=self.max_redirects {
            let (response, _connection) = self.request(&url).await?;
            let status = response.status();
            if status.is_redirection() && status != hyper::StatusCode::NOT_MODIFIED {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(FetchError::BadRedirect)?;
                let next = url.join(location).map_err(|_| FetchError::BadRedirect)?;
                if !matches!(next.scheme(), "http" | "https") {
                    return Err(FetchError::RedirectScheme(next.to_string()));
                }
                url = next;
                redirected = true;
                continue;
            }
            let (body, truncated) = read_capped(response.into_body(), self.max_body_bytes).await?;
            return Ok(Page {
                status: status.as_u16(),
                body,
                truncated,
                redirected,
            });
        }
        Err(FetchError::TooManyRedirects(self.max_redirects))
    }

    async fn request(&self, url: &Url) -> Result<Exchanged, FetchError> {
        let (target, host_header) = target_and_host(url);
        let request = hyper::Request::get(target)
            .header(header::HOST, host_header)
            .header(
                header::USER_AGENT,
                concat!("hass-auth/", env!("CARGO_PKG_VERSION")),
            )
            .header(header::ACCEPT, "text/html, application/json;q=0.9")
            .header(header::ACCEPT_ENCODING, "identity")
            .body(Empty::<Bytes>::new())?;
        self.send_to(url, request).await
    }

    /// Connects to `url`'s host (TLS for `https`) and sends `request` on a fresh connection.
    async fn send_to<B>(
        &self,
        url: &Url,
        request: hyper::Request<B>,
    ) -> Result<Exchanged, FetchError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let host = url
            .host()
            .ok_or_else(|| FetchError::NoHost(url.to_string()))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let tcp = connect(&host, port).await?;
        if url.scheme() == "https" {
            let name = server_name(&host)?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|source| FetchError::Tls {
                    host: host.to_string(),
                    source,
                })?;
            exchange(tls, request).await
        } else {
            exchange(tcp, request).await
        }
    }
}

/// The request target (path and query) and the `Host` header value of `url`.
fn target_and_host(url: &Url) -> (String, String) {
    let mut target = url.path().to_owned();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    (target, host)
}

/// A response and the guard of the task driving its connection (aborted when dropped).
type Exchanged = (hyper::Response<hyper::body::Incoming>, AbortOnDrop);

/// Sends `request` on a fresh HTTP/1.1 connection over `stream`.
async fn exchange<S, B>(stream: S, request: hyper::Request<B>) -> Result<Exchanged, FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let response = sender.send_request(request).await?;
    Ok((response, driver))
}

/// Reads at most `cap` bytes of `body`; the flag says more was sent.
async fn read_capped(
    mut body: hyper::body::Incoming,
    cap: usize,
) -> Result<(Vec<u8>, bool), FetchError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let room = cap - out.len();
        if data.len() > room {
            out.extend_from_slice(&data[..room]);
            return Ok((out, true));
        }
        out.extend_from_slice(&data);
    }
    Ok((out, false))
}

/// The TLS client every outgoing request uses: Mozilla's roots plus the configured extra ones,
/// the ring provider, HTTP/1.1 only.
pub(crate) fn tls_connector(options: &FetchOptions) -> Result<TlsConnector, SetupError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for certificate in &options.extra_root_certificates {
        roots.add(certificate.clone())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Resolves and connects to the first reachable address of `host`.
pub(crate) async fn connect(host: &Host<&str>, port: u16) -> Result<TcpStream, FetchError> {
    let addresses: Vec<SocketAddr> = match host {
        Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(*ip), port)],
        Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(*ip), port)],
        Host::Domain(name) => tokio::net::lookup_host((*name, port))
            .await
            .map_err(|source| FetchError::Resolve {
                host: (*name).to_owned(),
                source,
            })?
            .collect(),
    };
    let mut last = None;
    for addr in addresses {
        if let Some(reason) = refusal(addr.ip()) {
            last = Some(FetchError::Forbidden { addr, reason });
            continue;
        }
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(source) => last = Some(FetchError::Connect { addr, source }),
        }
    }
    Err(last.unwrap_or_else(|| FetchError::NoAddress {
        host: host.to_string(),
    }))
}

fn server_name(host: &Host<&str>) -> Result<ServerName<'static>, FetchError> {
    match host {
        Host::Ipv4(ip) => Ok(ServerName::IpAddress(IpAddr::V4(*ip).into())),
        Host::Ipv6(ip) => Ok(ServerName::IpAddress(IpAddr::V6(*ip).into())),
        Host::Domain(name) => ServerName::try_from((*name).to_owned())
            .map_err(|_| FetchError::ServerName((*name).to_owned())),
    }
}

/// Aborts the connection task when the response is dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
