//! Integration tests of the `command_line` provider: real programs (small `/bin/sh` scripts
//! written into a temp dir), the provider built through its registration, a real `AuthManager`
//! over file storage, complete login flows.

use provider_command_line as _;

mod common;
mod conformance;
mod flows;
mod mfa;
mod processes;
mod program;
mod registry;
