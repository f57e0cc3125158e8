//! In-process requests: `Router::oneshot` with the peer address a server would have given.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} ({})", self.body, self.status))
    }
}

/// A request for `uri` from `peer` (an IP address), `Host: hass.local:8123`.
pub fn request(method: &str, uri: &str, peer: &str) -> axum::http::request::Builder {
    let peer: SocketAddr = format!("{peer}:50000").parse().expect("an IPv4 peer");
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "hass.local:8123")
        .extension(ConnectInfo(peer))
}

/// `GET uri` from `peer`, with `Authorization: Bearer token` when given.
pub fn get(uri: &str, peer: &str, token: Option<&str>) -> Request<Body> {
    let mut builder = request("GET", uri, peer);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::empty()).expect("request")
}

/// Sends `request` through `router` in-process.
pub async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}
