//! Admin commands over a configuration directory: users, tokens, config check, schema, storage.

use std::path::Path;
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use auth_core::password_admin::password_admin_provider;
use auth_core::{
    AuthAccess, AuthProvider, Credentials, FileStorage, NewRefreshToken, PasswordAdmin,
    ProviderError, TokenType, UserUpdate,
};
use auth_host::Host;

use crate::{EXIT_NEGATIVE, EXIT_UNUSABLE};

/// `hass-auth user ...` (the homeassistant provider's users).
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// List usernames.
    List,
    /// Add a username and password (the username must already be normalised); with `--owner`,
    /// create the owner (an administrator) who signs in with them, which closes onboarding's
    /// user step.
    Add {
        /// Username (lowercase, no surrounding whitespace).
        username: String,
        /// Password.
        password: String,
        /// Create the owner: a user in the administrators group, marked owner, with this login.
        #[arg(long)]
        owner: bool,
        /// The owner's display name (default: the username).
        #[arg(long, requires = "owner")]
        name: Option<String>,
    },
    /// Remove a username (and its login; linked users keep their other credentials).
    Remove {
        /// Username.
        username: String,
    },
    /// Change a password.
    #[command(alias = "change_password")]
    Passwd {
        /// Username.
        username: String,
        /// New password.
        new_password: String,
    },
    /// Check a username and password.
    Validate {
        /// Username.
        username: String,
        /// Password.
        password: String,
    },
    /// Activate the user signing in with this username.
    Activate {
        /// Username.
        username: String,
    },
    /// Deactivate the user signing in with this username (revokes its tokens).
    Deactivate {
        /// Username.
        username: String,
    },
    /// Reset the second factors of the user signing in with this username (lost device): every
    /// MFA enrolment (or only `module_id`'s, also one a provider requires) and the recovery
    /// codes are removed, and their sign-in sessions are revoked.
    #[command(alias = "reset-mfa")]
    MfaReset {
        /// Username.
        username: String,
        /// Only this MFA module, e.g. `totp`.
        module_id: Option<String>,
    },
}

/// `hass-auth token ...`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a long-lived access token and print it (the only copy).
    CreateLongLived {
        /// Username of the homeassistant provider, or a user id.
        #[arg(long)]
        user: String,
        /// Client name (unique per user).
        #[arg(long)]
        name: String,
        /// Lifetime in days.
        #[arg(long, default_value_t = 3650)]
        days: i64,
    },
}

/// `hass-auth storage ...`.
#[derive(Debug, clap::Subcommand)]
pub enum StorageCommand {
    /// Put back the last good copy (`<key>.bak`) of a store, e.g. `auth`; the bad file is kept as `<key>.rejected`.
    Restore {
        /// Store key (file name in .storage).
        key: String,
    },
    /// Copy every store of `.storage` (the auth journal included) into a PostgreSQL database,
    /// replacing what it holds for those stores.
    Import {
        /// The database, `postgres://user@host/db`.
        #[arg(long, value_name = "URL")]
        database_url: String,
    },
    /// Write every store of a PostgreSQL database into `.storage`, in Home Assistant's format.
    Export {
        /// The database, `postgres://user@host/db`.
        #[arg(long, value_name = "URL")]
        database_url: String,
    },
}

async fn open(config_dir: &Path) -> Result<Host> {
    Host::from_config_dir(config_dir)
        .await
        .with_context(|| format!("cannot open {}", config_dir.display()))
}

/// The configured provider with local usernames and passwords (the `homeassistant` provider).
fn password_provider(host: &Host) -> Result<Arc<dyn AuthProvider>> {
    password_admin_provider(&host.manager().auth_providers()).ok_or_else(|| {
        anyhow!(
            "no auth provider with local usernames and passwords (type homeassistant) is configured in configuration.yaml{}",
            if auth_core::registry::find_provider("homeassistant").is_none() {
                " (this hass-auth is built without the provider-homeassistant feature)"
            } else {
                ""
            }
        )
    })
}

