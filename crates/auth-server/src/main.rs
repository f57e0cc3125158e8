//! `hass-auth`: Home Assistant's authentication server and its admin commands.
//!
//! ```text
//! hass-auth serve [--config-dir DIR] [--bind ADDR:PORT]   # default DIR: ./data (demo config on first run)
//!                 [--flow-idle-timeout S] [--auth-code-lifetime S]
//! hass-auth user -c DIR list|add|remove|passwd|validate|activate|deactivate ...
//! hass-auth user -c DIR add --owner [--name NAME] USERNAME PASSWORD
//! hass-auth token -c DIR create-long-lived --user NAME --name CLIENT [--days N]
//! hass-auth check-config -c DIR
//! hass-auth schema
//! hass-auth storage -c DIR restore KEY
//! hass-auth storage -c DIR import --database-url postgres://...
//! hass-auth storage -c DIR export --database-url postgres://...
//! ```
//!
//! Exit codes: 0 success, 1 the command's outcome was negative (user not found, invalid auth,
//! username taken), 2 usage error, 3 the configuration or storage could not be used.

mod admin;
mod bans;
mod listen;
mod owner;
mod serve;
mod tls;
mod transfer;

use std::path::PathBuf;
use std::process::ExitCode;

/// The binary's allocator: mimalloc, whose thread-local heaps cost a sign-in less CPU and keep
/// less memory than glibc's per-thread arenas under concurrent requests (see `cargo xtask bench`).
/// Libraries leave the choice to the host application.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Log targets capped at `debug`: at `trace` they write message contents (tokens) to the log.
const PAYLOAD_TRACING_CAPS: [&str; 2] = ["tungstenite=debug", "tokio_tungstenite=debug"];

/// Exit code when a command ran but its answer is "no".
pub const EXIT_NEGATIVE: u8 = 1;
/// Exit code when the configuration or storage cannot be used.
pub const EXIT_UNUSABLE: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "hass-auth",
    version,
    about = "Home Assistant's authentication server, in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Manage the homeassistant provider's users (like `hass --script auth`).
    User {
        /// Configuration directory (holds configuration.yaml and .storage).
        #[arg(short = 'c', long = "config-dir", default_value = "data")]
        config_dir: PathBuf,
        #[command(subcommand)]
        command: admin::UserCommand,
    },
    /// Manage tokens.
    Token {
        /// Configuration directory.
        #[arg(short = 'c', long = "config-dir", default_value = "data")]
        config_dir: PathBuf,
        #[command(subcommand)]
        command: admin::TokenCommand,
    },
    /// Check configuration.yaml and the stores, and print what would run.
    CheckConfig {
        /// Configuration directory.
        #[arg(short = 'c', long = "config-dir", default_value = "data")]
        config_dir: PathBuf,
    },
    /// Print the JSON Schema of the configuration this build understands.
    Schema,
    /// IP bans (ip_bans.yaml): list, remove.
    Ban {
        /// Configuration directory.
        #[arg(short = 'c', long = "config-dir", default_value = "data")]
        config_dir: PathBuf,
        #[command(subcommand)]
        command: bans::BanCommand,
    },
    /// Storage maintenance.
    Storage {
        /// Configuration directory.
        #[arg(short = 'c', long = "config-dir", default_value = "data")]
        config_dir: PathBuf,
        #[command(subcommand)]
        command: admin::StorageCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // These libraries trace whole message payloads (access tokens, signed paths): never let
    // them log below debug, whatever RUST_LOG asks for (issue 14 item 7).
    for directive in PAYLOAD_TRACING_CAPS {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::User {
                config_dir,
                command,
            } => admin::user(&config_dir, command).await,
            Command::Token {
                config_dir,
                command,
            } => admin::token(&config_dir, command).await,
            Command::CheckConfig { config_dir } => admin::check_config(&config_dir).await,
            Command::Schema => admin::schema(),
            Command::Storage {
                config_dir,
                command,
            } => admin::storage(&config_dir, command).await,
            Command::Ban {
                config_dir,
                command,
            } => bans::ban(&config_dir, command).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            let message = report(&error);
            eprintln!("error: {message}");
            if let Some(hint) = restore_hint(&message) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

/// When `message` blames a store file (`DIR/.storage/KEY: ...`) that has a last good copy, how
/// to put it back.
fn restore_hint(message: &str) -> Option<String> {
    let (before, after) = message.split_once("/.storage/")?;
    let key = after.split(':').next()?;
    if key.is_empty() || key.contains('/') || key.starts_with('.') {
        return None;
    }
    let dir = before.rsplit(' ').next()?;
    let backup = std::path::Path::new(dir)
        .join(".storage")
        .join(format!("{key}.bak"));
    backup.exists().then(|| {
        format!(
            "`hass-auth storage -c {dir} restore {key}` puts back the last good copy ({}); the damaged file is kept as {key}.rejected",
            backup.display()
        )
    })
}

/// The error and its causes, each said once (a cause whose text its context already quotes
/// is not repeated).
fn report(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}
