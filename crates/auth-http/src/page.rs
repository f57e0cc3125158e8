//! Our own login page at `/auth/authorize`: small, accessible, dependency-free, rendering any
//! login flow from its `data_schema`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The page's HTML (the page script reads the query itself).
pub const AUTHORIZE_HTML: &str = include_str!("authorize.html");

/// `GET /auth/authorize`.
pub async fn authorize() -> Response {
    let mut response = (StatusCode::OK, AUTHORIZE_HTML).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
