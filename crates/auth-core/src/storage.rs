//! The `Storage` trait and its default implementation: Home Assistant's `.storage/<key>` JSON files.
//!
//! Every document is wrapped in HA's envelope `{version, minor_version, key, data}`. The file store
//! writes atomically (temp file, fsync, rename, directory fsync), keeps the previous good copy as
//! `<key>.bak`, and never treats a file it cannot parse as empty.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::Value;

use crate::journal::{FileJournal, Journal};

/// One stored document with HA's envelope.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredDocument {
    /// Major schema version of `data`.
    pub version: u32,
    /// Minor schema version (1 when absent on disk).
    pub minor_version: u32,
    /// The store key (file name).
    pub key: String,
    /// The payload.
    pub data: Value,
}

impl StoredDocument {
    /// A document at version `version`/`minor_version` for `key`.
    pub fn new(key: &str, version: u32, minor_version: u32, data: Value) -> Self {
        Self {
            version,
            minor_version,
            key: key.to_owned(),
            data,
        }
    }

    /// Serialises like HA (orjson): 2-space indent, `": "`, raw UTF-8, no trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        write_envelope(
            &mut bytes,
            &self.key,
            self.version,
            self.minor_version,
            &self.data,
        );
        bytes
    }

    /// Parses the file of store `key`: [`StoredDocument::from_bytes`], and the envelope's `key`
    /// must name this store. A file holding another store's envelope (copied to the wrong name)
    /// is refused rather than read as this store; a missing `key` is taken as `key`.
    pub fn from_file_bytes(
        key: &str,
        location: &str,
        bytes: &[u8],
    ) -> Result<Option<Self>, StorageError> {
        let Some(mut doc) = Self::from_bytes(location, bytes)? else {
            return Ok(None);
        };
        if doc.key.is_empty() {
            doc.key = key.to_owned();
        } else if doc.key != key {
            return Err(StorageError::Corrupt {
                location: location.to_owned(),
                problem: format!(
                    "the envelope's key is '{}', expected '{key}' (was another store's file copied here?)",
                    doc.key
                ),
            });
        }
        Ok(Some(doc))
    }

    /// Parses an envelope; `Ok(None)` for a file holding exactly `{}` (HA's "no data").
    pub fn from_bytes(location: &str, bytes: &[u8]) -> Result<Option<Self>, StorageError> {
        if bytes.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
            let problem = if bytes.is_empty() {
                "not valid JSON: the file is empty (a write cut short?)"
            } else if bytes.contains(&0) {
                "not valid JSON: the file holds only zero bytes (a write cut short by a crash?)"
            } else {
                "not valid JSON: the file holds only whitespace"
            };
            return Err(StorageError::Corrupt {
                location: location.to_owned(),
                problem: problem.to_owned(),
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt {
            location: location.to_owned(),
            problem: format!("not valid JSON: {e}"),
        })?;
        let Value::Object(mut map) = value else {
            return Err(StorageError::Corrupt {
                location: location.to_owned(),
                problem: "the top level is not a JSON object".to_owned(),
            });
        };
        if map.is_empty() {
            return Ok(None);
        }
        let bad = |problem: String| StorageError::Corrupt {
            location: location.to_owned(),
            problem,
        };
        let version = match map.get("version") {
            Some(Value::Number(n)) => {
                n.as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| {
                        bad(format!(
                            "field 'version' is not a small positive integer: {n}"
                        ))
                    })?
            }
            Some(other) => return Err(bad(format!("field 'version' is not an integer: {other}"))),
            None => return Err(bad("field 'version' is missing".to_owned())),
        };
        let minor_version = match map.get("minor_version") {
            None | Some(Value::Null) => 1,
            Some(Value::Number(n)) => {
                n.as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| {
                        bad(format!(
                            "field 'minor_version' is not a small positive integer: {n}"
                        ))
                    })?
            }
            Some(other) => {
                return Err(bad(format!(
                    "field 'minor_version' is not an integer: {other}"
                )));
            }
        };
        let key = match map.get("key") {
            Some(Value::String(s)) => s.clone(),
            None => String::new(),
            Some(other) => return Err(bad(format!("field 'key' is not a string: {other}"))),
        };
        let data = map
            .remove("data")
            .ok_or_else(|| bad("field 'data' is missing".to_owned()))?;
        Ok(Some(Self {
            version,
            minor_version,
            key,
            data,
        }))
    }
}

/// How a document is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaveOptions {
    /// Mode 0600 (owner only) instead of 0644.
    pub private: bool,
}

