//! auth-host integration tests: configuration.yaml in, AuthManager out.

// Integration tests are their own crate: link the out-of-tree provider so that it registers.
use provider_example_fork as _;

mod build;
#[cfg(all(
    feature = "provider-homeassistant",
    feature = "provider-legacy-api-password",
    feature = "provider-insecure-example",
    feature = "provider-trusted-networks",
    feature = "mfa-totp",
    feature = "mfa-insecure-example"
))]
mod chain;
mod errors;
mod http;
mod loading;
mod registry;
mod schema;
mod support;
mod tags;
