//! `.storage/onboarding`: which onboarding steps are done (only `user` concerns auth).

use std::sync::Arc;

use auth_core::storage::check_version;
use auth_core::{SaveOptions, Storage, StorageError, StoredDocument};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// Store key.
pub const STORAGE_KEY: &str = "onboarding";
/// Major version (HA's current).
pub const STORAGE_VERSION: u32 = 4;
/// Every step, in HA's order.
pub const STEPS: [&str; 4] = ["user", "core_config", "analytics", "integration"];

/// The steps done as stored (none when the store does not exist), older versions' later steps
/// added as Home Assistant does.
async fn read(storage: &dyn Storage) -> Result<Vec<String>, StorageError> {
    let mut done = Vec::new();
    if let Some(doc) = storage.load(STORAGE_KEY).await? {
        if doc.version > STORAGE_VERSION {
            check_version(storage, &doc, STORAGE_VERSION)?;
        }
        let steps = doc
            .data
            .get("done")
            .and_then(Value::as_array)
            .ok_or_else(|| StorageError::Corrupt {
                location: storage.location(STORAGE_KEY),
                problem: "data.done is missing or not a list".to_owned(),
            })?;
        done = steps
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        // Older major versions lack the steps introduced later; HA appends them as done.
        if doc.version < 2 && !done.iter().any(|s| s == "integration") {
            done.push("integration".to_owned());
        }
        if doc.version < 3 && !done.iter().any(|s| s == "core_config") {
            done.push("core_config".to_owned());
        }
        if doc.version < 4 && !done.iter().any(|s| s == "analytics") {
            done.push("analytics".to_owned());
        }
    }
    Ok(done)
}

/// Onboarding progress, persisted in HA's format.
#[derive(Debug)]
pub struct Onboarding {
    storage: Arc<dyn Storage>,
    done: Arc<Mutex<Vec<String>>>,
    save: Arc<tokio::sync::Mutex<()>>,
}

impl Onboarding {
    /// Loads progress; an owner that already exists marks the `user` step done (as HA does).
    pub async fn load(storage: Arc<dyn Storage>, owner_exists: bool) -> Result<Self, StorageError> {
        let done = Arc::new(Mutex::new(read(storage.as_ref()).await?));
        let save = Arc::new(tokio::sync::Mutex::new(()));
        let serialise = save.clone();
        // Another instance finishing a step (a shared database) is seen here at once.
        auth_core::storage::reload_on_change(
            &storage,
            STORAGE_KEY,
            Arc::downgrade(&done),
            move |storage, done| {
                let save = serialise.clone();
                async move {
                    let _save = save.lock().await;
                    match read(storage.as_ref()).await {
                        Ok(steps) => *done.lock() = steps,
                        Err(error) => {
                            tracing::error!(%error, "reading onboarding another instance changed failed");
                        }
                    }
                }
            },
        );
        let this = Self {
            storage,
            done,
            save,
        };
        if owner_exists && !this.is_done("user") {
            this.mark_done("user").await?;
        }
        Ok(this)
    }

    /// Whether `step` is done.
    pub fn is_done(&self, step: &str) -> bool {
        self.done.lock().iter().any(|s| s == step)
    }

    /// Marks `step` done and saves durably.
    pub async fn mark_done(&self, step: &str) -> Result<(), StorageError> {
        let _guard = self.save.lock().await;
        let snapshot = {
            let mut done = self.done.lock();
            if done.iter().any(|s| s == step) {
                return Ok(());
            }
            done.push(step.to_owned());
            done.clone()
        };
        let doc = StoredDocument::new(STORAGE_KEY, STORAGE_VERSION, 1, json!({ "done": snapshot }));
        if let Err(error) = self.storage.save(&doc, SaveOptions { private: true }).await {
            self.done.lock().retain(|s| s != step);
            return Err(error);
        }
        Ok(())
    }

    /// Whether every step is done. HA registers the onboarding views only while this is false
    /// at start (http-api.md §12); [`crate::AuthHttp::router`] does the same.
    pub fn is_complete(&self) -> bool {
        STEPS.iter().all(|step| self.is_done(step))
    }

    /// `GET /api/onboarding`'s body.
    pub fn status(&self) -> Value {
        Value::Array(
            STEPS
                .iter()
                .map(|step| json!({"step": step, "done": self.is_done(step)}))
                .collect(),
        )
    }
}
