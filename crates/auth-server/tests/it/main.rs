//! The real `hass-auth` binary on 127.0.0.1 with temp config dirs.

mod client;
mod support;

mod bans;
mod browser;
mod cli;
mod connections;
mod corrupt;
mod crash;
mod disk_full;
mod frontend;
mod http_store;
mod indieauth;
mod logs;
mod notify;
mod oidc;
mod owner;
mod passkeys;
mod postgres;
mod serve;
mod soak;
mod tls;
