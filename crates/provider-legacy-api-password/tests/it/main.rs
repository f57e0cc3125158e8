//! Integration tests of the `legacy_api_password` provider: real file stores, a real
//! `AuthManager`, complete login flows, Home Assistant 2024.3.3's golden fixture.

use provider_legacy_api_password as _;

mod conformance;
mod flows;
