//! JSON over HTTP, with the same deadline, byte cap and address rules as every other fetch, and
//! redirects never followed: for an OpenID Connect relying party, GET a JSON document
//! (discovery, JWK set) and POST a form for a JSON answer (token endpoint); for webhooks (the
//! `notify` MFA module: ntfy, Gotify, ...), POST a JSON body and take any 2xx as delivered (a
//! webhook that moved is an error to fix, and a POST must not be replayed elsewhere).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = indieauth_fetch::JsonClient::new(indieauth_fetch::FetchOptions {
//!     max_body_bytes: 64 * 1024,
//!     ..Default::default()
//! })?;
//! let discovery = client
//!     .get_json("https://id.example/.well-known/openid-configuration")
//!     .await?;
//! # let _ = discovery; Ok(()) }
//! ```

use std::sync::Arc;

use hyper::header;
use serde_json::Value;
use url::Url;

use crate::transport::send::Outgoing;
use crate::transport::{Page, Transport};
use crate::{FetchOptions, SetupError};

/// Why a JSON call failed. Messages name the URL, never a secret or the body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The URL is not an absolute `http`/`https` URL.
    #[error("{0} is not an http(s) URL")]
    Url(String),
    /// No answer within the deadline.
    #[error("{url}: no answer within {timeout:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The deadline.
        timeout: std::time::Duration,
    },
    /// Connecting, TLS or HTTP failed.
    #[error("{url}: {problem}")]
    Transport {
        /// The URL.
        url: String,
        /// What went wrong.
        problem: String,
    },
    /// The answer was larger than the byte cap.
    #[error("{url}: answer larger than {cap} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        cap: usize,
    },
    /// The answer is not a JSON object.
    #[error("{url}: answer (status {status}) is not a JSON object")]
    NotJson {
        /// The URL.
        url: String,
        /// Its HTTP status.
        status: u16,
    },
}

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

/// A JSON answer and its HTTP status.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonAnswer {
    /// HTTP status.
    pub status: u16,
    /// The JSON object.
    pub body: Value,
}

/// Makes JSON calls. Cheap to clone; share one per provider.
#[derive(Clone, Debug)]
pub struct JsonClient {
    transport: Arc<Transport>,
    options: Arc<FetchOptions>,
}

impl JsonClient {
    /// A client with `options` (deadline per call, body cap, concurrency, extra roots).
    pub fn new(options: FetchOptions) -> Result<Self, SetupError> {
        let transport = Transport::new(&options)?;
        Ok(Self {
            transport: Arc::new(transport),
            options: Arc::new(options),
        })
    }

    /// GETs `url`; the answer must be `200` with a JSON object.
    pub async fn get_json(&self, url: &str) -> Result<Value, JsonError> {
        let answer = self
            .call(url, hyper::Method::GET, Vec::new(), Vec::new())
            .await?;
        if answer.status != 200 {
            return Err(JsonError::Transport {
                url: url.to_owned(),
                problem: format!("HTTP status {}", answer.status),
            });
        }
        Ok(answer.body)
    }

    /// POSTs `form` (`application/x-www-form-urlencoded`) to `url`, with HTTP Basic
    /// authentication when `basic` (user, password) is given; any status with a JSON object
    /// answer is returned (OAuth errors come as 400 with a JSON body).
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<JsonAnswer, JsonError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish()
            .into_bytes();
        let mut headers = vec![(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".to_owned(),
        )];
        if let Some((user, password)) = basic {
            headers.push((header::AUTHORIZATION, basic_authorization(user, password)));
        }
        self.call(url, hyper::Method::POST, headers, body).await
    }

    /// POSTs `body` as `application/json` to `url` (a webhook); the status of a 2xx answer,
    /// whose body is read up to the cap and dropped. Errors name the host only: a webhook URL
    /// often carries its token in the path or query.
    pub async fn post_json(&self, url: &str, body: &Value) -> Result<u16, PostError> {
        let parsed = Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| PostError::BadUrl(url.to_owned()))?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let outgoing = Outgoing {
            method: hyper::Method::POST,
            url: &parsed,
            headers: vec![(header::CONTENT_TYPE, "application/json".to_owned())],
            body: serde_json::to_vec(body).unwrap_or_default(),
        };
        let page =
            match tokio::time::timeout(self.options.timeout, self.transport.send(outgoing)).await {
                Ok(Ok(page)) => page,
                Ok(Err(error)) => {
                    return Err(PostError::Failed {
                        host,
                        message: error.to_string(),
                    });
                }
                Err(_) => return Err(PostError::Timeout(host)),
            };
        if (200..300).contains(&page.status) {
            Ok(page.status)
        } else {
            Err(PostError::Status {
                host,
                status: page.status,
            })
        }
    }

    async fn call(
        &self,
        url: &str,
        method: hyper::Method,
        headers: Vec<(header::HeaderName, String)>,
        body: Vec<u8>,
    ) -> Result<JsonAnswer, JsonError> {
        let parsed = Url::parse(url).map_err(|_| JsonError::Url(url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(JsonError::Url(url.to_owned()));
        }
        let outgoing = Outgoing {
            method,
            url: &parsed,
            headers,
            body,
        };
        let sent = tokio::time::timeout(self.options.timeout, self.transport.send(outgoing));
        let page: Page = match sent.await {
            Ok(Ok(page)) => page,
            Ok(Err(error)) => {
                return Err(JsonError::Transport {
                    url: url.to_owned(),
                    problem: error.to_string(),
                });
            }
            Err(_) => {
                return Err(JsonError::Timeout {
                    url: url.to_owned(),
                    timeout: self.options.timeout,
                });
            }
        };
        if page.truncated {
            return Err(JsonError::TooLarge {
                url: url.to_owned(),
                cap: self.options.max_body_bytes,
            });
        }
        match serde_json::from_slice::<Value>(&page.body) {
            Ok(body @ Value::Object(_)) => Ok(JsonAnswer {
                status: page.status,
                body,
            }),
            _ => Err(JsonError::NotJson {
                url: url.to_owned(),
                status: page.status,
            }),
        }
    }
}

/// `Basic base64(urlencode(user):urlencode(password))` (RFC 6749 §2.3.1).
fn basic_authorization(user: &str, password: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(user), encode(password));
    format!("Basic {}", base64_encode(pair.as_bytes()))
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::{base64_encode, basic_authorization};

    #[test]
    fn basic_authorization_encodes_like_rfc_6749() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
        // ':' in a secret is form-encoded so it cannot split the pair.
        assert_eq!(
            basic_authorization("hass", "a:b c"),
            format!("Basic {}", base64_encode(b"hass:a%3Ab+c"))
        );
    }
}
