//! PostgreSQL storage for hass-auth: the same [`Storage`] the file store implements, kept in row
//! tables (users, groups, credentials, refresh tokens, provider passwords, MFA enrolments,
//! onboarding steps) instead of JSON documents.
//!
//! ```yaml
//! # configuration.yaml (or `hass-auth serve --database-url postgres://...`)
//! storage: postgres://hass_auth@127.0.0.1/hass_auth
//! ```
//!
//! Durable changes to the auth data arrive as journal records (`auth_core::Journal`): each is one
//! transaction touching only the rows that changed, so a sign-in costs O(change). Other stores
//! are replaced row by row in one transaction per save. Schema migrations are `.sql` files under
//! `migrations/`, applied in order at connect time and recorded in `schema_version`.

#![forbid(unsafe_code)]

mod migrations;
mod rows;

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::{Journal, SaveOptions, Storage, StorageError, StoredDocument};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

pub use migrations::MIGRATIONS;

/// A database holding hass-auth's tables. Cheap to clone (clones share the connection).
#[derive(Clone)]
pub struct PgStorage {
    inner: Arc<Inner>,
}

struct Inner {
    client: Mutex<Client>,
    /// The connection that LISTENs for other processes' changes (kept open).
    _listener: Client,
    /// Keys other processes changed.
    changes: tokio::sync::broadcast::Sender<String>,
    /// Tags this process's notifications, so that it ignores its own.
    instance: String,
    /// Shown in messages instead of the URL (which may hold a password).
    location: String,
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStorage")
            .field("location", &self.inner.location)
            .finish_non_exhaustive()
    }
}

impl PgStorage {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/db`, no TLS: loopback or a
    /// trusted network) and applies the migrations this build knows that the database lacks.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let location = redact(url);
        let (mut client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(unreachable_at(&location))?;
        let name = location.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::error!(database = %name, %error, "the database connection ended");
            }
        });
        migrations::apply(&mut client, &location).await?;
        let instance = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let (changes, _) = tokio::sync::broadcast::channel(64);
        let listener = listen(url, &location, &instance, changes.clone()).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                client: Mutex::new(client),
                _listener: listener,
                changes,
                instance,
                location,
            }),
        })
    }

    /// The schema version the database is at (the highest migration applied).
    pub async fn schema_version(&self) -> Result<i32, StorageError> {
        let client = self.inner.client.lock().await;
        let row = client
            .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
            .await
            .map_err(|e| self.read_error("schema_version", e))?;
        Ok(row.get(0))
    }

    /// The keys of every store the database holds, sorted.
    pub async fn keys(&self) -> Result<Vec<String>, StorageError> {
        let client = self.inner.client.lock().await;
        let rows = client
            .query("SELECT key FROM stores ORDER BY key", &[])
            .await
            .map_err(|e| self.read_error("stores", e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn read_error(&self, key: &str, e: tokio_postgres::Error) -> StorageError {
        StorageError::Read {
            location: self.location(key),
            source: std::io::Error::other(e.to_string()),
        }
    }

    fn write_error(&self, key: &str, e: tokio_postgres::Error) -> StorageError {
        StorageError::Write {
            location: self.location(key),
            source: std::io::Error::other(e.to_string()),
        }
    }
}

/// Name of the notification channel: payload `<instance> <store key>`.
const CHANNEL: &str = "hass_auth";

/// A second connection that LISTENs on [`CHANNEL`] and forwards other instances' keys.
async fn listen(
    url: &str,
    location: &str,
    instance: &str,
    changes: tokio::sync::broadcast::Sender<String>,
) -> Result<Client, StorageError> {
    use futures_util::StreamExt;
    let (client, mut connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(unreachable_at(location))?;
    let me = instance.to_owned();
    let name = location.to_owned();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if let Some((from, key)) = n.payload().split_once(' ')
                        && from != me
                    {
                        let _ = changes.send(key.to_owned());
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(database = %name, %error, "the change listener's connection ended; other instances' changes are no longer seen");
                    return;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(unreachable_at(location))?;
    Ok(client)
}

/// Maps a connection error to a read error naming the (redacted) database.
fn unreachable_at(location: &str) -> impl Fn(tokio_postgres::Error) -> StorageError + '_ {
    move |e| StorageError::Read {
        location: location.to_owned(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Tells the other instances (at commit) that store `key` changed.
async fn notify(
    tx: &tokio_postgres::Transaction<'_>,
    instance: &str,
    key: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&CHANNEL, &format!("{instance} {key}")],
    )
    .await
    .map(drop)
}

/// `postgres://user:secret@host/db` without the password.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "database".to_owned();
    };
    let rest = match rest.split_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{user}@{host}")
        }
        None => rest.to_owned(),
    };
    format!("{scheme}://{rest}")
}

