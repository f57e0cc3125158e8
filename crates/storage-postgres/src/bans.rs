//! IP bans and failed-login counters in the `bans` and `failed_logins` tables (see
//! `auth_core::SharedBans`). Counters use the codes' connection (single statements, pipelined);
//! bans and unbans are transactions on the main connection that notify the other instances.

use async_trait::async_trait;
use auth_core::storage::BANS_KEY;
use auth_core::{SharedBans, StorageError};
use serde_json::json;

use crate::PgStorage;

/// The shared bans of one database.
#[derive(Debug)]
pub struct PgBans {
    pub(crate) storage: PgStorage,
}

impl PgBans {
    fn error(&self, e: tokio_postgres::Error) -> StorageError {
        self.storage.write_error(BANS_KEY, e)
    }

    /// Tells the other instances about `record` (a ban or an unban) and commits.
    async fn notify_and_commit(
        &self,
        tx: tokio_postgres::Transaction<'_>,
        prepared: &mut crate::prepared::Prepared,
        record: serde_json::Value,
    ) -> Result<(), StorageError> {
        let instance = &self.storage.inner.instance;
        crate::notify(&tx, prepared, instance, BANS_KEY, Some(&record))
            .await
            .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))
    }
}

#[async_trait]
impl SharedBans for PgBans {
    async fn add_failure(&self, ip: &str, half_life_secs: f64) -> Result<f64, StorageError> {
        let row = self
            .storage
            .inner
            .codes
            .client
            .query_one(
                "WITH now AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS t),
                 gone AS (
                    DELETE FROM failed_logins
                    WHERE $2::float8 > 0 AND ip <> $1 AND updated < (SELECT t FROM now) - 20 * $2::float8
                 )
                 INSERT INTO failed_logins AS f (ip, score, updated)
                 VALUES ($1, 1, (SELECT t FROM now))
                 ON CONFLICT (ip) DO UPDATE SET
                    score = CASE WHEN $2::float8 > 0
                        THEN f.score * power(0.5, greatest((SELECT t FROM now) - f.updated, 0) / $2::float8)
                        ELSE f.score END + 1,
                    updated = (SELECT t FROM now)
                 RETURNING score",
                &[&ip, &half_life_secs],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(row.get(0))
    }

    async fn reset(&self, ip: &str) -> Result<(), StorageError> {
        self.storage
            .inner
            .codes
            .client
            .execute("DELETE FROM failed_logins WHERE ip = $1", &[&ip])
            .await
            .map(drop)
            .map_err(|e| self.error(e))
    }

    async fn ban(&self, ip: &str, banned_at: f64) -> Result<(), StorageError> {
        let mut conn = self.storage.inner.client.lock().await;
        let crate::prepared::Conn { client, prepared } = &mut *conn;
        let tx = client.transaction().await.map_err(|e| self.error(e))?;
        tx.execute(
            "INSERT INTO bans (ip, banned_at) VALUES ($1, $2::float8) ON CONFLICT (ip) DO NOTHING",
            &[&ip, &banned_at],
        )
        .await
        .map_err(|e| self.error(e))?;
        tx.execute("DELETE FROM failed_logins WHERE ip = $1", &[&ip])
            .await
            .map_err(|e| self.error(e))?;
        self.notify_and_commit(tx, prepared, json!({"ban": ip, "at": banned_at}))
            .await
    }

    async fn unban(&self, ip: &str) -> Result<bool, StorageError> {
        let mut conn = self.storage.inner.client.lock().await;
        let crate::prepared::Conn { client, prepared } = &mut *conn;
        let tx = client.transaction().await.map_err(|e| self.error(e))?;
        let removed = tx
            .execute("DELETE FROM bans WHERE ip = $1", &[&ip])
            .await
            .map_err(|e| self.error(e))?
            > 0;
        self.notify_and_commit(tx, prepared, json!({"unban": ip}))
            .await?;
        Ok(removed)
    }

    async fn list(&self) -> Result<Vec<(String, f64)>, StorageError> {
        let client = self.storage.inner.client.lock().await;
        let rows = client
            .query("SELECT ip, banned_at FROM bans ORDER BY banned_at, ip", &[])
            .await
            .map_err(|e| self.storage.read_error(BANS_KEY, e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
