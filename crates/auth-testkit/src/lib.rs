//! Test helpers for hass-auth: a manual clock, a seeded random source, temporary file stores and
//! Home Assistant's golden fixtures (copied into temp dirs so tests never change them).

#![forbid(unsafe_code)]

pub mod conformance;
pub mod fakes;
pub mod http;
pub mod postgres;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use auth_core::{FileStorage, ManualClock, SeededRng};

pub use auth_core::ManualClock as FakeClock;

/// Unix time at which the HA 2026.2.3 fixture was made (its first access token's `iat`).
pub const FIXTURE_2026_NOW: i64 = 1_795_303_495;

/// The folder holding the golden fixtures shipped with this crate.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Reads a fixture file as JSON (e.g. `"ha-2026.2.3/fixture.json"`).
pub fn fixture_json(relative: &str) -> serde_json::Value {
    let path = fixtures_dir().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", path.display()))
}

/// A temporary config directory with a `.storage` folder, removed on drop.
#[derive(Debug)]
pub struct TempConfig {
    dir: tempfile::TempDir,
}

impl TempConfig {
    /// An empty config directory.
    pub fn empty() -> Self {
        let dir = tempfile::tempdir().expect("can create a temp dir");
        std::fs::create_dir_all(dir.path().join(".storage")).expect("can create .storage");
        Self { dir }
    }

    /// A config directory holding a copy of a fixture (`"ha-2026.2.3"` or `"ha-2024.3.3"`).
    pub fn from_fixture(name: &str) -> Self {
        let this = Self::empty();
        copy_dir(&fixtures_dir().join(name), this.path());
        this
    }

    /// The config directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `.storage` directory.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join(".storage")
    }

    /// A file store over `.storage`.
    pub fn storage(&self) -> Arc<FileStorage> {
        Arc::new(FileStorage::new(self.storage_dir()))
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("cannot list {}: {e}", from.display()))
    {
        let entry = entry.expect("readable entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("can create dir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("can copy fixture file");
        }
    }
}

/// A manual clock at the given Unix time.
pub fn clock_at(unix: i64) -> Arc<ManualClock> {
    Arc::new(ManualClock::at_unix(unix))
}

/// A deterministic random source.
pub fn seeded_rng(seed: u64) -> Arc<SeededRng> {
    Arc::new(SeededRng::new(seed))
}

/// The `data` of `.storage/auth` as a restarted process reads it: the file (if any) with the
/// auth journal (`auth.journal.<n>`) replayed on top. Durable changes are in the journal until a
/// compaction or clean stop folds them into the file.
pub async fn stored_auth(storage_dir: &Path) -> serde_json::Value {
    use auth_core::Journal;
    let path = storage_dir.join("auth");
    let mut data = match std::fs::read(&path) {
        Ok(bytes) => {
            auth_core::StoredDocument::from_file_bytes("auth", &path.display().to_string(), &bytes)
                .unwrap_or_else(|e| panic!("{e}"))
                .expect("the auth file has data")
                .data
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            serde_json::json!({"users": [], "groups": [], "credentials": [], "refresh_tokens": []})
        }
        Err(e) => panic!("{}: {e}", path.display()),
    };
    let records = auth_core::FileJournal::new(storage_dir, "auth")
        .replay()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    auth_core::store::apply_journal("auth", &mut data, &records).unwrap_or_else(|e| panic!("{e}"));
    data
}

/// The auth journal's segments (`auth.journal.<n>`) in `storage_dir`, oldest first.
pub fn journal_segments(storage_dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(storage_dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", storage_dir.display()))
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix("auth.journal.")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}
