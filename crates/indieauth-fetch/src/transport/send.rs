//! One bounded request without redirects (any method, optional form body and headers), for
//! the JSON calls of [`crate::json`].

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header;
use url::Url;

use super::{FetchError, Page, Transport, read_capped, target_and_host};

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
        let (target, host_header) = target_and_host(outgoing.url);
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
        let (response, _driver) = self.send_to(outgoing.url, request).await?;
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
