//! One bounded outgoing JSON POST (webhooks, e.g. ntfy or Gotify for the `notify` MFA module),
//! with the same rules as the page fetch: one deadline for DNS, connect, TLS and response,
//! http(s) only, no connection to unspecified, broadcast, multicast or link-local addresses, a
//! capped response body, a few posts at once. Redirects are not followed (a webhook that moved
//! is an error to fix, and a POST must not be replayed elsewhere).

use std::net::IpAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use url::{Host, Url};

use crate::{FetchOptions, SetupError};

/// Why a POST failed. The message never contains the body that was sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// The URL is not an absolute http(s) URL with a host.
    #[error("not an http(s) URL: {0}")]
    BadUrl(String),
    /// The deadline passed.
    #[error("no answer from {0} within the deadline")]
    Timeout(String),
    /// DNS, connect, TLS or HTTP failed (or the address is refused).
    #[error("{host}: {message}")]
    Failed {
        /// The host posted to.
        host: String,
        /// What went wrong.
        message: String,
    },
    /// The server answered with a status other than 2xx.
    #[error("{host} answered HTTP {status}")]
    Status {
        /// The host posted to.
        host: String,
        /// The status code.
        status: u16,
    },
}

/// Sends JSON POSTs; build once, use many times.
pub struct JsonPoster {
    tls: TlsConnector,
    slots: Semaphore,
    options: FetchOptions,
}

impl std::fmt::Debug for JsonPoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonPoster")
            .field("timeout", &self.options.timeout)
            .finish_non_exhaustive()
    }
}

impl JsonPoster {
    /// A poster with `options` (deadline, response cap, concurrency, extra trusted CAs).
    pub fn new(options: FetchOptions) -> Result<Self, SetupError> {
        Ok(Self {
            tls: crate::transport::tls_connector(&options)?,
            slots: Semaphore::new(options.max_concurrent.max(1)),
            options,
        })
    }

    /// POSTs `body` as `application/json` to `url`; the status on a 2xx answer.
    pub async fn post_json(&self, url: &str, body: &serde_json::Value) -> Result<u16, PostError> {
        let parsed = Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| PostError::BadUrl(url.to_owned()))?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        match tokio::time::timeout(self.options.timeout, self.post(&parsed, bytes)).await {
            Ok(result) => result,
            Err(_) => Err(PostError::Timeout(host)),
        }
    }

    async fn post(&self, url: &Url, body: Vec<u8>) -> Result<u16, PostError> {
        let _slot = self.slots.acquire().await.ok();
        let host_name = url.host_str().unwrap_or_default().to_owned();
        let failed = |message: String| PostError::Failed {
            host: host_name.clone(),
            message,
        };
        let Some(host) = url.host() else {
            return Err(PostError::BadUrl(url.to_string()));
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let tcp = crate::transport::connect(&host, port)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let mut target = url.path().to_owned();
        if let Some(query) = url.query() {
            target.push('?');
            target.push_str(query);
        }
        let host_header = match url.port() {
            Some(port) => format!("{host_name}:{port}"),
            None => host_name.clone(),
        };
        let request = hyper::Request::post(target)
            .header(header::HOST, host_header)
            .header(
                header::USER_AGENT,
                concat!("hass-auth/", env!("CARGO_PKG_VERSION")),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| failed(e.to_string()))?;
        let status = if url.scheme() == "https" {
            let name = match host {
                Host::Ipv4(ip) => ServerName::IpAddress(IpAddr::V4(ip).into()),
                Host::Ipv6(ip) => ServerName::IpAddress(IpAddr::V6(ip).into()),
                Host::Domain(name) => ServerName::try_from(name.to_owned())
                    .map_err(|_| failed("invalid TLS server name".to_owned()))?,
            };
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| failed(format!("TLS: {e}")))?;
            self.exchange(tls, request).await
        } else {
            self.exchange(tcp, request).await
        }
        .map_err(|e| failed(e.to_string()))?;
        if (200..300).contains(&status) {
            Ok(status)
        } else {
            Err(PostError::Status {
                host: host_name,
                status,
            })
        }
    }

    async fn exchange<S>(
        &self,
        stream: S,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<u16, hyper::Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let result = async {
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            // Read (and drop) at most the cap of the answer, so the server sees it delivered.
            let mut body = response.into_body();
            let mut read = 0usize;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    read += data.len();
                    if read >= self.options.max_body_bytes {
                        break;
                    }
                }
            }
            Ok(status)
        }
        .await;
        driver.abort();
        result
    }
}
