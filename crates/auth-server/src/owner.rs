//! `hass-auth user add --owner`: the owner created from the command line, and the start-up
//! notice while onboarding's user step is open.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use auth_core::models::GROUP_ID_ADMIN;
use auth_core::password_admin::username_of;
use auth_core::{AuthAccess, AuthProvider, ProviderError};
use auth_host::Host;

use crate::EXIT_NEGATIVE;

/// Creates the owner (administrators group) with a homeassistant login, then marks onboarding's
/// user step done, so `POST /api/onboarding/users` can no longer make anyone owner. An owner who
/// exists without a homeassistant login (a run cut short after creating the user) gets this one.
pub async fn add_owner(
    host: &Host,
    provider: &dyn AuthProvider,
    username: &str,
    password: &str,
    name: Option<String>,
) -> Result<ExitCode> {
    let admin = provider
        .password_admin()
        .ok_or_else(|| anyhow::anyhow!("the auth provider has no local passwords"))?;
    let manager = host.manager();
    let access: &dyn AuthAccess = manager;
    let owner = match manager.owner() {
        Some(owner) if username_of(provider, &owner).is_some() => {
            println!("The owner already exists!");
            return Ok(ExitCode::from(EXIT_NEGATIVE));
        }
        Some(owner) => owner,
        None => {
            if manager.users().iter().any(|u| !u.system_generated) {
                println!(
                    "Users exist already, and only the first user can become the owner: onboarding is over."
                );
                return Ok(ExitCode::from(EXIT_NEGATIVE));
            }
            // Refuse a bad username before the user exists (it could not be removed again).
            if let Err(error) = admin.check_new_username(access, username).await {
                return refused(error);
            }
            let name = name.unwrap_or_else(|| username.to_owned());
            let user = manager
                .create_user(Some(name), vec![GROUP_ID_ADMIN.to_owned()], false)
                .await?;
            anyhow::ensure!(
                user.is_owner,
                "the new user did not become the owner (another user was created meanwhile)"
            );
            user
        }
    };
    if let Err(error) = admin
        .add_credentials(access, &owner.id, username, password)
        .await
    {
        return refused(error);
    }
    let onboarding = auth_http::Onboarding::load(manager.store().storage().clone(), true).await?;
    onboarding.mark_done("user").await?;
    println!("Owner created");
    Ok(ExitCode::SUCCESS)
}

fn refused(error: ProviderError) -> Result<ExitCode> {
    match error {
        ProviderError::InvalidUsername { message, .. } => {
            eprintln!("{message}");
            println!("Username already exists!");
            Ok(ExitCode::from(EXIT_NEGATIVE))
        }
        other => Err(other.into()),
    }
}

/// The command that creates the owner for config directory `dir`, quoted for a POSIX shell.
pub fn add_owner_command(dir: &Path) -> String {
    format!(
        "hass-auth user -c {} add --owner USERNAME PASSWORD",
        shell_quote(&dir.display().to_string())
    )
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Says how to close onboarding; loudly (a warning on stderr) when a listener is reachable from
/// other machines, since whoever reaches the server first can make themselves the owner.
pub fn onboarding_open_notice(dir: &Path, listening: &[SocketAddr]) {
    let command = add_owner_command(dir);
    println!("No owner yet: open the server in a browser to create one, or run\n  {command}");
    let exposed: Vec<String> = listening
        .iter()
        .filter(|a| !a.ip().is_loopback())
        .map(ToString::to_string)
        .collect();
    if !exposed.is_empty() {
        let warning = format!(
            "{ONBOARDING_OPEN} on {}, which is not loopback: anyone who reaches this server can make themselves its owner. Create the owner now with `{command}`, or bind to 127.0.0.1 until you have.",
            exposed.join(", ")
        );
        // On stdout next to the hint (what an operator at a terminal reads), and in the log.
        println!("WARNING: {warning}");
        tracing::warn!("{warning}");
    }
}

/// The start of the warning about an exposed open onboarding.
pub const ONBOARDING_OPEN: &str = "ONBOARDING IS OPEN";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_the_shell_would_split_or_expand() {
        assert_eq!(shell_quote("/srv/ha-config"), "/srv/ha-config");
        assert_eq!(shell_quote("/srv/my config"), "'/srv/my config'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        assert_eq!(shell_quote(""), "''");
    }
}
