//! The real `hass-auth` binary on 127.0.0.1 with temp config dirs.

mod support;

mod cli;
mod serve;
