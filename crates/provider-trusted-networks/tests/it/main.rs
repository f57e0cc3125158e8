//! Integration tests of the `trusted_networks` provider: the provider built through its
//! registration, a real `AuthManager` over file storage in a temp dir, complete login flows.

use provider_trusted_networks as _;

mod common;
mod config;
mod conformance;
mod flows;
mod mfa;
mod tokens;
