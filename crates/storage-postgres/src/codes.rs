//! Authorization codes in the `auth_codes` table (see `auth_core::SharedCodes`): one connection
//! of their own, whose statements are prepared once and pipelined (no transaction, each
//! statement is atomic): a sign-in costs three round trips here, not six.

use async_trait::async_trait;
use auth_core::{SharedCodes, SharedRedemption, StorageError};
use serde_json::Value;
use tokio_postgres::types::Json;
use tokio_postgres::{Client, Statement};

const PUT: &str = "WITH expired AS (DELETE FROM auth_codes WHERE expires_at < now())
     INSERT INTO auth_codes (key, data, expires_at)
     VALUES ($1, $2, now() + make_interval(secs => $3))";

const REDEEM: &str = "WITH old AS (
        SELECT key, redeemed, tokens FROM auth_codes
        WHERE key = $1 AND expires_at > now() FOR UPDATE
     )
     UPDATE auth_codes c SET redeemed = true, reused = old.redeemed,
        tokens = CASE WHEN old.redeemed THEN '{}' ELSE c.tokens END
     FROM old WHERE c.key = old.key
     RETURNING c.data, old.redeemed, old.tokens";

const RECORD: &str = "UPDATE auth_codes SET tokens = CASE WHEN reused THEN tokens
        ELSE array_append(tokens, $2) END
     WHERE key = $1 RETURNING reused";

/// The shared code table of one database.
#[derive(Debug)]
pub struct PgCodes {
    pub(crate) client: Client,
    pub(crate) location: String,
    put: Statement,
    redeem: Statement,
    record: Statement,
}

impl PgCodes {
    /// Prepares the statements on `client` (a connection of their own).
    pub(crate) async fn new(client: Client, location: String) -> Result<Self, StorageError> {
        let fail = |e: tokio_postgres::Error| StorageError::Read {
            location: format!("{location} (auth_codes)"),
            source: std::io::Error::other(e.to_string()),
        };
        let put = client.prepare(PUT).await.map_err(fail)?;
        let redeem = client.prepare(REDEEM).await.map_err(fail)?;
        let record = client.prepare(RECORD).await.map_err(fail)?;
        Ok(Self {
            client,
            location,
            put,
            redeem,
            record,
        })
    }

    fn error(&self, e: &tokio_postgres::Error) -> StorageError {
        StorageError::Write {
            location: format!("{} (auth_codes)", self.location),
            source: std::io::Error::other(e.to_string()),
        }
    }
}

#[async_trait]
impl SharedCodes for PgCodes {
    async fn put(&self, key: &str, code: &Value, lifetime_secs: f64) -> Result<(), StorageError> {
        // Expired codes go as new ones come (indexed), so the table holds about ten minutes'.
        self.client
            .execute(&self.put, &[&key, &Json(code), &lifetime_secs])
            .await
            .map(drop)
            .map_err(|e| self.error(&e))
    }

    async fn redeem(&self, key: &str) -> Result<SharedRedemption, StorageError> {
        let row = self
            .client
            .query_opt(&self.redeem, &[&key])
            .await
            .map_err(|e| self.error(&e))?;
        Ok(match row {
            None => SharedRedemption::Invalid,
            Some(row) if row.get::<_, bool>(1) => SharedRedemption::Reused(row.get(2)),
            Some(row) => SharedRedemption::Valid(row.get::<_, Json<Value>>(0).0),
        })
    }

    async fn record_token(&self, key: &str, token_id: &str) -> Result<bool, StorageError> {
        let row = self
            .client
            .query_opt(&self.record, &[&key, &token_id])
            .await
            .map_err(|e| self.error(&e))?;
        // A code no longer held (expired) cannot be tracked, as in one process's memory.
        Ok(!row.is_some_and(|r| r.get::<_, bool>(0)))
    }
}
