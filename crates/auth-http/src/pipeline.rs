//! The request pipeline every route of ours runs in, and that a host puts on its own routes
//! ([`AuthHttp::layer`]): HA's security filter, forwarded headers, ban check, authentication,
//! failed-login counting, then security headers and CORS on the way out.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;

use crate::error::ApiError;
use crate::net::{self, ClientAddr};
use crate::{AuthHttp, Authenticated};

/// The [`tower::Layer`] of [`AuthHttp::layer`]: puts a route behind the request pipeline.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    http: AuthHttp,
}

impl AuthLayer {
    pub(crate) fn new(http: AuthHttp) -> Self {
        Self { http }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            http: self.http.clone(),
            inner,
        }
    }
}

/// A service behind the request pipeline (see [`AuthLayer`]).
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    http: AuthHttp,
    inner: S,
}

impl<S> tower::Service<Request<Body>> for AuthService<S>
where
    S: tower::Service<Request<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone may not be ready; the instance that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let http = self.http.clone();
        Box::pin(async move {
            // Inside the pipeline, so that a panicking view's 500 gets the security headers;
            // and once more outside it, for the pipeline itself.
            let answer = run(&http, request, |request| {
                catch_panic(async move {
                    match inner.call(request).await {
                        Ok(response) => response.into_response(),
                        Err(never) => match never {},
                    }
                })
            });
            Ok(catch_panic(answer).await)
        })
    }
}

/// Paths whose CORS policy allows every origin.
const CORS_ALLOW_ALL: [&str; 4] = [
    "/auth/token",
    "/auth/revoke",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-protected-resource",
];

/// HA's middleware chain: security filter, forwarded headers, ban, authentication, then security
/// headers and CORS on the way out.
async fn run<F, Fut>(http: &AuthHttp, mut request: Request<Body>, next: F) -> Response
where
    F: FnOnce(Request<Body>) -> Fut,
    Fut: Future<Output = Response>,
{
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let origin = request.headers().get(header::ORIGIN).cloned();
    let preflight = request.method() == Method::OPTIONS && origin.is_some();
    let mut response = if net::is_unsafe_request(&path, query.as_deref()) {
        tracing::warn!(
            path = crate::redact::loggable_path(&path),
            "filtered a request with a suspicious path or query"
        );
        ApiError::Plain(StatusCode::BAD_REQUEST).into_response()
    } else {
        match net::resolve_client(
            &request,
            http.inner.options.use_x_forwarded_for,
            &http.inner.options.trusted_proxies,
        ) {
            Err(error) => error.into_response(),
            Ok(client) => {
                if client.ip.is_some_and(|ip| http.inner.bans.is_banned(ip)) {
                    ApiError::Plain(StatusCode::FORBIDDEN).into_response()
                } else {
                    let authenticated = authenticate(http, &request, client);
                    // Decided before the view runs: a token it revokes is not stale to it.
                    let stale = authenticated.is_none() && has_stale_bearer(http, &request);
                    if let Some(auth) = authenticated {
                        request.extensions_mut().insert(auth);
                    }
                    request.extensions_mut().insert(client);
                    let tls = request.extensions().get::<net::ServedOverTls>().is_some();
                    let base =
                        net::RequestBase::resolve_for(request.headers(), client.via_proxy, tls);
                    request.extensions_mut().insert(base);
                    let url = format!(
                        "{path}{}",
                        query
                            .as_deref()
                            .map(|q| format!("?{q}"))
                            .unwrap_or_default()
                    );
                    let response = if preflight {
                        preflight_response()
                    } else {
                        next(request).await
                    };
                    if response.status() == StatusCode::UNAUTHORIZED && http.inner.bans.enabled() {
                        if stale {
                            tracing::info!(
                                ip = ?client.ip,
                                "request with an expired or revoked access token; not counted as a failed login"
                            );
                        } else {
                            http.inner.bans.record_failure(client.ip, &url);
                        }
                    }
                    response
                }
            }
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::SERVER, HeaderValue::from_static(""));
    if http.inner.options.use_x_frame_options {
        headers.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
    }
    if let Some(origin) = origin {
        let allowed = CORS_ALLOW_ALL.contains(&path.as_str())
            || origin.to_str().is_ok_and(|o| {
                http.inner
                    .options
                    .cors_allowed_origins
                    .iter()
                    .any(|a| a == o)
            });
        if allowed {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            if preflight {
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static(
                        "Origin, Accept, X-Requested-With, Content-Type, Authorization",
                    ),
                );
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, OPTIONS"),
                );
            }
        }
    }
    response
}

/// A panic while answering becomes HA's plain 500 (http-api.md §1) instead of a dropped
/// connection.
async fn catch_panic(answer: impl Future<Output = Response>) -> Response {
    match AssertUnwindSafe(answer).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(message, "answering a request panicked");
            crate::error::internal_error().into_response()
        }
    }
}

fn preflight_response() -> Response {
    (StatusCode::OK, "").into_response()
}

/// Bearer token first, then (GET/HEAD only) a signed path.
fn authenticate(
    http: &AuthHttp,
    request: &Request<Body>,
    client: ClientAddr,
) -> Option<Authenticated> {
    let manager = &http.inner.manager;
    if let Some(value) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some((scheme, token)) = value.split_once(' ')
        && scheme == "Bearer"
        && let Some(refresh) = manager.validate_access_token(token)
        && let Some(user) = manager.user(&refresh.user_id)
        && manager.user_not_allowed_reason(&user, client.ip).is_none()
    {
        return Some(Authenticated {
            user,
            refresh_token: refresh,
        });
    }
    if matches!(*request.method(), Method::GET | Method::HEAD)
        && request.uri().query().is_some_and(|q| q.contains("authSig"))
    {
        let query = request.uri().query().unwrap_or_default();
        let token_id = http.verify_signed_path(request.uri().path(), query)?;
        let refresh = manager.refresh_token(&token_id)?;
        let user = manager.user(&refresh.user_id)?;
        if manager.user_not_allowed_reason(&user, client.ip).is_none() {
            return Some(Authenticated {
                user,
                refresh_token: refresh,
            });
        }
    }
    None
}

/// Whether the request carries a bearer token we issued that has expired or was revoked.
fn has_stale_bearer(http: &AuthHttp, request: &Request<Body>) -> bool {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme == "Bearer" && http.inner.manager.is_stale_access_token(token)
        })
}
