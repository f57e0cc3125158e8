//! Integration tests of the `homeassistant` provider: real file stores in temp dirs, a real
//! `AuthManager`, complete login flows, Home Assistant's golden fixtures.

use provider_homeassistant as _;

mod admin;
mod common;
mod conformance;
mod fixtures;
mod flows;
mod registry;
mod storage;
