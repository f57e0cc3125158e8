//! Fetches the redirect URIs an IndieAuth client publishes at its `client_id` URL
//! (`spec/http-api.md` §8.2): `<link rel="redirect_uri">` tags in an HTML page, or else an OAuth
//! Client ID Metadata Document.
//!
//! Every fetch is bounded: one total deadline (5 s by default) for DNS, connect, TLS, redirects
//! and body; at most 10 240 body bytes read; at most a few fetches at once. Only `http` and `https`
//! URLs are fetched, followed or returned. Failures are logged and give an empty list, so a client
//! that cannot be reached simply publishes nothing.
//!
//! ```no_run
//! # async fn demo() -> Result<(), indieauth_fetch::SetupError> {
//! let fetcher = indieauth_fetch::RedirectUriFetcher::new(indieauth_fetch::FetchOptions::default())?;
//! let published = fetcher.published_redirect_uris("https://app.example/").await;
//! # let _ = published; Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod addresses;
pub mod html;
pub mod json;
pub mod metadata;
mod transport;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use url::Url;

pub use json::{JsonAnswer, JsonClient, JsonError, PostError};

/// Limits and trust settings of a [`RedirectUriFetcher`].
#[derive(Clone, Debug, PartialEq)]
pub struct FetchOptions {
    /// Total time for one fetch, redirects included (HA: 5 s).
    pub timeout: Duration,
    /// Body bytes read at most (HA: about 10 240).
    pub max_body_bytes: usize,
    /// HTTP redirects followed at most.
    pub max_redirects: usize,
    /// Fetches running at once; more wait for a slot within their own deadline.
    pub max_concurrent: usize,
    /// Certificates trusted in addition to the built-in Mozilla roots (e.g. a home CA).
    pub extra_root_certificates: Vec<CertificateDer<'static>>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_body_bytes: 10_240,
            max_redirects: 10,
            max_concurrent: 8,
            extra_root_certificates: Vec::new(),
        }
    }
}

/// Why a fetcher could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A certificate file could not be read or holds no usable certificate.
    #[error("{path}: {problem}")]
    Certificates {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The TLS configuration was refused.
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
}

/// Reads every certificate of a PEM file (e.g. a home CA for [`FetchOptions::extra_root_certificates`]).
pub fn load_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let problem = |problem: String| SetupError::Certificates {
        path: path.display().to_string(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| problem(e.to_string()))?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(format!("not a PEM certificate file ({e})")))?;
    if certificates.is_empty() {
        return Err(problem("no PEM certificate in the file".to_owned()));
    }
    Ok(certificates)
}

/// Fetches published redirect URIs. Cheap to clone; share one per process.
#[derive(Clone, Debug)]
pub struct RedirectUriFetcher {
    transport: Arc<transport::Transport>,
    options: Arc<FetchOptions>,
}

impl RedirectUriFetcher {
    /// A fetcher with `options`; fails only when the extra certificates are refused.
    pub fn new(options: FetchOptions) -> Result<Self, SetupError> {
        let transport = transport::Transport::new(&options)?;
        Ok(Self {
            transport: Arc::new(transport),
            options: Arc::new(options),
        })
    }

    /// The `http`/`https` redirect URIs published at `client_id`; empty when the page cannot be
    /// fetched in time or publishes none.
    pub async fn published_redirect_uris(&self, client_id: &str) -> Vec<String> {
        let Ok(url) = Url::parse(client_id) else {
            return Vec::new();
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Vec::new();
        }
        let fetched = tokio::time::timeout(self.options.timeout, self.transport.get(url.clone()));
        let page = match fetched.await {
            Ok(Ok(page)) => page,
            Ok(Err(error)) => {
                tracing::warn!(%client_id, %error, "could not fetch the client's redirect URIs");
                return Vec::new();
            }
            Err(_) => {
                tracing::warn!(%client_id, timeout = ?self.options.timeout,
                    "fetching the client's redirect URIs timed out");
                return Vec::new();
            }
        };
        let text = String::from_utf8_lossy(&page.body);
        let links = html::link_redirect_uris(&text, &url);
        if !links.is_empty() {
            return links;
        }
        let complete = !page.truncated && page.body.len() < self.options.max_body_bytes;
        if complete
            && page.status == 200
            && !page.redirected
            && metadata::client_id_may_publish_metadata(client_id)
            && let Some(uris) = metadata::metadata_redirect_uris(&page.body, client_id)
        {
            return uris;
        }
        Vec::new()
    }
}
