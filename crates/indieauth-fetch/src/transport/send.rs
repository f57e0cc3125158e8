//! One bounded request without redirects (any method, optional form body and headers), for
//! the JSON calls of [`crate::json`].

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;

use super::{AbortOnDrop, FetchError, Page, Transport, connect, read_capped, server_name};

/// A request of [`Transport::send`].
pub(crate) struct Outgoing<'a> {
    /// `GET` or `POST`.
    pub method: hyper::Method,
    /// Where to.
    pub url: &'a Url,
    /// Extra headers (name, value).
    pub headers: Vec<(header::HeaderName, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

impl Transport {
    /// Sends one request (no redirects followed); the caller bounds the total time.
    pub(crate) async fn send(&self, outgoing: Outgoing<'_>) -> Result<Page, FetchError> {
        let _slot = self.slots.acquire().await.ok();
        let url = outgoing.url;
        let host = url
            .host()
            .ok_or_else(|| FetchError::NoHost(url.to_string()))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let tcp = connect(&host, port).await?;
        let mut target = url.path().to_owned();
        if let Some(query) = url.query() {
            target.push('?');
            target.push_str(query);
        }
        let host_header = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let mut request = hyper::Request::builder()
            .method(outgoing.method)
            .uri(target)
            .header(header::HOST, host_header)
            .header(
                header::USER_AGENT,
                concat!("hass-auth/", env!("CARGO_PKG_VERSION")),
            )
            .header(header::ACCEPT, "application/json")
            .header(header::ACCEPT_ENCODING, "identity");
        for (name, value) in outgoing.headers {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(Bytes::from(outgoing.body)))?;
        let (response, _driver) = if url.scheme() == "https" {
            let name = server_name(&host)?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|source| FetchError::Tls {
                    host: host.to_string(),
                    source,
                })?;
            exchange(tls, request).await?
        } else {
            exchange(tcp, request).await?
        };
        let status = response.status().as_u16();
        let (body, truncated) = read_capped(response.into_body(), self.max_body_bytes).await?;
        Ok(Page {
            status,
            body,
            truncated,
            redirected: false,
        })
    }
}

/// Sends `request` on a fresh HTTP/1.1 connection over `stream`.
async fn exchange<S>(
    stream: S,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(hyper::Response<hyper::body::Incoming>, AbortOnDrop), FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let response = sender.send_request(request).await?;
    Ok((response, driver))
}
