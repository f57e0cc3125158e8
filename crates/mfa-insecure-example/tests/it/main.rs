//! Integration tests of the insecure_example module: a real `AuthManager` over file storage.

use mfa_insecure_example as _;

mod conformance;
mod flows;
mod registry;
mod support;