fn admin_of(provider: &Arc<dyn AuthProvider>) -> Result<&dyn PasswordAdmin> {
    provider
        .password_admin()
        .ok_or_else(|| anyhow!("the auth provider has no local passwords"))
}

/// The credential of the password provider whose username matches `username` (compared as the
/// provider compares logins); none without a password provider.
fn credential_for(host: &Host, username: &str) -> Option<Credentials> {
    let provider = password_provider(host).ok()?;
    let admin = provider.password_admin()?;
    let wanted = admin.normalize_username(username);
    host.manager()
        .credentials_of(provider.provider_type(), provider.provider_id())
        .into_iter()
        .find(|c| {
            c.data_str("username")
                .map(|u| admin.normalize_username(u))
                .as_deref()
                == Some(wanted.as_str())
        })
}

fn outcome(ok: bool, yes: &str, no: &str) -> ExitCode {
    if ok {
        println!("{yes}");
        ExitCode::SUCCESS
    } else {
        println!("{no}");
        ExitCode::from(EXIT_NEGATIVE)
    }
}

pub async fn user(config_dir: &Path, command: UserCommand) -> Result<ExitCode> {
    let host = open(config_dir).await?;
    let arc = password_provider(&host)?;
    let provider = admin_of(&arc)?;
    let manager = host.manager();
    let code = match command {
        UserCommand::List => {
            let names = provider.usernames().await?;
            for name in &names {
                println!("{name}");
            }
            println!();
            println!("Total users: {}", names.len());
            ExitCode::SUCCESS
        }
        UserCommand::Add {
            username,
            password,
            owner: true,
            name,
        } => crate::owner::add_owner(&host, arc.as_ref(), &username, &password, name).await?,
        UserCommand::Add {
            username, password, ..
        } => match provider.add_auth(&username, &password).await {
            Ok(()) => outcome(true, "Auth created", ""),
            Err(ProviderError::InvalidUsername { message, .. }) => {
                eprintln!("{message}");
                outcome(false, "", "Username already exists!")
            }
            Err(error) => return Err(error.into()),
        },
        UserCommand::Remove { username } => match credential_for(&host, &username) {
            Some(credential) => {
                manager.remove_credentials(&credential.id).await?;
                outcome(true, "Auth removed", "")
            }
            None => match provider.remove_auth(&username).await {
                Ok(()) => outcome(true, "Auth removed", ""),
                Err(ProviderError::InvalidUser(_)) => outcome(false, "", "User not found"),
                Err(error) => return Err(error.into()),
            },
        },
        UserCommand::Passwd {
            username,
            new_password,
        } => match provider.change_password(&username, &new_password).await {
            Ok(()) => outcome(true, "Password changed", ""),
            Err(ProviderError::InvalidUser(_)) => outcome(false, "", "User not found"),
            Err(error) => return Err(error.into()),
        },
        UserCommand::Validate { username, password } => {
            let valid = provider.validate_login(&username, &password).await?;
            outcome(valid, "Auth valid", "Auth invalid")
        }
        UserCommand::Activate { username } => match credential_for(&host, &username)
            .and_then(|c| manager.user_by_credentials(&c.id))
        {
            Some(user) => {
                manager
                    .update_user(
                        &user.id,
                        UserUpdate {
                            is_active: Some(true),
                            ..Default::default()
                        },
                    )
                    .await?;
                outcome(true, "User activated", "")
            }
            None => outcome(false, "", "User not found"),
        },
        UserCommand::Deactivate { username } => {
            match credential_for(&host, &username).and_then(|c| manager.user_by_credentials(&c.id))
            {
                Some(user) => match manager
                    .update_user(
                        &user.id,
                        UserUpdate {
                            is_active: Some(false),
                            ..Default::default()
                        },
                    )
                    .await
                {
                    Ok(_) => outcome(true, "User deactivated", ""),
                    Err(auth_core::AuthError::CannotDeactivateOwner) => {
                        outcome(false, "", "Unable to deactivate the owner")
                    }
                    Err(error) => return Err(error.into()),
                },
                None => outcome(false, "", "User not found"),
            }
        }
        UserCommand::MfaReset {
            username,
            module_id,
        } => {
            match credential_for(&host, &username).and_then(|c| manager.user_by_credentials(&c.id))
            {
                Some(user) => match manager.reset_user_mfa(&user.id, module_id.as_deref()).await {
                    Ok(reset) => {
                        tracing::warn!(user_id = user.id, modules = ?reset, "multi-factor authentication reset from the command line");
                        outcome(
                            true,
                            &format!(
                                "MFA reset ({}); sign-in sessions revoked",
                                if reset.is_empty() {
                                    "no module was enabled".to_owned()
                                } else {
                                    reset.join(", ")
                                }
                            ),
                            "",
                        )
                    }
                    Err(error @ auth_core::AuthError::UnknownMfaModule(_)) => {
                        outcome(false, "", &error.to_string())
                    }
                    Err(error) => return Err(error.into()),
                },
                None => outcome(false, "", "User not found"),
            }
        }
    };
    manager.flush().await?;
    Ok(code)
}