/// Why a storage operation failed. Every message names the file (or location) and the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The file exists but could not be read.
    #[error("{location}: cannot read: {source}")]
    Read {
        /// File or location.
        location: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file could not be parsed or does not have the expected shape.
    #[error("{location}: {problem}")]
    Corrupt {
        /// File or location.
        location: String,
        /// What is wrong.
        problem: String,
    },
    /// The file was written by a schema version this build cannot read.
    #[error(
        "{location}: unsupported storage version {found} (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// File or location.
        location: String,
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// Writing failed; the previous file is intact.
    #[error("{location}: cannot write: {source}")]
    Write {
        /// File or location.
        location: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another process changed the store since this one read it (a shared database): nothing
    /// was written; the store reloads and the caller may try again.
    #[error("{location}: changed by another instance meanwhile; nothing was written ({problem})")]
    Conflict {
        /// File or location.
        location: String,
        /// What collided.
        problem: String,
    },
    /// Another process holds the storage lock.
    #[error(
        "{location}: locked by another process (is another hass-auth or Home Assistant running?)"
    )]
    Locked {
        /// The lock file.
        location: String,
    },
}

/// Appends HA's envelope around `data` to `out`, as [`StoredDocument::to_bytes`] writes it
/// (borrowed: the data is serialised in place, never copied first).
pub fn write_envelope(
    out: &mut Vec<u8>,
    key: &str,
    version: u32,
    minor_version: u32,
    data: &impl serde::Serialize,
) {
    #[derive(serde::Serialize)]
    struct Envelope<'a, D> {
        version: u32,
        minor_version: u32,
        key: &'a str,
        data: &'a D,
    }
    let envelope = Envelope {
        version,
        minor_version,
        key,
        data,
    };
    serde_json::to_writer_pretty(out, &envelope).expect("JSON data always serialises");
}

/// Persistence of named JSON documents. Keep it narrow: other backends (SQL) implement the same.
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug {
    /// Loads document `key`; `Ok(None)` when it does not exist (or holds `{}`).
    async fn load(&self, key: &str) -> Result<Option<StoredDocument>, StorageError>;
    /// Saves a document durably; when this returns `Ok`, the data survives a crash.
    async fn save(&self, doc: &StoredDocument, options: SaveOptions) -> Result<(), StorageError>;
    /// Saves document `key` given as the bytes [`StoredDocument::to_bytes`] gives (a large
    /// document serialised off the async workers, e.g. by a journal compaction). The default
    /// parses them and calls [`Storage::save`]; a file store writes them as they are.
    async fn save_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
        options: SaveOptions,
    ) -> Result<(), StorageError> {
        let location = self.location(key);
        let doc = StoredDocument::from_file_bytes(key, &location, &bytes)?.ok_or_else(|| {
            StorageError::Corrupt {
                location,
                problem: "an empty document cannot be saved".to_owned(),
            }
        })?;
        self.save(&doc, options).await
    }
    /// Human-readable location of `key`, for messages.
    fn location(&self, key: &str) -> String;
    /// The append-only journal of `key`, for backends that keep one (the file store does): durable
    /// changes are appended there and the document is rewritten only by compaction.
    fn journal(&self, key: &str) -> Option<Arc<dyn Journal>> {
        let _ = key;
        None
    }
    /// Changes another process made, for backends several processes share (a database): a
    /// store applies the change's record, or reloads its key when there is none. `None` for a
    /// backend one process owns (the file store).
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<StoreChange>> {
        None
    }
    /// Authorization codes every instance can redeem, for backends several processes share (a
    /// database). `None`: codes stay in this process's memory.
    fn shared_codes(&self) -> Option<Arc<dyn SharedCodes>> {
        None
    }
    /// IP bans and failed-login counters every instance shares (a database). `None`: they stay
    /// in this process (and Home Assistant's `ip_bans.yaml`).
    fn shared_bans(&self) -> Option<Arc<dyn SharedBans>> {
        None
    }
}

/// Store key of the change notices for [`SharedBans`]: records `{"ban": ip, "at": unix
/// seconds}` or `{"unban": ip}`.
pub const BANS_KEY: &str = "hass_auth.bans";

