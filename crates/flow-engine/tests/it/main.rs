//! Integration tests for flow-engine: the manager's lifecycle rules, golden HA JSON,
//! snapshots and property tests.

mod common;
mod ha_fixtures;
mod manager;
mod props;
mod snapshots;
