//! The real `hass-auth` binary on 127.0.0.1 with temp config dirs.

mod client;
mod support;

mod browser;
mod cli;
mod connections;
mod corrupt;
mod crash;
mod disk_full;
mod frontend;
mod indieauth;
mod postgres;
mod serve;
mod soak;
