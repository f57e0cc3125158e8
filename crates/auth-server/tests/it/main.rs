//! The real `hass-auth` binary on 127.0.0.1 with temp config dirs.
//!
//! Almost every test signs in with the `homeassistant` provider, so they run in builds with the
//! `provider-homeassistant` feature (the default); `without_homeassistant` runs in the build
//! without it (`cargo xtask ci`'s feature matrix).
#![cfg_attr(
    not(feature = "provider-homeassistant"),
    allow(dead_code, unused_imports)
)]

mod client;
mod support;

#[cfg(feature = "provider-homeassistant")]
mod bans;
#[cfg(feature = "provider-homeassistant")]
mod browser;
#[cfg(feature = "provider-homeassistant")]
mod cli;
#[cfg(feature = "provider-homeassistant")]
mod connections;
#[cfg(feature = "provider-homeassistant")]
mod corrupt;
#[cfg(feature = "provider-homeassistant")]
mod crash;
#[cfg(feature = "provider-homeassistant")]
mod disk_full;
#[cfg(feature = "provider-homeassistant")]
mod frontend;
#[cfg(feature = "provider-homeassistant")]
mod http_store;
#[cfg(feature = "provider-homeassistant")]
mod indieauth;
#[cfg(feature = "provider-homeassistant")]
mod logs;
#[cfg(feature = "provider-homeassistant")]
mod notify;
#[cfg(feature = "provider-homeassistant")]
mod oidc;
#[cfg(feature = "provider-homeassistant")]
mod owner;
#[cfg(feature = "provider-homeassistant")]
mod passkeys;
#[cfg(feature = "provider-homeassistant")]
mod postgres;
#[cfg(feature = "provider-homeassistant")]
mod serve;
#[cfg(feature = "provider-homeassistant")]
mod soak;
#[cfg(feature = "provider-homeassistant")]
mod tls;
#[cfg(not(feature = "provider-homeassistant"))]
mod without_homeassistant;