pub async fn token(config_dir: &Path, command: TokenCommand) -> Result<ExitCode> {
    let host = open(config_dir).await?;
    let manager = host.manager();
    match command {
        TokenCommand::CreateLongLived { user, name, days } => {
            let found = manager.user(&user).or_else(|| {
                credential_for(&host, &user).and_then(|c| manager.user_by_credentials(&c.id))
            });
            let Some(found) = found else {
                println!("User not found");
                return Ok(ExitCode::from(EXIT_NEGATIVE));
            };
            let params = NewRefreshToken {
                token_type: Some(TokenType::LongLivedAccessToken),
                client_name: Some(name),
                access_token_expiration: Some(time::Duration::days(days)),
                ..Default::default()
            };
            let refresh = match manager.create_refresh_token(&found.id, params).await {
                Ok(refresh) => refresh,
                Err(auth_core::AuthError::Invalid(message)) => {
                    println!("{message}");
                    return Ok(ExitCode::from(EXIT_NEGATIVE));
                }
                Err(error) => return Err(error.into()),
            };
            let jwt = manager.create_access_token(&refresh.id, None).await?;
            manager.flush().await?;
            println!("{jwt}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn check_config(config_dir: &Path) -> Result<ExitCode> {
    let path = config_dir.join("configuration.yaml");
    let config = match auth_host::load_config(&path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return Ok(ExitCode::from(EXIT_UNUSABLE));
        }
    };
    for warning in &config.warnings {
        println!("warning: {warning}");
    }
    let storage = Arc::new(FileStorage::new(config_dir.join(".storage")));
    let options = auth_host::HostOptions::default();
    match auth_host::auth_manager_from_config(&config, storage, options).await {
        Ok(manager) => {
            let providers: Vec<String> = manager
                .auth_providers()
                .iter()
                .map(|p| p.provider_type().to_owned())
                .collect();
            let modules: Vec<String> = manager
                .mfa_modules()
                .iter()
                .map(|m| m.id().to_owned())
                .collect();
            println!("Configuration is valid.");
            println!("Auth providers: {}", providers.join(", "));
            println!("MFA modules: {}", modules.join(", "));
            println!("Users: {}", manager.users().len());
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::from(EXIT_UNUSABLE))
        }
    }
}

pub fn schema() -> Result<ExitCode> {
    let schema = auth_host::config_schema();
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}

pub async fn storage(config_dir: &Path, command: StorageCommand) -> Result<ExitCode> {
    let storage = FileStorage::new(config_dir.join(".storage"));
    let _lock = storage.lock()?;
    match command {
        StorageCommand::Restore { key } => {
            storage.restore_backup(&key)?;
            println!(
                "Restored {} from {}",
                storage.path(&key).display(),
                storage.backup_path(&key).display()
            );
            Ok(ExitCode::SUCCESS)
        }
        StorageCommand::Import { database_url } => {
            crate::transfer::import(&storage, &database_url).await
        }
        StorageCommand::Export { database_url } => {
            crate::transfer::export(&storage, &database_url).await
        }
    }
}