#[async_trait]
impl Storage for PgStorage {
    async fn load(&self, key: &str) -> Result<Option<StoredDocument>, StorageError> {
        let client = self.inner.client.lock().await;
        rows::load(&client, key)
            .await
            .map_err(|e| self.read_error(key, e))?
            .map(|(version, minor_version, data)| {
                Ok(StoredDocument::new(key, version, minor_version, data))
            })
            .transpose()
    }

    async fn save(&self, doc: &StoredDocument, _options: SaveOptions) -> Result<(), StorageError> {
        let mut client = self.inner.client.lock().await;
        let tx = client
            .transaction()
            .await
            .map_err(|e| self.write_error(&doc.key, e))?;
        rows::save(&tx, doc)
            .await
            .map_err(|e| self.write_error(&doc.key, e))?;
        notify(&tx, &self.inner.instance, &doc.key)
            .await
            .map_err(|e| self.write_error(&doc.key, e))?;
        tx.commit().await.map_err(|e| self.write_error(&doc.key, e))
    }

    fn location(&self, key: &str) -> String {
        format!("{} (store {key})", self.inner.location)
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        Some(self.inner.changes.subscribe())
    }

    fn journal(&self, key: &str) -> Option<Arc<dyn Journal>> {
        (key == auth_core::store::STORAGE_KEY).then(|| {
            Arc::new(RowJournal {
                storage: self.clone(),
            }) as Arc<dyn Journal>
        })
    }
}

/// Applies the auth store's change records to the rows, one transaction each.
#[derive(Debug)]
struct RowJournal {
    storage: PgStorage,
}

#[async_trait]
impl Journal for RowJournal {
    async fn replay(&self) -> Result<Vec<Value>, StorageError> {
        // Records are applied in place: the rows are the state.
        Ok(Vec::new())
    }

    async fn append(&self, record: &Value) -> Result<(), StorageError> {
        let key = auth_core::store::STORAGE_KEY;
        let mut client = self.storage.inner.client.lock().await;
        let tx = client
            .transaction()
            .await
            .map_err(|e| self.storage.write_error(key, e))?;
        rows::apply_record(&tx, record)
            .await
            .map_err(|e| self.storage.write_error(key, e))?;
        notify(&tx, &self.storage.inner.instance, key)
            .await
            .map_err(|e| self.storage.write_error(key, e))?;
        tx.commit()
            .await
            .map_err(|e| self.storage.write_error(key, e))
    }

    fn seal(&self) -> u64 {
        0
    }

    async fn discard_sealed(&self, _mark: u64) -> Result<(), StorageError> {
        Ok(())
    }

    fn len(&self) -> u64 {
        0
    }

    fn compacts(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_lose_their_password_in_messages() {
        assert_eq!(
            super::redact("postgres://auth:s3cret@db.local:5432/hass"),
            "postgres://auth@db.local:5432/hass"
        );
        assert_eq!(
            super::redact("postgres://127.0.0.1/hass"),
            "postgres://127.0.0.1/hass"
        );
    }
}
