//! `hass-auth ban list | remove IP`: the IP bans of `ip_bans.yaml`.

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use auth_core::FileStorage;
use auth_http::ban_file;
use auth_http::bans::ban_key;

use crate::EXIT_NEGATIVE;

/// `hass-auth ban ...`.
#[derive(Debug, clap::Subcommand)]
pub enum BanCommand {
    /// List the bans in ip_bans.yaml (IP, when banned, and whether still in force).
    List {
        /// The bans of the servers sharing this PostgreSQL database instead of ip_bans.yaml.
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
    /// Lift a ban (for an IPv6 address, every ban of its /64). With ip_bans.yaml the server
    /// must be stopped; with --database-url every running server lifts it at once.
    Remove {
        /// The banned IP address.
        ip: IpAddr,
        /// The bans of the servers sharing this PostgreSQL database instead of ip_bans.yaml.
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
}

pub async fn ban(config_dir: &Path, command: BanCommand) -> Result<ExitCode> {
    let path = config_dir.join("ip_bans.yaml");
    match command {
        BanCommand::List {
            database_url: Some(url),
        } => {
            let bans = shared(&url).await?;
            for (ip, at) in bans.list().await? {
                let at = time::OffsetDateTime::from_unix_timestamp_nanos((at * 1e9) as i128)
                    .map_or_else(|_| "(no date)".to_owned(), auth_core::timefmt::to_iso);
                println!("{ip}\t{at}\tin force");
            }
            Ok(ExitCode::SUCCESS)
        }
        BanCommand::Remove {
            ip,
            database_url: Some(url),
        } => {
            let bans = shared(&url).await?;
            if bans.unban(&ban_key(ip).to_string()).await? {
                println!("Removed the ban of {ip} on every server of the database");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("{ip} is not banned");
                Ok(ExitCode::from(EXIT_NEGATIVE))
            }
        }
        BanCommand::List { database_url: None } => {
            let config = auth_host::load_config(&config_dir.join("configuration.yaml"))
                .with_context(|| format!("cannot open {}", config_dir.display()))?;
            let duration = config.http.ban_duration;
            let (entries, skipped) = ban_file::read(&path)?;
            let now = time::OffsetDateTime::now_utc();
            for entry in &entries {
                let (when, state) = match entry.banned_at {
                    None => ("(no date)".to_owned(), "in force"),
                    Some(at) => {
                        let over = duration.is_some_and(|d| now - at >= d);
                        (
                            auth_core::timefmt::to_iso(at),
                            if over { "expired" } else { "in force" },
                        )
                    }
                };
                println!("{}\t{when}\t{state}", entry.ip);
            }
            for entry in skipped {
                eprintln!("skipped an unreadable entry: {entry}");
            }
            Ok(ExitCode::SUCCESS)
        }
        BanCommand::Remove {
            ip,
            database_url: None,
        } => {
            // Refused while a server holds the directory: it would append over our rewrite and
            // keep the ban in memory.
            let storage = FileStorage::new(config_dir.join(".storage"));
            let _lock = storage.lock()?;
            let (entries, _skipped) = ban_file::read(&path)?;
            let key = ban_key(ip);
            let now = time::OffsetDateTime::now_utc();
            let (removed, kept): (Vec<_>, Vec<_>) =
                entries.into_iter().partition(|e| ban_key(e.ip) == key);
            if removed.is_empty() {
                println!("{ip} is not banned");
                return Ok(ExitCode::from(EXIT_NEGATIVE));
            }
            let kept: Vec<(IpAddr, time::OffsetDateTime)> = kept
                .into_iter()
                .map(|e| (e.ip, e.banned_at.unwrap_or(now)))
                .collect();
            ban_file::rewrite(&path, &kept)?;
            let names: Vec<String> = removed.iter().map(|e| e.ip.to_string()).collect();
            println!("Removed the ban of {}", names.join(", "));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The shared bans of the database at `url`.
async fn shared(url: &str) -> Result<std::sync::Arc<dyn auth_core::SharedBans>> {
    let storage = crate::serve::database(Some(url))
        .await?
        .context("--database-url: no database")?;
    storage
        .shared_bans()
        .context("--database-url: this database keeps no shared bans")
}
