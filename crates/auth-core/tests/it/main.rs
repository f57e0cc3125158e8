//! Integration tests of auth-core against real file storage and Home Assistant's own data.

mod support;

mod chain;
mod codes;
mod fixtures;
mod journal;
mod login_flow;
mod permissions;
mod props;
mod storage;
mod tokens;
mod users;
