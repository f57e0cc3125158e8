//! Integration tests of auth-core against real file storage and Home Assistant's own data.

mod support;

mod chain;
mod codes;
mod fixtures;
mod history;
mod journal;
mod login_flow;
mod login_placeholders;
mod permissions;
mod props;
mod recovery;
mod storage;
mod tokens;
mod users;
