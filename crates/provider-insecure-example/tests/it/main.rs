//! Integration tests of the (testing-only) `insecure_example` provider: real file stores, a real
//! `AuthManager`, complete login flows, Home Assistant 2026.2.3's golden fixture.

use provider_insecure_example as _;

mod conformance;
mod flows;