/// IP bans and failed-login counters kept where every instance sees them (see
/// [`Storage::shared_bans`]). IPs are ban keys (an address, or an IPv6 /64), as text.
#[async_trait]
pub trait SharedBans: Send + Sync + fmt::Debug {
    /// Adds one failed attempt to `ip`'s score (which halves every `half_life_secs`); returns
    /// the new score, counted over every instance.
    async fn add_failure(&self, ip: &str, half_life_secs: f64) -> Result<f64, StorageError>;
    /// Forgets `ip`'s failed attempts (a successful login).
    async fn reset(&self, ip: &str) -> Result<(), StorageError>;
    /// Bans `ip` from `banned_at` (unix seconds) on every instance.
    async fn ban(&self, ip: &str, banned_at: f64) -> Result<(), StorageError>;
    /// Lifts `ip`'s ban on every instance; whether there was one.
    async fn unban(&self, ip: &str) -> Result<bool, StorageError>;
    /// Every ban: IP and when it was banned (unix seconds), oldest first.
    async fn list(&self) -> Result<Vec<(String, f64)>, StorageError>;
}

/// Authorization codes kept where every instance sees them (see [`Storage::shared_codes`]):
/// single use across all instances. Keys are `<client id> <code>`.
#[async_trait]
pub trait SharedCodes: Send + Sync + fmt::Debug {
    /// Stores a new code's state (`crate::codes::AuthCode::to_json`), redeemable for
    /// `lifetime_secs`; durable when this returns.
    async fn put(&self, key: &str, code: &Value, lifetime_secs: f64) -> Result<(), StorageError>;
    /// Presents a code: the first presentation within its lifetime gets its state; a later one
    /// gets the refresh tokens recorded for it (once; they are to be revoked).
    async fn redeem(&self, key: &str) -> Result<SharedRedemption, StorageError>;
    /// Records a refresh token issued from a redeemed code; `false` when the code was presented
    /// again meanwhile (the token must be revoked too).
    async fn record_token(&self, key: &str, token_id: &str) -> Result<bool, StorageError>;
}

/// What presenting a shared code found (see [`SharedCodes::redeem`]).
#[derive(Clone, Debug, PartialEq)]
pub enum SharedRedemption {
    /// First presentation: the code's state.
    Valid(Value),
    /// Presented before: the refresh tokens issued from it.
    Reused(Vec<String>),
    /// Unknown or expired.
    Invalid,
}

/// A change another process made to a shared store (see [`Storage::changes`]).
#[derive(Clone, Debug, PartialEq)]
pub struct StoreChange {
    /// The store key.
    pub key: String,
    /// What changed, as the store's journal record (the auth store's `put`/`del`/`rows`), when
    /// the backend sent it; `None`: the store reads the key again.
    pub record: Option<Arc<Value>>,
}

/// Set when another process changed a key (see [`Storage::changes`]); a store that loads lazily
/// calls [`ChangeFlag::take`] before using its cached data and reads the key again when it is set.
/// Watching starts at the first `take` (so call it before the first load, not after it). Never
/// set for a backend one process owns, or outside a Tokio runtime.
#[derive(Debug)]
pub struct ChangeFlag {
    storage: Arc<dyn Storage>,
    key: String,
    changed: Arc<std::sync::atomic::AtomicBool>,
    started: std::sync::Once,
}

impl ChangeFlag {
    /// A flag for `key` of `storage`.
    pub fn new(storage: Arc<dyn Storage>, key: &str) -> Self {
        Self {
            storage,
            key: key.to_owned(),
            changed: Arc::default(),
            started: std::sync::Once::new(),
        }
    }

    /// Whether the key changed since the last call (and clears the flag).
    pub fn take(&self) -> bool {
        self.started.call_once(|| self.watch());
        self.changed.swap(false, Ordering::AcqRel)
    }

    fn watch(&self) {
        let (Some(mut changes), Ok(handle)) = (
            self.storage.changes(),
            tokio::runtime::Handle::try_current(),
        ) else {
            return;
        };
        let weak = Arc::downgrade(&self.changed);
        let key = self.key.clone();
        handle.spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let hit = match changes.recv().await {
                    Ok(change) => change.key == key,
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return,
                };
                let Some(flag) = weak.upgrade() else { return };
                if hit {
                    flag.store(true, Ordering::Release);
                }
            }
        });
    }
}

/// Runs `reload(storage, state)` whenever another process changes `key` (a shared database),
/// until `state` is dropped; for stores that load once and answer from memory. Does nothing for
/// a backend one process owns, or outside a Tokio runtime.
pub fn reload_on_change<S, F, Fut>(
    storage: &Arc<dyn Storage>,
    key: &str,
    state: std::sync::Weak<S>,
    reload: F,
) where
    S: Send + Sync + 'static,
    F: Fn(Arc<dyn Storage>, Arc<S>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (Some(mut changes), Ok(handle)) =
        (storage.changes(), tokio::runtime::Handle::try_current())
    else {
        return;
    };
    let storage = storage.clone();
    let key = key.to_owned();
    handle.spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match changes.recv().await {
                Ok(change) if change.key != key => continue,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
            let Some(state) = state.upgrade() else { return };
            reload(storage.clone(), state).await;
        }
    });
}

