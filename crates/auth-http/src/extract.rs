//! [`Authenticated`] as an axum extractor for routes behind [`crate::AuthHttp::layer`].

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::Authenticated;
use crate::net::{ClientAddr, RequestBase};

/// Whether the request went through the pipeline; a route without [`crate::AuthHttp::layer`]
/// is a wiring mistake, answered with a 500 rather than a 401 nobody could ever get past.
fn check_pipeline(parts: &Parts) -> Result<(), Box<Response>> {
    if parts.extensions.get::<ClientAddr>().is_some() {
        return Ok(());
    }
    tracing::error!(
        path = crate::redact::loggable_path(parts.uri.path()),
        "the Authenticated extractor is used on a route without AuthHttp::layer()"
    );
    Err(Box::new(crate::error::internal_error().into_response()))
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        check_pipeline(parts).map_err(|response| *response)?;
        match parts.extensions.get::<Authenticated>() {
            Some(auth) => Ok(auth.clone()),
            None => {
                let base = parts
                    .extensions
                    .get::<RequestBase>()
                    .cloned()
                    .unwrap_or_else(|| RequestBase::resolve(&parts.headers, false));
                Err(crate::views::unauthorized(&base))
            }
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Response> {
        check_pipeline(parts).map_err(|response| *response)?;
        Ok(parts.extensions.get::<Authenticated>().cloned())
    }
}
