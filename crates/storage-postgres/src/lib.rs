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

mod bans;
mod codes;
mod migrations;
mod prepared;
mod rows;

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::{Journal, SaveOptions, Storage, StorageError, StoreChange, StoredDocument};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

pub use migrations::MIGRATIONS;
use prepared::{Conn, Prepared};

/// A database holding hass-auth's tables. Cheap to clone (clones share the connection).
#[derive(Clone)]
pub struct PgStorage {
    inner: Arc<Inner>,
}

struct Inner {
    client: Mutex<Conn>,
    /// Changes other processes made (and this process's refused saves: its stores read again).
    changes: tokio::sync::broadcast::Sender<StoreChange>,
    /// Per store key, the data this process last read or wrote (`Null`: read as missing); a save
    /// writes only the rows that differ from it (see `rows::save`).
    baselines: std::sync::Mutex<std::collections::HashMap<String, Value>>,
    /// Tags this process's notifications, so that it ignores its own.
    instance: String,
    /// Shown in messages instead of the URL (which may hold a password).
    location: String,
    /// Authorization codes every instance redeems (a connection of their own).
    codes: Arc<codes::PgCodes>,
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
        let mut client = connect(url, &location).await?;
        migrations::apply(&mut client, &location).await?;
        let instance = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        listen(url, &location, &instance, changes.clone()).await?;
        let codes =
            Arc::new(codes::PgCodes::new(connect(url, &location).await?, location.clone()).await?);
        Ok(Self {
            inner: Arc::new(Inner {
                client: Mutex::new(Conn {
                    client,
                    prepared: Prepared::default(),
                }),
                changes,
                baselines: std::sync::Mutex::default(),
                codes,
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
        use tokio_postgres::error::SqlState;
        let refused = e.code().is_some_and(|c| {
            *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::EXCLUSION_VIOLATION
        });
        if refused {
            // This process's stores of `key` read it again before their next use.
            let _ = self.inner.changes.send(StoreChange {
                key: key.to_owned(),
                record: None,
            });
            let problem = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned());
            return StorageError::Conflict {
                location: self.location(key),
                problem,
            };
        }
        StorageError::Write {
            location: self.location(key),
            source: std::io::Error::other(e.to_string()),
        }
    }

    fn set_baseline(&self, key: &str, data: Value) {
        if let Ok(mut baselines) = self.inner.baselines.lock() {
            baselines.insert(key.to_owned(), data);
        }
    }
}

/// Name of the notification channel. Payload `<instance> <store key>[ <record>]`: the record is
/// the change as JSON (what other instances apply in memory), or `@<seq>` naming a row of
/// `change_records` when it does not fit; without one, the store is read again.
const CHANNEL: &str = "hass_auth";

/// The largest payload sent inline (PostgreSQL's limit is 8000 bytes).
const MAX_INLINE: usize = 7900;

/// A second connection that LISTENs on [`CHANNEL`] and forwards other instances' changes, in
/// the order their transactions committed. A record kept in `change_records` is read on this
/// connection before the next change is forwarded. When the connection ends (the database
/// restarted, a network cut, an administrator's `pg_terminate_backend`) it is opened again with
/// a growing pause, and since notices sent meanwhile are lost, every store is then told to read
/// its data again (a change without a record).
async fn listen(
    url: &str,
    location: &str,
    instance: &str,
    changes: tokio::sync::broadcast::Sender<StoreChange>,
) -> Result<(), StorageError> {
    let first = Listener::open(url, location).await?;
    let (url, location, me) = (url.to_owned(), location.to_owned(), instance.to_owned());
    tokio::spawn(async move {
        let mut listener = first;
        loop {
            listener.forward(&me, &changes).await;
            if changes.receiver_count() == 0 {
                return;
            }
            tracing::error!(database = %location, "the change listener's connection ended; reconnecting (other instances' changes are not seen until then)");
            let mut pause = std::time::Duration::from_millis(50);
            listener = loop {
                tokio::time::sleep(pause).await;
                match Listener::open(&url, &location).await {
                    Ok(listener) => break listener,
                    Err(error) => {
                        tracing::warn!(database = %location, %error, "the change listener cannot reconnect yet");
                        pause = (pause * 2).min(std::time::Duration::from_secs(5));
                    }
                }
            };
            tracing::info!(database = %location, "the change listener is back; every store reads its data again");
            listener.resync(&changes).await;
        }
    });
    Ok(())
}

/// One LISTENing connection: its client and the payloads its driver task receives (the channel
/// closes when the connection ends).
struct Listener {
    client: Client,
    received: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Listener {
    async fn open(url: &str, location: &str) -> Result<Self, StorageError> {
        use futures_util::StreamExt;
        let (client, mut connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(unreachable_at(location))?;
        let (notices, received) = tokio::sync::mpsc::unbounded_channel();
        let name = location.to_owned();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                        if notices.send(n.payload().to_owned()).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(database = %name, %error, "the change listener's connection failed");
                        return;
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(unreachable_at(location))?;
        Ok(Self { client, received })
    }

    /// Forwards other instances' changes until the connection ends.
    async fn forward(&mut self, me: &str, changes: &tokio::sync::broadcast::Sender<StoreChange>) {
        while let Some(payload) = self.received.recv().await {
            let mut parts = payload.splitn(3, ' ');
            let (Some(from), Some(key)) = (parts.next(), parts.next()) else {
                continue;
            };
            if from == me {
                continue;
            }
            let record = match parts.next() {
                None => None,
                Some(seq) if seq.starts_with('@') => {
                    let row = match seq[1..].parse::<i64>() {
                        Ok(seq) => self
                            .client
                            .query_opt("SELECT record FROM change_records WHERE seq = $1", &[&seq])
                            .await
                            .ok()
                            .flatten(),
                        Err(_) => None,
                    };
                    // A record that cannot be read any more: the store reads the key again.
                    row.map(|r| r.get::<_, tokio_postgres::types::Json<Value>>(0).0)
                }
                Some(json) => serde_json::from_str(json).ok(),
            };
            let _ = changes.send(StoreChange {
                key: key.to_owned(),
                record: record.map(Arc::new),
            });
        }
    }

    /// Tells every store, and the shared bans, to read their data again (notices were missed).
    async fn resync(&self, changes: &tokio::sync::broadcast::Sender<StoreChange>) {
        let mut keys: Vec<String> = match self.client.query("SELECT key FROM stores", &[]).await {
            Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot list the stores after reconnecting; reloading the auth data and bans");
                vec![auth_core::store::STORAGE_KEY.to_owned()]
            }
        };
        keys.push(auth_core::storage::BANS_KEY.to_owned());
        for key in keys {
            let _ = changes.send(StoreChange { key, record: None });
        }
    }
}

/// A connection whose driver runs on its own task.
async fn connect(url: &str, location: &str) -> Result<Client, StorageError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(unreachable_at(location))?;
    let name = location.to_owned();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::error!(database = %name, %error, "a database connection ended");
        }
    });
    Ok(client)
}

