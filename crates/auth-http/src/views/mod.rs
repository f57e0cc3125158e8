//! The API's views (http-api.md §3–§13), one file per endpoint family; what they share is here.

mod discovery;
mod link_user;
mod login_flow;
mod onboarding;
mod token;

pub use discovery::{api_root, change_password, oauth_metadata, protected_resource};
pub use link_user::link_user;
pub use login_flow::{
    login_flow_delete, login_flow_get, login_flow_start, login_flow_step, providers,
};
pub use onboarding::{onboarding_integration, onboarding_status, onboarding_users};
pub use token::{revoke, token};

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::body::{self, no_extra_keys, required_str};
use crate::error::ApiError;
pub(crate) use crate::error::internal_error;
use crate::indieauth::RequestOrigin;
use crate::net::RequestBase;
use crate::{AuthHttp, Authenticated, www_authenticate};

/// `(scheme, host, port)` the client addressed.
pub(super) fn request_origin(base: &RequestBase) -> Option<RequestOrigin> {
    let url = url::Url::parse(&format!("{}/", base.url()?)).ok()?;
    Some(RequestOrigin {
        scheme: base.scheme.to_owned(),
        host: url.host_str()?.to_lowercase(),
        port: url.port_or_known_default()?,
    })
}

pub(super) fn unauthorized(base: &RequestBase) -> Response {
    let mut response = ApiError::Plain(StatusCode::UNAUTHORIZED).into_response();
    if let Some(base) = base.url() {
        let (name, value) = www_authenticate(&base);
        response.headers_mut().insert(name, value);
    }
    response
}

/// Unknown routes: HA's plain 404.
pub async fn not_found() -> Response {
    ApiError::Plain(StatusCode::NOT_FOUND).into_response()
}

/// The body of an unauthenticated auth endpoint, within its size limit and time.
pub(super) async fn auth_body(
    http: &AuthHttp,
    request: Request<Body>,
) -> Result<Vec<u8>, ApiError> {
    let options = http.options();
    body::read_limited(request, options.auth_body_limit, options.body_timeout)
        .await
        .map(|(_, bytes)| bytes)
}

/// The token endpoints' form, within the same limits as [`auth_body`].
pub(super) async fn auth_token_form(
    http: &AuthHttp,
    request: Request<Body>,
) -> Result<Result<std::collections::HashMap<String, String>, body::FormError>, ApiError> {
    let options = http.options();
    body::token_form(request, options.auth_body_limit, options.body_timeout).await
}

/// For authenticated views: the caller, and the two required strings `keys` of a JSON body that
/// holds nothing else (body up to `body_limit`). The error is the response to send.
pub(super) async fn authenticated_string_pair(
    http: &AuthHttp,
    auth: &Option<Authenticated>,
    request: Request<Body>,
    keys: [&str; 2],
) -> Result<(Authenticated, String, String), Response> {
    let Some(caller) = auth.clone() else {
        return Err(unauthorized(&RequestBase::of(&request)));
    };
    let (_, bytes) = body::read_limited(
        request,
        http.options().body_limit,
        http.options().body_timeout,
    )
    .await
    .map_err(IntoResponse::into_response)?;
    let parse = || -> Result<(String, String), ApiError> {
        let map = body::json_object(&bytes)?;
        no_extra_keys(&map, &keys)?;
        Ok((
            required_str(&map, keys[0])?.to_owned(),
            required_str(&map, keys[1])?.to_owned(),
        ))
    };
    let (first, second) = parse().map_err(IntoResponse::into_response)?;
    Ok((caller, first, second))
}
