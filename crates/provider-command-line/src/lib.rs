//! The `command_line` auth provider for hass-auth: an external program decides whether a
//! username and password are valid, and may describe new users on its standard output.
//!
//! ```yaml
//! homeassistant:
//!   auth_providers:
//!     - type: command_line
//!       command: /usr/local/bin/ha-auth   # absolute path: the program gets no PATH
//!       args: ["--strict"]                # optional, default none
//!       meta: true                        # optional, default false: read name/group/local_only
//!       timeout: 10                       # optional, seconds (hass-auth addition)
//!       max_concurrent: 4                 # optional, programs at once (hass-auth addition)
//! ```
//!
//! A program for it:
//!
//! ```sh
//! #!/bin/sh
//! # username and password arrive in the environment; exit 0 to accept.
//! [ "$username" = "alice" ] && [ "$password" = "secret" ] || exit 1
//! echo "name = Alice"
//! echo "group = system-users"     # default: system-admin
//! echo "local_only = true"        # exactly "true"; anything else means false
//! ```
//!
//! # Behaviour (Home Assistant 2026.11)
//!
//! * **Login flow** `init`: `username` and `password` (required strings), first shown with
//!   `errors: {}`; surrounding whitespace is stripped from the username; any refusal gives the
//!   same form with `errors: {"base": "invalid_auth"}`; success finishes with
//!   `{"username": <stripped>}` (the password is dropped), then MFA if the user has it.
//! * **The program** runs directly (no shell) with `args`, an environment holding **only**
//!   `username` and `password` (no `PATH`, no `HOME`), and the server's working directory. Exit
//!   code 0 accepts; anything else — a non-zero code, a signal, a missing or non-executable
//!   program, a timeout — refuses, and is logged (with the path, the exit status or the OS
//!   error; never the password).
//! * **Metadata** (`meta: true`): standard output is split into lines; lines that are not UTF-8,
//!   start with `#` (after leading whitespace) or hold no `=` are skipped; `key = value` pairs
//!   for `name`, `group` and `local_only` are kept, remembered in memory per username (each
//!   successful login replaces the previous values), and used only when the user is created at
//!   the first sign-in: name, group id (default `system-admin`), and local-only when the value
//!   is exactly `true`.
//! * **Credentials**: the credential whose `data.username` equals the username exactly (case
//!   sensitive), else a new `{"username": <username>}`.
//!
//! # Differences from Home Assistant
//!
//! * **Timeout**: `timeout` seconds (default 10); a program still running then is killed and the
//!   login refused. Like Home Assistant, the provider reads the program's output to the end, so
//!   a background process that keeps the output open also runs into the timeout. Home Assistant
//!   waits forever, and rejects the `timeout` key.
//! * **Process group**: the program leads a process group of its own; when it ends, times out,
//!   or the login is abandoned, every process left in that group (children it started, in the
//!   background or not) is killed with SIGKILL. A process that leaves the group on purpose
//!   (`setsid`) is out of reach. Home Assistant leaves children running.
//! * **Concurrency**: at most `max_concurrent` programs (default 4) run at once per provider;
//!   further logins wait for a slot, at most `timeout`, then are refused (logged as busy). The
//!   program's own `timeout` starts when it starts. Home Assistant starts one per attempt.
//! * **Standard input** is `/dev/null`; Home Assistant lets the program inherit its own (a
//!   server has no useful standard input to offer).
//! * **Standard output** is discarded when `meta` is false (Home Assistant lets it through to
//!   its own output), and at most [`MAX_OUTPUT_BYTES`] of it are read when `meta` is true; the
//!   rest is drained and ignored (with a warning), and the cut-off last line is dropped.
//! * **Standard error** is captured (also bounded) and logged at debug level with any
//!   occurrence of the password replaced by `<password>`; Home Assistant lets it through.
//! * `command` is normalised like Python's `os.path.normpath`, as in Home Assistant; a relative
//!   path is accepted but logged as a warning.

#![forbid(unsafe_code)]

use std::sync::Arc;

use auth_core::{AuthProvider, PluginContext, PluginSpec};

mod config;
mod meta;
mod provider;

pub use config::{Config, DEFAULT_MAX_CONCURRENT, DEFAULT_TIMEOUT, normpath};
pub use meta::{Meta, is_python_whitespace, parse_meta};
pub use provider::{CommandError, CommandLineProvider, MAX_OUTPUT_BYTES, login_schema};

/// The config `type` of this provider.
pub const PROVIDER_TYPE: &str = "command_line";
/// Display name when `name` is not configured.
pub const DEFAULT_NAME: &str = "Command Line Authentication";

auth_core::register_provider! {
    kind: "command_line",
    default_name: "Command Line Authentication",
    config: Config,
    build: |config: Config, spec: PluginSpec, _ctx: &PluginContext| {
        Ok(Arc::new(CommandLineProvider::new(config, spec.id, spec.name)) as Arc<dyn AuthProvider>)
    },
}

#[cfg(test)]
mod tests;
