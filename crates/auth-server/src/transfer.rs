//! `hass-auth storage import|export`: copy the stores between a `.storage` directory and a
//! PostgreSQL database. The auth store is read as a restart would (the file with its journal
//! replayed); an export leaves no journal behind, so the directory is exactly Home Assistant's.

use std::process::ExitCode;
#[cfg(feature = "postgres")]
use std::sync::Arc;

use anyhow::Result;
use auth_core::FileStorage;
#[cfg(feature = "postgres")]
use auth_core::{SaveOptions, Storage};

#[cfg(feature = "postgres")]
/// Whether a `.storage` file name is a store (not a backup, a rejected file, a journal or a lock).
fn is_store(name: &str) -> bool {
    !name.starts_with('.')
        && !name.ends_with(".bak")
        && !name.ends_with(".rejected")
        && !name.contains(".journal.")
}

/// Copies every store of `files` into the database at `url`.
#[cfg(feature = "postgres")]
pub async fn import(files: &FileStorage, url: &str) -> Result<ExitCode> {
    let database = open(url).await?;
    let mut keys: Vec<String> = std::fs::read_dir(files.dir())?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| is_store(name))
        .collect();
    keys.sort();
    for key in &keys {
        let doc = if key == auth_core::store::STORAGE_KEY {
            let store = auth_core::store::AuthStore::new(
                Arc::new(files.clone()),
                Arc::new(auth_core::SystemClock),
            );
            store.ensure_loaded().await?;
            auth_core::StoredDocument::new(
                key,
                auth_core::store::STORAGE_VERSION,
                auth_core::store::STORAGE_MINOR_VERSION,
                store.read(|d| d.to_json()),
            )
        } else {
            match files.load(key).await? {
                Some(doc) => doc,
                None => continue,
            }
        };
        database.save(&doc, SaveOptions { private: true }).await?;
        println!("imported {key}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes every store of the database at `url` into `files`.
#[cfg(feature = "postgres")]
pub async fn export(files: &FileStorage, url: &str) -> Result<ExitCode> {
    let database = open(url).await?;
    for key in database.keys().await? {
        let Some(doc) = database.load(&key).await? else {
            continue;
        };
        files.save(&doc, SaveOptions { private: true }).await?;
        if key == auth_core::store::STORAGE_KEY {
            // A journal left from a server that ran on this directory would be replayed on top.
            for entry in std::fs::read_dir(files.dir())?.flatten() {
                let name = entry.file_name();
                if name
                    .to_str()
                    .is_some_and(|n| n.starts_with("auth.journal."))
                {
                    std::fs::remove_file(entry.path())?;
                }
            }
        }
        println!("exported {key}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "postgres")]
async fn open(url: &str) -> Result<storage_postgres::PgStorage> {
    use anyhow::Context;
    storage_postgres::PgStorage::connect(url)
        .await
        .context("cannot open the database of --database-url")
}

/// Without PostgreSQL support there is nothing to import into.
#[cfg(not(feature = "postgres"))]
pub async fn import(_files: &FileStorage, _url: &str) -> Result<ExitCode> {
    anyhow::bail!("--database-url: this build has no PostgreSQL support (cargo feature `postgres`)")
}

/// Without PostgreSQL support there is nothing to export from.
#[cfg(not(feature = "postgres"))]
pub async fn export(_files: &FileStorage, _url: &str) -> Result<ExitCode> {
    anyhow::bail!("--database-url: this build has no PostgreSQL support (cargo feature `postgres`)")
}