/// Checks a loaded document's major version against the one this build reads.
pub fn check_version(
    storage: &dyn Storage,
    doc: &StoredDocument,
    supported: u32,
) -> Result<(), StorageError> {
    if doc.version != supported {
        return Err(StorageError::UnsupportedVersion {
            location: storage.location(&doc.key),
            found: doc.version,
            supported,
        });
    }
    Ok(())
}

/// The `data.users` object of a per-user store (MFA modules, recovery codes, the sign-in
/// history), whose file is `key`. A missing or misshapen field is [`StorageError::Corrupt`]
/// naming the file, never "nobody": Home Assistant reads a missing `users` as nobody enrolled
/// but never writes one, and reading it so would let every enrolled user skip their factor.
pub fn users_object<'a>(
    storage: &dyn Storage,
    key: &str,
    doc: &'a StoredDocument,
) -> Result<&'a serde_json::Map<String, Value>, StorageError> {
    let corrupt = |problem: &str| StorageError::Corrupt {
        location: storage.location(key),
        problem: problem.to_owned(),
    };
    let Value::Object(data) = &doc.data else {
        return Err(corrupt("field 'data' is not a JSON object"));
    };
    match data.get("users") {
        None => Err(corrupt("field 'data.users' is missing")),
        Some(Value::Object(users)) => Ok(users),
        Some(_) => Err(corrupt("field 'data.users' is not a JSON object")),
    }
}

/// HA's `.storage` directory: one file per key. Cheap to clone (clones share the directory).
#[derive(Debug, Clone)]
pub struct FileStorage {
    inner: std::sync::Arc<FileStorageInner>,
}

#[derive(Debug)]
struct FileStorageInner {
    dir: PathBuf,
    counter: AtomicU64,
    write_lock: Mutex<()>,
}