/// Maps a connection error to a read error naming the (redacted) database.
fn unreachable_at(location: &str) -> impl Fn(tokio_postgres::Error) -> StorageError + '_ {
    move |e| StorageError::Read {
        location: location.to_owned(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Tells the other instances (at commit) that store `key` changed, and how (`record`).
async fn notify(
    tx: &tokio_postgres::Transaction<'_>,
    prepared: &mut Prepared,
    instance: &str,
    key: &str,
    record: Option<&Value>,
) -> Result<(), tokio_postgres::Error> {
    let mut payload = format!("{instance} {key}");
    if let Some(record) = record {
        let json = serde_json::to_string(record).expect("a JSON value always serialises");
        if payload.len() + 1 + json.len() <= MAX_INLINE {
            payload.push(' ');
            payload.push_str(&json);
        } else {
            tx.execute(
                "DELETE FROM change_records WHERE at < now() - interval '10 minutes'",
                &[],
            )
            .await?;
            let seq: i64 = tx
                .query_one(
                    "INSERT INTO change_records (record) VALUES ($1) RETURNING seq",
                    &[&tokio_postgres::types::Json(record)],
                )
                .await?
                .get(0);
            payload.push_str(&format!(" @{seq}"));
        }
    }
    let statement = prepared.get(tx, "SELECT pg_notify($1, $2)").await?;
    tx.execute(&statement, &[&CHANNEL, &payload])
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
        let loaded = rows::load(&client, key)
            .await
            .map_err(|e| self.read_error(key, e))?;
        self.set_baseline(
            key,
            loaded.as_ref().map_or(Value::Null, |(_, _, d)| d.clone()),
        );
        Ok(loaded.map(|(version, minor_version, data)| {
            StoredDocument::new(key, version, minor_version, data)
        }))
    }

    async fn save(&self, doc: &StoredDocument, _options: SaveOptions) -> Result<(), StorageError> {
        let baseline = self
            .inner
            .baselines
            .lock()
            .ok()
            .and_then(|b| b.get(&doc.key).cloned());
        let mut conn = self.inner.client.lock().await;
        let Conn { client, prepared } = &mut *conn;
        let tx = client
            .transaction()
            .await
            .map_err(|e| self.write_error(&doc.key, e))?;
        rows::save(&tx, doc, baseline.as_ref())
            .await
            .map_err(|e| self.write_error(&doc.key, e))?;
        notify(&tx, prepared, &self.inner.instance, &doc.key, None)
            .await
            .map_err(|e| self.write_error(&doc.key, e))?;
        tx.commit()
            .await
            .map_err(|e| self.write_error(&doc.key, e))?;
        self.set_baseline(&doc.key, doc.data.clone());
        Ok(())
    }

    fn location(&self, key: &str) -> String {
        format!("{} (store {key})", self.inner.location)
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<StoreChange>> {
        Some(self.inner.changes.subscribe())
    }

    fn shared_codes(&self) -> Option<Arc<dyn auth_core::SharedCodes>> {
        Some(self.inner.codes.clone())
    }

    fn shared_bans(&self) -> Option<Arc<dyn auth_core::SharedBans>> {
        Some(Arc::new(bans::PgBans {
            storage: self.clone(),
        }))
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
        let mut conn = self.storage.inner.client.lock().await;
        let Conn { client, prepared } = &mut *conn;
        let tx = client
            .transaction()
            .await
            .map_err(|e| self.storage.write_error(key, e))?;
        let applied = rows::apply_record(&tx, prepared, record)
            .await
            .map_err(|e| self.storage.write_error(key, e))?;
        notify(
            &tx,
            prepared,
            &self.storage.inner.instance,
            key,
            Some(&applied),
        )
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
