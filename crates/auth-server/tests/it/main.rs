//! The real `hass-auth` binary on 127.0.0.1 with temp config dirs.

mod client;
mod support;

mod cli;
mod crash;
mod serve;