impl FileStorage {
    /// A store in `dir` (usually `<config>/.storage`); created on first write.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let inner = FileStorageInner {
            dir: dir.into(),
            counter: AtomicU64::new(0),
            write_lock: Mutex::new(()),
        };
        Self {
            inner: std::sync::Arc::new(inner),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Path of document `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        self.inner.dir.join(key)
    }

    /// Path of the last good copy of `key`.
    pub fn backup_path(&self, key: &str) -> PathBuf {
        self.inner.dir.join(format!("{key}.bak"))
    }

    /// Takes an exclusive lock on the directory (`.storage/.hass-auth.lock`) for this process.
    pub fn lock(&self) -> Result<StorageLock, StorageError> {
        let path = self.inner.dir.join(".hass-auth.lock");
        let location = path.display().to_string();
        fs::create_dir_all(&self.inner.dir).map_err(|source| StorageError::Write {
            location: location.clone(),
            source,
        })?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| StorageError::Write {
                location: location.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {
                self.remove_stale_temp_files();
                Ok(StorageLock { _file: file })
            }
            Err(fs::TryLockError::WouldBlock) => Err(StorageError::Locked { location }),
            Err(fs::TryLockError::Error(source)) => Err(StorageError::Write { location, source }),
        }
    }

    /// Removes what writes cut short by a crash left behind (`.<key>.tmp-*`, `.<key>.bak-*`).
    /// Only called with the lock held, when no other process can be writing.
    fn remove_stale_temp_files(&self) {
        let Ok(entries) = fs::read_dir(&self.inner.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if is_temp_name(name) {
                match fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::info!(file = %entry.path().display(), "removed a temp file left by an interrupted write")
                    }
                    Err(error) => {
                        tracing::warn!(file = %entry.path().display(), %error, "cannot remove a stale temp file")
                    }
                }
            }
        }
    }

    /// Replaces `key` with its last good copy (`<key>.bak`); the bad file is kept as `<key>.rejected`.
    pub fn restore_backup(&self, key: &str) -> Result<(), StorageError> {
        let target = self.inner.path(key);
        let backup = self.inner.backup_path(key);
        let location = backup.display().to_string();
        let bytes = fs::read(&backup).map_err(|source| StorageError::Read {
            location: location.clone(),
            source,
        })?;
        StoredDocument::from_file_bytes(key, &location, &bytes)?;
        if target.exists() {
            let rejected = self.inner.dir.join(format!("{key}.rejected"));
            fs::rename(&target, &rejected).map_err(|source| StorageError::Write {
                location: target.display().to_string(),
                source,
            })?;
        }
        self.inner
            .write_atomically(key, &bytes, SaveOptions { private: true }, false)
    }
}

impl FileStorageInner {
    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    fn backup_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.bak"))
    }

    fn write_atomically(
        &self,
        key: &str,
        bytes: &[u8],
        options: SaveOptions,
        keep_backup: bool,
    ) -> Result<(), StorageError> {
        let _guard = self.write_lock.lock();
        let target = self.path(key);
        let location = target.display().to_string();
        let werr = |source| StorageError::Write {
            location: location.clone(),
            source,
        };
        fs::create_dir_all(&self.dir).map_err(werr)?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".{key}.tmp-{}-{n}", std::process::id()));
        let result = (|| {
            let mut file = open_with_mode(&tmp, options.private)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            drop(file);
            if keep_backup && target.exists() {
                let bak_tmp = self
                    .dir
                    .join(format!(".{key}.bak-{}-{n}", std::process::id()));
                fs::hard_link(&target, &bak_tmp)?;
                fs::rename(&bak_tmp, self.backup_path(key))?;
            }
            fs::rename(&tmp, &target)?;
            sync_dir(&self.dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(werr)
    }
}

/// Whether `name` is one of [`FileStorageInner::write_atomically`]'s temp files:
/// `.<key>.tmp-<pid>-<n>` or `.<key>.bak-<pid>-<n>`.
fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some((_, numbers)) = rest
        .rsplit_once(".tmp-")
        .or_else(|| rest.rsplit_once(".bak-"))
    else {
        return false;
    };
    let mut parts = numbers.split('-');
    let numeric =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    numeric(parts.next()) && numeric(parts.next()) && parts.next().is_none()
}

#[cfg(unix)]
fn open_with_mode(path: &Path, private: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
}

#[cfg(not(unix))]
fn open_with_mode(path: &Path, _private: bool) -> std::io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Held while a process owns a storage directory; released on drop.
#[derive(Debug)]
pub struct StorageLock {
    _file: File,
}

#[async_trait]
impl Storage for FileStorage {
    async fn load(&self, key: &str) -> Result<Option<StoredDocument>, StorageError> {
        let path = self.path(key);
        let location = path.display().to_string();
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StorageError::Read { location, source }),
        };
        StoredDocument::from_file_bytes(key, &location, &bytes)
    }

    async fn save(&self, doc: &StoredDocument, options: SaveOptions) -> Result<(), StorageError> {
        self.save_bytes(&doc.key, doc.to_bytes(), options).await
    }

    async fn save_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
        options: SaveOptions,
    ) -> Result<(), StorageError> {
        let key = key.to_owned();
        let inner = self.inner.clone();
        let location = self.location(&key);
        tokio::task::spawn_blocking(move || inner.write_atomically(&key, &bytes, options, true))
            .await
            .map_err(|e| StorageError::Write {
                location,
                source: std::io::Error::other(e.to_string()),
            })?
    }

    fn location(&self, key: &str) -> String {
        self.path(key).display().to_string()
    }

    fn journal(&self, key: &str) -> Option<Arc<dyn Journal>> {
        Some(Arc::new(FileJournal::new(self.inner.dir.clone(), key)))
    }
}

/// An in-memory store, for embedding without persistence and for tests of other layers.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    docs: Mutex<std::collections::HashMap<String, Vec<u8>>>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts raw bytes under `key` (as if a file held them).
    pub fn put_raw(&self, key: &str, bytes: Vec<u8>) {
        self.docs.lock().insert(key.to_owned(), bytes);
    }

    /// The raw bytes stored under `key`.
    pub fn get_raw(&self, key: &str) -> Option<Vec<u8>> {
        self.docs.lock().get(key).cloned()
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn load(&self, key: &str) -> Result<Option<StoredDocument>, StorageError> {
        match self.get_raw(key) {
            Some(bytes) => StoredDocument::from_file_bytes(key, &self.location(key), &bytes),
            None => Ok(None),
        }
    }

    async fn save(&self, doc: &StoredDocument, _options: SaveOptions) -> Result<(), StorageError> {
        self.put_raw(&doc.key, doc.to_bytes());
        Ok(())
    }

    fn location(&self, key: &str) -> String {
        format!("memory:{key}")
    }
}
