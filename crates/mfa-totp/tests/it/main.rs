//! Integration tests of the totp module: a real `AuthManager` over file storage in temp dirs.

use mfa_totp as _;

mod chain;
mod conformance;
mod ha_fixture;
mod login;
mod registry;
mod setup;
mod storage;
mod support;
mod vectors;
